"""Who may do what: commands refused (and the refusal recorded) before anything is decided."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ledger.domain.access import Actor, NotAuthorized, may_read, refusal
from ledger.domain.aggregates import AccessRefused
from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import NotFound, unknown_contract

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger


class Access:
    def __init__(self, store: Ledger) -> None:
        self.store = store

    def authorize(
        self, actor: str, action: str, definition: ContractDefinition | None, contract_id: str | None = None
    ) -> Actor:
        """Parse the actor and check it may do ``action``; a refusal is recorded, then raised."""
        who = Actor.parse(actor)
        reason = refusal(who, action, definition)
        if reason is not None:
            cid = definition.id if definition is not None else contract_id
            self.store.save(AccessRefused(actor=str(who), action=action, contract_id=cid, reason=reason))
            hidden = definition is not None and not may_read(who, definition)
            raise NotAuthorized(reason, conceals=cid if hidden else None)
        return who

    def record_refusal(self, actor: str, action: str, reason: str, contract_id: str | None = None) -> None:
        """Record a refusal decided elsewhere (a sign-in whose proof failed) for the audit trail."""
        self.store.save(
            AccessRefused(
                actor=str(Actor.parse(actor)), action=action, contract_id=contract_id, reason=reason
            )
        )

    def authorize_read(self, actor: str, contract_id: str) -> None:
        """Refuse (recorded, raised) an actor that may not read this contract.

        An unregistered contract is refused the same way — recorded as a refusal, raised as
        ``unknown_contract`` — for every actor but ``system``: a caller probing for contract ids
        then costs the ledger one refusal per guess, whether or not the guess exists, and shows in
        the audit trail (a party's refusal answers ``unknown_contract`` too; see NotAuthorized)."""
        who = Actor.parse(actor)
        definition = self._registered(contract_id)
        if definition is None:
            missing = unknown_contract(contract_id)
            if who.role != "system":
                self.store.save(
                    AccessRefused(
                        actor=str(who), action="read", contract_id=contract_id, reason=missing.message
                    )
                )
            raise missing
        self.authorize(actor, "read", definition)

    def refuses_read(self, actor: str, contract_id: str) -> bool:
        """Whether :meth:`authorize_read` would refuse ``actor`` this contract (nothing recorded)."""
        who = Actor.parse(actor)
        if who.role == "system":
            return False
        definition = self._registered(contract_id)
        return definition is None or refusal(who, "read", definition) is not None

    def _registered(self, contract_id: str) -> ContractDefinition | None:
        """The contract's definition, or None when no contract of that id is registered."""
        try:
            return self.store.load_contract(contract_id)[1]
        except NotFound:
            return None

    def readable(self, actor: str) -> Callable[[str | None], bool]:
        """Which contracts a list may show ``actor`` (see ledger.domain.access)."""
        who = Actor.parse(actor)
        known: dict[str, bool] = {}

        def may(contract_id: str | None) -> bool:
            if contract_id is None:
                return may_read(who, None)
            if contract_id not in known:
                known[contract_id] = may_read(who, self._registered(contract_id))
            return known[contract_id]

        return may
