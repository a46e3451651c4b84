"""Schema ids from a Confluent-compatible registry (--registry URL): schemas/confluent.py and
the codec's RegistryIds, against a loopback server speaking the registry's REST API."""

import copy
import io
import json
import struct

import pytest
from fastavro import parse_schema, schemaless_writer

import schemas
from consumers import codec
from consumers.codec import SerializationError, frame
from consumers.dead_letters import DeadLetter, decode_dead_letter
from deploy.servers import RegistryServer
from ledger.domain.errors import LedgerError
from schemas.confluent import ConfluentRegistry, RegistryRefused, RegistryUnavailable

SUBMISSION = {
    "type": "submission",
    "submission_id": "s-0001",
    "contract_id": "oxon-mh",
    "provider_id": "ohft",
    "indicator_id": "care-plans-reviewed",
    "period": "2027-04",
    "numerator": "412",
    "denominator": "480",
}
SUBJECT = "uk.nhs.obc.ledger.Submission"


@pytest.fixture
def registry():
    with RegistryServer() as server:
        server.codec = codec.Codec.for_registry(server.url)  # what bootstrap builds for --registry URL
        yield server


def wire_id(data: bytes) -> int:
    return struct.unpack(">bI", data[:5])[1]


def body(schema: dict, value: dict) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), value)
    return out.getvalue()


def test_records_are_framed_with_the_registrys_id_and_read_back(registry):
    key, value = registry.codec.encode_record(SUBMISSION)
    assert key == b"oxon-mh"
    assert wire_id(value) == 101 and registry.subjects == {SUBJECT: [101]}
    assert json.loads(registry.schemas[101]) == schemas.raw("submission", 2)
    assert registry.codec.decode_record(value) == SUBMISSION
    registry.codec.encode_record(SUBMISSION)
    assert [r for r in registry.requests if r[0] == "POST"] == [("POST", f"/subjects/{SUBJECT}/versions")], (
        "registered once per process"
    )
    assert [r for r in registry.requests if r[0] == "GET"] == [], "its own id needs no lookup"


def test_a_v1_message_registered_by_another_producer_is_read_by_the_v2_reader(registry):
    v1 = schemas.raw("submission", 1)
    other_id = registry.register(SUBJECT, json.dumps(v1))
    fields = {f["name"] for f in v1["fields"]}
    value = {k: v for k, v in codec.to_avro(SUBMISSION)[1].items() if k in fields}
    record = registry.codec.decode_record(frame(other_id, body(v1, value)))
    assert record["submission_id"] == "s-0001" and record["numerator"] == "412"
    assert ("GET", f"/schemas/ids/{other_id}") in registry.requests


def test_a_provider_version_the_ledger_lacks_is_resolved_to_its_newest_reader(registry):
    newer = copy.deepcopy(schemas.raw("submission", 2))
    newer["fields"].append({"name": "source_system", "type": ["null", "string"], "default": None})
    newer_id = registry.register(SUBJECT, json.dumps(newer))
    value = codec.to_avro(SUBMISSION)[1] | {"source_system": "EPR-7"}
    record = registry.codec.decode_record(frame(newer_id, body(newer, value)))
    assert record["indicator_id"] == "care-plans-reviewed" and "source_system" not in record

    broken = copy.deepcopy(newer)
    broken["fields"] = [f for f in broken["fields"] if f["name"] != "provider_id"]  # our reader needs it
    broken_id = registry.register(SUBJECT, json.dumps(broken))
    value = {k: v for k, v in value.items() if k != "provider_id"}
    with pytest.raises(SerializationError) as caught:
        registry.codec.decode_record(frame(broken_id, body(broken, value)))
    assert caught.value.code == "undecodable" and f"registry id {broken_id}" in caught.value.message


def test_a_provider_schema_adding_a_huge_decimal_to_a_submission_is_read_without_converting_it(registry):
    """The worst sender through the registry: a newer submission schema with a decimal field the
    ledger's reader lacks, carrying 900 KB (fastavro's own conversion of that took about a minute).
    The reader has no decimal, so nothing is converted or walked: the field is skipped unread."""
    import time

    hostile = copy.deepcopy(schemas.raw("submission", 2))
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 2}
    hostile["fields"].append({"name": "bonus", "type": ["null", decimal], "default": None})
    hostile_id = registry.register(SUBJECT, json.dumps(hostile))
    plain = copy.deepcopy(hostile)
    del plain["fields"][-1]["type"][1]["logicalType"]  # written as the raw bytes a hostile client sends
    value = codec.to_avro(SUBMISSION)[1] | {"bonus": b"\x01" + b"\x00" * 900_000}
    started = time.monotonic()
    record = registry.codec.decode_record(frame(hostile_id, body(plain, value)))
    assert time.monotonic() - started < 10  # not a timing test: the conversion itself took a minute
    assert record == SUBMISSION, "the extra field is not read into the record"


