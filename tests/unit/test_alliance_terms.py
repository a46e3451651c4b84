"""Alliance and quality terms of the risk share (payment rules §5): split, high_cost_to, quality_link."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import RiskShareTerms, Tier, parse_definition
from ledger.domain.errors import ValidationFailed
from ledger.domain.periods import QUARTERLY, parse_period
from ledger.domain.rules.riskshare import CostFact, quality_factor, risk_share
from tests.support.cli import EXAMPLES

TIERS = (Tier(D("0.02"), D("1"), D("1")), Tier(D("0.10"), D("0.5"), D("0.6")), Tier(None, D("0"), D("0")))


def terms(split=(), high_cost_to="lead", quality_link=False, threshold="100.00"):
    return RiskShareTerms(
        "pool",
        "budget",
        TIERS,
        None,
        D(threshold),
        tuple((p, D(v)) for p, v in split),
        high_cost_to,
        quality_link,
    )


def cost(total, cases=(), provider="lead", report_id="c-x"):
    return CostFact(
        report_id,
        provider,
        parse_period("2026-Q2", QUARTERLY),
        D(total),
        tuple((ref, D(c)) for ref, c in cases),
    )


def run(rs_terms, costs, outcome_payment="40.00", pot="100.00"):
    return risk_share(
        rs_terms, D("1000.00"), D("900.00"), D(outcome_payment), D("0.00"), costs, pot=D(pot), lead="lead"
    )


def test_the_adjustment_goes_to_the_lead_provider_when_no_split_is_given():
    result = run(terms(), [cost("900.00")])
    assert result.adjustment == D("-40.00")
    assert result.adjustment_by_party == {"lead": D("-40.00")}


def test_a_split_shares_the_adjustment_each_part_rounded_and_the_lead_takes_the_remainder():
    # V = 1000 − 950 = 50: (50 − 20) × 0.5 = 15 → A = −15.00; 1/3 each → −5.00 … then a remainder case
    result = run(terms(split=[("lead", "0.34"), ("a", "0.33"), ("b", "0.33")]), [cost("950.00")])
    assert result.adjustment_by_party == {"a": D("-4.95"), "b": D("-4.95"), "lead": D("-5.10")}
    assert sum(result.adjustment_by_party.values()) == result.adjustment
    odd = run(terms(split=[("lead", "0.5"), ("a", "0.5")]), [cost("949.99")])  # A = −15.005 → −15.01
    assert odd.adjustment == D("-15.01") and odd.adjustment_by_party == {"a": D("-7.51"), "lead": D("-7.50")}


def test_high_cost_excess_goes_to_the_reporting_providers_in_proportion_to_the_cost_each_reported():
    reports = [
        cost("500.00", [("HC-1", "60.00"), ("HC-1", "20.00")], provider="lead", report_id="c-1"),
        cost("400.00", [("HC-1", "40.00"), ("HC-2", "150.00")], provider="a", report_id="c-2"),
        cost("100.00", [("HC-2", "50.00")], provider="b", report_id="c-3"),
    ]
    result = run(terms(high_cost_to="reporting"), reports)
    # HC-1: 80 (lead, two entries) + 40 (a) = 120 → excess 20; HC-2: 150 (a) + 50 (b) = 200 → excess 100
    assert result.high_cost_excess == D("120.00")
    # a: 20 × 40/120 + 100 × 150/200 = 6.666… + 75 = 81.67; b: 100 × 50/200 = 25.00; lead: 120 − 106.67
    assert result.reimbursement_by_party == {"lead": D("13.33"), "a": D("81.67"), "b": D("25.00")}
    lead_only = run(terms(), reports)
    assert lead_only.reimbursement_by_party == {"lead": D("120.00")}


def test_quality_link_scales_every_gain_share_by_the_outcomes_achieved():
    # Q = 40 / 100 = 0.4. V = 100 (gain): tier 1 (0..20) share 1 × 0.4 → commissioner 20 × 0.6 = 12;
    # tier 2 (20..100) share 0.5 × 0.4 = 0.2 → commissioner 80 × 0.8 = 64; A = −76.00
    assert run(terms(quality_link=True), [cost("900.00")]).adjustment == D("-76.00")
    assert run(terms(), [cost("900.00")]).adjustment == D("-40.00")


def test_quality_link_leaves_loss_shares_alone():
    # V = −100 (loss): tier 1 share 1, tier 2 loss share 0.6 → commissioner 80 × 0.4 = 32, whatever Q is
    assert run(terms(quality_link=True), [cost("1100.00")]).adjustment == D("32.00")
    assert run(terms(), [cost("1100.00")]).adjustment == D("32.00")


@pytest.mark.parametrize(
    "payment, pot, q",
    [("40.00", "100.00", "0.4"), ("100.00", "100.00", "1"), ("0.00", "0.00", "1"), ("0.00", "100.00", "0")],
)
def test_the_quality_factor_is_outcome_payment_over_pot_capped_at_1_and_1_without_a_pot(payment, pot, q):
    assert quality_factor(D(payment), D(pot)) == D(q)


def _example_with(risk_share_extra: str):
    text = (
        (EXAMPLES / "worked-example.yaml")
        .read_text()
        .replace(
            '      high_cost_threshold: "20000.00"',
            '      high_cost_threshold: "20000.00"\n' + risk_share_extra,
        )
    )
    return parse_definition(load_yaml(text))


def test_the_contract_format_reads_split_high_cost_to_and_quality_link():
    d = _example_with(
        '      split: {circle: "0.7", physio: "0.3"}\n      high_cost_to: reporting\n'
        "      quality_link: true\n"
    )
    rs = d.risk_share("standard")
    assert rs.split == (("circle", D("0.7")), ("physio", D("0.3")))
    assert rs.high_cost_to == "reporting" and rs.quality_link is True


def test_bad_alliance_terms_are_refused_with_their_paths():
    with pytest.raises(ValidationFailed) as caught:
        _example_with(
            '      split: {circle: "0.7", nobody: "0.2"}\n      high_cost_to: everyone\n'
            '      quality_link: "yes"\n'
        )
    paths = {p for p, _ in caught.value.problems}
    assert {
        "payment.risk_share.standard.split.nobody",
        "payment.risk_share.standard.split",
        "payment.risk_share.standard.high_cost_to",
        "payment.risk_share.standard.quality_link",
    } <= paths
