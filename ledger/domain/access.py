"""Who may do what. Every command carries an actor; refusals are errors and are recorded.

Actors: ``commissioner:<party id>``, ``provider:<party id>``, ``auditor[:name]``,
and ``system`` — the local operator of an embedded ledger (the default when no
``--as`` is given), trusted with every command.

* only the contract's commissioner registers it, extends it, adjusts budgets,
  records baselines, decides instalments, closes and restates years, and
  resolves disputes;
* a provider submits data only for contracts it is party to and only for itself,
  and raises disputes on its contracts' decisions;
* a contract is read (statements, history, submissions, costs, explanations,
  reports, …) by its parties — its commissioner and its providers, who see each
  other's figures: the book is open among the parties — and by auditors; lists
  show such an actor only the contracts it may read; an auditor changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.domain.ids import safe

ACTOR = re.compile(
    r"system|auditor(:[A-Za-z0-9_.@-]{1,64})?|commissioner:[A-Za-z0-9_-]{1,64}|provider:[A-Za-z0-9_-]{1,64}"
)

COMMISSIONER_ACTIONS = {
    "register",
    "vary",
    "extend",
    "adjust_budget",
    "record_baseline",
    "pay",
    "close_year",
    "restate",
    "resolve_dispute",
    "register_provider_key",
    "revoke_provider_key",
    "require_signatures",
}
PROVIDER_ACTIONS = {"submit", "raise_dispute"}


class NotAuthorized(LedgerError):
    """A refusal; ``conceals`` names the contract when the actor may not even read it — a door
    open to strangers (the service) answers as for an unregistered contract, so that a refusal
    does not tell who is party to what."""

    code = "not_authorized"

    def __init__(self, message: str, *, code: str | None = None, conceals: str | None = None) -> None:
        super().__init__(message, code=code)
        self.conceals = conceals


@dataclass(frozen=True)
class Actor:
    role: str  # system | auditor | commissioner | provider
    party: str | None

    @classmethod
    def parse(cls, text: str) -> Actor:
        if not isinstance(text, str) or not ACTOR.fullmatch(text):
            raise InvalidCommand(
                f"--as {safe(text)}: expected commissioner:ID, provider:ID, auditor or system",
                code="invalid_actor",
            )
        role, _, party = text.partition(":")
        return cls(role, party or None)

    def __str__(self) -> str:
        return f"{self.role}:{self.party}" if self.party else self.role


def refusal(actor: Actor, action: str, definition: ContractDefinition | None) -> str | None:
    """Why ``actor`` may not do ``action`` on the contract, or None when it may."""
    if actor.role == "system":
        return None
    if action == "read":
        return _read_refusal(actor, definition)
    if actor.role == "auditor":
        return f"{actor} may read but not {action.replace('_', ' ')}"
    if action in COMMISSIONER_ACTIONS:
        if actor.role != "commissioner":
            return f"only the contract's commissioner may {action.replace('_', ' ')}; {actor} may not"
        if definition is not None and actor.party != definition.commissioner.id:
            return f"{actor} is not the commissioner of {definition.id} ({definition.commissioner.id} is)"
        return None
    if action in PROVIDER_ACTIONS:
        if actor.role != "provider":
            return f"only a provider party may {action.replace('_', ' ')}; {actor} may not"
        if definition is not None and actor.party not in definition.providers_ever:
            return f"{actor} is not a provider party to {definition.id}"
        return None
    return f"unknown action {action!r}"


def _read_refusal(actor: Actor, definition: ContractDefinition | None) -> str | None:
    if actor.role == "auditor" or definition is None:  # an unknown contract: the command says so
        return None
    if actor.role == "commissioner" and actor.party == definition.commissioner.id:
        return None
    if actor.role == "provider" and actor.party in definition.providers_ever:
        return None
    return f"{actor} is not a party to {definition.id}: only its commissioner, its providers and auditors read it"


def may_read(actor: Actor, definition: ContractDefinition | None) -> bool:
    """Whether a list shows ``actor`` this contract (None: a record for no registered contract)."""
    if actor.role in ("system", "auditor"):
        return True
    return definition is not None and _read_refusal(actor, definition) is None
