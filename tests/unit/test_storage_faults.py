"""Storage failures are recognised by their codes, however wrapped, and never blamed on the data."""

import errno
import sqlite3

import psycopg.errors
import pytest
from eventsourcing.persistence import OperationalError as StoreOperationalError
from sqlalchemy.exc import DataError as SADataError
from sqlalchemy.exc import OperationalError as SAOperationalError

from ledger.domain.errors import infrastructure_fault, storage_fault


def _sqlite_full() -> sqlite3.OperationalError:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        conn.execute("INSERT INTO t VALUES (randomblob(100000))")
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError("SQLite accepted a write past max_page_count")


def _wrapped_by_eventsourcing(exc: BaseException) -> BaseException:
    try:
        raise StoreOperationalError(exc) from exc
    except StoreOperationalError as wrapper:
        return wrapper


@pytest.mark.parametrize(
    "make, code",
    [
        (_sqlite_full, "storage_full"),
        (lambda: _wrapped_by_eventsourcing(_sqlite_full()), "storage_full"),
        (lambda: SAOperationalError("INSERT …", {}, _sqlite_full()), "storage_full"),
        (lambda: psycopg.errors.DiskFull("could not extend file: No space left on device"), "storage_full"),
        (lambda: OSError(errno.ENOSPC, "No space left on device"), "storage_full"),
        (lambda: OSError(errno.EROFS, "Read-only file system"), "storage_read_only"),
        (
            lambda: psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
            "storage_read_only",
        ),
    ],
)
def test_a_full_or_read_only_store_has_its_own_code(make, code):
    exc = make()
    assert storage_fault(exc).code == code
    assert infrastructure_fault(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("database or disk is full"),  # a message quoting a provider's text is not a fault
        KeyError("no space left on device"),
        psycopg.errors.StringDataRightTruncation("value too long for type character varying(128)"),
        SADataError("INSERT …", {}, psycopg.errors.NumericValueOutOfRange("numeric field overflow")),
        sqlite3.IntegrityError("UNIQUE constraint failed: submissions.submission_id"),
    ],
)
def test_the_datas_own_failures_are_not_storage_faults(exc):
    assert storage_fault(exc) is None
    assert not infrastructure_fault(exc)


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.OperationalError("database is locked"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    ],
)
def test_a_lost_or_busy_database_is_infrastructure_not_data(exc):
    assert storage_fault(exc) is None
    assert infrastructure_fault(exc)
