"""Avro schemas, the local registry, Confluent framing and the record codec (no I/O)."""

import struct
from datetime import UTC
from decimal import Decimal

import pytest

import schemas
from consumers.codec import SerializationError, decode, decode_record, encode, encode_record, frame, to_avro
from consumers.dead_letters import DeadLetter, decode_dead_letter, parse_key
from ledger.domain.records import RecordRefused

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
COST = {
    "type": "cost_report",
    "report_id": "c-0001",
    "contract_id": "oxon-mh",
    "provider_id": "ohft",
    "period": "2027-04",
    "total_cost": "1003210.55",
    "high_cost_cases": [{"case_ref": "HC-17", "cost": "8200.00"}],
}
POPULATION = {
    "type": "population",
    "record_id": "p-0001",
    "contract_id": "oxon-mh",
    "year": 2,
    "segment_id": "psychosis",
    "count": 4302,
}


def _types(node):
    if isinstance(node, dict):
        yield node.get("type")
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _types(value)
    else:
        yield node


@pytest.mark.parametrize("schema_id", sorted(schemas.SCHEMA_IDS))
def test_every_registered_schema_parses_and_never_uses_floating_point(schema_id):
    sv = schemas.by_id(schema_id)
    assert schemas.parsed(schema_id)
    assert not {"float", "double"} & {
        t for t in _types(schemas.raw(sv.subject, sv.version)) if isinstance(t, str)
    }


def test_schema_ids_are_unique_per_subject_version_and_versions_are_consecutive():
    assert len(set(schemas.SCHEMA_IDS.values())) == len(schemas.SCHEMA_IDS)
    for subject in schemas.subjects():
        assert [sv.version for sv in schemas.versions(subject)] == list(
            range(1, len(schemas.versions(subject)) + 1)
        )


@pytest.mark.parametrize("subject", schemas.subjects())
def test_every_version_reads_every_earlier_version_transitively(subject):
    for sv in schemas.versions(subject):
        assert schemas.incompatibilities(subject, schemas.raw(subject, sv.version), before=sv.version) == []
    latest = schemas.latest(subject)
    assert schemas.incompatibilities(subject, schemas.raw(subject, latest.version)) == []


def test_a_v1_submission_is_read_by_the_v2_reader():
    _, v1 = to_avro(SUBMISSION)
    del v1["submitted_at"]  # not in v1
    message = encode(1, v1)
    writer, value = decode(message)
    assert (writer.id, writer.subject, writer.version) == (1, "submission", 1)
    assert value["submitted_at"] is None  # the v2 field's default
    assert decode_record(message) == SUBMISSION


def test_a_v2_submission_with_submitted_at_round_trips_as_utc_text():
    from datetime import datetime

    _, v2 = to_avro(SUBMISSION)
    v2["submitted_at"] = datetime(2027, 5, 3, 9, 30, tzinfo=UTC)
    assert decode_record(encode(2, v2))["submitted_at"] == "2027-05-03T09:30:00Z"


@pytest.mark.parametrize(
    "change, kind",
    [
        (
            lambda s: s["fields"].append({"name": "source_system", "type": "string"}),
            "reader_field_missing_default_value",
        ),
        (lambda s: s["fields"][5].update(type=["null", "double"]), "missing_union_branch"),
        (lambda s: s["fields"][0].update(type="long"), "type_mismatch"),
    ],
)
def test_an_incompatible_submission_change_is_refused_against_every_earlier_version(change, kind):
    candidate = schemas.raw("submission", 2)
    change(candidate)
    problems = schemas.incompatibilities("submission", candidate)
    assert len(problems) == len(schemas.versions("submission"))  # v1 and v2 both
    assert all(kind in p for p in problems)


def test_adding_an_optional_field_with_a_default_is_a_compatible_next_version():
    candidate = schemas.raw("submission", 2)
    candidate["fields"].append({"name": "source_system", "type": ["null", "string"], "default": None})
    assert schemas.incompatibilities("submission", candidate) == []


