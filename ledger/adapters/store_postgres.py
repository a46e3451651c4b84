"""The PostgreSQL recorder: :mod:`ledger.adapters.store`'s additions (tracked positions, seals, the
record index, checks under the write lock) on ``eventsourcing.postgres``.

A module of its own so that a SQLite ledger never imports psycopg or ``eventsourcing.postgres``
(about 0.4 s of every CLI command); the wiring names it by topic (:mod:`ledger.adapters.config`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg.sql import SQL, Identifier, Literal

from ledger.adapters.audit import GENESIS, seal_rows, stream_text
from ledger.adapters.store import CLOSED_TOPIC, _SealedIdsOnly, _stale


class PostgresLedgerRecorder(_SealedIdsOnly, PostgresProcessRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # as on SQLite: a row at an id ≤ 0 (stored before the CHECK below existed) is never applied
        self.select_events_statement += SQL(" AND notification_id > 0")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.record_index (contract_id text NOT NULL, "
                "record_key text NOT NULL, digest text NOT NULL, PRIMARY KEY (contract_id, record_key))"
            ).format(schema=Identifier(self.datastore.schema))
        )
        self._insert_index = SQL("INSERT INTO {schema}.record_index VALUES (%s, %s, %s)").format(
            schema=Identifier(self.datastore.schema)
        )
        self._lookup_index = SQL(
            "SELECT record_key, digest FROM {schema}.record_index "
            "WHERE contract_id = %s AND record_key = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema))
        self._clear_index = SQL("DELETE FROM {schema}.record_index").format(
            schema=Identifier(self.datastore.schema)
        )
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.event_hashes (notification_id bigint PRIMARY KEY, "
                "originator_id text NOT NULL, originator_version bigint NOT NULL, stream_hash text NOT NULL, "
                "global_hash text NOT NULL)"
            ).format(schema=schema)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS event_hashes_stream ON {schema}.event_hashes "
                "(originator_id, notification_id)"
            ).format(schema=schema)
        )
        last_seal = "SELECT notification_id, global_hash FROM {schema}.event_hashes "
        self._last_global = SQL(last_seal + "ORDER BY notification_id DESC LIMIT 1").format(schema=schema)
        self._last_global_upto = SQL(
            last_seal + "WHERE notification_id <= %s ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=schema)
        self._last_stream = SQL(
            "SELECT stream_hash FROM {schema}.event_hashes WHERE originator_id = %s "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=schema)
        self._insert_seal = SQL("INSERT INTO {schema}.event_hashes VALUES (%s, %s, %s, %s, %s)").format(
            schema=schema
        )
        self._max_version = SQL(
            "SELECT MAX(originator_version) AS v FROM {table} WHERE originator_id = %s"
        ).format(table=Identifier(self.datastore.schema, self.events_table_name))
        self._closed = SQL(
            "SELECT 1 AS one FROM {table} WHERE originator_id = %s AND topic = %s LIMIT 1"
        ).format(table=Identifier(self.datastore.schema, self.events_table_name))
        events = Identifier(self.datastore.schema, self.events_table_name)
        # the ledger never gives an id ≤ 0 (the sequence starts at 1): refuse one written behind its back.
        # NOT VALID: enforced for every new row without failing on an existing ledger (verify reports those)
        for table, name in (
            (self.events_table_name, "obc_positive_id"),
            ("event_hashes", "obc_seal_positive_id"),
        ):
            qualified = Identifier(self.datastore.schema, table)
            self.sql_create_statements.append(
                SQL(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = {name_text} "
                    "AND conrelid = {regclass}::regclass) THEN ALTER TABLE {table} ADD CONSTRAINT {name} "
                    "CHECK (notification_id > 0) NOT VALID; END IF; END $$"
                ).format(
                    name_text=Literal(name),
                    regclass=Literal(f'"{self.datastore.schema}"."{table}"'),
                    table=qualified,
                    name=Identifier(name),
                )
            )
        log_columns = "SELECT notification_id, originator_id, originator_version, topic, state FROM {table} "
        self._select_log = SQL(
            log_columns + "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table=events)
        self._select_log_all = SQL(log_columns + "ORDER BY notification_id LIMIT %s").format(table=events)
        seal_columns = (
            "SELECT notification_id, originator_id, originator_version, stream_hash, "
            "global_hash FROM {schema}.event_hashes "
        )
        self._select_seals = SQL(
            seal_columns + "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=schema)
        self._select_seals_all = SQL(seal_columns + "ORDER BY notification_id LIMIT %s").format(schema=schema)
        versions = "SELECT originator_id, COUNT(*) AS n, MAX(originator_version) AS v FROM {table} "
        self._stream_versions = SQL(versions + "GROUP BY originator_id").format(table=events)
        self._stream_versions_upto = SQL(
            versions + "WHERE notification_id <= %s GROUP BY originator_id"
        ).format(table=events)
        self._log_bound = SQL(
            "SELECT MAX(m) AS m FROM (SELECT MAX(notification_id) AS m FROM {table} "
            "UNION ALL SELECT MAX(notification_id) FROM {schema}.event_hashes) AS ids"
        ).format(table=events, schema=schema)
        self._record_index_bounded = SQL(
            "SELECT b.m AS bound, r.contract_id, r.record_key, r.digest FROM ({bound}) AS b "
            "LEFT JOIN {schema}.record_index AS r ON true"
        ).format(bound=self._log_bound, schema=schema)

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self._locked_checks(curs, stored_events, kwargs)
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(curs, tracking)
        rows = kwargs.get("record_index")
        if rows:
            curs.executemany(self._insert_index, rows)
        super()._insert_events(curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if stored_events and ids:  # the events table is locked until commit: the chain has one order
            curs.execute(self._last_global)
            row = curs.fetchone()

            def last_of_stream(oid: str) -> str | None:
                curs.execute(self._last_stream, (oid,))
                found = curs.fetchone()
                return found["stream_hash"] if found else None

            rows = seal_rows(stored_events, ids, row["global_hash"] if row else GENESIS, last_of_stream)
            curs.executemany(self._insert_seal, rows)
        return ids

    def _locked_checks(self, curs: Any, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> None:
        # Made before the insert, under the table lock taken here (the insert takes it again, a no-op):
        # an exception raised after the insert would be swallowed by the base class's pipeline handling
        # and the transaction committed before it is re-raised.
        expect, probe = kwargs.get("expect_versions") or {}, kwargs.get("probe_closed") or ()
        if not stored_events or not (expect or probe):
            return
        self._lock_table(curs)
        for stream_id, expected in expect.items():
            curs.execute(self._max_version, (stream_id,))
            current = curs.fetchone()["v"]
            if (current or 0) != expected:
                raise _stale(stream_id, expected, current)
        found = kwargs.get("closed_found")
        for stream_id in probe:
            curs.execute(self._closed, (stream_id, CLOSED_TOPIC))
            if curs.fetchone() is not None and found is not None:
                found.add(stream_id)

    def select_seals(self, after: int | None, limit: int) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if after is None:  # from the very first, whatever its id
                curs.execute(self._select_seals_all, (limit,))
            else:
                curs.execute(self._select_seals, (after, limit))
            return [
                (
                    r["notification_id"],
                    r["originator_id"],
                    r["originator_version"],
                    r["stream_hash"],
                    r["global_hash"],
                )
                for r in curs.fetchall()
            ]

    def select_log(self, after: int | None, limit: int) -> list[tuple[int, str, int, str, bytes]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if after is None:  # from the very first, whatever its id
                curs.execute(self._select_log_all, (limit,))
            else:
                curs.execute(self._select_log, (after, limit))
            return [
                (
                    r["notification_id"],
                    stream_text(r["originator_id"]),
                    r["originator_version"],
                    r["topic"],
                    bytes(r["state"]),
                )
                for r in curs.fetchall()
            ]

    def log_bound(self) -> int | None:
        """As :meth:`SQLiteLedgerRecorder.log_bound` (ids are given under the events table's lock)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._log_bound)
            row = curs.fetchone()
            return row["m"] if row else None

    def stream_versions(self, upto: int | None = None) -> dict[str, tuple[int, int]]:
        """Every stream's stored rows (up to notification id ``upto``): stream id (32 hex digits) ->
        (row count, highest version), one query."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if upto is None:
                curs.execute(self._stream_versions)
            else:
                curs.execute(self._stream_versions_upto, (upto,))
            return {stream_text(r["originator_id"]): (r["n"], r["v"]) for r in curs.fetchall()}

    def last_seal(self, upto: int | None = None) -> tuple[int, str] | None:
        """The last seal (at or below notification id ``upto``): (notification id, global hash)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if upto is None:
                curs.execute(self._last_global)
            else:
                curs.execute(self._last_global_upto, (upto,))
            row = curs.fetchone()
            return (row["notification_id"], row["global_hash"]) if row else None

    def lookup_records(self, contract_id: str, keys: Iterable[str]) -> dict[str, str]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._lookup_index, (contract_id, list(keys)))
            return {row["record_key"]: row["digest"] for row in curs.fetchall()}

    def clear_record_index(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._clear_index)

    def select_record_index(self) -> tuple[int | None, list[tuple[str, str, str]]]:
        """As :meth:`SQLiteLedgerRecorder.select_record_index`: one statement, one snapshot."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._record_index_bounded)
            rows = curs.fetchall()
            return rows[0]["bound"], [
                (r["contract_id"], r["record_key"], r["digest"]) for r in rows if r["contract_id"] is not None
            ]
