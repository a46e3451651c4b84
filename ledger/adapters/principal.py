"""Who authenticated: the principal recorded beside the actor on every event written for a request.

The service authenticates a request (a bearer token's id, an OIDC subject) and maps it to an actor
(``provider:p1``); the use cases take the actor as today. The principal travels in a context
variable: :func:`record_principals` makes a ledger's mapper add ``principal`` to the stored state of
every event saved while one is set. Nothing changes for events written without one (the CLI, the
consumers): their stored state is what it was, and an event read back without the key simply has
no ``principal`` attribute (``getattr(event, "principal", None)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from eventsourcing.domain import Snapshot

_PRINCIPAL: ContextVar[str | None] = ContextVar("obc_ledger_principal", default=None)


def current_principal() -> str | None:
    return _PRINCIPAL.get()


@contextlib.contextmanager
def acting_principal(principal: str | None) -> Iterator[None]:
    """Events saved inside the block record ``principal`` (e.g. ``token:3f2a…`` or ``oidc:SUBJECT``)."""
    token = _PRINCIPAL.set(principal)
    try:
        yield
    finally:
        _PRINCIPAL.reset(token)


def record_principals(app: Any) -> None:
    """Make ``app``'s mapper store the current principal in each event's state (snapshots excepted)."""
    mapper = app.mapper
    if getattr(mapper, "_records_principals", False):
        return
    original = mapper.to_stored_event

    def to_stored_event(domain_event: Any) -> Any:
        principal = _PRINCIPAL.get()
        fresh = principal is not None and "principal" not in vars(domain_event)
        if fresh and not isinstance(domain_event, Snapshot):
            object.__setattr__(domain_event, "principal", principal)
        return original(domain_event)

    mapper.to_stored_event = to_stored_event
    mapper._records_principals = True
