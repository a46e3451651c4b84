"""Event-store recorders that also record several positions in the same transaction.

A Kafka consumer batch spans partitions; its effect is durable exactly once when
the events it produced and every (topic, partition) offset it consumed are
written in one transaction. The library's process recorders take one
``tracking`` record; these take ``trackings=[Tracking(...), ...]`` too, and
record them even when a batch produced no events (all duplicates).
Single-row tracking only moves forward, so a stale writer (e.g. a consumer that
lost its partitions in a rebalance) fails with IntegrityError instead of
rewinding a position.
"""

from __future__ import annotations

from typing import Any, Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder


class SQLiteLedgerRecorder(SQLiteProcessRecorder):
    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(c, tracking)
        return returning


class PostgresLedgerRecorder(PostgresProcessRecorder):
    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        for tracking in kwargs.get("trackings") or ():
            self._insert_tracking(curs, tracking)
        super()._insert_events(curs, stored_events, **kwargs)
