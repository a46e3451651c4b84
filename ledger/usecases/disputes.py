"""Disputes: a provider disputes a year's decision within the time bar; the commissioner resolves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.domain.errors import InvalidCommand
from ledger.domain.ids import check_note
from ledger.domain.numbers import NotANumber, fmt_money, to_money
from ledger.domain.variations import year_terms
from ledger.usecases.access import Access
from ledger.usecases.common import iso
from ledger.usecases.results import Adjustment, Dispute, DisputeOutcome, ListedDispute
from ledger.usecases.settlement import Settling

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger


class Disputes:
    def __init__(self, store: Ledger, access: Access, settling: Settling) -> None:
        self.store = store
        self.access = access
        self.settling = settling

    def raise_dispute(self, contract_id: str, year: int, reason: str, actor: str) -> Dispute:
        """A provider disputes the year's latest decision, within the contract's time bar."""

        def attempt() -> Dispute:
            contract, definition = self.store.load_contract(contract_id)
            who = self.access.authorize(actor, "raise_dispute", definition)
            self.store.check_year(definition.calendar(contract.extended), year)
            settlement = self.store._settlement(contract_id, year)
            label, decided_at = settlement.check_decided()
            if not reason.strip():
                raise InvalidCommand("a dispute must say what is disputed and why", code="reason_needed")
            check_note(reason, "reason")
            now = self.store.clock()
            settlement.check_within_time_bar(now, definition.dispute_time_bar_days)
            dispute_id = f"D{year}-{len(settlement.disputes) + 1}"
            settlement.raise_dispute(
                dispute_id=dispute_id,
                raised_by=str(who),
                reason=reason,
                decision=label,
                decision_at=decided_at,
                raised_at=iso(now),
                actor=str(who),
            )
            self.store.save(settlement)
            return Dispute(**settlement.disputes[dispute_id])  # type: ignore[typeddict-item]

        return self.store._retrying(attempt)

    def resolve_dispute(
        self,
        contract_id: str,
        year: int,
        dispute_id: str,
        upheld: bool,
        note: str,
        actor: str,
        adjust: str | None = None,
        party: str | None = None,
    ) -> DisputeOutcome:
        """The commissioner upholds or rejects a dispute. Upheld: a restatement, or a manual adjustment."""
        check_note(note, "note")
        amount = None
        if adjust is not None:
            try:
                amount = to_money(adjust)
            except NotANumber as exc:
                raise InvalidCommand(f"the adjustment: {exc}", code=exc.code) from None
            if not upheld:
                raise InvalidCommand(
                    "an adjustment (an amount in pence, 2 places) is made only when the dispute is upheld",
                    code="adjustment_not_upheld",
                )

        def attempt() -> DisputeOutcome:
            _, definition = self.store.load_contract(contract_id)
            who = self.access.authorize(actor, "resolve_dispute", definition)
            settlement = self.store._settlement(contract_id, year)
            settlement.check_dispute_open(dispute_id)
            target = party or definition.lead_provider.id
            if target not in year_terms(definition, year).providers:
                raise InvalidCommand(
                    f"{target!r} is not a provider party to {contract_id}", code="unknown_party"
                )
            settlement.resolve_dispute(
                dispute_id=dispute_id,
                upheld=upheld,
                note=note,
                resolved_at=iso(self.store.clock()),
                actor=str(who),
            )
            outcome = DisputeOutcome(dispute_id=dispute_id, status="upheld" if upheld else "rejected")
            if upheld and amount is not None:
                settlement.adjust(
                    amount=amount,
                    by_party={target: amount},
                    reason=f"dispute {dispute_id} upheld: {note}",
                    dispute_id=dispute_id,
                    decided_at=iso(self.store.clock()),
                    actor=str(who),
                )
                outcome["adjustment"] = Adjustment(amount=fmt_money(amount), party=target)
            self.store.save(settlement)
            if upheld and amount is None:
                outcome["true_up"] = self.settling.restate(
                    contract_id, year, actor=actor, reason_prefix=f"dispute {dispute_id} upheld: {note}; "
                )
            return outcome

        return self.store._retrying(attempt)

    def disputes(self, contract_id: str, year: int | None = None) -> list[ListedDispute]:
        contract, definition = self.store.load_contract(contract_id)
        years = [year] if year else range(1, definition.term_years(contract.extended) + 1)
        out: list[ListedDispute] = []
        for y in years:
            settlement = self.store.settlement_state(contract_id, y)
            for d in settlement.disputes.values() if settlement is not None else []:
                out.append(ListedDispute(year=y, **d))  # type: ignore[typeddict-item]
        return out
