"""Year settlement (payment rules §3-§5): every figure of a year close, with its trace. Pure.

The result's :meth:`YearSettlement.figures` is what a ``YearClosed`` or
``TrueUpDecided`` event stores, and what the statement prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.domain.definition import ContractDefinition
from ledger.domain.numbers import ZERO, fmt, fmt_money, money, split
from ledger.domain.rules.budget import core_for_year
from ledger.domain.rules.healthgain import EntryGain, Episode, health_gain_year
from ledger.domain.rules.healthgain import by_party as health_gain_by_party
from ledger.domain.rules.outcomes import IndicatorResult, Observation, outcomes
from ledger.domain.rules.ratecard import Claim, RateCardYear, rate_card_year
from ledger.domain.rules.riskshare import CostFact, RiskShareResult, risk_share


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
    rate_card: RateCardYear | None = None
    health_gain: tuple[EntryGain, ...] | None = None

    @property
    def rate_card_payment(self) -> Decimal:
        return self.rate_card.payment if self.rate_card is not None else ZERO

    @property
    def health_gain_payment(self) -> Decimal:
        return sum((g.payment for g in self.health_gain or ()), ZERO)

    def figures(self) -> dict[str, Any]:
        """The statement figures of this settlement, as JSON-safe text."""
        return {
            "budget": fmt_money(self.budget),
            "core": fmt_money(self.core),
            "pot": fmt_money(self.pot),
            "reserve": fmt_money(self.reserve),
            "outcome_payment": fmt_money(self.outcome_payment),
            "indicators": [i.to_statement() for i in self.indicators],
            "risk_share": self.risk.to_statement() if self.risk else None,
            "high_cost_reimbursement": fmt_money(self.high_cost_reimbursement),
            "year_close_payment": fmt_money(self.year_close_payment),
            "total": fmt_money(self.total),
            "by_party": {k: fmt_money(v) for k, v in self.by_party.items()},
            "rate_card": self.rate_card.to_statement() if self.rate_card is not None else None,
            "health_gain": (
                [g.to_statement() for g in self.health_gain] if self.health_gain is not None else None
            ),
        }


def settle_year(
    defn: ContractDefinition,
    year: int,
    budget: Decimal,
    observations: Iterable[Observation],
    costs: Iterable[CostFact],
    baselines: Mapping[str, Decimal],
    claims: Iterable[Claim] = (),
    episodes: Iterable[Episode] = (),
) -> YearSettlement:
    """Compute a year close from the budget and the latest-version data of the year.

    ``claims``: the outcome claims in force of every year up to this one (§8: the caps run over the
    term); ``episodes``: the PROM episodes in force of this year (§9)."""
    entry = defn.schedule_for(year)
    lead = defn.lead_provider.id
    core = core_for_year(budget, entry.core)
    pot = money(budget * entry.outcomes)
    reserve = money(budget * entry.reserve)
    observations = list(observations)
    indicators = outcomes(defn, year, pot, observations, baselines)
    outcome_payment = sum((i.earned for i in indicators), ZERO)
    costs = list(costs)
    card = rate_card_year(defn.rate_card, year, list(claims)) if defn.rate_card is not None else None
    gains = tuple(health_gain_year(defn.health_gain, year, episodes)) if defn.health_gain else None
    other = (card.payment if card is not None else ZERO) + sum((g.payment for g in gains or ()), ZERO)
    risk = None
    if entry.risk_share is not None:
        risk = risk_share(
            defn.risk_share(entry.risk_share),
            budget,
            core,
            outcome_payment,
            reserve,
            costs,
            pot=pot,
            lead=lead,
            other_revenue=other,
        )
    adjustment = risk.adjustment if risk else ZERO
    reimbursement = risk.high_cost_excess if risk else ZERO
    year_close = outcome_payment + reserve + adjustment + reimbursement + other
    total = core + year_close

    core_split = dict(defn.core_split)
    by_party: dict[str, Decimal] = dict.fromkeys(defn.providers, ZERO)
    for part in (
        split(core, core_split, lead),
        split(reserve, core_split, lead),
        *(i.by_party for i in indicators),
        risk.adjustment_by_party if risk else {},
        risk.reimbursement_by_party if risk else {},
        card.by_party if card is not None else {},
        health_gain_by_party(gains or ()),
    ):
        for party, amount in part.items():
            by_party[party] = by_party.get(party, ZERO) + amount

    trace = {
        "schedule": {
            "from_year": entry.from_year,
            "core": fmt(entry.core),
            "outcomes": fmt(entry.outcomes),
            "reserve": fmt(entry.reserve),
            "risk_share": entry.risk_share,
        },
        "baselines": {k: fmt(v) for k, v in sorted(baselines.items())},
        "indicators": [
            {
                "id": i.id,
                "status": i.status,
                "score": fmt(i.score),
                "weight": fmt(i.weight),
                "normalised_weight": fmt(i.normalised_weight),
                "earned": fmt(i.earned),
                "by_party": {k: fmt(v) for k, v in i.by_party.items()},
                "measures": [dict(m.trace, id=m.measure_id) for m in i.measures],
            }
            for i in indicators
        ],
        "submissions_used": sorted(ob.submission_id for ob in observations),
        "cost_reports_used": sorted(c.report_id for c in costs),
        "risk_share": dict(risk.trace) if risk else None,
        "core_split": {k: fmt(v) for k, v in split(core, core_split, lead).items()},
        "reserve_split": {k: fmt(v) for k, v in split(reserve, core_split, lead).items()},
    }
    if card is not None:
        trace["rate_card"] = card.trace()
        trace["claims_used"] = sorted(r.claim.claim_id for r in card.results)
    if gains is not None:
        trace["health_gain"] = [g.trace() for g in gains]
        trace["episodes_used"] = sorted(e for g in gains for p in g.providers for e in p.episodes)
    return YearSettlement(
        year=year,
        budget=budget,
        core=core,
        pot=pot,
        reserve=reserve,
        indicators=indicators,
        outcome_payment=outcome_payment,
        risk=risk,
        high_cost_reimbursement=reimbursement,
        year_close_payment=year_close,
        total=total,
        by_party=by_party,
        trace=trace,
        rate_card=card,
        health_gain=gains,
    )
