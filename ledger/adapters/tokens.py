"""Bearer tokens, idempotency keys and the session secret of the HTTP service, in the ledger's database.

Kept in four plain tables beside the event log (``service_tokens``, ``service_idempotency``,
``service_secrets``, ``service_signouts``), not as event-sourced aggregates: a token is an operator's credential, not a
fact of the contracts; every request looks one up by its hash, and revoking or expiring one is a
change of state the service must see at once in every worker process. What a token's holder *did*
is in the event log: each event written through the service records the token id as its
``principal`` (ledger.adapters.principal).

A token is ``obc_`` + 32 random bytes (URL-safe base64); only its sha256 is stored, with its id,
actor, name, creation, expiry and revocation. The token itself is shown once, when issued.

An idempotency key is kept for ``IDEMPOTENCY_TTL`` (24 hours, as Stripe keeps its keys) from its
first request, then pruned: a retry later than that runs as a new request. A key whose first
request never completed (its worker was killed mid-request) is not held forever: after
``IDEMPOTENCY_LEASE`` a retry of the same request takes the key over and runs it again (the
ledger's own checks then acknowledge what had been saved: duplicates by record id, instalments
already decided not decided again).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger.domain.access import Actor
from ledger.domain.errors import InvalidCommand, NotFound

PREFIX = "obc_"
IDEMPOTENCY_TTL = timedelta(hours=24)  # a key's first response is replayed this long, then pruned
IDEMPOTENCY_LEASE = timedelta(minutes=15)  # a key claimed this long ago and never completed is abandoned
PRUNE_EVERY = timedelta(minutes=1)  # at most this often per process
metadata = MetaData()

tokens_table = Table(
    "service_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("actor", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

idempotency_table = Table(
    "service_idempotency",
    metadata,
    Column("principal", String(300), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("method", String(10), nullable=False),
    Column("path", String(2000), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("status", Integer, nullable=False),  # 0 while the first request is still running
    Column("content_type", String(200), nullable=False, default=""),
    Column("body", LargeBinary, nullable=False, default=b""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

signouts_table = Table(  # sessions signed out: their cookies are refused until they would expire
    "service_signouts",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

secrets_table = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy URL of a ledger database URL (psycopg 3 for PostgreSQL; the query string dropped)."""
    if url.startswith("sqlite:"):
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :].split("?", 1)[0]
    raise InvalidCommand(
        f"unsupported database URL for the service tables: {url[:40]!r}", code="invalid_db_url"
    )


