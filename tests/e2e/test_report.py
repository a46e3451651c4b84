"""The auditor's report: rendered by the CLI, then loaded in headless Chromium.

Chromium is Debian's `chromium` package, installed by `make test` when missing. A
missing browser fails these tests rather than skipping them: the report must be
proven to load in a real browser.
"""

import json
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.support.cli import EXAMPLES

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed: run `make test` (it installs Debian's chromium) "
            "or `apt-get install -y chromium`"
        )
    return found


def _dump_dom(path, tmp_path):
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", path.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _example(cli, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "1")
    cli.ok("close-year", "beds-msk", "2")
    cli.ok("ingest", _late(tmp_path))
    cli.ok("restate", "beds-msk", "2")


def _late(tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text(
        json.dumps(
            {
                "type": "submission",
                "submission_id": "s-0419",
                "contract_id": "beds-msk",
                "provider_id": "circle",
                "indicator_id": "readmissions",
                "period": "2027-Q1",
                "value": "80",
            }
        )
        + "\n"
    )
    return path


def test_the_report_loads_in_headless_chromium_and_shows_the_contract_figures(cli, tmp_path):
    _example(cli, tmp_path)
    out = tmp_path / "report.html"
    summary = cli.ok("report", "beds-msk", "--out", out, "--json").json()
    assert summary["years"] == [1, 2, 3] and summary["decisions"] == 3
    html = out.read_text()
    # self-contained: nothing to fetch, nothing to run (SVG namespace URIs are names, not fetched)
    assert not re.search(r"<script|<link|<img|<iframe|(src|href)=\"(https?:|//)|url\((?!#)", html)
    dom = _dump_dom(out, tmp_path)
    assert 'data-report="ok"' in dom and 'class="report-error"' not in dom
    assert "Bedfordshire MSK pathway (worked example)" in dom
    assert "21,813,025.07" in dom  # year 2's total as closed
    assert "24,000,000.00" in dom  # year 1's
    assert "-882,144.00" in dom  # the true-up
    assert "restated after correction s-0419" in dom
    assert re.search(r'data-year-total="2">\s*20,930,881.07\s*<', dom)  # net of the true-up
    assert dom.count("<svg") >= 2 + 4  # payments, costs, one per measure with values
    assert "Cost against budget, with the risk-share corridor" in dom
    assert "readmissions" in dom and "279.00" in dom  # the threshold from the baseline 310
    head = re.search(r'id="max-notification-id">(\d+)<', dom)
    assert head and int(head.group(1)) == summary["max_notification_id"] > 0


def test_a_one_year_report_shows_only_that_year(cli, tmp_path):
    _example(cli, tmp_path)
    out = tmp_path / "year2.html"
    cli.ok("report", "beds-msk", "--year", "2", "--out", out)
    dom = _dump_dom(out, tmp_path)
    assert "21,813,025.07" in dom and 'class="report-error"' not in dom
    assert 'data-year-total="1"' not in dom and "(year 2)" in dom


def test_a_report_for_an_unknown_contract_is_a_clear_error_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "none.html"
    result = cli("report", "nope", "--out", out)
    assert result.code == 1 and "unknown_contract" in result.err
    assert not out.exists()


def test_the_report_lists_disputes_and_manual_adjustments(cli, tmp_path):
    _example(cli, tmp_path)
    cli.ok(
        "dispute",
        "raise",
        "beds-msk",
        "--year",
        "2",
        "--reason",
        "physio sessions missed",
        "--as",
        "provider:physio",
    )
    cli.ok(
        "dispute",
        "resolve",
        "beds-msk",
        "D2-1",
        "--year",
        "2",
        "--upheld",
        "--note",
        "agreed recount",
        "--adjust",
        "12500.00",
        "--party",
        "physio",
        "--as",
        "commissioner:bccg",
    )
    out = tmp_path / "disputes.html"
    cli.ok("report", "beds-msk", "--out", out)
    dom = _dump_dom(out, tmp_path)
    assert "D2-1" in dom and "physio sessions missed" in dom and "agreed recount" in dom
    assert "12,500.00" in dom and 'class="report-error"' not in dom
    assert re.search(
        r'data-year-total="2">\s*20,943,381.07\s*<', dom
    )  # 21,813,025.07 − 882,144.00 + 12,500.00


def test_a_report_as_of_an_instant_shows_only_what_was_recorded_by_then(cli, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "2")
    time.sleep(0.01)
    before_restatement = datetime.now(UTC)
    time.sleep(0.01)
    cli.ok("ingest", _late(tmp_path))
    cli.ok("restate", "beds-msk", "2")

    then, now = tmp_path / "then.html", tmp_path / "now.html"
    cli.ok("report", "beds-msk", "--year", "2", "--as-of", before_restatement.isoformat(), "--out", then)
    cli.ok("report", "beds-msk", "--year", "2", "--out", now)
    then_dom, now_dom = _dump_dom(then, tmp_path), _dump_dom(now, tmp_path)
    assert f"As recorded at {before_restatement.isoformat().replace('+00:00', 'Z')}" in then_dom
    assert "As recorded at" not in now_dom
    assert "No true-ups or adjustments." in then_dom and "-882,144.00" not in then_dom
    assert "-882,144.00" in now_dom
    assert re.search(r'data-year-total="2">\s*21,813,025.07\s*<', then_dom)
    assert re.search(r'data-year-total="2">\s*20,930,881.07\s*<', now_dom)  # 21,813,025.07 − 882,144.00


# ------------------------------------------------------------ layout and PDF

# A4 at 96 dpi (the printable page is narrower still) and a small laptop screen
VIEWPORTS = [(794, 1123), (1280, 800)]
LAYOUT_PROBE = """<script>
addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > width + 1;
  }).map(e => e.tagName + '#' + (e.id || '') + '.' + (e.getAttribute('class') || ''));
  const figures = [...document.querySelectorAll('figure, h3[id^="fig-"]')].map(f => f.id);
  const links = [...document.querySelectorAll('figcaption a, #contents a, h3[id^="fig-"] + p a')]
    .map(a => a.getAttribute('href')).filter(h => !document.getElementById(h.slice(1)));
  document.body.setAttribute('data-layout', JSON.stringify({
    width, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 20), figures, broken: links,
    svgs: document.querySelectorAll('svg').length}));
});
</script>"""


def _layout(path, tmp_path, width, height):
    probed = tmp_path / f"probe-{width}.html"
    probed.write_text(path.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    profile = tmp_path / f"chromium-profile-{width}"
    proc = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            "--dump-dom",
            probed.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"data-layout=\"([^\"]*)\"", proc.stdout)
    assert found, "the layout probe did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_the_report_fits_an_a4_page_and_a_laptop_with_every_figure_present_and_linked(cli, tmp_path):
    _example(cli, tmp_path)
    out = tmp_path / "report.html"
    cli.ok("report", "beds-msk", "--out", out)
    for width, height in VIEWPORTS:
        layout = _layout(out, tmp_path, width, height)
        assert layout["width"] <= width
        assert layout["wide"] == [] and layout["scroll"] <= layout["width"], layout
        assert layout["figures"] == ["fig-payments", "fig-adjustments", "fig-indicators", "fig-costs"]
        assert layout["broken"] == []
        assert layout["svgs"] >= 3 + 4  # payments, adjustments, costs, one per measure with values


def test_the_report_shows_tiers_as_percentages_by_party_scores_data_quality_verification_and_sign_off(
    cli, tmp_path
):
    _example(cli, tmp_path)
    digest = cli.ok("digest", "--json").out
    out = tmp_path / "report.html"
    args = ["report", "beds-msk", "--out", out] + (["--digest", digest.strip()] if digest else [])
    cli.ok(*args)
    dom = _dump_dom(out, tmp_path)
    # tiers as percentages, and who bears what
    assert "0% to 2%" in dom and "2% to 10%" in dom and "beyond 10%" in dom
    assert re.search(
        r"<td>2% to 10%</td><td class=\"num\">50%</td><td class=\"num\">50%</td>\s*"
        r"<td class=\"num\">60%</td><td class=\"num\">40%</td>",
        dom,
    )
    # by party: year 2, lead provider first, the close and the true-up included
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    circle = [m.group(1) for m in re.finditer(r'data-party="circle" data-year="2">([^<]+)<', dom)]
    physio = [m.group(1) for m in re.finditer(r'data-party="physio" data-year="2">([^<]+)<', dom)]
    net = {p: Decimal(a) for p, a in statement["by_party"].items()}
    net["circle"] += sum(
        (Decimal(t["amount"]) for t in statement["true_ups"]), Decimal(0)
    )  # the true-up: circle
    assert circle == [f"{net['circle']:,.2f}"] and physio == [f"{net['physio']:,.2f}"]
    assert dom.index('data-party="circle"') < dom.index('data-party="physio"')
    # score and earned per indicator per year (year 2 as restated)
    readmissions = next(i for i in statement["outcomes"]["indicators"] if i["id"] == "readmissions")
    assert f"{Decimal(readmissions['earned']):,.2f}" in dom
    assert 'id="data-quality"' in dom and "Rejected records" in dom and "Refused access" in dom
    assert re.search(r'id="verify-result">.*?<span class="ok">verified</span>', dom, re.S)
    if digest:
        assert re.search(r'id="digest-result">.*?<span class="ok">matches</span>', dom, re.S)
    assert 'id="sign-off"' in dom and "Reviewed by (auditor)" in dom


def test_report_pdf_prints_the_page_to_a4_through_headless_chromium(cli, tmp_path):
    _example(cli, tmp_path)
    out, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    summary = cli.ok("report", "beds-msk", "--out", out, "--pdf", pdf, "--json").json()
    assert summary["verified"] is True
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and summary["pdf_bytes"] == len(data)
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert len(boxes) >= 2  # several pages
    assert all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)  # A4 portrait
    assert b"Auditor's report: Bedfordshire MSK pathway" in data  # the document title