@pytest.mark.parametrize("record", [SUBMISSION, COST, POPULATION], ids=lambda r: r["type"])
def test_a_record_round_trips_through_the_wire_format_keyed_by_contract(record):
    key, value = encode_record(record)
    assert key == b"oxon-mh"
    assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] == schemas.latest(record["type"]).id
    decoded = decode_record(value)
    assert decoded.pop("type") == record["type"]
    for name, original in record.items():
        if name == "type":
            continue
        if name == "high_cost_cases":
            assert [(c["case_ref"], c["cost"]) for c in decoded[name]] == [
                (c["case_ref"], Decimal(c["cost"])) for c in original
            ]
        elif name in ("total_cost",):
            assert decoded[name] == Decimal(original)
        else:
            assert decoded[name] == original


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty_message"),
        (None, "empty_message"),
        (b"\x00\x00", "truncated"),
        (b"\x01" + bytes(16) + b"body", "unsupported_framing"),
        (b"hello world", "unsupported_framing"),
        (frame(999, b"\x02x"), "unknown_schema_id"),
        (encode_record(SUBMISSION)[1][:-3], "undecodable"),
        (encode_record(SUBMISSION)[1] + b"\x00\x00", "undecodable"),
        (frame(1, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), "undecodable"),
        (frame(5, b""), "unexpected_schema"),
    ],
)
def test_bytes_that_are_not_a_record_are_refused_with_a_stable_code(data, code):
    with pytest.raises(SerializationError) as err:
        decode_record(data)
    assert err.value.code == code
    assert err.value.message


def test_a_message_framed_with_another_record_types_id_is_refused():
    cost = encode_record(COST)[1]
    wrong = frame(schemas.latest("population").id, cost[5:])
    with pytest.raises(SerializationError) as err:
        decode_record(wrong)
    assert err.value.code == "undecodable"


@pytest.mark.parametrize(
    "line, code, field",
    [
        ({**SUBMISSION, "numerator": "abc"}, "non_numeric", "numerator"),
        ({**SUBMISSION, "numerator": 0.5}, "non_numeric", "numerator"),
        ({k: v for k, v in SUBMISSION.items() if k != "period"}, "missing_field", "period"),
        (
            {k: v for k, v in SUBMISSION.items() if k not in ("numerator", "denominator")},
            "missing_field",
            "value",
        ),
        ({**SUBMISSION, "type": "invoice"}, "unknown_type", "type"),
        ({**COST, "total_cost": "10.555"}, "invalid_amount", "total_cost"),
        ({**COST, "total_cost": "1e20"}, "number_out_of_range", "total_cost"),
        (
            {**COST, "high_cost_cases": [{"case_ref": "A", "cost": "x"}]},
            "non_numeric",
            "high_cost_cases[0].cost",
        ),
        ({**POPULATION, "count": "many"}, "non_numeric", "count"),
        ("not a record", "not_an_object", None),
    ],
)
def test_the_producer_refuses_what_needs_no_contract_to_judge(line, code, field):
    with pytest.raises(RecordRefused) as err:
        encode_record(line)
    assert (err.value.refusal.code, err.value.refusal.field) == (code, field)


def test_what_only_the_ledger_can_judge_is_encoded_and_left_to_it():
    for record in (
        {**SUBMISSION, "numerator": "900"},
        {**SUBMISSION, "provider_id": "nobody"},
        {**SUBMISSION, "period": "1999-01"},
        {**COST, "total_cost": "-5.00"},
    ):
        assert decode_record(encode_record(record)[1])["contract_id"] == "oxon-mh"


def test_a_dead_letter_keeps_the_original_bytes_and_its_coordinates():
    original = b"\x01garbage"
    letter = DeadLetter(
        "ledger.records", 2, 41, b"oxon-mh", original, "unsupported_framing", None, "magic byte 1"
    )
    decoded = decode_dead_letter(letter.encode())
    assert (decoded["topic"], decoded["partition"], decoded["offset"]) == ("ledger.records", 2, 41)
    assert decoded["value"] == original and decoded["key"] == b"oxon-mh"
    assert decoded["code"] == "unsupported_framing" and decoded["dead_lettered_at"].tzinfo is not None
    assert parse_key(b"my.topic:with:colons:2:41") == ("my.topic:with:colons", 2, 41)
    assert parse_key(b"junk") is None