def test_ids_the_registry_does_not_know_or_records_the_ledger_does_not_read_are_dead_letters(registry):
    with pytest.raises(SerializationError) as caught:
        registry.codec.decode_record(frame(999, b"\x00"))
    assert caught.value.code == "unknown_schema_id" and "999" in caught.value.message
    alien = {
        "type": "record",
        "name": "Invoice",
        "namespace": "acme",
        "fields": [{"name": "n", "type": "long"}],
    }
    alien_id = registry.register("acme.Invoice", json.dumps(alien))
    with pytest.raises(SerializationError) as caught:
        registry.codec.decode_record(frame(alien_id, body(alien, {"n": 1})))
    assert caught.value.code == "unknown_schema_id" and "acme.Invoice" in caught.value.message


def test_dead_letters_use_registry_ids_too(registry):
    letter = DeadLetter(
        topic="ledger.records",
        partition=2,
        offset=17,
        key=b"oxon-mh",
        value=b"\x07junk",
        code="truncated",
        field=None,
        message="too short",
    )
    data = letter.encode(registry.codec)
    assert wire_id(data) >= 101 and "uk.nhs.obc.ledger.DeadLetter" in registry.subjects
    decoded = decode_dead_letter(data, registry.codec)
    assert (decoded["offset"], decoded["value"], decoded["code"]) == (17, b"\x07junk", "truncated")


def test_an_unreachable_registry_is_an_error_not_a_dead_letter(registry):
    registry.failing = True
    with pytest.raises(RegistryUnavailable) as caught:
        registry.codec.decode_record(frame(150, b"\x00"))
    assert "did not answer GET /schemas/ids/150" in caught.value.message
    with pytest.raises(RegistryUnavailable):
        registry.codec.encode_record(SUBMISSION)


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown():
    with RegistryServer(credentials=("key", "s3cret")) as server:
        host = server.url.removeprefix("http://")
        good = ConfluentRegistry(f"http://key:s3cret@{host}")
        assert good.register(schemas.raw("population", 1)) == 101
        assert "s3cret" not in repr(good)
        with pytest.raises(RegistryRefused) as caught:
            ConfluentRegistry(f"http://key:wrong@{host}").register(schemas.raw("population", 1))
        assert "HTTP 401" in caught.value.message and "s3cret" not in caught.value.message


def test_a_registry_url_must_be_http():
    with pytest.raises(LedgerError) as caught:
        ConfluentRegistry("localhost:8081")
    assert caught.value.code == "invalid_registry_url"


def test_checking_a_file_before_sending_touches_no_registry(registry):
    from consumers.producer import check_lines

    bad = dict(SUBMISSION, numerator="many")
    count, refused = check_lines([json.dumps(SUBMISSION), json.dumps(bad)])
    assert count == 2 and [(r.line, r.refusal.code) for r in refused] == [(2, "non_numeric")]
    assert registry.requests == []


# ------------------------------------------------- the stand-in, driven by confluent-kafka's own client


def stock_client(server):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient({"url": server.url})


def test_confluent_kafkas_serializer_registers_under_record_names_and_its_deserializer_reads_the_ledgers_bytes():
    from confluent_kafka.schema_registry import record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    with RegistryServer() as server:
        client = stock_client(server)
        serializer = AvroSerializer(
            client,
            json.dumps(schemas.raw("submission", 2)),
            conf={"subject.name.strategy": record_subject_name_strategy},
        )
        value = codec.to_avro(SUBMISSION)[1]
        data = serializer(value, SerializationContext("ledger.records", MessageField.VALUE))
        assert ("POST", f"/subjects/{SUBJECT}/versions") in server.requests
        assert any(q.get("normalize") == ["False"] for m, p, q in server.queries if m == "POST"), (
            "answered with its query string"
        )
        ledger_codec = codec.Codec.for_registry(server.url)
        assert ledger_codec.decode_record(data) == SUBMISSION, (
            "the ledger reads what the stock serializer wrote"
        )
        ours = ledger_codec.encode_record(SUBMISSION)[1]
        assert wire_id(ours) == wire_id(data), "one schema, one id, whoever registered it"
        read = AvroDeserializer(stock_client(server))(
            ours, SerializationContext("ledger.records", MessageField.VALUE)
        )
        assert read == value


