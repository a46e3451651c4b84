"""Dead letters: what the ledger could not apply, sent to ``<topic>.dlq`` exactly once.

A dead letter is keyed by its original's coordinates, ``topic:partition:offset``,
and goes to DLQ partition ``partition % dlq_partitions`` (the source partition's
owner is its only writer). It is produced and acknowledged *before* the batch's
offsets are committed, and the DLQ offset of the partition's last dead letter is
committed in the same database transaction (tracking ``kafka-dlq:topic:partition``).
So after any crash the DLQ holds, past that committed DLQ offset, only dead letters of
the uncommitted batch; whoever takes the partition over reads that tail first
(:meth:`DeadLetters.recover`) and does not send those again (:meth:`DeadLetters.send`).

A dead letter always fits the broker: an original value over :data:`VALUE_LIMIT` bytes
(or key over :data:`KEY_LIMIT`) is kept truncated, with its full length and sha256
(``dead_letter`` v2). A DLQ partition whose end is below the committed DLQ offset (the
topic was re-created, or the broker lost its log) stops the consumer with
``dlq_behind_ledger``: reading it back could not tell what was already sent.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from dataclasses import field as dataclass_field  # `field` is a DeadLetter column
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer, TopicPartition

import schemas

from .codec import FIXED_IDS, Codec
from .kafka import StreamError, tail_and_end

DEAD_LETTER_SCHEMA_ID = schemas.latest("dead_letter").id
RAW_LIMIT = 64 * 1024
# A dead letter stays far below the producer's and broker's 1 MiB request limit.
VALUE_LIMIT = 256 * 1024
KEY_LIMIT = 4 * 1024
TEXT_LIMIT = 2000  # characters of the message and of each id


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
    at: datetime = dataclass_field(default_factory=lambda: datetime.now(UTC))

    def encode(self, codec: Codec = FIXED_IDS) -> bytes:
        """The ``dead_letter`` record, bounded: long originals cut (length and sha256 kept), text made UTF-8."""
        value, key = self.value, self.key
        return codec.encode(
            DEAD_LETTER_SCHEMA_ID,
            {
                "topic": _text(self.topic),
                "partition": self.partition,
                "offset": self.offset,
                "key": None if key is None else key[:KEY_LIMIT],
                "value": None if value is None else value[:VALUE_LIMIT],
                "code": _text(self.code),
                "field": _maybe_text(self.field),
                "message": _text(self.message),
                "schema_id": self.schema_id,
                "record_type": _maybe_text(self.record_type),
                "record_id": _maybe_text(self.record_id),
                "contract_id": _maybe_text(self.contract_id),
                "dead_lettered_at": self.at,
                "value_length": None if value is None else len(value),
                "value_sha256": None if value is None else hashlib.sha256(value).hexdigest(),
                "value_truncated": value is not None and len(value) > VALUE_LIMIT,
                "key_length": None if key is None else len(key),
                "key_truncated": key is not None and len(key) > KEY_LIMIT,
            },
        )


def _text(text: str) -> str:
    """At most TEXT_LIMIT characters of valid UTF-8 (a lone surrogate is written as its escape)."""
    cut = text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + f"… ({len(text):,} characters)"
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _maybe_text(text: str | None) -> str | None:
    return None if text is None else _text(text)


def decode_dead_letter(value: bytes, codec: Codec = FIXED_IDS) -> dict[str, Any]:
    _, letter = codec.decode(value, ("dead_letter",))
    return letter


class DeadLetters:
    """Sends dead letters for the partitions this consumer owns, without repeating any."""

    def __init__(
        self,
        bootstrap: str,
        producer: KafkaProducer,
        dlq_partitions: dict[str, int],
        codec: Codec = FIXED_IDS,
    ) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.producer = producer
        self.dlq_partitions = dlq_partitions  # source topic -> partitions of its DLQ
        # (source topic, partition) -> {source offset: DLQ offset} already in the DLQ, not yet committed
        self.in_dlq: dict[tuple[str, int], dict[int, int]] = {}
        # the same, for dead letters this process sent whose batch was not saved (it is retried in parts)
        self.sent: dict[tuple[str, int], dict[int, int]] = {}

    def dlq_partition(self, topic: str, partition: int) -> TopicPartition:
        return TopicPartition(dlq_topic(topic), partition % self.dlq_partitions[topic])

    def recover(
        self, topic: str, partition: int, committed_offset: int | None, committed_dlq_offset: int | None
    ) -> int:
        """Read the DLQ tail past the committed DLQ offset: dead letters sent for offsets not yet committed.

        Raises StreamError ``dlq_behind_ledger`` when the DLQ partition ends below the committed
        DLQ offset: it was re-created or truncated, and what it held cannot be known.
        """
        tp = self.dlq_partition(topic, partition)
        start = 0 if committed_dlq_offset is None else committed_dlq_offset + 1
        tail, end = tail_and_end(self.bootstrap, tp, start)
        if end < start:
            raise StreamError(
                f"dead-letter topic {tp.topic}[{tp.partition}] ends at offset {end} but the ledger committed a dead "
                f"letter of {topic}[{partition}] at offset {committed_dlq_offset}: the topic was re-created or "
                f"truncated; stopped rather than send dead letters twice (deploy/README.md: a topic re-created)",
                code="dlq_behind_ledger",
            )
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
            mine = self.sent.get(source, {}).get(letter.offset)
            at = already if already is not None else mine
            if at is not None:
                last[source] = max(last.get(source, -1), at)
                found += already is not None
                continue
            tp = self.dlq_partition(letter.topic, letter.partition)
            try:
                future = self.producer.send(
                    tp.topic,
                    key=coordinates_key(letter.topic, letter.partition, letter.offset),
                    value=letter.encode(self.codec),
                    partition=tp.partition,
                    headers=[("obc-reason", letter.code.encode())],
                )
            except Exception as exc:
                raise StreamError(
                    f"could not send a dead letter to {dlq_topic(letter.topic)}: {exc}",
                    code="dead_letter_failed",
                ) from None
            pending.append((source, letter.offset, future))
        if pending:
            self.producer.flush()
        for source, offset, future in pending:
            try:
                metadata = future.get(timeout=30)
            except Exception as exc:
                raise StreamError(
                    f"could not send a dead letter to {dlq_topic(source[0])}: {exc}",
                    code="dead_letter_failed",
                ) from None
            self.sent.setdefault(source, {})[offset] = metadata.offset
            last[source] = max(last.get(source, -1), metadata.offset)
        return last, found

    def committed(self, topic: str, partition: int, offset: int) -> None:
        """Offsets up to ``offset`` are committed: forget what was found for them."""
        for known in (self.in_dlq, self.sent):
            found = known.get((topic, partition))
            if found:
                for off in [o for o in found if o <= offset]:
                    del found[off]

    def forget(self, topic: str, partition: int) -> None:
        self.in_dlq.pop((topic, partition), None)
        self.sent.pop((topic, partition), None)
