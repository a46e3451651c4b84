"""Gain/loss risk share at year close (payment rules §5)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.domain.definition import RiskShareTerms, Tier
from ledger.domain.periods import QUARTERLY, parse_period
from ledger.domain.rules.budget import budget_for_year, core_for_year
from ledger.domain.rules.riskshare import CostFact, high_cost_excess, risk_share
from ledger.domain.rules.settlement import settle_year
from tests.unit.worked_example import definition, expected_statements, latest_for_year

# The worked example's tiers: 2 % wholly the provider's, to 10 % gain 0.5 / loss 0.6, beyond: commissioner.
TIERS = (Tier(D("0.02"), D("1"), D("1")), Tier(D("0.10"), D("0.5"), D("0.6")), Tier(None, D("0"), D("0")))


def terms(tiers=TIERS, cap=None, threshold=None, reference="budget"):
    return RiskShareTerms(
        "standard",
        reference,
        tiers,
        None if cap is None else D(cap),
        None if threshold is None else D(threshold),
    )


def cost(total, cases=(), provider="circle", period="2026-Q2", report_id="c-x"):
    return CostFact(
        report_id, provider, parse_period(period, QUARTERLY), D(total), tuple((ref, D(c)) for ref, c in cases)
    )


def run(rs_terms, costs, budget="1000.00", core="900.00", outcome_payment="40.00", reserve="20.00"):
    return risk_share(rs_terms, D(budget), D(core), D(outcome_payment), D(reserve), costs)


# Reference R = 1000: tier edges at 20 and 100.
@pytest.mark.parametrize(
    "costs, variance, adjustment",
    [
        ("1000.00", "0.00", "0.00"),
        ("990.00", "10.00", "0.00"),  # gain inside the first tier: all the provider's
        ("980.00", "20.00", "0.00"),  # exactly the first edge
        ("950.00", "50.00", "-15.00"),  # (50 − 20) × (1 − 0.5) returned to the commissioner
        ("900.00", "100.00", "-40.00"),  # 80 × 0.5
        ("850.00", "150.00", "-90.00"),  # 80 × 0.5 + 50 × 1
        ("1010.00", "-10.00", "0.00"),  # loss inside the first tier: all the provider's
        ("1050.00", "-50.00", "12.00"),  # 30 × (1 − 0.6) funded by the commissioner
        ("1100.00", "-100.00", "32.00"),  # 80 × 0.4
        ("1150.00", "-150.00", "82.00"),  # 80 × 0.4 + 50 × 1
        ("950.01", "49.99", "-15.00"),  # 29.99 × 0.5 = 14.995: rounded half up, away from zero
        ("1049.99", "-49.99", "12.00"),  # 29.99 × 0.4 = 11.996
    ],
)
def test_tiers_split_the_variance_like_tax_brackets_with_separate_gain_and_loss_shares(
    costs, variance, adjustment
):
    result = run(terms(), [cost(costs)])
    assert result.variance == D(variance)
    assert result.adjustment == D(adjustment)


@pytest.mark.parametrize(
    "costs, cap, adjustment",
    [
        ("850.00", "0.05", "-50.00"),  # uncapped −90 → −(0.05 × 1000)
        ("1150.00", "0.05", "50.00"),  # uncapped +82 → +50
        ("950.00", "0.05", "-15.00"),  # within the cap: unchanged
        ("850.00", "0", "0.00"),  # a zero cap: no adjustment
        ("850.00", "0.10", "-90.00"),
    ],
)
def test_the_adjustment_is_capped_at_a_fraction_of_the_reference(costs, cap, adjustment):
    assert run(terms(cap=cap), [cost(costs)]).adjustment == D(adjustment)


def test_the_adjustment_is_rounded_to_pence_after_capping():
    # R = 1000.10, cap 0.05 → limit 50.005; the capped adjustment rounds half up to 50.01.
    result = run(terms(cap="0.05"), [cost("800.00")], budget="1000.10")
    assert result.adjustment == D("-50.01")


def test_the_reference_may_be_the_year_revenue_instead_of_the_budget():
    # R = core + outcome payment + reserve = 960; V = 60; tier edges 19.2 and 96.
    result = run(terms(reference="revenue"), [cost("900.00")])
    assert result.reference == D("960.00")
    assert result.variance == D("60.00")
    assert result.adjustment == D("-20.40")  # (60 − 19.2) × 0.5
    by_budget = run(terms(reference="budget"), [cost("900.00")])
    assert by_budget.reference == D("1000.00")
    assert by_budget.adjustment == D("-40.00")  # (100 − 20) × 0.5


def test_a_variance_beyond_the_last_bounded_tier_is_the_commissioners():
    # No open-ended tier: the code's documented choice is that the commissioner bears the rest.
    tiers = (Tier(D("0.02"), D("1"), D("1")), Tier(D("0.10"), D("0.5"), D("0.5")))
    assert run(terms(tiers=tiers), [cost("850.00")]).adjustment == D("-90.00")


def test_costs_are_summed_over_periods_and_providers():
    costs = [
        cost("500.00", period="2026-Q2"),
        cost("300.00", period="2026-Q3"),
        cost("150.00", provider="physio", period="2026-Q2"),
    ]
    result = run(terms(), costs)
    assert result.costs == D("950.00")
    assert result.adjustment == D("-15.00")


# --- high-cost cases -----------------------------------------------------------------


def test_high_cost_cases_are_summed_per_case_across_periods_and_providers_before_the_threshold():
    reports = [
        cost("0", [("HC-1", "12000.00"), ("HC-2", "25000.00")], provider="circle", period="2026-Q2"),
        cost("0", [("HC-1", "12000.00")], provider="physio", period="2026-Q3"),
        cost("0", [("HC-3", "19000.00")], provider="circle", period="2026-Q4"),
    ]
    total, cases = high_cost_excess(reports, D("20000.00"))
    assert total == D("9000.00")  # HC-1: 24000 − 20000; HC-2: 5000; HC-3: none
    assert cases == [
        {"case_ref": "HC-1", "cost": "24000.00", "excess": "4000.00"},
        {"case_ref": "HC-2", "cost": "25000.00", "excess": "5000.00"},
        {"case_ref": "HC-3", "cost": "19000.00", "excess": "0"},
    ]


def test_without_a_high_cost_threshold_nothing_is_reimbursed():
    total, _ = high_cost_excess([cost("0", [("HC-1", "90000.00")])], None)
    assert total == D("0")


def test_the_high_cost_excess_comes_off_the_costs_before_the_variance():
    # C = 1100, E = 50 → V = 1000 − 1050 = −50 → +12.00
    result = run(terms(threshold="20000.00"), [cost("1100.00", [("HC-1", "20050.00")])])
    assert result.high_cost_excess == D("50.00")
    assert result.variance == D("-50.00")
    assert result.adjustment == D("12.00")


# --- the worked example --------------------------------------------------------------


def test_the_worked_example_year_two_risk_share_is_reproduced():
    defn = definition()
    budget = budget_for_year(defn, 2).amount
    core = core_for_year(budget, D("0.90"))
    _, costs = latest_for_year(2)
    result = risk_share(defn.risk_share("standard"), budget, core, D("1570978.67"), D("0.00"), costs)
    assert result.to_statement() == expected_statements()[2]["risk_share"]
    assert result.adjustment == D("-945409.60")
    assert result.high_cost_excess == D("16000.00")
    # 2 % of R = 470476.80 is the provider's; to 10 % (2352384.00) half is returned; beyond, all.
    assert [D(t["commissioner_part"]) for t in result.trace["tiers"]] == [
        D("0"),
        D("940953.60"),
        D("4456.00"),
    ]


def test_a_year_without_a_risk_share_has_no_adjustment_or_reimbursement():
    defn = definition()
    _, costs_year2 = latest_for_year(2)
    # Year 1's schedule entry names no risk share: even cost reports with big cases change nothing.
    costs = [cost("99999999.00", [("HC-9", "500000.00")], period="2025-Q2"), *costs_year2]
    observations, _ = latest_for_year(1)
    settled = settle_year(defn, 1, D("24000000.00"), observations, costs, dict(defn.baselines))
    assert settled.risk is None
    assert settled.high_cost_reimbursement == D("0")
    assert settled.figures()["risk_share"] is None
    assert settled.total == D("24000000.00")