def _engine(url: str) -> Engine:
    target = sqlalchemy_url(url)
    if target.startswith("sqlite:"):
        engine = create_engine(target, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(target, pool_pre_ping=True)


DURATION = re.compile(r"(\d{1,5})([dhm])")


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``."""
    match = DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise InvalidCommand(
            f"--expires {text!r}: give a duration such as 90d, 12h or 30m", code="invalid_duration"
        )
    n, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    actor: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d is not None else None

        return {
            "token_id": self.token_id,
            "actor": self.actor,
            "name": self.name,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
        }


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        row.token_id,
        row.actor,
        row.name,
        _aware(row.created_at) or row.created_at,
        _aware(row.expires_at),
        _aware(row.revoked_at),
    )


@dataclass
class StoredResponse:
    status: int
    content_type: str
    body: bytes
    method: str
    path: str
    request_sha256: str


class TokenStore:
    """Tokens, idempotency records and the session secret, in the ledger's own database."""

    def __init__(self, url: str, clock: Any = None) -> None:
        self.engine = _engine(url)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._pruned: datetime | None = None  # when this process last pruned expired idempotency keys
        metadata.create_all(self.engine, checkfirst=True)

    # -- tokens --------------------------------------------------------------------------

    def issue(self, actor: str, name: str, expires: timedelta | None = None) -> tuple[TokenRecord, str]:
        """A new token for ``actor``: its record and the token itself (shown once, never stored)."""
        who = Actor.parse(actor)
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidCommand(
                "--name: give the token's holder, e.g. 'Finance manager'", code="invalid_name"
            )
        token = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        now = self.clock()
        record = TokenRecord(
            "tok_" + secrets.token_hex(8),
            str(who),
            name.strip(),
            now,
            now + expires if expires else None,
            None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(tokens_table).values(
                    token_id=record.token_id,
                    sha256=token_hash(token),
                    actor=record.actor,
                    name=record.name,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                    revoked_at=None,
                )
            )
        return record, token

    def verify(self, token: str) -> TokenRecord | None:
        """The active token's record, or None (unknown, revoked or expired)."""
        if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.sha256 == token_hash(token))).first()
        if row is None:
            return None
        record = _record(row)
        return record if record.active(self.clock()) else None

    def get(self, token_id: str) -> TokenRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.token_id == token_id)).first()
        return _record(row) if row is not None else None

    def active(self, token_id: str) -> TokenRecord | None:
        record = self.get(token_id)
        return record if record is not None and record.active(self.clock()) else None

    def list(self) -> list[TokenRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tokens_table).order_by(tokens_table.c.created_at)).all()
        return [_record(r) for r in rows]

    def revoke(self, token_id: str) -> TokenRecord:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(tokens_table)
                .where(tokens_table.c.token_id == token_id, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        record = self.get(token_id)
        if record is None:
            raise NotFound(f"no token {token_id!r}", code="unknown_token")
        del done
        return record

    # -- idempotency ---------------------------------------------------------------------

    def reserve(self, principal: str, key: str, method: str, path: str, sha: str) -> StoredResponse | None:
        """Claim ``key`` for a first request (None), or return what is stored under it
        (``status`` 0: the first request is still running). An expired key is claimed anew; an
        abandoned claim (``IDEMPOTENCY_LEASE``) is taken over by a retry of the same request."""
        now = self.clock()
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            self.prune()
        # a claim: this request, running (status 0), no response yet
        claim = {
            "method": method,
            "path": path,
            "request_sha256": sha,
            "status": 0,
            "content_type": "",
            "body": b"",
            "created_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(idempotency_table).values(principal=principal, key=key, **claim))
            return None
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(
                select(idempotency_table).where(
                    idempotency_table.c.principal == principal, idempotency_table.c.key == key
                )
            ).first()
        if row is None:  # released meanwhile: try once more
            return self.reserve(principal, key, method, path, sha)
        created = _aware(row.created_at) or row.created_at
        expired = now - created >= IDEMPOTENCY_TTL
        abandoned = row.status == 0 and row.request_sha256 == sha and now - created >= IDEMPOTENCY_LEASE
        if expired or abandoned:
            with self.engine.begin() as conn:  # compare-and-set: one retry wins the key
                taken = conn.execute(
                    update(idempotency_table)
                    .where(
                        idempotency_table.c.principal == principal,
                        idempotency_table.c.key == key,
                        idempotency_table.c.created_at == row.created_at,
                        idempotency_table.c.status == row.status,
                    )
                    .values(**claim)
                )
            if taken.rowcount == 1:
                return None
            return self.reserve(principal, key, method, path, sha)  # another retry won: read its claim
        return StoredResponse(
            row.status, row.content_type, row.body, row.method, row.path, row.request_sha256
        )

    def complete(self, principal: str, key: str, status: int, content_type: str, body: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(idempotency_table)
                .where(idempotency_table.c.principal == principal, idempotency_table.c.key == key)
                .values(status=status, content_type=content_type, body=body)
            )

    def prune(self) -> int:
        """Delete the idempotency keys ``IDEMPOTENCY_TTL`` old or older; how many."""
        now = self.clock()
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(idempotency_table).where(idempotency_table.c.created_at <= now - IDEMPOTENCY_TTL)
            )
        self._pruned = now
        return gone.rowcount

    def release(self, principal: str, key: str) -> None:
        """Forget a reservation whose request failed unexpectedly (a retry may run it again)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(idempotency_table).where(
                    idempotency_table.c.principal == principal, idempotency_table.c.key == key
                )
            )

    # -- sessions signed out -------------------------------------------------------------

    def end_session(self, sid: str, expires_at: datetime) -> None:
        """Refuse session ``sid`` from now on (until ``expires_at``, when its cookie lapses anyway);
        forget the sign-outs whose cookies have lapsed."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(signouts_table).where(signouts_table.c.expires_at < now))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(signouts_table).values(sid=sid, ended_at=now, expires_at=expires_at))
        except IntegrityError:  # signed out twice (two tabs): already refused
            pass

    def session_ended(self, sid: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(signouts_table.c.sid).where(signouts_table.c.sid == sid)).first()
        return row is not None

    # -- the session secret ----------------------------------------------------------------

    def secret(self, name: str = "session") -> bytes:
        """A random secret shared by every worker process (created by the first to ask)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(secrets_table.c.value).where(secrets_table.c.name == name)).first()
        if row is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(secrets_table).values(name=name, value=secrets.token_hex(32)))
            except IntegrityError:
                pass
            return self.secret(name)
        return bytes.fromhex(row.value)
