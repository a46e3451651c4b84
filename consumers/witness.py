"""The Kafka side of a witness (``kafka:ledger.digests``): append a digest, read every one back.

:mod:`ledger.adapters.witness` keeps the format and the checks; the wiring
(``ledger.bootstrap``) hands it a :class:`KafkaWitness` when a bootstrap server is known.
"""

from __future__ import annotations

from collections.abc import Iterator

from kafka import TopicPartition

from .kafka import ensure_topic, producer, read_tail


class KafkaWitness:
    """Digests on a topic of one partition, keyed by ledger id."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def append(self, topic: str, key: bytes, text: str) -> None:
        ensure_topic(self.bootstrap, topic, partitions=1)
        client = producer(self.bootstrap)
        try:
            client.send(topic, key=key, value=text.encode()).get(timeout=30)
            client.flush()
        finally:
            client.close()

    def messages(self, topic: str) -> Iterator[tuple[str, bytes]]:
        """(``topic:partition:offset``, value) of every message, partition by partition."""
        for partition in range(ensure_topic(self.bootstrap, topic, partitions=1, create=False)):
            for message in read_tail(self.bootstrap, TopicPartition(topic, partition), 0):
                yield f"{topic}:{partition}:{message.offset}", message.value or b""
