"""Budgets, population counts, baselines and extensions: every change is a reasoned event."""

import json
from decimal import Decimal

import pytest

CAPITATION = """
contract:
  id: cap-demo
  name: Capitation test contract
  model: population
  commissioner: {id: icb, name: ICB}
  lead_provider: {id: trust, name: Trust}
  subcontractors: [{id: vcs, name: Voluntary sector}]
  currency: GBP
  start: 2025-04-01
  years: 2
  extension_years: 1
  period: monthly
budget:
  capitation:
    rate_per_head: "100.00"
    segments:
      - {id: low, name: Low need, weight: "1.0", projected: [10000, 10000]}
      - {id: high, name: High need, weight: "3.0", projected: [1000, 1100]}
  efficiency: "0.04"
  uplift: "0.02"
  population_tolerance: "0.02"
payment:
  core_split: {trust: "0.9", vcs: "0.1"}
  schedule:
    - {from_year: 1, core: "0.80", outcomes: "0.20"}
baselines:
  waits: "40"
indicators:
  - id: waits
    weight: "1"
    unit: value
    aggregation: mean
    scoring: {rule: sliding, zero_at: {baseline_change: "0"}, full_at: {baseline_change: "-0.25"}}
"""


@pytest.fixture
def contract(cli, tmp_path):
    path = tmp_path / "cap.yaml"
    path.write_text(CAPITATION)
    cli.ok("contract", "register", path)
    return cli


def _ingest(cli, tmp_path, *records):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return cli.ok("ingest", path, "--json").json()


def test_capitation_budgets_follow_rate_weights_and_projections(contract):
    shown = contract.ok("contract", "show", "cap-demo", "--json").json()
    # year 1: 100 × (10000 + 3 × 1000) = 1,300,000; year 2: 100 × 0.96 × 1.02 × (10000 + 3300)
    assert shown["budgets"] == {"1": "1300000.00", "2": "1302336.00"}


def test_a_population_count_beyond_tolerance_adjusts_the_budget_and_later_instalments(contract, tmp_path):
    contract.ok("pay", "cap-demo", "--through", "2025-06")
    within = _ingest(
        contract,
        tmp_path,
        {
            "type": "population",
            "record_id": "p-1",
            "contract_id": "cap-demo",
            "year": 1,
            "segment_id": "high",
            "count": 1050,
        },
    )
    assert within["budget_changes"] == []  # 13150 weighted vs 13000: +1.15%, inside 2%
    beyond = _ingest(
        contract,
        tmp_path,
        {
            "type": "population",
            "record_id": "p-2",
            "contract_id": "cap-demo",
            "year": 1,
            "segment_id": "high",
            "count": 1200,
        },
    )
    assert beyond["budget_changes"][0]["budget"] == "1360000.00"  # 100 × (10000 + 3600)
    budget = contract.ok("budget", "show", "cap-demo", "--json").json()
    assert budget[-1] == {
        "year": 1,
        "amount": "1360000.00",
        "reason": "population",
        "note": "population count p-2 (high: 1200)",
    }
    statement = contract.ok("close-year", "cap-demo", "1", "--json").json()
    amounts = [i["amount"] for i in statement["core"]["instalments"]]
    # three instalments of the old core (1,040,000 / 12) were paid before the count arrived;
    # the remaining nine share what is left of the new core 0.8 × 1,360,000 = 1,088,000
    assert amounts[:3] == ["86666.67"] * 3
    assert set(amounts[3:]) <= {"91999.99", "92000.00"}
    assert statement["core"]["annual"] == "1088000.00"
    assert sum(Decimal(a) for a in amounts) == Decimal("1088000.00")


def test_budget_adjustments_need_a_known_reason(contract):
    bad = contract("budget", "adjust", "cap-demo", "--year", "2", "--amount", "1.00", "--reason", "whim")
    assert bad.code == 1 and "reason" in bad.err
    contract.ok(
        "budget",
        "adjust",
        "cap-demo",
        "--year",
        "2",
        "--amount",
        "1400000.00",
        "--reason",
        "uplift",
        "--note",
        "pay award 2026",
    )
    assert contract.ok("contract", "show", "cap-demo", "--json").json()["budgets"]["2"] == "1400000.00"


def test_a_recorded_baseline_moves_relative_thresholds(contract, tmp_path):
    _ingest(
        contract,
        tmp_path,
        {
            "type": "submission",
            "submission_id": "s-1",
            "contract_id": "cap-demo",
            "provider_id": "trust",
            "indicator_id": "waits",
            "period": "2025-05",
            "value": "35",
        },
    )
    first = contract.ok("statement", "cap-demo", "--year", "1", "--json").json()
    assert first["outcomes"]["indicators"][0]["score"] == "0.5"  # (35 - 40) / (30 - 40)
    contract.ok("baseline", "record", "cap-demo", "waits", "50", "--note", "validated baseline")
    second = contract.ok("statement", "cap-demo", "--year", "1", "--json").json()
    assert second["outcomes"]["indicators"][0]["score"] == "1"  # 35 is beyond full_at 37.5


def test_the_extension_adds_years_with_their_budgets(contract, tmp_path):
    assert contract("pay", "cap-demo", "--through", "2027-04").code == 1  # year 3 not in the term yet
    contract.ok("contract", "extend", "cap-demo")
    shown = contract.ok("contract", "show", "cap-demo", "--json").json()
    assert shown["extended"] is True
    # year 3 repeats the last projection and compounds another 0.96 × 1.02
    assert shown["budgets"]["3"] == "1275247.41"  # 100 × 0.9792² × 13300
    assert contract("contract", "extend", "cap-demo").code == 1
    paid = contract.ok("pay", "cap-demo", "--through", "2027-04", "--json").json()
    assert paid[-1]["period"] == "2027-04" and paid[-1]["year"] == 3