@pytest.mark.parametrize("where", ["total_cost", "high_cost_cases[0].cost"])
def test_a_huge_avro_decimal_is_undecodable_naming_its_field_without_being_converted(where):
    # fastavro's own bytes -> int -> Decimal is quadratic: 900 KB once stalled the consumer ~62 s
    import io
    import time

    from fastavro import schemaless_writer

    from consumers.codec import MAX_DECIMAL_BYTES, _without_decimals

    schema_id = schemas.latest("cost_report").id
    huge = b"\x01" + b"\x00" * 900_000
    value = {
        "report_id": "c-1",
        "contract_id": "oxon-mh",
        "provider_id": "p",
        "period": "2025-Q2",
        "total_cost": huge if where == "total_cost" else b"\x01",
        "high_cost_cases": [{"case_ref": "X", "cost": huge if where != "total_cost" else b"\x01"}],
    }
    out = io.BytesIO()
    schemaless_writer(out, _without_decimals(schemas.parsed(schema_id)), value)
    started = time.monotonic()
    with pytest.raises(SerializationError) as caught:
        decode_record(frame(schema_id, out.getvalue()))
    assert time.monotonic() - started < 10  # not a timing test: the conversion itself took a minute
    assert caught.value.code == "undecodable"
    assert caught.value.message.startswith(f"{where}: a decimal of 900,001 bytes")
    assert f"at most {MAX_DECIMAL_BYTES} bytes" in caught.value.message

    value["total_cost"] = value["high_cost_cases"][0]["cost"] = (-12345).to_bytes(
        MAX_DECIMAL_BYTES, "big", signed=True
    )
    out = io.BytesIO()
    schemaless_writer(out, _without_decimals(schemas.parsed(schema_id)), value)
    decoded = decode_record(frame(schema_id, out.getvalue()))  # the longest accepted, sign-extended
    assert decoded["total_cost"] == Decimal("-123.45")


def test_only_schemas_with_a_decimal_have_their_values_walked_for_decimals(monkeypatch):
    """A submission's numbers are text: its decode skips the decimal walk, a cost report's does not."""
    import consumers.codec as codec

    assert not codec._has_decimals(schemas.parsed(schemas.latest("submission").id))
    assert codec._has_decimals(schemas.parsed(schemas.latest("cost_report").id))  # nested in an array too
    assert codec._has_decimals(
        {
            "type": "record",
            "name": "r",
            "fields": [
                {
                    "name": "f",
                    "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}],
                }
            ],
        }
    )
    assert not codec._has_decimals(None)

    walked = []
    real = codec._with_decimals
    monkeypatch.setattr(codec, "_with_decimals", lambda *a, **k: walked.append(a[0]) or real(*a, **k))
    codec_ = codec.Codec()
    submission = {
        "type": "submission",
        "submission_id": "s-1",
        "contract_id": "oxon-mh",
        "provider_id": "p",
        "indicator_id": "i",
        "period": "2025-Q2",
        "numerator": "3",
        "denominator": "4",
    }
    cost = {
        "type": "cost_report",
        "report_id": "c-1",
        "contract_id": "oxon-mh",
        "provider_id": "p",
        "period": "2025-Q2",
        "total_cost": "10.50",
        "high_cost_cases": [{"case_ref": "X", "cost": "2.25"}],
    }
    assert codec_.decode_record(codec_.encode_record(submission)[1])["numerator"] == "3"
    assert walked == []
    decoded = codec_.decode_record(codec_.encode_record(cost)[1])
    assert walked and walked[0]["report_id"] == "c-1", "a cost report's record is walked"
    assert decoded["total_cost"] == Decimal("10.50")
    assert decoded["high_cost_cases"] == [{"case_ref": "X", "cost": Decimal("2.25")}]
