"""Kafka transactions as the consumer applies them, whatever the broker reports.

A transactional producer (``transactional.id``) writes its records, then a *control
batch* (a commit or abort marker) that takes an offset of its own. A read-committed
consumer must skip the records of aborted transactions and the markers. kafka-python
does so from the ``aborted_transactions`` list of each Fetch response; the Tansu
broker used in tests sends that list empty (while it does bound read-committed fetches
by the last stable offset), so aborted records would be applied. The consumer
therefore decides itself: every Fetch response's record batches are scanned (headers
only, and the one record of each control batch) for transactional batches and
markers, and a record of a transactional batch is applied only once the first marker
of its producer after it is seen — skipped if that marker is an abort, held (with
everything behind it on that partition) while there is none yet. On a broker that
does report aborted transactions kafka-python drops those records first; the scan
reaches the same verdicts.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

from kafka import TopicPartition
from kafka.record import MemoryRecords

log = logging.getLogger("obc_ledger.consumer")

APPLY, SKIP, WAIT = "apply", "skip", "wait"


class _Partition:
    __slots__ = ("bases", "batches", "markers")

    def __init__(self) -> None:
        self.bases: list[int] = []  # sorted base offsets of transactional data batches
        self.batches: dict[int, tuple[int, int]] = {}  # base offset -> (last offset, producer id)
        self.markers: dict[int, list[tuple[int, bool]]] = {}  # producer id -> sorted [(offset, aborted)]


class Transactions:
    """What the Fetch responses said about transactions, per partition (main thread only)."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}
        self.last_stable: dict[
            TopicPartition, int
        ] = {}  # from the last Fetch response, when the broker sent one

    def install(self, consumer: Any) -> bool:
        """Scan every Fetch response ``consumer`` parses; False if kafka-python's internals differ."""
        fetcher = getattr(consumer, "_fetcher", None)
        parse = getattr(fetcher, "_parse_fetched_data", None)
        if fetcher is None or parse is None:
            log.warning(
                "cannot see kafka-python's Fetch responses: records of aborted transactions are "
                "skipped only if the broker reports them"
            )
            return False

        def scanning(completed_fetch: Any) -> Any:
            self.scan(completed_fetch.topic_partition, completed_fetch.partition_data)
            return parse(completed_fetch)

        fetcher._parse_fetched_data = scanning
        return True

    def scan(self, tp: TopicPartition, data: Any) -> None:
        stable = getattr(data, "last_stable_offset", -1)
        if stable is not None and stable >= 0:
            self.last_stable[tp] = stable
        raw = getattr(data, "records", None)
        if not raw:
            return
        records = MemoryRecords(raw)
        batch = records.next_batch()
        while batch is not None:
            if batch.magic == 2 and batch.is_transactional:
                self._note(tp, batch)
            batch = records.next_batch()

    def _note(self, tp: TopicPartition, batch: Any) -> None:
        part = self._parts.setdefault(tp, _Partition())
        pid = batch.producer_id
        if batch.is_control_batch:
            control = next(iter(batch), None)
            if control is None:
                return
            marks = part.markers.setdefault(pid, [])
            entry = (batch.base_offset, bool(control.abort))
            at = bisect.bisect_left(marks, entry)
            if at == len(marks) or marks[at][0] != batch.base_offset:
                marks.insert(at, entry)
        elif batch.base_offset not in part.batches:
            part.batches[batch.base_offset] = (batch.last_offset, pid)
            bisect.insort(part.bases, batch.base_offset)

    def verdict(self, tp: TopicPartition, offset: int) -> str:
        """APPLY (not transactional, or committed), SKIP (aborted) or WAIT (no marker yet)."""
        part = self._parts.get(tp)
        if part is None or not part.bases:
            return APPLY
        at = bisect.bisect_right(part.bases, offset) - 1
        if at < 0:
            return APPLY
        last, pid = part.batches[part.bases[at]]
        if offset > last:
            return APPLY
        marks = part.markers.get(pid, [])
        found = bisect.bisect_right(marks, (offset, True))
        if found == len(marks):
            return WAIT
        return SKIP if marks[found][1] else APPLY

    def prune(self, tp: TopicPartition, saved: int) -> None:
        """Forget what no record after offset ``saved`` can need."""
        part = self._parts.get(tp)
        if part is None:
            return
        if part.bases and part.batches[part.bases[0]][0] <= saved:
            part.batches = {base: v for base, v in part.batches.items() if v[0] > saved}
            part.bases = sorted(part.batches)
        for pid, marks in list(part.markers.items()):
            marks[:] = [m for m in marks if m[0] > saved]
            if not marks:
                del part.markers[pid]

    def forget(self, tp: TopicPartition) -> None:
        self._parts.pop(tp, None)
        self.last_stable.pop(tp, None)
