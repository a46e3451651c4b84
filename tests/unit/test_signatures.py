"""Signed provider submissions: canonical bytes, sign and verify, the refusal codes (no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.adapters.signing import FileSigner, signature_text
from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import parse_definition
from ledger.domain.records import RecordRefused, check_record, envelope
from ledger.domain.signatures import (
    canonical_bytes,
    canonical_bytes_of,
    content_digest,
    parse_signature,
    signature_value,
)
from ledger.usecases.signatures import KeyRing, check_signatures
from tests.unit.test_record_validation import (
    COST,
    POPULATION,
    SUBMISSION,
    VALUE_SUBMISSION,
    capitation_definition,
)
from tests.unit.worked_example import definition

DATA = Path(__file__).resolve().parents[1] / "data" / "rate_cards"


def _rate_card(name: str, records: str):
    defn = parse_definition(load_yaml((DATA / name).read_text()))
    first = json.loads((DATA / records).read_text().splitlines()[0])
    return defn, first


def _validated(obj, defn):
    return check_record(envelope(obj), defn, defn.calendar(False))


CASES = [
    (SUBMISSION, definition),
    (VALUE_SUBMISSION, definition),
    (COST, definition),
    (POPULATION, capitation_definition),
    (None, lambda: _rate_card("employ.yaml", "employ-claims.jsonl")),
    (None, lambda: _rate_card("msk-gain.yaml", "msk-gain-episodes.jsonl")),
]


def _case(obj, make):
    made = make()
    if obj is None:
        defn, obj = made
    else:
        defn = made
    return obj, defn


@pytest.mark.parametrize("obj,make", CASES, ids=["ratio", "value", "cost", "population", "claim", "episode"])
def test_canonical_bytes_are_what_the_digest_hashes_and_a_signer_computes_them_without_the_contract(
    obj, make
):
    obj, defn = _case(obj, make)
    record = _validated(obj, defn)
    data = canonical_bytes(record)
    assert content_digest(data) == record.digest
    assert canonical_bytes_of(obj) == data
    assert b" " not in data.replace(b"Bedfordshire ", b"")  # no spaces between tokens
    kind, content = json.loads(data)
    assert kind == record.type and list(content) == sorted(content)


def test_numbers_count_by_value_and_transport_fields_are_not_signed():
    a = canonical_bytes_of({**SUBMISSION, "numerator": 340, "denominator": "470.0"})
    b = canonical_bytes_of({**SUBMISSION, "signature": "x:y", "submitted_at": "2026-07-01T00:00:00Z"})
    assert a == b
    assert b'"numerator":"340"' in a and b'"denominator":"470"' in a


def _key():
    return FileSigner(Ed25519PrivateKey.generate())


def _ring(*signers_parties, required=True):
    keys = {}
    for signer, party in signers_parties:
        pem = signer.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        keys[signer.key_id] = {"party": party, "public_key": pem, "added_at": "t", "revoked_at": None}
    return KeyRing(required, keys)


def _sign(obj, signer):
    return {
        **obj,
        "signature": signature_value(signer.key_id, signature_text(signer.sign(canonical_bytes_of(obj)))),
    }


def _code(obj, ring):
    record = _validated(obj, definition())
    try:
        check_signatures(record, obj, ring)
    except RecordRefused as exc:
        return exc.refusal.code, exc.refusal.field
    return None


def test_a_good_signature_verifies_and_is_kept_with_its_key_and_party():
    circle = _key()
    signed = _sign(SUBMISSION, circle)
    record = _validated(signed, definition())
    kept = check_signatures(record, signed, _ring((circle, "circle")))
    assert kept is not None and (kept.key_id, kept.party) == (circle.key_id, "circle")
    assert kept.canonical.encode() == canonical_bytes(record)
    assert (
        circle.public.verify(__import__("base64").b64decode(kept.signature), kept.canonical.encode()) is None
    )


def test_unsigned_tampered_and_other_partys_records_are_refused_with_their_codes():
    circle, physio, stranger = _key(), _key(), _key()
    ring = _ring((circle, "circle"), (physio, "physio"))
    assert _code(SUBMISSION, ring) == ("unsigned_record", "signature")
    tampered = {**_sign(SUBMISSION, circle), "numerator": "341"}
    assert _code(tampered, ring) == ("bad_signature", "signature")
    assert _code(_sign(SUBMISSION, physio), ring) == ("provider_mismatch", "provider_id")
    assert _code(_sign(SUBMISSION, stranger), ring) == ("bad_signature", "signature")  # not registered
    garbage = {**SUBMISSION, "signature": f"{circle.key_id}:not-base64!"}
    assert _code(garbage, ring) == ("bad_signature", "signature")
    assert _code({**SUBMISSION, "signature": "no colon"}, ring) == ("bad_signature", "signature")
    assert _code({**SUBMISSION, "signature": 7}, ring) == ("bad_signature", "signature")
    revoked = _ring((circle, "circle"))
    revoked.keys[circle.key_id]["revoked_at"] = "2026-12-01T00:00:00+00:00"
    assert _code(_sign(SUBMISSION, circle), revoked) == ("bad_signature", "signature")


def test_a_contract_not_requiring_signatures_accepts_unsigned_but_still_checks_a_present_one():
    circle = _key()
    ring = _ring((circle, "circle"), required=False)
    assert _code(SUBMISSION, ring) is None
    assert _code(_sign(SUBMISSION, circle), ring) is None
    assert _code({**_sign(SUBMISSION, circle), "numerator": "1"}, ring) == ("bad_signature", "signature")


def test_the_wire_form_is_key_id_colon_base64():
    assert parse_signature("abcdef0123456789:QUJD") == ("abcdef0123456789", "QUJD")
    with pytest.raises(RecordRefused):
        parse_signature("x" * 300)


def test_produce_puts_the_signature_in_the_header_and_the_consumer_reads_it_back_into_the_record():
    from consumers.producer import signature_headers
    from consumers.signatures import with_signature

    circle = _key()
    [(name, value)] = signature_headers(SUBMISSION, circle)
    assert name == "obc-signature"
    key_id, _ = parse_signature(value.decode())
    assert key_id == circle.key_id
    assert signature_headers(SUBMISSION, None) == []
    presigned = _sign(SUBMISSION, circle)
    assert signature_headers(presigned, None) == [("obc-signature", presigned["signature"].encode())]
    decoded = with_signature(dict(SUBMISSION), [("other", b"x"), ("obc-signature", value)])
    assert _code(decoded, _ring((circle, "circle"))) is None
    assert "signature" not in with_signature(dict(SUBMISSION), [("other", b"x")])
    hostile = with_signature(dict(SUBMISSION), [("obc-signature", b"\xff" * 100_000)])
    assert len(hostile["signature"]) <= 201
    assert _code(hostile, _ring((circle, "circle"))) == ("bad_signature", "signature")
