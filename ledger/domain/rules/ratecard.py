"""Outcome rate cards (payment rules §8): which claims are payable, for how much. Pure.

Claims are evaluated in (period, arrival) order over the whole term, so a year's
figures never depend on when earlier years were closed: settling year y reads the
claims of years 1..y and reports those of year y.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.domain.definition import RateCard
from ledger.domain.numbers import ZERO, fmt_money

REASONS = ("before_payment_years", "already_paid", "prerequisite_missing", "cap_reached")


@dataclass(frozen=True)
class Claim:
    """An outcome claim in force (not superseded). ``arrival`` orders claims within a period: the
    position of the first claim of its correction chain."""

    claim_id: str
    provider_id: str
    participant_id: str
    outcome_id: str
    period: Any  # a Period (ordered)
    year: int
    arrival: tuple[Any, ...]


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    payable: bool
    amount: Decimal
    capped: bool
    reason: str | None  # not_payable reason
    participant_paid_before: Decimal
    contract_paid_before: Decimal

    def trace(self) -> dict[str, Any]:
        c = self.claim
        return {
            "claim_id": c.claim_id,
            "provider_id": c.provider_id,
            "participant_id": c.participant_id,
            "outcome_id": c.outcome_id,
            "period": c.period.label,
            "payable": self.payable,
            "amount": fmt_money(self.amount),
            "capped": self.capped,
            "reason": self.reason,
            "participant_paid_before": fmt_money(self.participant_paid_before),
            "contract_paid_before": fmt_money(self.contract_paid_before),
        }


def evaluate(card: RateCard, claims: Iterable[Claim]) -> list[ClaimResult]:
    """Every claim's decision, in evaluation order (period, arrival)."""
    ordered = sorted(claims, key=lambda c: (c.period, c.arrival))
    per_participant: dict[str, Decimal] = {}
    payable_count: dict[tuple[str, str], int] = {}
    contract_paid = ZERO
    out: list[ClaimResult] = []
    for c in ordered:
        outcome = card.outcome(c.outcome_id)
        paid_participant = per_participant.get(c.participant_id, ZERO)
        reason = None
        amount = ZERO
        capped = False
        if outcome is None:  # not on the card (cannot pass ingest; kept for safety)
            reason = "unknown_outcome"
        elif c.year < card.paid_from_year:
            reason = "before_payment_years"
        elif payable_count.get((c.participant_id, c.outcome_id), 0) >= outcome.max_per_participant:
            reason = "already_paid"
        elif any(payable_count.get((c.participant_id, req), 0) == 0 for req in outcome.requires):
            reason = "prerequisite_missing"
        else:
            amount = outcome.price
            if card.participant_cap is not None:
                amount = min(amount, card.participant_cap - paid_participant)
            if card.contract_cap is not None:
                amount = min(amount, card.contract_cap - contract_paid)
            amount = max(amount, ZERO)
            if amount == ZERO:
                reason = "cap_reached"
            else:
                capped = amount < outcome.price
        result = ClaimResult(c, reason is None, amount, capped, reason, paid_participant, contract_paid)
        if reason is None:
            per_participant[c.participant_id] = paid_participant + amount
            contract_paid += amount
            payable_count[(c.participant_id, c.outcome_id)] = (
                payable_count.get((c.participant_id, c.outcome_id), 0) + 1
            )
        out.append(result)
    return out


@dataclass(frozen=True)
class RateCardYear:
    year: int
    results: tuple[ClaimResult, ...]  # this year's claims, in evaluation order
    payment: Decimal
    by_party: Mapping[str, Decimal]
    card: RateCard

    def to_statement(self) -> dict[str, Any]:
        outcomes = []
        for o in self.card.outcomes:
            mine = [r for r in self.results if r.claim.outcome_id == o.id]
            outcomes.append(
                {
                    "id": o.id,
                    "claims": len(mine),
                    "payable": sum(1 for r in mine if r.payable),
                    "payment": fmt_money(sum((r.amount for r in mine if r.payable), ZERO)),
                }
            )
        reasons: dict[str, int] = {}
        for r in self.results:
            if r.reason is not None:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
        capped = sum(
            (
                self.card.outcome(r.claim.outcome_id).price - r.amount  # type: ignore[union-attr]
                for r in self.results
                if r.payable and r.capped
            ),
            ZERO,
        )
        return {
            "claims": len(self.results),
            "payable": sum(1 for r in self.results if r.payable),
            "payment": fmt_money(self.payment),
            "capped": fmt_money(capped),
            "outcomes": outcomes,
            "not_payable": {k: reasons[k] for k in (*REASONS, "unknown_outcome") if reasons.get(k)},
        }

    def trace(self) -> dict[str, Any]:
        return {"claims": [r.trace() for r in self.results]}


def rate_card_year(card: RateCard, year: int, claims: Sequence[Claim]) -> RateCardYear:
    """Year ``year``'s rate-card figures from the claims in force of years 1..year (later ones are ignored)."""
    results = [r for r in evaluate(card, [c for c in claims if c.year <= year]) if r.claim.year == year]
    by_party: dict[str, Decimal] = {}
    for r in results:
        if r.payable:
            by_party[r.claim.provider_id] = by_party.get(r.claim.provider_id, ZERO) + r.amount
    payment = sum(by_party.values(), ZERO)
    return RateCardYear(year, tuple(results), payment, by_party, card)
