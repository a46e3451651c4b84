"""Contract variations and alliance terms end to end through the CLI (payment rules §5, §7).

The expected figures are worked out by hand from the spec in the comments, not by the ledger's code.
"""

import json
from decimal import Decimal

from tests.support.cli import ROOT

DATA = ROOT / "tests" / "data" / "variations"


def _register(cli):
    cli.ok("contract", "register", DATA / "alliance.yaml")


def _vary(cli, tmp_path, text, *extra):
    path = tmp_path / "variation.yaml"
    path.write_text(text)
    return cli("contract", "vary", "ally", path, *extra)


# Year 2 under cv-1 (effective from year 2):
#   B2 = round(1,000,000 × (1 − 0.05) × (1 + 0.02)) = 969,000.00; core = 872,100.00; pot = 96,900.00
#   ind-a: (70 + 75) / (100 + 100) = 0.725, sliding 0.6 → 0.8: score 0.625; w' = 0.6 / (0.6 + 0.4) = 0.6
#          earned = round(96,900 × 0.6 × 0.625) = 36,337.50, attribution lp/sa 0.5: 18,168.75 each
#   ind-c: 60 ≥ 50: score 1, w' 0.4, earned 38,760.00 (lead); ind-b removed from year 2
#   outcome payment 75,097.50; Q = 75,097.50 / 96,900 = 0.775
#   high cost: HC-1 = 8,000 (lp) + 6,000 (sa) → excess 4,000; HC-2 = 15,000 (sa) + 5,000 (sc) → excess 10,000
#     E = 14,000.00; sa = round(4,000 × 6/14 + 10,000 × 15/20) = 9,214.29; sc = round(2,500) = 2,500.00;
#     lp = 14,000 − 11,714.29 = 2,285.71
#   C = 800,000.00; V = 969,000 − (800,000 − 14,000) = 183,000 (gain)
#   tier 1: slice 48,450 (0.05 × R), gain share 0.8 × Q = 0.62 → commissioner 48,450 × 0.38 = 18,411
#   tier 2: slice 134,550, share 0.2 × Q = 0.155 → commissioner 134,550 × 0.845 = 113,694.75
#   A = −132,105.75; split sa = sc = round(−33,026.4375) = −33,026.44, lp = −66,052.87
#   core split 0.7 / 0.1 / 0.2: lp 610,470.00, sa 87,210.00, sc 174,420.00
#   year-close = 75,097.50 − 132,105.75 + 14,000 = −43,008.25; total = 829,091.75
YEAR2 = {
    "budget": "969000.00",
    "core": "872100.00",
    "pot": "96900.00",
    "payment": "75097.50",
    "risk_share": {
        "costs": "800000.00",
        "high_cost_excess": "14000.00",
        "reference": "969000.00",
        "variance": "183000.00",
        "adjustment": "-132105.75",
    },
    "high_cost_reimbursement": "14000.00",
    "year_close_payment": "-43008.25",
    "total": "829091.75",
    "by_party": {"lp": "603631.59", "sa": "81566.60", "sc": "143893.56"},
}


def _check_year2(statement):
    assert statement["budget"] == YEAR2["budget"]
    assert statement["core"]["annual"] == YEAR2["core"]
    assert statement["outcomes"]["pot"] == YEAR2["pot"]
    assert statement["outcomes"]["payment"] == YEAR2["payment"]
    assert [(i["id"], i["score"], i["earned"]) for i in statement["outcomes"]["indicators"]] == [
        ("ind-a", "0.625", "36337.50"),
        ("ind-c", "1", "38760.00"),
    ]
    for key in ("risk_share", "high_cost_reimbursement", "year_close_payment", "total", "by_party"):
        assert statement[key] == YEAR2[key], key
    assert statement["terms"] == {"variations": ["cv-1"]}


