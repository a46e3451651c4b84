"""Providers' own Kafka clients: confluent-kafka (librdkafka) producing the worked example with each
codec, in committed and aborted transactions, with the registry's AvroSerializer; the ledger
consumes it and its statements equal a JSON-lines ingest of the same records."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import KafkaConsumer, TopicPartition

from consumers.codec import Codec
from consumers.consumer import LedgerConsumer
from consumers.kafka import producer, read_tail
from consumers.producer import encode_line
from deploy.servers import RegistryServer
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES, IDLE_S, ROOT, SESSION_MS, Cli, consume_args

EXAMPLE = ROOT / "deploy" / "examples" / "confluent_producer.py"
DATA = EXAMPLES / "worked-example-data.jsonl"
RECORDS = len(DATA.read_text().splitlines())  # 34: 33 records and one exact duplicate


@pytest.fixture
def registry():
    with RegistryServer() as server:
        yield server


@pytest.fixture
def reference(tmp_path):
    """Statements of years 1-3 after a JSON-lines ingest of the worked example and closing years 1 and 2."""
    ref = Cli(f"sqlite:///{tmp_path / 'reference.db'}")
    ref.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    ref.ok("ingest", DATA)
    return statements(ref)


def statements(cli):
    cli.ok("close-year", "beds-msk", "1")
    cli.ok("close-year", "beds-msk", "2")
    return {year: cli.ok("statement", "beds-msk", "--year", str(year), "--json").json() for year in (1, 2, 3)}


def example(*args):
    """Run the README's example producer as a provider would: its own process, confluent-kafka only."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def consume(cli, bootstrap, topic, *extra):
    return cli.ok(*consume_args(bootstrap, topic, *extra)).json()


def altered(tmp_path):
    """The worked example as a transaction that must never count: other ids, readmissions far higher."""
    lines = []
    for line in DATA.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "submission":
            record["submission_id"] = "aborted-" + record["submission_id"]
            if record["indicator_id"] == "readmissions":
                record["value"] = str(int(record["value"]) * 4)
        else:
            record["report_id"] = "aborted-" + record["report_id"]
        lines.append(json.dumps(record))
    path = tmp_path / "aborted.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


CODECS = ("gzip", "snappy", "lz4", "zstd")


def test_the_worked_example_compressed_by_confluent_kafka_with_each_codec_gives_the_statements_of_ingest(
    kafka_broker, kafka_topic, cli, registry, reference
):
    """The worked example sent once per codec (librdkafka compresses each batch): every record of
    every batch is decoded (none dead-lettered), the first copy applied and the three others
    acknowledged as duplicates, so the statements are those of one ingest."""
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    wire = ("--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--registry", registry.url)
    for codec in CODECS:
        assert example(DATA, *wire, "--compression", codec)["sent"] == RECORDS, codec
    consumed = consume(cli, kafka_broker.bootstrap, kafka_topic, "--registry", registry.url)
    assert (
        consumed["consumed"],
        consumed["accepted"],
        consumed["duplicates"],
        consumed["dead_lettered"],
    ) == (len(CODECS) * RECORDS, RECORDS - 1, len(CODECS) * RECORDS - (RECORDS - 1), 0)
    assert statements(cli) == reference


