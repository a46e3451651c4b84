"""Wiring: where the read models live, and a scratch copy for replays as of a past instant."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from ledger.adapters.config import shown_url
from ledger.domain.errors import ConfigurationError, InvalidCommand, storage_fault
from ledger.usecases.application import Ledger

from .projector import Projector
from .queries import ReadModels

PROJECTIONS_DB_ENV = "OBC_LEDGER_PROJECTIONS_DB"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy URL for a ledger database URL (psycopg 3 driver for PostgreSQL)."""
    if url.startswith("sqlite:"):
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ConfigurationError(
        f"{shown_url(url)!r}: unsupported projections database URL", code="invalid_db_url"
    )


def make_engine(url: str) -> Engine:
    target = sqlalchemy_url(url)
    if target in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif target.startswith("sqlite:"):
        engine = create_engine(target, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(target, pool_pre_ping=True)
    return engine


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; naive times are UTC; a bare date means the end of that day (UTC)."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidCommand(
            f"--as-of: {text!r} is not an ISO 8601 date or date-time (e.g. 2027-04-30T17:00:00+01:00)",
            code="invalid_instant",
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # 9999-12-31T23:59:59-23:59 is past the last instant there is
    except OverflowError:
        raise InvalidCommand(f"--as-of: {text!r} is out of range", code="invalid_instant") from None
    return moment


class Projections:
    """The read models of one ledger: kept current on demand, queried through ReadModels."""

    def __init__(self, app: Ledger, url: str) -> None:
        self.app = app
        self.engine = make_engine(url)
        self.projector = Projector(app, self.engine)
        self.read = ReadModels(self.engine)
        self.as_of_instant: datetime | None = None  # set for read models of the past (:meth:`as_of`)

    @classmethod
    def for_ledger(cls, app: Ledger, ledger_url: str, projections_url: str | None = None) -> Projections:
        return cls(app, projections_url or os.environ.get(PROJECTIONS_DB_ENV) or ledger_url)

    def current(self, warn: Callable[[str], None] | None = None) -> ReadModels:
        """Catch up with the event log, then hand out the read models (the past stays as it was).

        Reads never wait on a write: when the catch-up cannot write (the disk or database is full,
        or read-only) the read models answer as they stand and ``warn`` (default: one line on
        stderr) names the lag. Quarantined events are warned about the same way.
        """
        if self.as_of_instant is not None:
            return self.read
        say = warn or _stderr
        try:
            self.projector.run()
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise
            try:
                position, head = self.projector.position(), self.projector.head()
            except Exception:  # no read models to answer from (never projected): the write's error stands
                raise fault from exc
            say(
                f"warning: read models are {max(head - position, 0)} events behind ({fault.code}): "
                f"figures as of notification {position}"
            )
            return self.read
        skipped = self.projector.quarantined()
        if skipped:
            ids = ", ".join(f"#{q['notification_id']}" for q in skipped[:5]) + (
                ", …" if len(skipped) > 5 else ""
            )
            say(
                f"warning: {len(skipped)} event(s) quarantined, not in these figures ({ids}): "
                f"see `obc-ledger projections status`"
            )
        return self.read

    @classmethod
    def as_of(cls, app: Ledger, instant: datetime, contracts: set[str] | None = None) -> Projections:
        """Read models rebuilt in a scratch database from the events recorded up to ``instant``."""
        scratch = cls(app, "sqlite://")
        scratch.projector.run(as_of=instant, contracts=contracts)
        scratch.as_of_instant = instant
        return scratch