def test_an_incompatible_schema_is_refused_with_409_and_the_topic_name_strategy_cannot_carry_three_record_types():
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.serialization import MessageField, SerializationContext

    with RegistryServer() as server:
        client = stock_client(server)
        v2 = json.dumps(schemas.raw("submission", 2))
        first = client.register_schema(SUBJECT, Schema(v2, "AVRO"))
        assert client.register_schema(SUBJECT, Schema(v2, "AVRO")) == first
        needs_more = copy.deepcopy(schemas.raw("submission", 2))
        needs_more["fields"].append({"name": "ward", "type": "string"})  # no default: cannot read version 1
        with pytest.raises(SchemaRegistryError) as caught:
            client.register_schema(SUBJECT, Schema(json.dumps(needs_more), "AVRO"))
        assert caught.value.http_status_code == 409 and "incompatible" in caught.value.error_message
        assert client.test_compatibility(SUBJECT, Schema(json.dumps(needs_more), "AVRO")) is False
        client.set_compatibility(SUBJECT, "NONE")
        assert client.get_compatibility(SUBJECT) == "NONE"
        assert client.register_schema(SUBJECT, Schema(json.dumps(needs_more), "AVRO")) != first

        # the default TopicNameStrategy puts every record type under "<topic>-value": the second is refused
        context = SerializationContext("ledger.records", MessageField.VALUE)
        AvroSerializer(client, v2)(codec.to_avro(SUBMISSION)[1], context)
        cost = AvroSerializer(client, json.dumps(schemas.raw("cost_report", 1)))
        with pytest.raises(SchemaRegistryError) as caught:
            cost(
                codec.to_avro(
                    {
                        "type": "cost_report",
                        "report_id": "c-1",
                        "contract_id": "oxon-mh",
                        "provider_id": "ohft",
                        "period": "2027-04",
                        "total_cost": "10.00",
                    }
                )[1],
                context,
            )
        assert caught.value.http_status_code == 409


def test_the_stand_in_answers_the_lookups_stock_clients_make():
    from confluent_kafka.schema_registry import Schema

    with RegistryServer() as server:
        client = stock_client(server)
        v1, v2 = (json.dumps(schemas.raw("submission", v)) for v in (1, 2))
        id1 = client.register_schema(SUBJECT, Schema(v1, "AVRO"))
        id2 = client.register_schema(SUBJECT, Schema(v2, "AVRO"))
        assert client.get_subjects() == [SUBJECT]
        assert client.get_versions(SUBJECT) == [1, 2]
        latest = client.get_latest_version(SUBJECT)
        assert (latest.version, latest.schema_id) == (2, id2)
        assert client.get_version(SUBJECT, 1).schema_id == id1
        assert client.lookup_schema(SUBJECT, Schema(v1, "AVRO")).version == 1
        fresh = stock_client(server)  # no cache: it asks
        assert json.loads(fresh.get_schema(id1, subject_name=SUBJECT).schema_str) == schemas.raw(
            "submission", 1
        )
        assert ("GET", f"/schemas/ids/{id1}") in server.requests and any(
            q == {"subject": [SUBJECT]} for m, p, q in server.queries if p == f"/schemas/ids/{id1}"
        )
        assert client.get_compatibility() == "BACKWARD"
        for path, expected in (
            (f"/schemas/ids/{id2}/subjects", [SUBJECT]),
            (f"/schemas/ids/{id2}/versions", [{"subject": SUBJECT, "version": 2}]),
            (f"/schemas/ids/{id2}/schema", schemas.raw("submission", 2)),
            ("/schemas/ids/999", {"error_code": 40403, "message": "Schema not found"}),
        ):
            import urllib.error
            import urllib.request

            try:
                with urllib.request.urlopen(server.url + path) as answer:
                    assert json.loads(answer.read()) == expected
            except urllib.error.HTTPError as exc:
                assert (exc.code, json.loads(exc.read())) == (404, expected)
