"""Dead letters: what the ledger could not apply, sent to ``<topic>.dlq`` exactly once.

A dead letter is keyed by its original's coordinates, ``topic:partition:offset``,
and goes to DLQ partition ``partition % dlq_partitions`` (the source partition's
owner is its only writer). It is produced and acknowledged *before* the batch's
offsets are committed, and the DLQ offset of the partition's last dead letter is
committed in the same database transaction (tracking ``kafka-dlq:topic:partition``).
So after any crash the DLQ holds, past that committed DLQ offset, only dead letters of
the uncommitted batch; whoever takes the partition over reads that tail first
(:meth:`DeadLetters.recover`) and does not send those again (:meth:`DeadLetters.send`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaProducer, TopicPartition

from .codec import decode, encode
from .kafka import StreamError, read_tail

DEAD_LETTER_SCHEMA_ID = 5
RAW_LIMIT = 64 * 1024


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def coordinates_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}:{partition}:{offset}".encode()


def parse_key(key: bytes | None) -> tuple[str, int, int] | None:
    try:
        topic, partition, offset = (key or b"").decode().rsplit(":", 2)
        return topic, int(partition), int(offset)
    except ValueError:
        return None


def dlq_tracking_name(topic: str, partition: int) -> str:
    return f"kafka-dlq:{topic}:{partition}"


def raw_bytes_text(value: bytes | None) -> str:
    """How undecodable bytes are kept in the ledger's rejected-records store."""
    data = value or b""
    text = base64.b64encode(data[:RAW_LIMIT]).decode()
    more = f" (first {RAW_LIMIT} of {len(data)} bytes)" if len(data) > RAW_LIMIT else ""
    return f"kafka message bytes (base64{more}): {text}"


@dataclass
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    code: str
    field: str | None
    message: str
    schema_id: int | None = None
    record_type: str | None = None
    record_id: str | None = None
    contract_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def encode(self) -> bytes:
        return encode(DEAD_LETTER_SCHEMA_ID, {
            "topic": self.topic, "partition": self.partition, "offset": self.offset, "key": self.key,
            "value": self.value, "code": self.code, "field": self.field, "message": self.message,
            "schema_id": self.schema_id, "record_type": self.record_type, "record_id": self.record_id,
            "contract_id": self.contract_id, "dead_lettered_at": self.at})


def decode_dead_letter(value: bytes) -> dict[str, Any]:
    _, letter = decode(value, ("dead_letter",))
    return letter


class DeadLetters:
    """Sends dead letters for the partitions this consumer owns, without repeating any."""

    def __init__(self, bootstrap: str, producer: KafkaProducer, dlq_partitions: dict[str, int]) -> None:
        self.bootstrap = bootstrap
        self.producer = producer
        self.dlq_partitions = dlq_partitions  # source topic -> partitions of its DLQ
        # (source topic, partition) -> {source offset: DLQ offset} already in the DLQ, not yet committed
        self.in_dlq: dict[tuple[str, int], dict[int, int]] = {}

    def dlq_partition(self, topic: str, partition: int) -> TopicPartition:
        return TopicPartition(dlq_topic(topic), partition % self.dlq_partitions[topic])

    def recover(self, topic: str, partition: int, committed_offset: int | None,
                committed_dlq_offset: int | None) -> int:
        """Read the DLQ tail past the committed DLQ offset: dead letters sent for offsets not yet committed."""
        tail = read_tail(self.bootstrap, self.dlq_partition(topic, partition),
                         0 if committed_dlq_offset is None else committed_dlq_offset + 1)
        found: dict[int, int] = {}
        for message in tail:
            where = parse_key(message.key)
            if where is None or where[:2] != (topic, partition):
                continue
            if committed_offset is None or where[2] > committed_offset:
                found.setdefault(where[2], message.offset)
        self.in_dlq[(topic, partition)] = found
        return len(found)

    def send(self, letters: list[DeadLetter]) -> tuple[dict[tuple[str, int], int], int]:
        """Send those not already in the DLQ; wait for every acknowledgement.

        Returns, per source partition, the DLQ offset of its last dead letter (to commit),
        and how many were found already sent (by a run that crashed before its commit).
        """
        last: dict[tuple[str, int], int] = {}
        pending = []
        found = 0
        for letter in letters:
            source = (letter.topic, letter.partition)
            already = self.in_dlq.get(source, {}).get(letter.offset)
            if already is not None:
                last[source] = max(last.get(source, -1), already)
                found += 1
                continue
            tp = self.dlq_partition(letter.topic, letter.partition)
            future = self.producer.send(tp.topic, key=coordinates_key(letter.topic, letter.partition, letter.offset),
                                        value=letter.encode(), partition=tp.partition,
                                        headers=[("obc-reason", letter.code.encode())])
            pending.append((source, future))
        if pending:
            self.producer.flush()
        for source, future in pending:
            try:
                metadata = future.get(timeout=30)
            except Exception as exc:
                raise StreamError(f"could not send a dead letter to {dlq_topic(source[0])}: {exc}",
                                  code="dead_letter_failed") from None
            last[source] = max(last.get(source, -1), metadata.offset)
        return last, found

    def committed(self, topic: str, partition: int, offset: int) -> None:
        """Offsets up to ``offset`` are committed: forget what was found for them."""
        found = self.in_dlq.get((topic, partition))
        if found:
            for off in [o for o in found if o <= offset]:
                del found[off]

    def forget(self, topic: str, partition: int) -> None:
        self.in_dlq.pop((topic, partition), None)