def test_an_alliance_variation_from_year_2_settles_every_figure_on_the_new_terms(any_cli):
    _register(any_cli)
    recorded = any_cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml", "--json").json()
    assert recorded["recorded"] is True and recorded["effective_from_year"] == 2
    counts = any_cli.ok("ingest", DATA / "data.jsonl", "--json").json()
    assert (counts["accepted"], counts["rejected"]) == (7, 0)
    year1 = any_cli.ok("close-year", "ally", "1", "--json").json()
    assert year1["by_party"] == {"lp": "600000.00", "sa": "200000.00", "sb": "200000.00"}
    assert year1["terms"] == {"variations": []}
    any_cli.ok("close-year", "ally", "2")
    _check_year2(any_cli.ok("statement", "ally", "--year", "2", "--json").json())
    # Year 3 (open): B3 = round(1,000,000 × (0.95 × 1.02)²) = 938,961.00, still on cv-1's terms
    year3 = any_cli.ok("statement", "ally", "--year", "3", "--json").json()
    assert year3["budget"] == "938961.00" and year3["terms"] == {"variations": ["cv-1"]}
    assert list(year3["by_party"]) == ["lp", "sa", "sc"]


def test_records_for_a_party_or_indicator_not_in_force_in_their_year_are_refused_saying_from_which_year(cli):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    report = cli.refused("ingest", DATA / "refused.jsonl", "--json").json()
    assert (report["accepted"], report["rejected"]) == (0, 4)
    rejected = {r["record_id"]: r for r in cli.ok("rejected", "list", "--json").json()}
    assert rejected["r-1"]["code"] == "unknown_indicator" and "from year 2" in rejected["r-1"]["message"]
    assert "cv-1" in rejected["r-1"]["message"]
    assert rejected["r-2"]["code"] == "provider_not_party" and "from year 2" in rejected["r-2"]["message"]
    assert (
        rejected["r-3"]["code"] == "provider_not_party" and "only from year 2" in rejected["r-3"]["message"]
    )
    assert rejected["r-4"]["code"] == "unknown_indicator" and "only from year 2" in rejected["r-4"]["message"]


def test_a_variation_into_a_closed_year_is_refused_unless_restated_with_a_true_up_naming_it(cli):
    _register(cli)
    cli.refused("ingest", DATA / "data.jsonl")  # sc's cost report is refused: sc is not a party yet
    cli.ok("close-year", "ally", "1")
    cli.ok("close-year", "ally", "2")
    before = cli.ok("statement", "ally", "--year", "2", "--json").json()
    refused = cli("contract", "vary", "ally", DATA / "cv-1.yaml")
    assert refused.code == 1 and "year_closed" in refused.err
    assert cli.ok("contract", "variations", "ally", "--json").json() == []
    assert cli.ok("statement", "ally", "--year", "2", "--json").json() == before
    result = cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml", "--restate", "--json").json()
    assert [r["year"] for r in result["restated"]] == [2]
    statement = cli.ok("statement", "ally", "--year", "2", "--json").json()
    assert statement["total"] == before["total"]  # the original decision stands; the true-up moves the money
    (true_up,) = statement["true_ups"]
    assert "variation cv-1" in true_up["reason"]
    assert statement["terms"] == {"variations": ["cv-1"]}
    # the year-1 close is untouched (the variation is effective from year 2)
    assert cli.ok("statement", "ally", "--year", "1", "--json").json()["true_ups"] == []


def test_an_identical_resubmission_is_a_no_op_and_a_different_one_under_the_same_id_is_refused(cli, tmp_path):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    again = cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml", "--json").json()
    assert again["recorded"] is False
    changed = (DATA / "cv-1.yaml").read_text().replace('efficiency: "0.05"', 'efficiency: "0.06"')
    result = _vary(cli, tmp_path, changed)
    assert result.code == 1 and "conflicting_variation" in result.err
    assert len(cli.ok("contract", "variations", "ally", "--json").json()) == 1


