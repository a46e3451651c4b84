"""The auditor's report over HTTP as of an instant, like `obc-ledger report --as-of`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service


@pytest.fixture(scope="module")
def service_with_history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report-as-of")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    time.sleep(1.1)
    before_close = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    cli.ok("close-year", "beds-msk", "1")
    service = start_service(db_url, tmp / "service.log")
    service.cli, service.before_close = cli, before_close  # type: ignore[attr-defined]
    yield service
    service.stop()


def test_the_report_as_of_an_instant_is_the_ledger_as_it_stood_then(service_with_history, tmp_path):
    s = service_with_history
    instant = s.before_close.isoformat().replace("+00:00", "Z")
    with s.client(s.token("auditor:nao", "NAO auditor")) as c:
        now = c.get("/api/v1/contracts/beds-msk/report")
        then = c.get("/api/v1/contracts/beds-msk/report", params={"as_of": instant})
        bad = c.get("/api/v1/contracts/beds-msk/report", params={"as_of": "last tuesday"})
    assert now.status_code == 200 and then.status_code == 200, then.text
    assert 'id="as-of"' in then.text and f"As recorded at {instant}" in then.text
    assert 'id="as-of"' not in now.text
    stamp = s.before_close.strftime("%Y%m%dT%H%M%SZ")
    assert then.headers["content-disposition"] == f'attachment; filename="beds-msk-report-as-of-{stamp}.html"'
    assert bad.status_code in (400, 422) and bad.json()["error"] == "invalid_instant"
    # the same as the CLI's report of that instant (but for when each was generated)
    out = tmp_path / "cli.html"
    s.cli.ok("report", "beds-msk", "--out", out, "--as-of", instant)

    def strip(html: str) -> str:  # instants after the one asked for: when the report was made
        def later(m: re.Match[str]) -> str:
            at = datetime.fromisoformat(m.group(0).replace("Z", "+00:00"))
            return "…" if at > s.before_close else m.group(0)

        html = re.sub(r"generated [^,<]+", "generated …", html)
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", later, html)

    assert strip(out.read_text()) == strip(then.text)
    assert strip(now.text) != strip(then.text)


def test_a_stranger_may_not_download_the_report_of_the_past(service_with_history):
    s = service_with_history
    with s.client(s.token("provider:stranger", "Another provider")) as c:
        r = c.get("/api/v1/contracts/beds-msk/report", params={"as_of": "2026-01-01"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_contract"
