#!/usr/bin/env python3
"""Send a provider's JSON-lines records to the ledger with confluent-kafka, as a provider's own
client would (README.md, "Sending records from your own client").

    pip install 'confluent-kafka[avro,schemaregistry]'
    python deploy/examples/confluent_producer.py ledger/examples/worked-example-data.jsonl \\
        --bootstrap HOST:PORT --registry http://HOST:8081 [--topic ledger.records] \\
        [--compression lz4] [--transactional-id provider-1 [--abort]]

Needs nothing from obc-ledger but its Avro schemas (``schemas/*.avsc``, ``--schemas DIR``).
Every record is keyed by its contract id and partitioned with murmur2 (Kafka's Java
default), the producer is idempotent (acks=all), and each record is serialized by
confluent-kafka's ``AvroSerializer`` under its record's full name (RecordNameStrategy: one
topic carries three record types). ``--transactional-id`` sends the whole file in one
transaction, committed (or aborted with ``--abort``: the ledger then applies none of it).
Without ``--registry`` the records are framed with the ledger's fixed schema ids instead.
Prints one JSON line: what was sent.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.serialization import MessageField, SerializationContext

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# record type -> (schema file, the ledger's fixed id: used only without a registry)
TYPES = {
    "submission": ("submission.v2.avsc", 2),
    "cost_report": ("cost_report.v1.avsc", 3),
    "population": ("population.v1.avsc", 4),
}


def producer_config(args: argparse.Namespace) -> dict[str, Any]:
    config = {
        "bootstrap.servers": args.bootstrap,
        "partitioner": "murmur2_random",  # as Java's default and obc-ledger produce: key -> partition
        "enable.idempotence": True,  # acks=all, no duplicates or reordering on retries
        "compression.type": args.compression,
        "linger.ms": 5,
    }
    if args.transactional_id:
        config["transactional.id"] = args.transactional_id
    return config


def avro_value(schema: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The Avro value of a JSON-lines record: decimals as Decimal, decimal strings as strings."""

    def convert(kind: Any, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(kind, list):  # ["null", X]
            kind = next(k for k in kind if k != "null")
        if isinstance(kind, dict) and kind.get("logicalType") == "decimal":
            return Decimal(str(value))
        if isinstance(kind, dict) and kind.get("type") == "array":
            return [convert(kind["items"], v) for v in value]
        if isinstance(kind, dict) and kind.get("type") == "record":
            return {f["name"]: convert(f["type"], value.get(f["name"])) for f in kind["fields"]}
        if kind == "string":
            return value if isinstance(value, str) else str(value)
        return value

    return convert(schema, record)


def serializers(args: argparse.Namespace) -> dict[str, Any]:
    """record type -> a function (value, topic) -> the message value."""
    documents = {kind: (Path(args.schemas) / file).read_text() for kind, (file, _) in TYPES.items()}
    if args.registry:
        from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
        from confluent_kafka.schema_registry.avro import AvroSerializer

        client = SchemaRegistryClient({"url": args.registry})
        config = {"subject.name.strategy": record_subject_name_strategy, "auto.register.schemas": True}
        out = {}
        for kind, text in documents.items():
            serializer = AvroSerializer(client, text, conf=config)
            out[kind] = (
                lambda s: lambda value, topic: s(value, SerializationContext(topic, MessageField.VALUE))
            )(serializer)
        return out
    from fastavro import parse_schema, schemaless_writer  # the Confluent framing by hand, with fixed ids

    def framed(schema: Any, schema_id: int) -> Any:
        def encode(value: dict[str, Any], topic: str) -> bytes:
            body = io.BytesIO()
            schemaless_writer(body, schema, value)
            return struct.pack(">bI", 0, schema_id) + body.getvalue()

        return encode

    return {kind: framed(parse_schema(json.loads(documents[kind])), TYPES[kind][1]) for kind in TYPES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="ledger.records")
    parser.add_argument(
        "--registry", help="schema registry URL (AvroSerializer); without: the ledger's fixed ids"
    )
    parser.add_argument("--compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--transactional-id", help="send the file in one transaction")
    parser.add_argument(
        "--abort", action="store_true", help="abort that transaction instead of committing it"
    )
    parser.add_argument("--schemas", default=str(SCHEMAS), help="directory of the ledger's .avsc files")
    args = parser.parse_args(argv)
    if args.abort and not args.transactional_id:
        parser.error("--abort needs --transactional-id")

    schemas = {kind: json.loads((Path(args.schemas) / file).read_text()) for kind, (file, _) in TYPES.items()}
    encode = serializers(args)
    producer = Producer(producer_config(args))
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    if args.transactional_id:
        producer.init_transactions(30)
        producer.begin_transaction()
    sent = 0
    with open(args.file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            kind = record.get("type")
            if kind not in TYPES:
                print(f"line {number}: type {kind!r} is not a record type the ledger reads", file=sys.stderr)
                return 2
            value = encode[kind](avro_value(schemas[kind], record), args.topic)
            producer.produce(
                args.topic, key=record["contract_id"].encode(), value=value, on_delivery=delivered
            )
            producer.poll(0)
            sent += 1
    if args.transactional_id:
        if args.abort:
            producer.flush(
                30
            )  # the records reach the broker (librdkafka would purge unsent ones), then the marker
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
    left = producer.flush(30)
    if failures or left:
        print(
            f"{len(failures) + left} record(s) not delivered (first: {(failures or ['timed out'])[0]})",
            file=sys.stderr,
        )
        return 1
    print(
        json.dumps(
            {
                "topic": args.topic,
                "sent": sent,
                "compression": args.compression,
                "transaction": None
                if not args.transactional_id
                else ("aborted" if args.abort else "committed"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