def test_an_aborted_then_a_committed_transaction_apply_only_the_committed_records(
    kafka_broker, kafka_topic, cli, registry, reference, tmp_path
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    wire = ("--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--registry", registry.url)
    tx = ("--transactional-id", f"provider-{kafka_topic}")  # one producer id: an abort marker, then a commit
    assert (
        example(altered(tmp_path), *wire, *tx, "--abort", "--compression", "zstd")["transaction"] == "aborted"
    )
    assert example(DATA, *wire, *tx)["transaction"] == "committed"
    assert (
        example(altered(tmp_path), *wire, *tx, "--abort")["transaction"] == "aborted"
    )  # ends on an abort marker

    consumed = consume(
        cli, kafka_broker.bootstrap, kafka_topic, "--registry", registry.url
    )  # no consume_stalled
    assert (
        consumed["consumed"],
        consumed["accepted"],
        consumed["duplicates"],
        consumed["dead_lettered"],
    ) == (RECORDS, RECORDS - 1, 1, 0), "markers and aborted records are never counted as records"
    assert consumed["aborted_skipped"] == 2 * RECORDS
    assert statements(cli) == reference
    rejected = cli.ok("rejected", "list", "--json").json()
    assert not [r for r in rejected if "aborted-" in json.dumps(r)]
    again = consume(cli, kafka_broker.bootstrap, kafka_topic, "--registry", registry.url)
    assert (again["consumed"], again["aborted_skipped"]) == (0, 0), (
        "the stored offsets are past the last marker"
    )


def test_the_test_broker_reports_no_aborted_transactions_so_the_consumer_filters_them_itself(
    kafka_broker, kafka_topic
):
    """Tansu 0.6 answers read-committed Fetches with an empty aborted_transactions list (and kafka-python
    then returns aborted records): why consumers/transactions.py decides from the markers itself. If this
    fails, the broker now filters them; the consumer's own verdicts agree with it either way."""
    client = Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "transactional.id": f"tx-{kafka_topic}",
            "partitioner": "murmur2_random",
        }
    )
    client.init_transactions(30)
    client.begin_transaction()
    client.produce(kafka_topic, key=b"beds-msk", value=b"aborted")
    assert client.flush(30) == 0  # on the broker (an abort would purge unsent records), then the abort marker
    client.abort_transaction(30)
    reader = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        reader.assign([TopicPartition(kafka_topic, p) for p in range(3)])
        seen = []
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200).values():
                seen += [r.value for r in records]
    finally:
        reader.close()
    assert seen == [b"aborted"]


def test_records_of_a_transaction_still_open_are_not_applied_and_consume_until_idle_still_ends(
    kafka_broker, kafka_topic, cli, tmp_path
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    lines = DATA.read_text().splitlines()
    example(DATA, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic)  # fixed ids, idempotent, lz4
    client = Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "transactional.id": f"open-{kafka_topic}",
            "partitioner": "murmur2_random",
        }
    )
    client.init_transactions(30)
    client.begin_transaction()
    key, value = encode_line(json.dumps(dict(json.loads(lines[0]), submission_id="open-1")))
    client.produce(kafka_topic, key=key, value=value)
    assert client.flush(30) == 0
    consumed = consume(
        cli, kafka_broker.bootstrap, kafka_topic
    )  # ends: the position reached the last stable offset
    assert (consumed["consumed"], consumed["accepted"]) == (RECORDS, RECORDS - 1)
    assert Ledger.from_url(cli.db_url).recorder.lookup_records("beds-msk", ["submission:open-1"]) == {}
    client.commit_transaction(30)
    later = consume(cli, kafka_broker.bootstrap, kafka_topic)
    assert (later["consumed"], later["accepted"]) == (1, 1), "read once committed"
    assert list(Ledger.from_url(cli.db_url).recorder.lookup_records("beds-msk", ["submission:open-1"])) == [
        "submission:open-1"
    ]


def test_one_contracts_records_on_two_partitions_are_reported_and_warned_about(
    kafka_broker, kafka_topic, sqlite_url, capsys
):
    """What a producer keyed otherwise, or hashing with another partitioner, does to a contract."""
    app = Ledger.from_url(sqlite_url)
    Cli(sqlite_url).ok("contract", "register", EXAMPLES / "worked-example.yaml")
    client = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i, line in enumerate(DATA.read_text().splitlines()):
        key, value = encode_line(line)
        client.produce(kafka_topic, key=key, value=value, partition=0 if i < 20 else 2)
    assert client.flush(30) == 0
    report = LedgerConsumer(
        app,
        kafka_broker.bootstrap,
        [kafka_topic],
        group=kafka_topic,
        until_idle=IDLE_S,
        session_timeout_ms=SESSION_MS,
    ).run()
    assert report.consumed == RECORDS
    assert report.to_dict()["contracts_on_several_partitions"] == {
        "beds-msk": [f"{kafka_topic}:0", f"{kafka_topic}:2"]
    }
    warnings = [line for line in capsys.readouterr().err.splitlines() if "records on partitions" in line]
    assert len(warnings) == 1 and "contract beds-msk: records on partitions" in warnings[0]
    assert "murmur2" in warnings[0]


