"""The loopback server fixtures work against real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.postgres import PostgresApplicationRecorder
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from deploy.servers import PostgresServer, TansuBroker, eventsourcing_env

RECORD_COUNT = 100
CONSUME_DEADLINE_S = 15.0


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = Decimal("0")

    @event("Credited")
    def credit(self, amount: Decimal) -> None:
        self.balance += amount


@contextmanager
def application(env: dict[str, str]) -> Iterator[Application[UUID]]:
    app: Application[UUID] = Application(env=env)
    try:
        yield app
    finally:
        app.close()


def open_account(app: Application[UUID], owner: str, credit: str) -> UUID:
    account = Account(owner)
    account.credit(Decimal(credit))
    app.save(account)
    return account.id


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_url_connects_over_tcp_loopback_with_the_password(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        server_addr = conn.execute("SELECT inet_server_addr()::text").fetchone()
    assert server_addr == ("127.0.0.1/32",)
    wrong = postgres_url.replace(f":{postgres_server.password}@", ":wrong@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


def test_eventsourcing_application_saves_and_reads_back_an_aggregate_on_postgres(
    postgres_env: dict[str, str],
) -> None:
    with application(postgres_env) as writer:
        assert isinstance(writer.recorder, PostgresApplicationRecorder)
        account_id = open_account(writer, "alice", "12.34")

    with application(postgres_env) as reader:  # new pool: really read from the database
        account = reader.repository.get(account_id)
        assert (account.owner, account.balance, account.version) == ("alice", Decimal("12.34"), 2)
        assert reader.recorder.max_notification_id() == 2


def test_each_postgres_database_is_isolated_from_the_others(
    make_postgres_url: Callable[[], str],
) -> None:
    url_a, url_b = make_postgres_url(), make_postgres_url()
    assert url_a != url_b

    with application(eventsourcing_env(url_a)) as app_a:
        account_id = open_account(app_a, "bob", "5.00")
    with application(eventsourcing_env(url_b)) as app_b:
        with pytest.raises(AggregateNotFoundError):
            app_b.repository.get(account_id)
        assert not app_b.recorder.max_notification_id()
    with application(eventsourcing_env(url_a)) as app_a:
        assert app_a.repository.get(account_id).owner == "bob"


# ---------------------------------------------------------------- Kafka (Tansu)


def expected_records() -> list[tuple[bytes, bytes]]:
    return [(f"member-{i % 10}".encode(), f"claim-{i:03d}".encode()) for i in range(RECORD_COUNT)]


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """Send ``records`` and return the partition each key went to."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=10)
        metadata = [future.get(timeout=10) for future in futures]
    finally:
        producer.close(timeout=5)
    return {key: meta.partition for (key, _), meta in zip(records, metadata, strict=True)}


def consume(consumer: KafkaConsumer, *, until_count: int, within_s: float) -> list[ConsumerRecord]:
    """Poll until ``until_count`` records arrived or ``within_s`` seconds passed."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + within_s
    while len(records) < until_count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def group_consumer(broker: TansuBroker, topic: str) -> KafkaConsumer:
    # session_timeout_ms: Tansu's group join takes about half of it (45 s default).
    return KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )


def test_kafka_topic_round_trips_100_keyed_records_through_a_consumer_group(
    kafka_broker: TansuBroker, kafka_topic: str
) -> None:
    sent = expected_records()
    partition_of_key = produce(kafka_broker.bootstrap, kafka_topic, sent)

    consumer = group_consumer(kafka_broker, kafka_topic)
    try:
        received = consume(consumer, until_count=RECORD_COUNT, within_s=CONSUME_DEADLINE_S)
        extra = consume(consumer, until_count=1, within_s=1.0)
        assert consumer.partitions_for_topic(kafka_topic) == {0, 1, 2}
        assert consumer.assignment() == {TopicPartition(kafka_topic, p) for p in range(3)}
    finally:
        consumer.close()

    assert len(received) == RECORD_COUNT
    assert extra == []
    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    assert all(r.partition == partition_of_key[r.key] for r in received)
    assert len({r.partition for r in received}) > 1  # keys really spread over partitions
    in_offset_order = sorted(received, key=lambda r: (r.partition, r.offset))
    for key in partition_of_key:  # per-key order survives (one key, one partition)
        received_values = [r.value for r in in_offset_order if r.key == key]
        assert received_values == [value for k, value in sent if k == key]
