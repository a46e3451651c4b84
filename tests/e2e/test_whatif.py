"""What-if and shadow settlement: nothing is recorded, and the figures equal what recording the
variation with --restate (then closing the open years) decides."""

import json
from decimal import Decimal

from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES, ROOT

DATA = ROOT / "tests" / "data" / "rate_cards"

VARIATION = """\
variation:
  id: cv-mix
  contract_id: beds-msk
  effective_from_year: 2
  reason: More of the budget rides on outcomes
changes:
  payment:
    schedule:
      - {from_year: 2, core: "0.85", outcomes: "0.15", risk_share: standard}
  budget:
    efficiency: "0.03"
"""


def _events(url):
    app = Ledger.from_url(url)
    return app.recorder.max_notification_id()


def _net(statement):
    total = Decimal(statement["total"]) + sum(Decimal(t["amount"]) for t in statement["true_ups"])
    parties = {p: Decimal(v) for p, v in statement["by_party"].items()}
    for t in statement["true_ups"]:
        for p, v in t["by_party"].items():
            parties[p] = parties.get(p, Decimal("0")) + Decimal(v)
    return total, parties


def test_whatif_records_nothing_and_equals_what_vary_with_restate_then_records(cli, sqlite_url, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "1")
    cli.ok("close-year", "beds-msk", "2")
    path = tmp_path / "cv.yaml"
    path.write_text(VARIATION)
    before = _events(sqlite_url)
    result = cli.ok("whatif", "beds-msk", path, "--years", "2-3", "--json").json()
    text = cli.ok("whatif", "beds-msk", path, "--years", "2-3").out
    assert _events(sqlite_url) == before  # nothing recorded
    assert "difference" in text and "net total" in text
    years = {y["year"]: y for y in result["years"]}
    assert years[2]["in_force"] == json.loads((EXAMPLES / "worked-example-expected.json").read_text())[1]
    # B2 = round(24,000,000 × 0.97 × 1.021) = 23,768,880.00; core = round(B2 × 0.85)
    assert years[2]["whatif"]["budget"] == "23768880.00"
    assert years[2]["whatif"]["core"]["annual"] == "20203548.00"
    assert years[2]["whatif"]["terms"]["variations"] == ["cv-mix"]
    cli.ok("contract", "vary", "beds-msk", path, "--restate")
    cli.ok("close-year", "beds-msk", "3")
    for year in (2, 3):
        total, parties = _net(cli.ok("statement", "beds-msk", "--year", str(year), "--json").json())
        whatif = years[year]["whatif"]
        assert total == Decimal(whatif["total"])
        assert parties == {p: Decimal(v) for p, v in whatif["by_party"].items()}
    diff = years[2]["difference"]
    assert Decimal(diff["total"]) == Decimal(years[2]["whatif"]["total"]) - Decimal("21813025.07")
    assert sum(Decimal(v) for v in diff["by_party"].values()) == Decimal(diff["total"])


def test_the_shadow_settlement_settles_the_introduction_years_on_a_later_years_schedule(cli, sqlite_url):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "1")
    before = _events(sqlite_url)
    result = cli.ok("whatif", "beds-msk", "--schedule-of-year", "2", "--years", "1-1", "--json").json()
    assert _events(sqlite_url) == before
    (year,) = result["years"]
    # year 1 on year 2's entry: core 0.90 of 24,000,000 = 21,600,000.00, pot 2,400,000.00, risk share on
    assert (
        year["whatif"]["core"]["annual"] == "21600000.00"
        and year["whatif"]["outcomes"]["pot"] == "2400000.00"
    )
    assert year["whatif"]["risk_share"] is not None and year["in_force"]["risk_share"] is None
    assert year["in_force"]["total"] == "24000000.00"


def test_whatif_of_an_open_rate_card_year_equals_its_close(cli, sqlite_url):
    cli.ok("contract", "register", DATA / "employ.yaml")
    cli.ok("ingest", DATA / "employ-claims.jsonl")
    card = """\
variation: {id: cv-1, contract_id: ldn-employ, effective_from_year: 1, reason: test}
changes: {payment: {schedule: [{from_year: 1, core: "1.00", outcomes: "0.00"}]}}
"""
    result = services_for(Ledger.from_url(sqlite_url)).registration.whatif("ldn-employ", card, (1, 2))
    closed = [cli.ok("close-year", "ldn-employ", str(y), "--json").json() for y in (1, 2)]
    assert [y["whatif"]["rate_card"] for y in result["years"]] == [c["rate_card"] for c in closed]
    assert [y["whatif"]["total"] for y in result["years"]] == ["6500.00", "5500.00"]