def test_decisions_published_with_a_registry_are_read_by_confluent_kafkas_avro_deserializer(
    kafka_broker, kafka_topic, cli, registry
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    example(DATA, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--registry", registry.url)
    assert {"uk.nhs.obc.ledger.Submission", "uk.nhs.obc.ledger.CostReport"} <= set(registry.subjects), (
        "registered by confluent-kafka's AvroSerializer under RecordNameStrategy"
    )
    assert any(m == "POST" and "normalize" in q for m, _, q in registry.queries), (
        "its query string was answered"
    )
    consume(cli, kafka_broker.bootstrap, kafka_topic, "--registry", registry.url)
    cli.ok("close-year", "beds-msk", "1")
    decisions = f"{kafka_topic}.decisions"
    published = cli.ok(
        "publish-decisions",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--registry",
        registry.url,
        "--topic",
        decisions,
        "--until-idle",
        "1",
        "--json",
    ).json()
    assert published["published"] > 0

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    reader = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "group.id": f"finance-{kafka_topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    reader.assign(
        [CTopicPartition(decisions, p, OFFSET_BEGINNING) for p in range(3)]
    )  # no group join to wait for
    values = []
    try:
        deadline = time.monotonic() + 60
        while len(values) < published["published"] and time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is None or msg.error():
                continue
            values.append(deserialize(msg.value(), SerializationContext(decisions, MessageField.VALUE)))
    finally:
        reader.close()
    registry_codec = Codec.for_registry(registry.url)  # what the CLI's --registry builds
    ours = [
        registry_codec.decode(m.value, ("decision",))[1]
        for p in range(3)
        for m in read_tail(kafka_broker.bootstrap, TopicPartition(decisions, p), 0)
    ]
    assert sorted(values, key=lambda v: v["decision_id"]) == sorted(ours, key=lambda v: v["decision_id"])
    closed = [v for v in values if v["kind"] == "year_close"]
    assert [(v["contract_id"], v["year"]) for v in closed] == [("beds-msk", 1)]
    assert isinstance(closed[0]["amount"], Decimal)


def test_confluent_kafka_with_murmur2_random_puts_each_contract_where_obc_ledger_produce_does(
    kafka_broker, kafka_topic
):
    """The partitioner the README prescribes: librdkafka's default (consistent_random, CRC32) does not agree."""
    contracts = [f"contract-{i}".encode() for i in range(24)]
    ours = producer(kafka_broker.bootstrap)
    where_ours = {
        key: ours.send(kafka_topic, key=key, value=b"x").get(timeout=30).partition for key in contracts
    }
    ours.close()

    def placed(partitioner):
        out = {}
        client = Producer({"bootstrap.servers": kafka_broker.bootstrap, "partitioner": partitioner})
        for key in contracts:
            client.produce(
                kafka_topic,
                key=key,
                value=b"x",
                on_delivery=lambda err, msg: out.__setitem__(msg.key(), msg.partition()),
            )
        assert client.flush(30) == 0
        return out

    assert placed("murmur2_random") == where_ours
    assert placed("consistent_random") != where_ours


def test_a_codec_the_installation_lacks_is_a_one_line_error_and_nothing_is_saved(
    kafka_broker, kafka_topic, cli, monkeypatch
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    example(DATA, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--compression", "lz4")
    monkeypatch.setattr("kafka.codec.has_lz4", lambda: False)  # as before lz4 was a dependency
    failed = cli(
        *consume_args(kafka_broker.bootstrap, kafka_topic),
    )
    error = json.loads(failed.err.strip().splitlines()[-1])
    assert failed.code == 1 and error["error"] == "unsupported_codec" and "lz4" in error["message"]
    app = Ledger.from_url(cli.db_url)
    assert [app.recorder.max_tracking_id(f"kafka:{kafka_topic}:{p}") for p in range(3)] == [None] * 3
    monkeypatch.undo()
    consumed = consume(cli, kafka_broker.bootstrap, kafka_topic)
    assert consumed["consumed"] == RECORDS, "read in full once the codec is there"