def test_an_invalid_variation_lists_every_problem_with_its_path_and_records_nothing(cli, tmp_path):
    _register(cli)
    terms_before = cli.ok("contract", "terms", "ally", "--year", "3", "--json").json()
    text = """
variation: {id: cv-bad, contract_id: ally, effective_from_year: 2, reason: broken}
changes:
  indicators:
    remove: [no-such]
    amend:
      - {id: ind-a, scoring: {rule: sliding, zero_at: "0.7", full_at: "0.7"}}
      - {id: ind-z, weight: "1"}
    add:
      - {id: ind-a, weight: "0.1", scoring: {rule: fixed, direction: higher, target: "1"}}
  subcontractors: {remove: [sb]}
  payment:
    schedule: [{from_year: 1, core: "0.5", outcomes: "0.4"}]
  budget: {uplift: ["0.01"]}
"""
    result = _vary(cli, tmp_path, text, "--json")
    assert result.code == 1
    problems = {p["path"] for p in json.loads(result.err)["problems"]}
    assert {
        "changes.indicators.remove[0]",
        "changes.indicators.amend[0].scoring.full_at",
        "changes.indicators.amend[1].id",
        "changes.indicators.add[0].id",
        "changes.subcontractors.remove[0]",
        "changes.payment.schedule[0].from_year",
        "changes.budget.uplift",
    } <= problems
    assert cli.ok("contract", "variations", "ally", "--json").json() == []
    assert cli.ok("contract", "terms", "ally", "--year", "3", "--json").json() == terms_before


def test_contract_terms_prints_the_terms_in_force_for_a_year_in_the_definition_shape(cli):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    year1 = cli.ok("contract", "terms", "ally", "--year", "1", "--json").json()
    year2 = cli.ok("contract", "terms", "ally", "--year", "2", "--json").json()
    assert [i["id"] for i in year1["indicators"]] == ["ind-a", "ind-b"]
    assert [i["id"] for i in year2["indicators"]] == ["ind-a", "ind-c"]
    assert [p["id"] for p in year2["contract"]["subcontractors"]] == ["sa", "sc"]
    assert year2["payment"]["risk_share"]["pool"]["high_cost_to"] == "reporting"
    assert year2["budget"]["efficiency"] == ["0.05", "0.05"]
    assert year1["budget"]["efficiency"] == "0.04"
    text = cli.ok("contract", "terms", "ally", "--year", "2").out
    assert "ind-c" in text and "quality_link: true" in text


def test_explain_says_who_bears_the_adjustment_and_the_high_cost_reimbursement_and_why(cli):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    cli.ok("ingest", DATA / "data.jsonl")
    cli.ok("close-year", "ally", "2")
    explained = cli.ok("explain", "ally", "--year", "2", "--json").json()
    assert explained["terms"] == {"variations": ["cv-1"]}
    rs = explained["decisions"][0]["risk_share"]
    assert rs["quality_link"]["quality_factor"] == "0.775" and rs["quality_link"]["applies"] is True
    assert [Decimal(t["provider_share"]) for t in rs["tiers"]] == [Decimal("0.62"), Decimal("0.155")]
    assert rs["adjustment_by_party"] == {"lp": "-66052.87", "sa": "-33026.44", "sc": "-33026.44"}
    assert rs["reimbursement_by_party"] == {"lp": "2285.71", "sa": "9214.29", "sc": "2500.00"}
    text = cli.ok("explain", "ally", "--year", "2").out
    assert "quality link: Q = min(1" in text and "E to the reporting providers" in text


def test_the_read_models_list_the_variations_and_replay_shows_the_terms_as_they_stood(cli):
    _register(cli)
    cli.refused("ingest", DATA / "data.jsonl")
    before = cli.ok("statement", "ally", "--year", "2", "--json").json()
    shown = cli.ok("contract", "show", "ally", "--json").json()
    assert shown["variations"] == []
    moment = shown["registered_at"]  # recorded instants have microseconds
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    shown = cli.ok("contract", "show", "ally", "--json").json()["variations"]
    assert [(v["variation_id"], v["effective_from_year"], v["reference"]) for v in shown] == [
        ("cv-1", 2, "CCN 1")
    ]
    assert cli.ok("statement", "ally", "--year", "2", "--json").json()["terms"] == {"variations": ["cv-1"]}
    then = cli.ok("statement", "ally", "--year", "2", "--as-of", moment, "--json").json()
    assert then["terms"] == {"variations": []} and then["budget"] == before["budget"]


