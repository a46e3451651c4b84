"""Gain/loss risk share at year close (payment rules §5). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledger.domain.definition import RiskShareTerms
from ledger.domain.numbers import ONE, ZERO, exact, fmt, fmt_money, money, split
from ledger.domain.periods import Period


@dataclass(frozen=True)
class CostFact:
    """One latest-version cost report."""

    report_id: str
    provider_id: str
    period: Period
    total_cost: Decimal
    high_cost_cases: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class RiskShareResult:
    costs: Decimal
    high_cost_excess: Decimal
    reference: Decimal
    variance: Decimal
    adjustment: Decimal
    trace: Mapping[str, Any]
    adjustment_by_party: Mapping[str, Decimal] = field(default_factory=dict)
    reimbursement_by_party: Mapping[str, Decimal] = field(default_factory=dict)

    def to_statement(self) -> dict[str, str]:
        return {
            "costs": fmt_money(self.costs),
            "high_cost_excess": fmt_money(self.high_cost_excess),
            "reference": fmt_money(self.reference),
            "variance": fmt_money(self.variance),
            "adjustment": fmt_money(self.adjustment),
        }


def high_cost_excess(
    reports: Iterable[CostFact], threshold: Decimal | None
) -> tuple[Decimal, list[dict[str, str]]]:
    """E = Σ over cases of max(0, case cost for the year across providers − threshold)."""
    by_case: dict[str, Decimal] = {}
    for report in reports:
        for case_ref, cost in report.high_cost_cases:
            by_case[case_ref] = by_case.get(case_ref, ZERO) + cost
    cases = []
    total = ZERO
    for case_ref in sorted(by_case):
        cost = by_case[case_ref]
        excess = max(ZERO, cost - threshold) if threshold is not None else ZERO
        total += excess
        cases.append({"case_ref": case_ref, "cost": fmt(cost), "excess": fmt(excess)})
    return total, cases


def reimbursement_by_reporter(
    reports: Iterable[CostFact], threshold: Decimal | None, excess: Decimal, lead: str
) -> tuple[dict[str, Decimal], list[dict[str, Any]]]:
    """``high_cost_to: reporting``: each case's excess to the providers that reported it, in proportion to
    the cost each reported (a provider's entries for a case added up); the lead takes E − Σ the others'."""
    by_case: dict[str, dict[str, Decimal]] = {}
    for report in reports:
        for case_ref, cost in report.high_cost_cases:
            costs = by_case.setdefault(case_ref, {})
            costs[report.provider_id] = costs.get(report.provider_id, ZERO) + cost
    unrounded: dict[str, Decimal] = {}
    working = []
    with exact():
        for case_ref in sorted(by_case):
            costs = by_case[case_ref]
            total = sum(costs.values(), ZERO)
            case_excess = max(ZERO, total - threshold) if threshold is not None else ZERO
            shares = {}
            for provider in sorted(costs):
                part = case_excess * costs[provider] / total if total else ZERO
                unrounded[provider] = unrounded.get(provider, ZERO) + part
                shares[provider] = {"cost": fmt(costs[provider]), "excess_part": fmt(part)}
            working.append(
                {"case_ref": case_ref, "cost": fmt(total), "excess": fmt(case_excess), "by_provider": shares}
            )
    parts = {p: money(v) for p, v in sorted(unrounded.items()) if p != lead}
    parts = {lead: excess - sum(parts.values(), ZERO), **parts}
    return parts, working


def quality_factor(outcome_payment: Decimal, pot: Decimal) -> Decimal:
    """Q = min(1, outcome payment / pot); 1 when the pot is 0."""
    if pot == ZERO:
        return ONE
    with exact():
        return min(ONE, outcome_payment / pot)


def risk_share(
    terms: RiskShareTerms,
    budget: Decimal,
    core: Decimal,
    outcome_payment: Decimal,
    reserve: Decimal,
    reports: Iterable[CostFact],
    pot: Decimal = ZERO,
    lead: str | None = None,
    other_revenue: Decimal = ZERO,
) -> RiskShareResult:
    """``other_revenue``: the rate-card and health-gain payments, part of a ``revenue`` reference (§8, §9)."""
    reports = list(reports)
    quality = quality_factor(outcome_payment, pot) if terms.quality_link else None
    with exact():
        costs = sum((r.total_cost for r in reports), ZERO)
        excess, cases = high_cost_excess(reports, terms.high_cost_threshold)
        excess = money(excess)
        reference = (
            budget if terms.reference == "budget" else core + outcome_payment + reserve + other_revenue
        )
        variance = reference - (costs - excess)
        gain = variance > ZERO
        size = abs(variance)
        commissioner = ZERO
        lower = ZERO
        slices = []
        for tier in terms.tiers:
            upper = tier.upto * reference if tier.upto is not None else None
            part = (min(size, upper) if upper is not None else size) - lower
            part = max(part, ZERO)
            share = tier.gain_share if gain else tier.loss_share
            if gain and quality is not None:
                share = share * quality
            commissioner_part = part * (ONE - share)
            commissioner += commissioner_part
            slices.append(
                {
                    "from": fmt(lower),
                    "to": fmt(upper),
                    "slice": fmt(part),
                    "provider_share": fmt(share),
                    "commissioner_part": fmt(commissioner_part),
                }
            )
            if upper is None:
                break
            lower = upper
        else:
            # Past the last bounded tier the commissioner bears the variance (documented choice).
            beyond = max(size - lower, ZERO)
            if beyond:
                commissioner += beyond
                slices.append(
                    {
                        "from": fmt(lower),
                        "to": None,
                        "slice": fmt(beyond),
                        "provider_share": "0",
                        "commissioner_part": fmt(beyond),
                    }
                )
        adjustment = -commissioner if gain else commissioner
        uncapped = adjustment
        if terms.cap is not None:
            limit = terms.cap * reference
            if abs(adjustment) > limit:
                adjustment = limit if adjustment > ZERO else -limit
        adjustment = money(adjustment)
    lead_id = lead if lead is not None else "lead"
    adjustment_by_party = (
        split(adjustment, dict(terms.split), lead_id) if terms.split else {lead_id: adjustment}
    )
    if terms.high_cost_to == "reporting":
        reimbursement, reimbursement_working = reimbursement_by_reporter(
            reports, terms.high_cost_threshold, excess, lead_id
        )
    else:
        reimbursement, reimbursement_working = {lead_id: excess}, None
    trace = {
        "terms": terms.name,
        "reference_basis": terms.reference,
        "direction": "gain" if gain else "loss",
        "cost_reports": sorted(r.report_id for r in reports),
        "costs_by_provider_period": [
            {
                "report_id": r.report_id,
                "provider_id": r.provider_id,
                "period": r.period.label,
                "total_cost": fmt(r.total_cost),
            }
            for r in sorted(reports, key=lambda r: (r.period, r.provider_id))
        ],
        "high_cost_threshold": fmt(terms.high_cost_threshold),
        "high_cost_cases": cases,
        "tiers": slices,
        "commissioner_part": fmt(commissioner),
        "uncapped_adjustment": fmt(uncapped),
        "cap": fmt(terms.cap),
        "cap_amount": fmt(terms.cap * reference) if terms.cap is not None else None,
        "quality_link": None
        if quality is None
        else {
            "outcome_payment": fmt(outcome_payment),
            "pot": fmt(pot),
            "quality_factor": fmt(quality),
            "applies": gain,
        },
        "split": {k: fmt(v) for k, v in terms.split} if terms.split else None,
        "adjustment_by_party": {k: fmt(v) for k, v in adjustment_by_party.items()},
        "high_cost_to": terms.high_cost_to,
        "reimbursement_by_party": {k: fmt(v) for k, v in reimbursement.items()},
        "reimbursement_by_case": reimbursement_working,
    }
    return RiskShareResult(
        costs, excess, reference, variance, adjustment, trace, adjustment_by_party, reimbursement
    )
