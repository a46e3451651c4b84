"""What a command handler is given beside its arguments: the wired ledger (``ledger.bootstrap``).

``handler(args, ctx)``: ``ctx.ledger`` is the event store's application (opened once, on first
use), ``ctx.read()`` the read models caught up with the log, ``ctx.actor`` who is acting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ledger.adapters.principal import acting_principal, record_principals
from ledger.bootstrap import App, bootstrap
from ledger.domain.access import NotAuthorized
from ledger.usecases import Services
from ledger.usecases.application import Ledger
from projections.bootstrap import Projections
from projections.queries import ReadModels

# Commands that read one contract, and where its id is (``contract``: optional, a filter).
READ_TARGETS: dict[str | tuple[str, str], str] = {
    "statement": "contract_id",
    "history": "contract_id",
    "submissions": "contract_id",
    "decisions": "contract_id",
    "explain": "contract_id",
    "costs": "contract_id",
    "reconcile": "contract_id",
    "payments": "contract_id",
    "report": "contract_id",
    "replay": "contract",
    "rejected": "contract",
    "completeness": "contract_id",
    "template": "contract_id",
    "whatif": "contract_id",
    ("contract", "show"): "contract_id",
    ("budget", "show"): "contract_id",
    ("contract", "terms"): "contract_id",
    ("contract", "variations"): "contract_id",
    ("dispute", "list"): "contract_id",
}


class Context:
    """One command's world, built from its global options through :func:`ledger.bootstrap.bootstrap`."""

    def __init__(self, args: argparse.Namespace, app: App | None = None) -> None:
        self.args = args
        self._app = app
        self.position: int | None = None  # the read models' event position of the figures printed
        self._proven: Any = None  # the --token's record, once checked

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = bootstrap(
                getattr(self.args, "db", None),
                projections_url=getattr(self.args, "projections_db", None),
                registry_url=getattr(self.args, "registry", None),
            )
            if getattr(self.args, "token", None):
                record_principals(self._app.ledger)  # the token's id on every event saved
        return self._app

    @property
    def ledger(self) -> Ledger:
        """The command's ledger, opened once (the read check and the command share it)."""
        return self.app.ledger

    @property
    def services(self) -> Services:
        """The use cases over the command's ledger (:class:`ledger.usecases.Services`)."""
        return self.app.services

    def run(self, handler: Callable[[argparse.Namespace, Context], int]) -> int:
        """The command, after its read check, with a --token's principal recorded on what it saves."""
        with acting_principal(self.principal):
            self.check_read()
            return handler(self.args, self)

    @property
    def actor(self) -> str:
        claimed = getattr(self.args, "actor", None) or os.environ.get("OBC_LEDGER_ACTOR")
        proven = self.proven()
        if proven is None:
            return claimed or "system"
        if claimed and claimed != proven.actor:
            with acting_principal(f"token:{proven.token_id}"):  # recorded with who was refused
                self.app.services.access.record_refusal(
                    proven.actor, "act_as", f"claimed to act as {claimed!r} with this token"
                )
            raise NotAuthorized(
                f"the token is {proven.actor}'s, not {claimed!r}'s; give one or the other",
                code="actor_mismatch",
            )
        return proven.actor

    @property
    def principal(self) -> str | None:
        """``token:ID`` when a token proved the actor (recorded on every event the command saves)."""
        proven = self.proven()
        return f"token:{proven.token_id}" if proven is not None else None

    def proven(self) -> Any:
        """The record of the token given with --token, checked once; None without one."""
        token = getattr(self.args, "token", None)
        if not token:
            return None
        if self._proven is None:
            from ledger.adapters.tokens import TokenStore  # only a command given a token needs it

            store = TokenStore(self.app.db_url)
            try:
                record = store.verify(token)
            finally:
                store.engine.dispose()
            if record is None:
                raise NotAuthorized("--token: the token is unknown, revoked or expired", code="invalid_token")
            self._proven = record
        return self._proven

    def projections(self) -> Projections:
        return self.app.projections()

    def read(self) -> ReadModels:
        """The read models, caught up with the event log (their position noted for :meth:`position_note`)."""
        projections = self.projections()
        read = projections.current()
        self.position = projections.projector.position()
        return read

    def position_note(self) -> None:
        """Which event position the figures just printed come from (on stderr: stdout stays the data)."""
        if self.position is not None and not getattr(self.args, "json", False):
            print(
                f"figures from the read models at event #{self.position} (obc-ledger verify --read-models "
                f"checks them against the events)",
                file=sys.stderr,
            )

    def readable(self) -> Callable[[str | None], bool]:
        """Which contracts a list shows the acting party: all for system and auditors."""
        actor = self.actor
        return (lambda _cid: True) if actor == "system" else self.app.services.access.readable(actor)

    def check_read(self) -> None:
        """A read of one contract by someone who is not party to it is refused, and recorded."""
        args, actor = self.args, self.actor
        if actor == "system":
            return
        sub = getattr(args, f"{args.command.replace('-', '_')}_command", None)
        field = READ_TARGETS.get((args.command, sub)) if sub else None
        field = field or READ_TARGETS.get(args.command)
        contract_id = getattr(args, field, None) if field else None
        if contract_id:
            self.app.services.access.authorize_read(actor, contract_id)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


Handler = Callable[[argparse.Namespace, Context], int]
Configure = Callable[[Any], Handler]
