"""Year settlement of the worked example, straight from the example data (payment rules §3-§5, §7)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.domain.records import Submission
from ledger.domain.rules.budget import budget_for_year
from ledger.domain.rules.settlement import settle_year
from tests.unit.worked_example import accepted_records, definition, expected_statements, latest_for_year


def settle(year):
    defn = definition()
    observations, costs = latest_for_year(year)
    return settle_year(
        defn, year, budget_for_year(defn, year).amount, observations, costs, dict(defn.baselines)
    )


def test_the_example_data_replays_with_its_duplicate_dropped_and_its_correction_superseding():
    records = accepted_records()
    ids = [r.record_id for r in records]
    assert len(ids) == len(set(ids)) == 33  # 34 lines, s-0001 sent twice
    observations, _ = latest_for_year(2)
    readmissions_q4 = [
        o for o in observations if o.measure_id == "readmissions" and o.period.label == "2026-Q4"
    ]
    assert [o.submission_id for o in readmissions_q4] == ["s-0019"]  # 66 supersedes s-0017's 68
    assert {r.year for r in records if not isinstance(r, Submission)} == {2}  # costs only in year 2


@pytest.mark.parametrize("year", [1, 2])
def test_the_worked_example_year_figures_match_the_expected_statement(year):
    expected = expected_statements()[year]
    figures = settle(year).figures()
    assert figures["budget"] == expected["budget"]
    assert figures["core"] == expected["core"]["annual"]
    assert figures["pot"] == expected["outcomes"]["pot"]
    assert figures["outcome_payment"] == expected["outcomes"]["payment"]
    assert figures["indicators"] == expected["outcomes"]["indicators"]
    assert figures["reserve"] == expected["reserve"]
    assert figures["risk_share"] == expected["risk_share"]
    assert figures["high_cost_reimbursement"] == expected["high_cost_reimbursement"]
    assert figures["year_close_payment"] == expected["year_close_payment"]
    assert figures["total"] == expected["total"]
    assert figures["by_party"] == expected["by_party"]


@pytest.mark.parametrize("year", [1, 2])
def test_the_parties_shares_sum_to_the_total(year):
    settled = settle(year)
    assert sum(settled.by_party.values()) == settled.total
    assert set(settled.by_party) == {"circle", "physio"}


def test_the_year_close_payment_is_outcomes_plus_reserve_plus_adjustment_plus_reimbursement():
    settled = settle(2)
    assert settled.year_close_payment == (
        settled.outcome_payment + settled.reserve + settled.risk.adjustment + settled.high_cost_reimbursement
    )
    assert settled.total == settled.core + settled.year_close_payment
    assert settled.outcome_payment == sum(i.earned for i in settled.indicators)


def test_core_and_reserve_are_split_once_annually_and_adjustments_go_to_the_lead():
    settled = settle(2)
    # physio: 0.2 of the annual core + 0.3 of proms-improved's earned amount; nothing else.
    assert settled.by_party["physio"] == D("4234291.20") + D("206650.40")
    assert settled.trace["core_split"] == {"physio": "4234291.20", "circle": "16937164.80"}


def test_the_settlement_trace_names_the_records_used():
    trace = settle(2).trace
    assert trace["cost_reports_used"] == [f"c-{n:04d}" for n in range(1, 9)]
    assert "s-0017" not in trace["submissions_used"]  # superseded by s-0019
    assert "s-0019" in trace["submissions_used"]
    assert trace["schedule"]["risk_share"] == "standard"


def test_settling_the_same_inputs_twice_gives_the_same_figures():
    assert settle(2).figures() == settle(2).figures()
