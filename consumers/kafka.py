"""kafka-python clients configured for the ledger, and reading a partition's tail.

The Tansu broker used in tests answers ListOffsets(LATEST) wrongly (a batch's base
offset + 1), so nothing here uses ``end_offsets()``: the end of a partition is the
high watermark carried by a Fetch response (:meth:`KafkaConsumer.highwater`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ledger.domain.errors import LedgerError

DEFAULT_PARTITIONS = 3
TAIL_TIMEOUT_S = 30.0


class StreamError(LedgerError):
    code = "stream_error"


def producer(bootstrap: str, **config: Any) -> KafkaProducer:
    """Idempotent, acks=all (kafka-python 3.0 defaults), small linger for batching."""
    defaults: dict[str, Any] = {"linger_ms": 5, "batch_size": 64 * 1024, "bootstrap_timeout_ms": 10_000}
    try:
        return KafkaProducer(bootstrap_servers=bootstrap, **(defaults | config))
    except KafkaError as exc:
        raise StreamError(
            f"cannot reach the Kafka broker at {bootstrap}: {exc}", code="broker_unavailable"
        ) from None


def _replication_factor(admin: KafkaAdminClient) -> int:
    """As many replicas as the cluster has brokers, up to 3 (1 on a single-broker development broker)."""
    try:
        brokers = len(admin.describe_cluster().get("brokers") or [])
    except KafkaError:  # a broker that cannot describe its cluster: assume a development broker
        brokers = 1
    return max(1, min(3, brokers))


def ensure_topic(
    bootstrap: str, topic: str, partitions: int = DEFAULT_PARTITIONS, create: bool = True
) -> int:
    """The number of partitions of ``topic``, created first if it does not exist and ``create``.

    The ledger creates the topics it owns when they are missing (``<topic>.dlq``, as Kafka
    Connect does its dead-letter queue; the decisions topic), with as many replicas as the
    cluster has brokers, up to 3. The records topic is the providers' and the deployment's:
    ``consume`` and ``produce`` create it only with ``--create-topics``, so a mistyped name is
    an error rather than a new topic nobody reads (deployments create their topics first,
    see deploy/).
    """
    try:
        with KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=10_000,
            request_timeout_ms=15_000,
            client_id="obc-ledger-admin",
        ) as admin:
            if topic not in set(admin.list_topics()):
                if not create:
                    raise StreamError(
                        f"topic {topic!r} does not exist on {bootstrap}: create it first "
                        f"(deploy/README.md) or pass --create-topics",
                        code="topic_not_found",
                    )
                with contextlib.suppress(TopicAlreadyExistsError):  # another process made it first
                    admin.create_topics(
                        {
                            topic: {
                                "num_partitions": partitions,
                                "replication_factor": _replication_factor(admin),
                            }
                        },
                        wait_for_metadata=True,
                    )
            described = admin.describe_topics([topic])
    except KafkaError as exc:
        raise StreamError(
            f"cannot reach the Kafka broker at {bootstrap}: {exc}", code="broker_unavailable"
        ) from None
    found = [t for t in described if (t.get("name") or t.get("topic")) == topic]
    count = len(found[0].get("partitions", [])) if found else 0
    if count == 0:
        raise StreamError(f"topic {topic!r} has no partitions", code="broker_unavailable")
    return count


def read_tail(
    bootstrap: str,
    tp: TopicPartition,
    start: int,
    timeout_s: float = TAIL_TIMEOUT_S,  # float-ok: seconds
) -> list[ConsumerRecord]:  # float-ok: seconds, not money
    """Every record of partition ``tp`` from offset ``start`` up to its high watermark."""
    return tail_and_end(bootstrap, tp, start, timeout_s)[0]


def tail_and_end(
    bootstrap: str,
    tp: TopicPartition,
    start: int,
    timeout_s: float = TAIL_TIMEOUT_S,  # float-ok: seconds
) -> tuple[list[ConsumerRecord], int]:  # float-ok: seconds
    """(every record of ``tp`` from ``start`` up to its high watermark, that high watermark).

    A fresh consumer (no group) each time, so the high watermark read is from a
    Fetch response of this call, never a stale one. When ``start`` is past the end (the
    topic was re-created or truncated) no record is returned: the caller compares.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        bootstrap_timeout_ms=10_000,
        fetch_max_wait_ms=100,
        auto_offset_reset="earliest",
    )
    out: list[ConsumerRecord] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        while True:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
            high = consumer.highwater(tp)
            if high is not None and high < start:
                return [], high
            position = consumer.position(tp)  # set by the seek above
            if high is not None and position is not None and position >= high:
                return [r for r in out if r.offset >= start], high
            if time.monotonic() > deadline:
                raise StreamError(
                    f"could not read {tp.topic}[{tp.partition}] to its end within {timeout_s:.0f}s",
                    code="broker_unavailable",
                )
    finally:
        consumer.close()


def high_watermarks(
    bootstrap: str,
    positions: dict[TopicPartition, int],
    timeout_s: float = TAIL_TIMEOUT_S,  # float-ok: seconds
) -> dict[TopicPartition, int]:  # float-ok: seconds
    """The high watermark of each partition, from a Fetch at the given offset (not ListOffsets).
    Connecting takes at most 10 s, or ``timeout_s`` if shorter; reading at most ``timeout_s``."""
    if not positions:
        return {}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        bootstrap_timeout_ms=int(min(10.0, timeout_s) * 1000),
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1024,
        auto_offset_reset="earliest",
    )
    try:
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, max(0, offset))
        deadline = time.monotonic() + timeout_s
        while True:
            consumer.poll(timeout_ms=200)
            found = {tp: consumer.highwater(tp) for tp in positions}
            if all(high is not None for high in found.values()):
                return found  # type: ignore[return-value]
            if time.monotonic() > deadline:
                where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in positions)
                raise StreamError(
                    f"could not read the end of {where} within {timeout_s:.0f}s", code="broker_unavailable"
                )
    finally:
        consumer.close()
