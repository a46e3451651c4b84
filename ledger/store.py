"""Event-store recorders with two additions written in the batch's own transaction.

* **Several tracked positions.** A Kafka consumer batch spans partitions; its
  effect is durable exactly once when the events it produced and every
  (topic, partition) offset it consumed are written in one transaction. These
  recorders take ``trackings=[Tracking(...), ...]`` and record them even when a
  batch produced no events (all duplicates). Single-row tracking only moves
  forward, so a stale writer (a consumer that lost its partitions in a
  rebalance) fails with IntegrityError instead of rewinding a position.
* **The record index.** ``record_index=[(contract_id, "type:id", digest), ...]``
  adds rows to a table keyed by (contract, record id): the ids every accepted
  record used, with its content digest. Ingest looks a batch's ids up there to
  tell a duplicate (same digest) from a conflicting one, so telling them apart
  needs neither memory that grows with the data nor replaying history. The
  primary key makes two writers racing with the same new id collide
  (IntegrityError → retry → the loser sees a duplicate). The index is derived
  from the events (:meth:`Ledger.rebuild_record_index`) and written with them.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier

LOOKUP_CHUNK = 500


class SQLiteLedgerRecorder(SQLiteProcessRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + [
            "CREATE TABLE IF NOT EXISTS record_index (contract_id TEXT NOT NULL, record_key TEXT NOT NULL, "
            "digest TEXT NOT NULL, PRIMARY KEY (contract_id, record_key)) WITHOUT ROWID"
        ]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(c, tracking)
        rows = kwargs.get("record_index")
        if rows:  # a duplicate key raises sqlite3.IntegrityError, which the transaction re-raises as ours
            c.executemany("INSERT INTO record_index VALUES (?, ?, ?)", rows)
        return returning

    def lookup_records(self, contract_id: str, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        found: dict[str, str] = {}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[i:i + LOOKUP_CHUNK]
                c.execute(f"SELECT record_key, digest FROM record_index WHERE contract_id = ? "
                          f"AND record_key IN ({','.join('?' * len(chunk))})", [contract_id, *chunk])
                found.update((row[0], row[1]) for row in c.fetchall())
        return found

    def clear_record_index(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM record_index")


class PostgresLedgerRecorder(PostgresProcessRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.record_index (contract_id text NOT NULL, "
            "record_key text NOT NULL, digest text NOT NULL, PRIMARY KEY (contract_id, record_key))"
        ).format(schema=Identifier(self.datastore.schema)))
        self._insert_index = SQL("INSERT INTO {schema}.record_index VALUES (%s, %s, %s)").format(
            schema=Identifier(self.datastore.schema))
        self._lookup_index = SQL("SELECT record_key, digest FROM {schema}.record_index "
                                 "WHERE contract_id = %s AND record_key = ANY(%s)").format(
            schema=Identifier(self.datastore.schema))
        self._clear_index = SQL("DELETE FROM {schema}.record_index").format(schema=Identifier(self.datastore.schema))

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(curs, tracking)
        rows = kwargs.get("record_index")
        if rows:
            curs.executemany(self._insert_index, rows)
        super()._insert_events(curs, stored_events, **kwargs)

    def lookup_records(self, contract_id: str, keys: Iterable[str]) -> dict[str, str]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._lookup_index, (contract_id, list(keys)))
            return {row["record_key"]: row["digest"] for row in curs.fetchall()}

    def clear_record_index(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._clear_index)
