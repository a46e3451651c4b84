"""What the service runs on: the ledger, its read models, the token store and the OIDC verifier.

One ``World`` per worker process. Writes are serialised within a process (the ledger's optimistic
concurrency retries across processes); the read models' catch-up runs one at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ledger.adapters.config import database_url
from ledger.adapters.oidc import OidcClient, OidcConfig, OidcVerifier
from ledger.adapters.principal import acting_principal, record_principals
from ledger.adapters.tokens import TokenStore
from ledger.bootstrap import App, bootstrap
from ledger.entrypoints.web.walks import Budget, Coalesced, refusals_per_minute, walks_per_minute
from ledger.usecases import Services
from ledger.usecases.application import Ledger
from projections.bootstrap import Projections

T = TypeVar("T")

MAX_UPLOAD_ENV = "OBC_LEDGER_MAX_UPLOAD_BYTES"
MAX_UPLOAD_BYTES = 256 * 1024 * 1024


def max_upload_bytes() -> int:
    value = os.environ.get(MAX_UPLOAD_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else MAX_UPLOAD_BYTES


@dataclass
class World:
    url: str
    app: App  # the wiring, as the CLI's (ledger.bootstrap)
    ledger: Ledger
    services: Services
    projections: Projections
    tokens: TokenStore
    oidc: OidcVerifier | None
    max_upload: int = MAX_UPLOAD_BYTES
    signin: OidcClient | None = None  # sign-in through the issuer (a client id configured)
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    read_lock: threading.Lock = field(default_factory=threading.Lock)
    walks: Budget = field(default_factory=lambda: Budget(walks_per_minute()))  # see walks.py
    refusals: Budget = field(default_factory=lambda: Budget(refusals_per_minute()))  # recorded ones
    chain: Coalesced = field(default_factory=Coalesced)

    @classmethod
    def open(
        cls, db: str | None = None, projections_db: str | None = None, oidc: OidcConfig | None = None
    ) -> World:
        url = database_url(db)
        app = bootstrap(url, projections_url=projections_db)
        ledger, projections = app.ledger, app.projections()
        record_principals(ledger)
        projections.projector.create_tables()
        config = oidc if oidc is not None else OidcConfig.from_env()
        verifier = OidcVerifier(config) if config else None
        return cls(
            url,
            app,
            ledger,
            app.services,
            projections,
            TokenStore(url),
            verifier,
            max_upload_bytes(),
            OidcClient(config, verifier) if config and verifier and config.signin else None,
        )

    caught_up: int = -1  # the log head at the last catch-up
    # (actor, contract) -> the log head when a read was allowed; (contract, year) -> (head, statement)
    allowed: dict[tuple[str, str], int] = field(default_factory=dict)
    statements: dict[tuple[str, int], tuple[int, Any]] = field(default_factory=dict)

    def read(self) -> Any:
        """The read models, caught up with the event log (no catch-up while its head has not moved)."""
        head = self.projections.projector.head()
        if head == self.caught_up:
            return self.projections.read
        with self.read_lock:
            read = self.projections.current(warn=lambda _line: None)
            self.caught_up = head if self.projections.projector.position() >= head else -1
            return read

    def statement(self, contract_id: str, year: int) -> Any:
        """A year's statement from the read models; kept while the log head stands (it cannot change)."""
        self.read()
        key = (contract_id, year)
        hit = self.statements.get(key)
        if hit is not None and hit[0] == self.caught_up >= 0:
            return hit[1]
        with self.read_lock:  # no catch-up of this process runs meanwhile: the figures are of a whole prefix
            head = self.caught_up
            statement = self.projections.read.statement(contract_id, year)
        if head >= 0:
            if len(self.statements) > 256:
                self.statements.clear()
            self.statements[key] = (head, statement)
        return statement

    def as_of(self, instant: Any, contract_id: str | None) -> Any:
        return self.app.projections_as_of(instant, {contract_id} if contract_id else None).read

    def write(self, principal: str, action: Callable[[], T]) -> T:
        """Run a write with ``principal`` recorded on every event it saves."""
        with self.write_lock, acting_principal(principal):
            return action()

    def as_principal(self, principal: str, action: Callable[[], T]) -> T:
        """Run a read whose refusal (if any) is recorded with ``principal``."""
        with acting_principal(principal):
            return action()
