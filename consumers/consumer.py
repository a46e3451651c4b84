"""Kafka → ledger with an exactly-once effect: ``obc-ledger consume``.

A batch (up to ``batch`` records over the partitions this process owns) is decoded
and applied to the ledger in memory; its dead letters are sent and acknowledged;
then the batch's events, rejected records, and the last offset of every partition
it read (``Tracking("kafka:topic:partition", offset)``) plus each partition's last
DLQ offset are saved in ONE database transaction. Kafka's committed offsets are not
used: on (re)assignment a partition is paused in the rebalance listener (which must
not block), and the main thread seeks it to the stored offset + 1, reads back its
DLQ tail, then resumes it. A crash anywhere loses at most the batch in flight and
duplicates nothing. Tracked positions only move forward, so a consumer that lost a
partition to another during a rebalance fails its save with ``IntegrityError``; it
then drops its cached state and re-seeks from the stored positions.

``until_idle``: the process exits only when (1) no record has arrived for that long
since the last batch was *saved* (a batch's processing time is not idle time), (2) no
rebalance is under way or about to start (one often begins inside the very poll that
came back empty), and (3) on every partition it owns the consumer's position has reached
the last stable offset of its last Fetch response (the high watermark when the broker sends
none; the Tansu broker's ListOffsets is wrong, Fetch's is right) and no record waits for its
transaction's marker. Positions, not the last saved offset: a transaction's commit or abort
marker takes an offset, so the last record need not sit at the high watermark - 1. So a member
never leaves records behind on partitions it owns, and a member that is mid-rebalance stays to
take over the partitions of one that left.

Transactions: the consumer reads committed data (``isolation_level="read_committed"``) and
skips aborted records and markers itself (consumers/transactions.py): neither is counted as
consumed; ``aborted_skipped`` counts the records of aborted transactions.

Ordering: a contract's corrections are ordered only within one partition, so records of one
contract arriving on two partitions (a producer keyed otherwise, or hashing the key with
another partitioner) are logged as a warning and listed in ``contracts_on_several_partitions``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import IllegalStateError, KafkaError, UnsupportedCodecError

from ledger.adapters.gcpace import bulk_pace
from ledger.domain.errors import LedgerError
from ledger.domain.ids import printable
from ledger.domain.records import Refusal, as_sent_back
from ledger.usecases.ingest import IngestSession, storage_failure, unprocessable

from .codec import FIXED_IDS, Codec, SerializationError, record_text
from .dead_letters import DeadLetter, DeadLetters, dlq_topic, dlq_tracking_name, raw_bytes_text
from .kafka import TAIL_TIMEOUT_S, StreamError, ensure_topic, high_watermarks, producer
from .signatures import with_signature
from .transactions import SKIP, WAIT, Transactions

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger

DEFAULT_TOPIC = "ledger.records"
DEFAULT_GROUP = "obc-ledger"
DEFAULT_BATCH = 2000
DEFAULT_SESSION_TIMEOUT_MS = 10_000
BATCH_WAIT_S = 0.5  # longest wait to fill a batch once records are flowing
STALL_S = 60.0  # --until-idle: give up (with an error) if owned records stop arriving for this long
JOIN_GRACE_S = 30.0  # --until-idle: beyond two sessions, how long a first group join may take
JOIN_CHECK_S = 15.0  # a group join lasting longer: read the ends of the partitions last owned, this often
JOIN_CHECK_TIMEOUT_S = 5.0  # how long one such read may take (a broker still down: try again later)
PROGRESS_S = 30.0  # --log-level info: the running counts at most this often
MAX_MESSAGE_BYTES = 1024 * 1024  # a longer message value is dead-lettered unread (message_too_large)

log = logging.getLogger("obc_ledger.consumer")


def tracking_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def tracked_position(app: Any, name: str) -> int | None:
    """The last position saved under ``name`` with the ledger's events (None: nothing yet).

    The ledger's recorders are process recorders (events and tracking records in one
    transaction, ledger/adapters/store.py); any other store cannot consume exactly once."""
    recorder = app.recorder
    if not isinstance(recorder, TrackingRecorder):
        raise LedgerError(
            f"the ledger's store ({type(recorder).__name__}) keeps no tracking records",
            code="unsupported_store",
        )
    return recorder.max_tracking_id(name)


def records_saved(app: Any, topic: str, partition: int) -> int:
    """How many of a partition's offsets the ledger has applied: its tracked offset + 1 (0 when none).
    Offset 0 is a position like any other (``max_tracking_id(...) or -1`` miscounted it as none)."""
    position = tracked_position(app, tracking_name(topic, partition))
    return 0 if position is None else position + 1


ASSIGNED = re.compile(r"assigned (?P<partitions>.*)$")


def assignment_text(assigned: Iterable[TopicPartition]) -> str:
    """``ledger.records:0,3 other:1`` — what a consumer logs after each assignment."""
    by_topic: dict[str, list[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}:{','.join(map(str, sorted(ps)))}" for t, ps in sorted(by_topic.items()))


def parse_assignment(log_text: str) -> dict[str, list[int]] | None:
    """The partitions of the last assignment logged in LOG_TEXT (None if none was logged)."""
    last = None
    for line in log_text.splitlines():
        found = ASSIGNED.search(line)
        if found and "obc_ledger.consumer" in line:
            last = found["partitions"].strip()
    if last is None:
        return None
    if last == "no partitions":
        return {}
    out: dict[str, list[int]] = {}
    for part in last.split():
        topic, _, numbers = part.rpartition(":")
        out[topic] = [int(n) for n in numbers.split(",") if n]
    return out


@dataclass
class ConsumeReport:
    consumed: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letters_already_sent: int = 0  # found in the DLQ, sent by a run that crashed before its commit
    corrections: int = 0
    aborted_skipped: int = 0  # records of aborted transactions: read, never applied nor counted as consumed
    batches: int = 0
    rebalances: int = 0
    retried_batches: int = 0  # discarded after a rebalance or a stale-position conflict, then re-read
    by_code: Counter[str] = field(default_factory=Counter)
    by_partition: Counter[str] = field(default_factory=Counter)
    late: Counter[tuple[str, int]] = field(default_factory=Counter)
    several_partitions: dict[str, list[str]] = field(default_factory=dict)  # contract -> "topic:partition"s
    seconds: float = 0.0  # float-ok: seconds, not money
    # from the first record polled to the last commit (no join, no idle wait)
    processing_seconds: float = 0.0  # float-ok: seconds, not money

    @property
    def reconciles(self) -> bool:
        return self.consumed == self.accepted + self.duplicates + self.dead_lettered

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "reconciles": self.reconciles,
            "dead_letters_already_sent": self.dead_letters_already_sent,
            "corrections": self.corrections,
            "aborted_skipped": self.aborted_skipped,
            "contracts_on_several_partitions": {
                c: sorted(ps) for c, ps in sorted(self.several_partitions.items())
            },
            "dead_lettered_by_reason": dict(sorted(self.by_code.items())),
            "consumed_by_partition": dict(sorted(self.by_partition.items())),
            "late_for_closed_years": [
                {"contract_id": c, "year": y, "records": n} for (c, y), n in sorted(self.late.items())
            ],
            "batches": self.batches,
            "rebalances": self.rebalances,
            "retried_batches": self.retried_batches,
            "seconds": round(self.seconds, 3),
            "processing_seconds": round(self.processing_seconds, 3),
        }


class _Listener(ConsumerRebalanceListener):
    """Runs on kafka-python's I/O thread: must not block, so it only pauses and flags."""

    def __init__(self, owner: LedgerConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.owner._join_begins()

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        # Evicted from the group (e.g. a missed rebalance): a join follows, as after a revocation.
        self.owner._join_begins()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        if assigned:
            self.owner._consumer.pause(*assigned)
        with self.owner._lock:
            self.owner._generation += 1
            self.owner._joined += 1
            self.owner._joining = False
            self.owner._joining_since = None
            self.owner._pending.update(assigned)


class _Abandon(Exception):
    """The batch must not be committed (a rebalance happened while it was applied)."""


class LedgerConsumer:
    def __init__(
        self,
        app: Ledger,
        bootstrap: str,
        topics: list[str] | None = None,
        group: str = DEFAULT_GROUP,
        batch: int = DEFAULT_BATCH,
        until_idle: float | None = None,  # float-ok: seconds
        actor: str = "system",
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        on_batch: Callable[[ConsumeReport], None] | None = None,
        create_topics: bool = False,
        codec: Codec = FIXED_IDS,
    ) -> None:
        self.app = app
        self.codec = codec  # the schema ids on the wire (fixed, or a registry's): from the wiring
        self.create_topics = create_topics  # create a missing records topic (its .dlq is created anyway)
        self.bootstrap = bootstrap
        self.topics = list(topics or [DEFAULT_TOPIC])
        self.group = group
        self.batch = max(1, batch)
        self.until_idle = until_idle
        self.actor = actor
        self.session_timeout_ms = session_timeout_ms
        self.on_batch = on_batch
        self.report = ConsumeReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._joined = 0  # group assignments completed (the idle clock starts at the first)
        self._joining = False  # between a revocation and the next assignment
        self._joining_since: float | None = None  # float-ok: time.monotonic() the join began
        self._ends_read_at = 0.0  # float-ok: time.monotonic() of the last read of the ends during a join
        self._pending: set[TopicPartition] = set()
        self._committed: dict[TopicPartition, int] = {}  # last offset stored in the ledger
        self._transactions = Transactions()
        self._held: dict[TopicPartition, list[Any]] = {}  # polled, waiting for their transaction's marker
        self._partition_of: dict[
            str, tuple[str, int]
        ] = {}  # contract id -> the partition its records came on
        self._consumer: KafkaConsumer = None  # type: ignore[assignment]
        self._progress_at = time.monotonic()

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, save it and return (signal-safe)."""
        self._stop.set()

    def _log_progress(self) -> None:
        """At most every PROGRESS_S, at info: the running counts (a long-lived worker's heartbeat)."""
        now = time.monotonic()
        if now - self._progress_at < PROGRESS_S or not log.isEnabledFor(logging.INFO):
            return
        self._progress_at = now
        r = self.report
        log.info(
            "consumed %d: accepted %d, duplicates %d, dead-lettered %d (%d batches, %d rebalances)",
            r.consumed,
            r.accepted,
            r.duplicates,
            r.dead_lettered,
            r.batches,
            r.rebalances,
        )

    # ------------------------------------------------------------------ setup

    def _open(self) -> None:
        dlq_partitions = {}
        for topic in self.topics:
            partitions = ensure_topic(self.bootstrap, topic, create=self.create_topics)
            dlq_partitions[topic] = ensure_topic(self.bootstrap, dlq_topic(topic), partitions)
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                client_id=f"obc-ledger-{self.group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.batch,
                isolation_level="read_committed",
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=max(100, min(3000, self.session_timeout_ms // 3)),
                bootstrap_timeout_ms=10_000,
            )
        except KafkaError as exc:
            raise StreamError(
                f"cannot reach the Kafka broker at {self.bootstrap}: {exc}", code="broker_unavailable"
            ) from None
        self._transactions.install(self._consumer)
        self._producer = producer(self.bootstrap, linger_ms=0)
        self.dead_letters = DeadLetters(self.bootstrap, self._producer, dlq_partitions, self.codec)
        self.session = IngestSession(self.app, source="kafka", actor=self.actor)
        self._consumer.subscribe(self.topics, listener=_Listener(self))

    def _close(self) -> None:
        # Leaving a group in the middle of a join wedges the group on the Tansu broker (later
        # members never complete SyncGroup): let a join in progress finish first.
        deadline = time.monotonic() + self.session_timeout_ms / 1000 + 10
        while self._joining and time.monotonic() < deadline:
            self._consumer.poll(timeout_ms=100)  # records fetched now are not applied: re-read next time
        try:
            self._consumer.close(autocommit=False)
        finally:
            self._producer.close(timeout=10)

    # --------------------------------------------------------------- positions

    def _stored(self, name: str) -> int | None:
        return tracked_position(self.app, name)

    def _recover(self, tps: Iterable[TopicPartition]) -> None:
        """Seek to the stored offset + 1 and read back the DLQ tail (main thread only).

        A partition that ends below its stored offset + 1 (the topic was re-created or
        truncated) stops the consumer with ``records_behind_ledger``: seeking there would
        silently skip the new topic's first records.
        """
        tps = list(tps)
        positions = {tp: self._stored(tracking_name(tp.topic, tp.partition)) for tp in tps}
        self._check_ends({tp: stored for tp, stored in positions.items() if stored is not None})
        for tp in tps:
            self._held.pop(tp, None)
            self._transactions.forget(tp)
            stored = positions[tp]
            if stored is None:
                self._consumer.seek_to_beginning(tp)
                self._committed[tp] = -1
            else:
                self._consumer.seek(tp, stored + 1)
                self._committed[tp] = stored
            self.dead_letters.recover(
                tp.topic, tp.partition, stored, self._stored(dlq_tracking_name(tp.topic, tp.partition))
            )

    def _check_ends(
        self,
        stored: dict[TopicPartition, int],
        timeout_s: float = TAIL_TIMEOUT_S,  # float-ok: seconds
    ) -> None:
        ends = high_watermarks(self.bootstrap, stored, timeout_s)
        behind = sorted((tp, ends[tp], offset) for tp, offset in stored.items() if ends[tp] < offset + 1)
        if behind:
            where = ", ".join(
                f"{tp.topic}[{tp.partition}] ends at offset {end} but the ledger applied it up to "
                f"offset {offset}"
                for tp, end, offset in behind
            )
            raise StreamError(
                f"{where}: the topic was re-created or truncated and its records would be skipped; "
                f"stopped (deploy/README.md: a topic re-created)",
                code="records_behind_ledger",
            )

    def _check_positions(self) -> None:
        """Stop if a partition's last Fetch reported an end below the stored position (the topic was
        re-created under a running consumer), once a fresh Fetch confirms it."""
        behind = {}
        for tp, stored in self._committed.items():
            try:
                high = self._consumer.highwater(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            if high is not None and high < stored + 1:
                behind[tp] = stored
        if behind:
            self._check_ends(behind)

    def _join_begins(self) -> None:
        """A revocation or a loss (kafka-python's I/O thread): a group join follows."""
        with self._lock:
            self._generation += 1
            self._joining = True
            if self._joining_since is None:
                self._joining_since = time.monotonic()

    def _check_while_joining(self) -> None:
        """Stop with ``records_behind_ledger`` if, during a join that lasts (a broker restarted empty
        whose group will not form, a wedged coordinator), the partitions last owned end below the
        ledger's position: reading them needs no group, so a join that never completes cannot hide a
        re-created topic. Every JOIN_CHECK_S of a join; an unreachable broker is only logged."""
        with self._lock:
            since = self._joining_since
        now = time.monotonic()
        if since is None or now - since < JOIN_CHECK_S or now - self._ends_read_at < JOIN_CHECK_S:
            return
        self._ends_read_at = now
        owned = {tp: stored for tp, stored in self._committed.items() if stored >= 0}
        log.info(
            "the group join has lasted %.0f s: reading the ends of %d partition(s)", now - since, len(owned)
        )
        try:
            self._check_ends(owned, timeout_s=JOIN_CHECK_TIMEOUT_S)
        except (StreamError, KafkaError) as exc:  # KafkaTimeoutError: the client could not bootstrap
            if isinstance(exc, StreamError) and exc.code != "broker_unavailable":
                raise
            log.info("could not read the ends during the join (%s): reading them again later", exc)

    def _take_pending(self) -> bool:
        with self._lock:
            pending, self._pending = self._pending, set()
        if not pending:
            return False
        assigned = self._consumer.assignment()
        for tp in list(self._committed):
            if tp not in assigned:
                del self._committed[tp]
                self._held.pop(tp, None)
                self._transactions.forget(tp)
                self.dead_letters.forget(tp.topic, tp.partition)
        ready = [tp for tp in pending if tp in assigned]
        self._recover(ready)
        if ready:
            self._consumer.resume(*ready)
        self.report.rebalances += 1
        log.info("assigned %s", assignment_text(assigned) or "no partitions")
        return True

    def _resync(self) -> None:
        """Drop cached state and re-read every owned partition from its stored position."""
        self.session.reset()
        self.report.retried_batches += 1
        self._recover([tp for tp in self._consumer.assignment() if tp in self._committed])

    # ------------------------------------------------------------------- idle

    def _rebalancing(self) -> bool:
        """A rebalance is under way or about to start (the heartbeat saw one, the next poll joins)."""
        with self._lock:
            if self._joining or self._pending:
                return True
        coordinator = getattr(self._consumer, "_coordinator", None)  # kafka-python internals, if present
        try:
            return bool(coordinator is not None and coordinator.need_rejoin())
        except Exception:
            return False

    def _unfinished(self) -> dict[TopicPartition, tuple[int | None, int | None, int | None, int]]:
        """Owned partitions not read to their end: tp -> (stored offset, position, end, records held).

        The end is the last stable offset of the last Fetch response for the partition (its
        high watermark when the broker sent none; None until a fetch returned). The position,
        not the last stored offset, is compared with it: a transaction marker takes an offset
        and is never a record, so the last record of a partition may sit anywhere below the end.
        A record held for its transaction's marker is not finished either.
        """
        left: dict[TopicPartition, tuple[int | None, int | None, int | None, int]] = {}
        for tp in self._consumer.assignment():
            stored = self._committed.get(tp)
            held = len(self._held.get(tp, ()))
            try:
                end = self._transactions.last_stable.get(tp, self._consumer.highwater(tp))
                position = self._consumer.position(tp, timeout_ms=1000) if end is not None else None
            except IllegalStateError:  # revoked meanwhile: a rebalance is under way
                end = position = None
            nothing_saved = stored is not None and stored < 0 and end is not None and end > 0
            if stored is None or end is None or position is None or position < end or held or nothing_saved:
                left[tp] = (stored, position, end, held)
        return left

    def _may_exit_idle(self, idle_since: float) -> bool:  # float-ok: seconds, not money
        assert self.until_idle is not None
        now = time.monotonic()
        if now - idle_since < self.until_idle or self._rebalancing():
            return False
        left = self._unfinished()
        if not left:
            return True
        if now - idle_since > self.until_idle + max(STALL_S, 2 * self.session_timeout_ms / 1000):
            where = ", ".join(
                f"{tp.topic}[{tp.partition}] saved up to {stored}, position {position}, last stable "
                f"offset {end}"
                + (f", {held} record(s) waiting for their transaction's marker" if held else "")
                for tp, (stored, position, end, held) in sorted(left.items())
            )
            raise StreamError(
                f"no record arrived for {now - idle_since:.0f} s but records remain on "
                f"partitions this consumer owns: {where}",
                code="consume_stalled",
            )
        return False

    # -------------------------------------------------------------------- loop

    def _poll_batch(self) -> tuple[list[Any], dict[TopicPartition, tuple[int, int]]]:
        """(records to apply, tp -> (aborted records skipped, offset of the last)) of one batch."""
        records: list[Any] = []
        skipped: dict[TopicPartition, tuple[int, int]] = {}
        deadline = time.monotonic() + BATCH_WAIT_S
        while len(records) < self.batch and not self._stop.is_set():
            with self._lock:
                if self._pending:
                    break
            try:
                polled = self._consumer.poll(timeout_ms=100, max_records=self.batch - len(records))
            except UnsupportedCodecError as exc:  # nothing of this batch is saved: a restart reads it again
                raise StreamError(
                    f"a record batch is compressed with a codec this installation cannot decode "
                    f"({exc}); install obc-ledger with its dependencies "
                    f"(kafka-python[lz4,snappy,zstd])",
                    code="unsupported_codec",
                ) from None
            got = 0
            for tp in set(polled) | {tp for tp, held in self._held.items() if held}:
                committed = self._committed.get(tp)
                if committed is None:  # not (yet) recovered here: it will be re-read after its seek
                    dropped = polled.get(tp)
                    if (
                        dropped
                    ):  # never let the position run past records not applied (the idle check reads it)
                        # revoked meanwhile: whoever owns it next starts from the ledger's position
                        with contextlib.suppress(IllegalStateError, AssertionError, KeyError):
                            self._consumer.seek(tp, dropped[0].offset)
                    continue
                fresh = self._committed_only(
                    tp, [r for r in polled.get(tp, ()) if r.offset > committed], skipped
                )
                records.extend(fresh)
                got += len(fresh)
            if not got or time.monotonic() > deadline:
                break
        return records, skipped

    def _committed_only(
        self, tp: TopicPartition, fresh: list[Any], skipped: dict[TopicPartition, tuple[int, int]]
    ) -> list[Any]:
        """The records of ``fresh`` (and those held before) whose transaction, if any, committed.

        Records of aborted transactions are dropped (counted in ``skipped``); from the first
        record whose transaction has no marker yet, all are held, so offsets stay in order.
        """
        queue = self._held.pop(tp, []) + fresh
        out: list[Any] = []
        for i, r in enumerate(queue):
            verdict = self._transactions.verdict(tp, r.offset)
            if verdict == WAIT:
                self._held[tp] = queue[i:]
                break
            if verdict == SKIP:
                count, _ = skipped.get(tp, (0, -1))
                skipped[tp] = (count + 1, r.offset)
            else:
                out.append(r)
        return out

    def _apply(self, records: list[Any]) -> tuple[list[DeadLetter], dict[TopicPartition, int], Counter[str]]:
        session = self.session
        letters: list[DeadLetter] = []
        last: dict[TopicPartition, int] = {}
        per_partition: Counter[str] = Counter()
        decoded: list[tuple[Any, dict[str, Any]]] = []
        for r in records:
            last[TopicPartition(r.topic, r.partition)] = r.offset
            per_partition[f"{r.topic}:{r.partition}"] += 1
            try:
                if r.value is not None and len(r.value) > MAX_MESSAGE_BYTES:
                    raise SerializationError(
                        "message_too_large",
                        f"{len(r.value):,} bytes: longer than {MAX_MESSAGE_BYTES:,}, not read",
                    )
                decoded.append((r, with_signature(self.codec.decode_record(r.value), r.headers)))
                self._note_partition(decoded[-1][1].get("contract_id"), r.topic, r.partition)
            except SerializationError as exc:
                session.reject(
                    Refusal(exc.code, None, exc.message),
                    raw_bytes_text(r.value),
                    r.offset,
                    f"kafka:{r.topic}:{r.partition}",
                )
                letters.append(
                    DeadLetter(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        exc.code,
                        None,
                        exc.message,
                        schema_id=exc.schema_id,
                    )
                )
        outcomes = session.apply_many([(None, obj, r.offset) for r, obj in decoded], raws=[""] * len(decoded))
        for (r, obj), outcome in zip(decoded, outcomes, strict=True):  # one outcome per record
            rejected = outcome.rejected
            if rejected is None:
                continue
            rejected.raw = record_text(obj)
            if (
                len(rejected.raw) > MAX_MESSAGE_BYTES
            ):  # cannot happen for a message read: a decoder's surprise
                rejected.raw = raw_bytes_text(r.value)
            rejected.source = f"kafka:{r.topic}:{r.partition}"
            refusal = as_sent_back(rejected.refusal)  # the dead letter is the sender's to read
            letters.append(
                DeadLetter(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value,
                    refusal.code,
                    refusal.field,
                    refusal.message,
                    schema_id=int.from_bytes(r.value[1:5], "big"),
                    record_type=obj.get("type"),
                    record_id=rejected.record_id,
                    contract_id=rejected.contract_id,
                )
            )
        letters.sort(key=lambda d: (d.topic, d.partition, d.offset))
        return letters, last, per_partition

    def _note_partition(self, contract_id: Any, topic: str, partition: int) -> None:
        """Warn (once per contract and partition) when one contract's records arrive on two partitions."""
        if not isinstance(contract_id, str):
            return
        first = self._partition_of.setdefault(contract_id, (topic, partition))
        if first == (topic, partition):
            return
        seen = self.report.several_partitions.setdefault(contract_id, [f"{first[0]}:{first[1]}"])
        if f"{topic}:{partition}" not in seen:
            seen.append(f"{topic}:{partition}")
            log.warning(
                "contract %s: records on partitions %s — its corrections may be applied out of order; "
                "key every record by contract id with the murmur2 partitioner (README, 'Sending records "
                "from your own client')",
                contract_id,
                ", ".join(seen),
            )

    def _process(
        self, records: list[Any], skipped: dict[TopicPartition, tuple[int, int]] | None = None
    ) -> None:
        """Apply, dead-letter and save ``records``. A failure the data may cause (not an outage, a
        rebalance or a stale position) splits them in halves, each saved with the largest offset
        of every partition it covers, until the one record at fault is dead-lettered ``unprocessable``."""
        try:
            self._save(records, skipped=skipped)
        except (_Abandon, IntegrityError):
            raise
        except Exception as exc:
            self.session.reset()
            if _outage(exc):
                raise
            if len(records) <= 1:
                if (
                    not records
                ):  # only aborted records' offsets to save, and that failed: not the data's doing
                    raise
                self._save(records, failed=exc, skipped=skipped)
                return
            log.warning(
                "a batch of %d records failed (%s): split to isolate the record at fault",
                len(records),
                printable(" ".join(f"{type(exc).__name__}: {exc}".split())[:200]),
            )
            half = len(records) // 2
            self._process(records[:half])
            self._process(records[half:], skipped)  # skipped offsets lie past the batch: saved with its end

    def _unprocessable(
        self, r: Any, exc: BaseException
    ) -> tuple[list[DeadLetter], dict[TopicPartition, int], Counter[str]]:
        """One record whose processing failed for no reason a check names: its dead letter and refusal."""
        refusal = unprocessable(exc)
        refusal = Refusal(
            refusal.code, None, printable(refusal.message)
        )  # an exception's text may be anything
        source = f"kafka:{r.topic}:{r.partition}"
        self.session.reject(refusal, raw_bytes_text(r.value), r.offset, source)
        letter = DeadLetter(
            r.topic,
            r.partition,
            r.offset,
            r.key,
            r.value,
            refusal.code,
            None,
            refusal.message,
            schema_id=int.from_bytes(r.value[1:5], "big") if r.value and len(r.value) >= 5 else None,
        )
        return (
            [letter],
            {TopicPartition(r.topic, r.partition): r.offset},
            Counter({f"{r.topic}:{r.partition}": 1}),
        )

    def _save(
        self,
        records: list[Any],
        failed: BaseException | None = None,
        skipped: dict[TopicPartition, tuple[int, int]] | None = None,
    ) -> None:
        generation = self._generation
        if failed is None:
            letters, last, per_partition = self._apply(records)
        else:
            letters, last, per_partition = self._unprocessable(records[0], failed)
        for tp, (_, offset) in (skipped or {}).items():  # the tracked offset moves past skipped records too
            last[tp] = max(offset, last.get(tp, -1))
        if self._generation != generation:
            raise _Abandon()
        dlq_last, found = self.dead_letters.send(letters)
        if self._generation != generation:
            raise _Abandon()
        trackings = [Tracking(tracking_name(tp.topic, tp.partition), offset) for tp, offset in last.items()]
        trackings += [
            Tracking(dlq_tracking_name(topic, partition), offset)
            for (topic, partition), offset in dlq_last.items()
        ]
        result = self.session.flush(trackings=trackings)
        for tp, offset in last.items():
            self._committed[tp] = offset
            self.dead_letters.committed(tp.topic, tp.partition, offset)
            self._transactions.prune(tp, offset)
        rep = self.report
        rep.consumed += len(records)
        rep.aborted_skipped += sum(count for count, _ in (skipped or {}).values())
        rep.accepted += result.accepted
        rep.duplicates += result.duplicates
        rep.dead_lettered += len(letters)
        rep.dead_letters_already_sent += found
        rep.corrections += result.corrections
        rep.by_code.update(letter.code for letter in letters)
        rep.by_partition.update(per_partition)
        rep.late.update(result.late)
        rep.batches += 1

    def run(self) -> ConsumeReport:
        started = time.monotonic()
        restore = install_stop_handlers(self.stop)
        self._open()
        try:
            last_activity = time.monotonic()
            joined = 0
            first_record: float | None = None  # float-ok: seconds, not money
            join_deadline = last_activity + 2 * self.session_timeout_ms / 1000 + JOIN_GRACE_S
            while not self._stop.is_set():
                if self._take_pending() or joined != self._joined or self._rebalancing():
                    joined = self._joined  # the idle clock stops while the group rebalances
                    last_activity = time.monotonic()
                self._check_positions()
                self._check_while_joining()
                polled_at = time.monotonic()
                records, skipped = self._poll_batch()
                if not records and not skipped:
                    if self.until_idle is not None:
                        if joined:
                            # a rebalance that began inside this poll (revoked, nothing returned) is
                            # not idleness: _may_exit_idle checks, and the next turn restarts the clock
                            if joined == self._joined and self._may_exit_idle(last_activity):
                                break
                        elif time.monotonic() > join_deadline + self.until_idle:
                            # never assigned (not even "no partitions"): exiting as idle would report
                            # a drained topic that was never read
                            raise StreamError(
                                f"the consumer group {self.group!r} completed no join within "
                                f"{time.monotonic() - started:.0f} s, so nothing was read (a member "
                                f"killed during a join can hold a group until the broker expires it); "
                                f"run consume again",
                                code="group_join_timeout",
                            )
                    continue
                if first_record is None:
                    first_record = polled_at
                try:
                    with bulk_pace():  # the collector's bulk pace (ledger.adapters.gcpace)
                        self._process(records, skipped)
                except (_Abandon, IntegrityError):
                    self._resync()
                    continue
                finally:
                    last_activity = time.monotonic()  # idle time starts once the batch is saved, not polled
                self.report.processing_seconds = time.monotonic() - first_record
                self._log_progress()
                if self.on_batch is not None:
                    self.on_batch(self.report)
        finally:
            self.report.seconds = time.monotonic() - started
            try:
                self._close()
            finally:
                restore()
        return self.report


def _outage(exc: BaseException) -> bool:
    """A failure of the storage, the broker or the registry: the batch is not split but stopped and retried."""
    return (
        storage_failure(exc)
        or isinstance(exc, (StreamError, KafkaError))
        or (isinstance(exc, LedgerError) and exc.code == "registry_unavailable")
    )


def install_stop_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM/SIGINT finish the batch in hand, save it, leave the group and return."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
