"""One root for every error the ledger raises, each with a stable code."""

from __future__ import annotations

import errno


class LedgerError(Exception):
    """Base of all ledger errors. ``code`` is stable; ``message`` is for people."""

    code = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class ValidationFailed(LedgerError):
    """A document failed validation; ``problems`` lists every ``path: message``."""

    code = "invalid_contract"

    def __init__(self, problems: list[tuple[str, str]], *, what: str = "contract") -> None:
        self.problems = problems
        lines = "; ".join(f"{path}: {msg}" for path, msg in problems)
        super().__init__(f"{what} is invalid ({len(problems)} problem(s)): {lines}")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.code,
            "message": self.message,
            "problems": [{"path": p, "message": m} for p, m in self.problems],
        }


class NotFound(LedgerError):
    code = "not_found"


def unknown_contract(contract_id: str) -> NotFound:
    """The one answer for a contract that is not registered — and, at the service, for one the
    caller may not read (its existence is not theirs to learn)."""
    return NotFound(f"no contract {contract_id!r} is registered", code="unknown_contract")


class AlreadyExists(LedgerError):
    code = "already_exists"


class InvalidCommand(LedgerError):
    code = "invalid_command"


class YearClosed(LedgerError):
    code = "year_closed"


class YearNotClosed(LedgerError):
    code = "year_not_closed"


class ConfigurationError(LedgerError):
    code = "configuration_error"


class StorageFull(LedgerError):
    code = "storage_full"


class StorageReadOnly(LedgerError):
    code = "storage_read_only"


# How each database says it: SQLite's primary result codes, PostgreSQL's SQLSTATEs, errno.
_SQLITE_FULL, _SQLITE_READONLY = 13, 8
_PG_DISK_FULL, _PG_READ_ONLY = "53100", "25006"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and what caused it, once each."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def storage_fault(exc: BaseException) -> LedgerError | None:
    """The ledger error for a write the storage refused as full or read-only, else None.

    The one place storage failures are recognised: SQLite ``SQLITE_FULL`` / ``SQLITE_READONLY``,
    PostgreSQL ``53100 disk_full`` / ``25006 read_only_sql_transaction``, ``OSError`` ENOSPC,
    EDQUOT or EROFS — however deeply eventsourcing or SQLAlchemy wrapped them. Codes only, never
    message text (a message may quote a provider's data).
    """
    for e in _chain(exc):
        code = getattr(e, "sqlite_errorcode", None)
        state = getattr(e, "sqlstate", None)
        number = e.errno if isinstance(e, OSError) else None
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        if (
            (code is not None and code & 0xFF == _SQLITE_FULL)
            or state == _PG_DISK_FULL
            or number in (errno.ENOSPC, errno.EDQUOT)
        ):
            return StorageFull(
                f"the database or disk is full ({detail}); the write was rolled back, "
                f"what was saved before it is kept"
            )
        if (
            (code is not None and code & 0xFF == _SQLITE_READONLY)
            or state == _PG_READ_ONLY
            or number == errno.EROFS
        ):
            return StorageReadOnly(
                f"the database is read-only ({detail}); the write was rolled back, "
                f"what was saved before it is kept"
            )
    return None


def infrastructure_fault(exc: BaseException) -> bool:
    """True when a failure is the database's or the machine's (full, read-only, connection lost,
    locked, timed out), not the data's: retrying the same data later may succeed, so it must not
    be blamed on a record or an event."""
    if storage_fault(exc) is not None:
        return True
    for e in _chain(exc):
        if isinstance(e, (OSError, ConnectionError, TimeoutError)):
            return True
        if any(
            c.__name__ in ("OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError")
            for c in type(e).__mro__
        ):  # sqlite3, psycopg (and its subclasses), SQLAlchemy, eventsourcing
            return True
        if str(getattr(e, "sqlstate", None) or "")[:2] in ("08", "40", "53", "55", "57", "58", "XX"):
            return True  # PostgreSQL: connection, rollback, resources, lock, operator, system, internal
    return False