def test_a_varied_year_reconciles_and_its_payments_add_up_to_the_statement(cli, tmp_path):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    cli.ok("ingest", DATA / "data.jsonl")
    cli.ok("close-year", "ally", "2")
    register = tmp_path / "payments.csv"
    register.write_text(cli.ok("payments", "ally", "--year", "2", "--csv").out)
    result = cli("reconcile", "ally", "--year", "2", "--payments", register)
    assert result.code == 0, result.out + result.err
    rows = cli.ok("payments", "ally", "--year", "2", "--json").json()
    by_party: dict = {}
    for r in rows:
        by_party[r["party"]] = by_party.get(r["party"], Decimal(0)) + Decimal(r["amount"])
    assert {p: str(v) for p, v in by_party.items()} == YEAR2["by_party"]


def test_only_the_contracts_commissioner_varies_it_and_any_party_reads_its_terms(cli, tmp_path):
    _register(cli)
    refused = cli("--as", "provider:lp", "contract", "vary", "ally", DATA / "cv-1.yaml")
    assert refused.code == 1 and "not_authorized" in refused.err
    cli.ok("--as", "commissioner:ccg", "contract", "vary", "ally", DATA / "cv-1.yaml")
    # a party that joins by variation may read the contract and submit for the years it is a party
    assert cli.ok("--as", "provider:sc", "contract", "terms", "ally", "--year", "2", "--json").json()
    wrong = _vary(
        cli, tmp_path, (DATA / "cv-1.yaml").read_text().replace("contract_id: ally", "contract_id: other")
    )
    assert wrong.code == 1 and "variation.contract_id" in wrong.err


def test_a_variation_in_an_open_year_keeps_the_instalments_paid_and_spreads_the_new_core_over_the_rest(
    any_cli,
):
    _register(any_cli)
    any_cli.refused("ingest", DATA / "data.jsonl")
    any_cli.ok("pay", "ally", "--through", "2026-Q3")
    # registered terms: B2 = round(1,000,000 × 0.96 × 1.02) = 979,200.00, core 881,280.00 → 220,320.00 a quarter
    paid = any_cli.ok("statement", "ally", "--year", "2", "--json").json()["core"]["instalments"]
    assert [i["amount"] for i in paid] == ["220320.00", "220320.00"]
    any_cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    any_cli.ok("ingest", DATA / "data.jsonl")  # sc's cost report is accepted now that sc is a party
    any_cli.ok("contract", "vary", "ally", DATA / "cv-2.yaml")
    any_cli.ok("close-year", "ally", "2")
    statement = any_cli.ok("statement", "ally", "--year", "2", "--json").json()
    # new core 872,100.00: the two remaining quarters take round((872,100 − 440,640) / 2) = 215,730.00 each
    assert [i["amount"] for i in statement["core"]["instalments"]] == [
        "220320.00",
        "220320.00",
        "215730.00",
        "215730.00",
    ]
    _check_year2(statement)
    # cv-2 from year 3: B3 = round(1,000,000 × (0.95 × 1.02) × (0.95 × 1.03)) = 948,166.50; sa has left
    year3 = any_cli.ok("statement", "ally", "--year", "3", "--json").json()
    assert year3["budget"] == "948166.50" and year3["core"]["annual"] == "853349.85"
    assert list(year3["by_party"]) == ["lp", "sc"] and year3["terms"] == {"variations": ["cv-1", "cv-2"]}
    budgets = any_cli.ok("budget", "show", "ally", "--json").json()
    assert [(b["year"], b["amount"], b["reason"]) for b in budgets if b["reason"] == "variation"] == [
        (2, "969000.00", "variation"),
        (3, "938961.00", "variation"),
        (3, "948166.50", "variation"),
    ]


def test_the_report_lists_each_variation_and_what_it_changed(cli, tmp_path):
    _register(cli)
    cli.ok("contract", "vary", "ally", DATA / "cv-1.yaml")
    cli.ok("ingest", DATA / "data.jsonl")
    cli.ok("close-year", "ally", "2")
    out = tmp_path / "report.html"
    cli.ok("report", "ally", "--out", out)
    page = out.read_text()
    assert 'id="variations"' in page and "cv-1" in page and "CCN 1" in page
    assert "subcontractor(s) joining: sc" in page and "ind-c" in page
