"""Event-store recorders with two additions written in the batch's own transaction.

* **Several tracked positions.** A Kafka consumer batch spans partitions; its
  effect is durable exactly once when the events it produced and every
  (topic, partition) offset it consumed are written in one transaction. These
  recorders take ``trackings=[Tracking(...), ...]`` and record them even when a
  batch produced no events (all duplicates). Single-row tracking only moves
  forward, so a stale writer (a consumer that lost its partitions in a
  rebalance) fails with IntegrityError instead of rewinding a position.
* **Seals.** Every event gets a stream hash and a global hash chained over the
  notification log (:mod:`ledger.adapters.audit`), written while the store's write lock
  is held so the chain has one order; ``verify`` recomputes them.
* **The record index.** ``record_index=[(contract_id, "type:id", digest), ...]``
  adds rows to a table keyed by (contract, record id): the ids every accepted
  record used, with its content digest. Ingest looks a batch's ids up there to
  tell a duplicate (same digest) from a conflicting one, so telling them apart
  needs neither memory that grows with the data nor replaying history. The
  primary key makes two writers racing with the same new id collide
  (IntegrityError → retry → the loser sees a duplicate). The index is derived
  from the events (:meth:`Ledger.rebuild_record_index`) and written with them.
* **Checks made under the write lock.** ``expect_versions={stream id: version}``
  fails the transaction (IntegrityError → the command retries) when a stream it
  read has moved on — a year close whose data gained a record after it was read
  is decided again, so no record lands unseen beside a close. ``probe_closed=
  [settlement stream id, ...]`` fills ``closed_found`` with the streams whose year
  is closed at commit time, so ingest's "closed year: run restate" notice is decided
  in the batch's own transaction, not from what a session cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import DatabaseError, IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

from ledger.adapters.audit import GENESIS, seal_rows, stream_text

LOOKUP_CHUNK = 500
CLOSED_TOPIC = "ledger.domain:Settlement.YearClosed"


def _stale(stream_id: Any, expected: int, current: int | None) -> IntegrityError:
    return IntegrityError(
        f"stream {stream_id} moved on from version {expected} to {current} while it was read"
    )


class _SealedIdsOnly:
    """Notification reads start at id 1, the first the ledger gives: a row an intruder stored at an
    id ≤ 0 (outside what the seals cover) is not listed, indexed or published. ``verify`` reports it
    as unsealed: its walk, ``select_log(None, …)``, is the one read that starts below id 1."""

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        lowest = None if start is None else start if inclusive_of_start else start + 1
        if lowest is None or lowest < 1:
            start, inclusive_of_start = 1, True
        return super().select_notifications(  # type: ignore[misc]
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )


class SQLiteLedgerRecorder(_SealedIdsOnly, SQLiteProcessRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a stream is loaded from the sealed log's ids only: a row stored at a rowid ≤ 0 (which the
        # ledger never gives) is reported by verify as unsealed, never applied to a figure
        self.select_events_statement += "AND rowid > 0 "

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS record_index (contract_id TEXT NOT NULL, record_key TEXT NOT NULL, "
            "digest TEXT NOT NULL, PRIMARY KEY (contract_id, record_key)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS event_hashes (notification_id INTEGER PRIMARY KEY, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, stream_hash TEXT NOT NULL, "
            "global_hash TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS event_hashes_stream ON event_hashes (originator_id, notification_id)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = self._insert_rows(c, stored_events)
        tracking = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        if stored_events:  # the insert above holds the write lock: the chain has one order
            c.execute("SELECT global_hash FROM event_hashes ORDER BY notification_id DESC LIMIT 1")
            row = c.fetchone()

            def last_of_stream(oid: str) -> str | None:
                c.execute(
                    "SELECT stream_hash FROM event_hashes WHERE originator_id = ? "
                    "ORDER BY notification_id DESC LIMIT 1",
                    (oid,),
                )
                found = c.fetchone()
                return found[0] if found else None

            c.executemany(
                "INSERT INTO event_hashes VALUES (?, ?, ?, ?, ?)",
                seal_rows(stored_events, returning or [], row[0] if row else GENESIS, last_of_stream),
            )
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(c, tracking)
        rows = kwargs.get("record_index")
        if rows:  # a duplicate key raises sqlite3.IntegrityError, which the transaction re-raises as ours
            c.executemany("INSERT INTO record_index VALUES (?, ?, ?)", rows)
        self._locked_checks(c, kwargs)
        return returning

    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The batch's events in one ``executemany`` (the library's recorder inserts them one statement at
        a time to read each ``lastrowid``). Their notification ids are the rowids SQLite gave them: without
        AUTOINCREMENT a new row's rowid is one more than the table's largest, and the transaction holds
        the write lock from the first insert, so the batch's rowids are consecutive and end at the
        largest — checked, not assumed (tests/integration/test_store_bulk.py)."""
        if not stored_events:
            return []
        rows = [(stream_text(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events]
        c.executemany(self.insert_events_statement, rows)
        table = self.events_table_name
        c.execute(f"SELECT MAX(rowid) FROM {table}")
        last = c.fetchone()[0]
        first = last - len(rows) + 1
        for rowid, row in ((first, rows[0]), (last, rows[-1])):
            c.execute(f"SELECT originator_id, originator_version FROM {table} WHERE rowid = ?", (rowid,))
            found = c.fetchone()
            if found is None or (found[0], found[1]) != row[:2]:
                raise DatabaseError(f"the batch's rowids are not consecutive ending at {last}")
        return list(range(first, last + 1))

    def _locked_checks(self, c: SQLiteCursor, kwargs: dict[str, Any]) -> None:
        table = self.events_table_name
        for stream_id, expected in (kwargs.get("expect_versions") or {}).items():
            c.execute(
                f"SELECT MAX(originator_version) FROM {table} WHERE originator_id = ?", (stream_id.hex,)
            )
            current = c.fetchone()[0]
            if (current or 0) != expected:
                raise _stale(stream_id, expected, current)
        found = kwargs.get("closed_found")
        for stream_id in kwargs.get("probe_closed") or ():
            c.execute(
                f"SELECT 1 FROM {table} WHERE originator_id = ? AND topic = ? LIMIT 1",
                (stream_id.hex, CLOSED_TOPIC),
            )
            if c.fetchone() is not None and found is not None:
                found.add(stream_id)

    def lookup_records(self, contract_id: str, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        found: dict[str, str] = {}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[i : i + LOOKUP_CHUNK]
                c.execute(
                    f"SELECT record_key, digest FROM record_index WHERE contract_id = ? "
                    f"AND record_key IN ({','.join('?' * len(chunk))})",
                    [contract_id, *chunk],
                )
                found.update((row[0], row[1]) for row in c.fetchall())
        return found

    def clear_record_index(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM record_index")

    def select_record_index(self) -> tuple[int | None, list[tuple[str, str, str]]]:
        """The record index and the log's bound (:meth:`log_bound`) it is of, in one statement: its rows
        are those of the events at or below the bound (each batch writes both in one transaction), so
        a check against the events up to the bound is not upset by a batch appended meanwhile."""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None
            c.execute(
                f"SELECT b.m, r.contract_id, r.record_key, r.digest FROM ({self._bound_query()}) AS b "
                "LEFT JOIN record_index AS r ON 1"
            )
            rows = c.fetchall()
            return rows[0][0], [(r[1], r[2], r[3]) for r in rows if r[1] is not None]

    def select_seals(self, after: int | None, limit: int) -> list[tuple[Any, ...]]:
        """Seals after notification id ``after``; ``None``: from the very first, whatever its id (≤ 0 too)."""
        where, params = (
            ("WHERE notification_id > ? ", (after, limit)) if after is not None else ("", (limit,))
        )
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None
            c.execute(
                "SELECT notification_id, originator_id, originator_version, stream_hash, global_hash "
                f"FROM event_hashes {where}ORDER BY notification_id LIMIT ?",
                params,
            )
            return c.fetchall()

    def select_log(self, after: int | None, limit: int) -> list[tuple[int, str, int, str, bytes]]:
        """Stored events after notification id ``after``, in log order, as stored: the stream id as text,
        the state as bytes (what ``verify`` hashes; eventsourcing's Notification would parse the id).
        ``None``: from the very first row, whatever its id (a rowid ≤ 0 an intruder wrote included)."""
        where, params = ("WHERE rowid > ? ", (after, limit)) if after is not None else ("", (limit,))
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples (the datastore's rows are sqlite3.Row)
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                f"{where}ORDER BY rowid LIMIT ?",
                params,
            )
            return c.fetchall()  # (id, stream id, version, topic, state): ledger.adapters.audit.LogRow

    def log_bound(self) -> int | None:
        """The highest notification id of an event or a seal, in one read (None: both tables empty).
        Every row at or below it is committed (ids are given under the write lock, in commit order):
        ``verify`` walks that prefix, so a batch appended while it walks is not mistaken for a tamper."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._bound_query())
            row = c.fetchone()
            return row[0] if row else None

    def _bound_query(self) -> str:
        """One row, ``m``: the highest id of an event or a seal (:meth:`log_bound`)."""
        return (
            f"SELECT MAX(m) AS m FROM (SELECT MAX(rowid) AS m FROM {self.events_table_name} "
            "UNION ALL SELECT MAX(notification_id) FROM event_hashes)"
        )

    def stream_versions(self, upto: int | None = None) -> dict[str, tuple[int, int]]:
        """Every stream's stored rows (up to notification id ``upto``): stream id (32 hex digits) ->
        (row count, highest version), one query."""
        where, params = ("WHERE rowid <= ? ", (upto,)) if upto is not None else ("", ())
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None
            c.execute(
                f"SELECT originator_id, COUNT(*), MAX(originator_version) FROM {self.events_table_name} "
                f"{where}GROUP BY originator_id",
                params,
            )
            return {stream_text(r[0]): (r[1], r[2]) for r in c.fetchall()}

    def last_seal(self, upto: int | None = None) -> tuple[int, str] | None:
        """The last seal (at or below notification id ``upto``): (notification id, global hash)."""
        where, params = ("WHERE notification_id <= ? ", (upto,)) if upto is not None else ("", ())
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT notification_id, global_hash FROM event_hashes {where}"
                "ORDER BY notification_id DESC LIMIT 1",
                params,
            )
            row = c.fetchone()
            return (row[0], row[1]) if row else None
