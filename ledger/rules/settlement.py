"""Year settlement (payment rules §3-§5): every figure of a year close, with its trace. Pure.

The result's :meth:`YearSettlement.figures` is what a ``YearClosed`` or
``TrueUpDecided`` event stores, and what the statement prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping

from ..definition import ContractDefinition
from ..numbers import ZERO, fmt, fmt_money, money, split
from .budget import core_for_year
from .outcomes import IndicatorResult, Observation, outcomes
from .riskshare import CostFact, RiskShareResult, risk_share


@dataclass(frozen=True)
class YearSettlement:
    year: int
    budget: Decimal
    core: Decimal
    pot: Decimal
    reserve: Decimal
    indicators: tuple[IndicatorResult, ...]
    outcome_payment: Decimal
    risk: RiskShareResult | None
    high_cost_reimbursement: Decimal
    year_close_payment: Decimal
    total: Decimal
    by_party: Mapping[str, Decimal]
    trace: Mapping[str, Any]

    def figures(self) -> dict[str, Any]:
        """The statement figures of this settlement, as JSON-safe text."""
        return {
            "budget": fmt_money(self.budget), "core": fmt_money(self.core), "pot": fmt_money(self.pot),
            "reserve": fmt_money(self.reserve), "outcome_payment": fmt_money(self.outcome_payment),
            "indicators": [i.to_statement() for i in self.indicators],
            "risk_share": self.risk.to_statement() if self.risk else None,
            "high_cost_reimbursement": fmt_money(self.high_cost_reimbursement),
            "year_close_payment": fmt_money(self.year_close_payment), "total": fmt_money(self.total),
            "by_party": {k: fmt_money(v) for k, v in self.by_party.items()},
        }


def settle_year(defn: ContractDefinition, year: int, budget: Decimal,
                observations: Iterable[Observation], costs: Iterable[CostFact],
                baselines: Mapping[str, Decimal]) -> YearSettlement:
    """Compute a year close from the budget and the latest-version data of the year."""
    entry = defn.schedule_for(year)
    lead = defn.lead_provider.id
    core = core_for_year(budget, entry.core)
    pot = money(budget * entry.outcomes)
    reserve = money(budget * entry.reserve)
    observations = list(observations)
    indicators = outcomes(defn, year, pot, observations, baselines)
    outcome_payment = sum((i.earned for i in indicators), ZERO)
    costs = list(costs)
    risk = None
    if entry.risk_share is not None:
        risk = risk_share(defn.risk_share(entry.risk_share), budget, core, outcome_payment, reserve, costs,
                          pot=pot, lead=lead)
    adjustment = risk.adjustment if risk else ZERO
    reimbursement = risk.high_cost_excess if risk else ZERO
    year_close = outcome_payment + reserve + adjustment + reimbursement
    total = core + year_close

    core_split = dict(defn.core_split)
    by_party: dict[str, Decimal] = {p: ZERO for p in defn.providers}
    for part in (split(core, core_split, lead), split(reserve, core_split, lead),
                 *(i.by_party for i in indicators),
                 risk.adjustment_by_party if risk else {}, risk.reimbursement_by_party if risk else {}):
        for party, amount in part.items():
            by_party[party] = by_party.get(party, ZERO) + amount

    trace = {
        "schedule": {"from_year": entry.from_year, "core": fmt(entry.core), "outcomes": fmt(entry.outcomes),
                     "reserve": fmt(entry.reserve), "risk_share": entry.risk_share},
        "baselines": {k: fmt(v) for k, v in sorted(baselines.items())},
        "indicators": [
            {"id": i.id, "status": i.status, "score": fmt(i.score), "weight": fmt(i.weight),
             "normalised_weight": fmt(i.normalised_weight), "earned": fmt(i.earned),
             "by_party": {k: fmt(v) for k, v in i.by_party.items()},
             "measures": [dict(m.trace, id=m.measure_id) for m in i.measures]}
            for i in indicators
        ],
        "submissions_used": sorted(ob.submission_id for ob in observations),
        "cost_reports_used": sorted(c.report_id for c in costs),
        "risk_share": dict(risk.trace) if risk else None,
        "core_split": {k: fmt(v) for k, v in split(core, core_split, lead).items()},
        "reserve_split": {k: fmt(v) for k, v in split(reserve, core_split, lead).items()},
    }
    return YearSettlement(
        year=year, budget=budget, core=core, pot=pot, reserve=reserve, indicators=indicators,
        outcome_payment=outcome_payment, risk=risk, high_cost_reimbursement=reimbursement,
        year_close_payment=year_close, total=total, by_party=by_party, trace=trace,
    )
