"""Signed provider submissions: the canonical bytes a signature covers, and its wire form. Pure.

A provider signs each record with its Ed25519 private key; the signature is detached and
travels beside the record as ``"<key_id>:<base64 signature>"`` — in a JSON line's (or
CSV/xlsx row's, or HTTP upload's) ``signature`` field, in the Kafka header
``obc-signature``. The ``signature`` field is not part of the record's content.

**Canonical bytes** of a record are the UTF-8 bytes of :func:`ledger.domain.records.canonical_text`
of its content: ``[type, {field: value}]`` with keys sorted, no spaces, no ASCII escaping,
numbers as plain decimal text by value (``300``, ``"300"`` and ``300.0`` are the same bytes),
absent optional fields as ``null``. It is exactly what the record's digest hashes, so the
same record signs the same whether it arrives as JSON, CSV, xlsx, Avro or over HTTP, and an
auditor re-derives the bytes from the accepted record kept in the ledger
(``sha256(bytes)[:32]`` is the accepted event's ``digest``).

The content fields per type are :data:`CONTENT_FIELDS`. A signer without the contract at
hand computes the bytes from its record with :func:`canonical_bytes_of`; the ledger computes
them from the validated record (:func:`canonical_bytes`). The two agree for every record the
ledger accepts as sent (a ratio indicator carries numerator and denominator, a value
indicator its value; a field the ledger ignores is not signed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ledger.domain.numbers import NotANumber, to_measure, to_money
from ledger.domain.records import (
    Record,
    RecordRefused,
    canonical_text,
    envelope,
    refuse,
    text_field,
    whole_value,
)

SIGNATURE_FIELD = "signature"
KAFKA_HEADER = "obc-signature"
MAX_SIGNATURE_TEXT = 200  # "<16 hex>:<88 base64>" is 105 characters

# the content of each record type, as the digest takes it (ledger.domain.records.check_record)
CONTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "submission": (
        "submission_id",
        "contract_id",
        "provider_id",
        "indicator_id",
        "period",
        "numerator",
        "denominator",
        "value",
    ),
    "cost_report": ("report_id", "contract_id", "provider_id", "period", "total_cost", "high_cost_cases"),
    "population": ("record_id", "contract_id", "year", "segment_id", "count"),
    "outcome_claim": (
        "claim_id",
        "contract_id",
        "provider_id",
        "participant_id",
        "outcome_id",
        "period",
        "evidence",
        "supersedes",
    ),
    "prom_episode": (
        "episode_id",
        "contract_id",
        "provider_id",
        "health_gain_id",
        "period",
        "pre_score",
        "post_score",
        "expected_gain",
        "supersedes",
    ),
}
MEASURES = {"numerator", "denominator", "value", "pre_score", "post_score", "expected_gain"}
WHOLE = {"year", "count"}
OPTIONAL_TEXT = {"evidence", "supersedes"}


def canonical_bytes(record: Record) -> bytes:
    """The bytes a provider's signature covers, from a validated record."""
    content: dict[str, Any] = {}
    for name in CONTENT_FIELDS[record.type]:
        value = getattr(record, name)
        if name == "high_cost_cases":
            value = [list(case) for case in value]
        content[name] = value
    return canonical_text(record.type, content).encode("utf-8")


def canonical_bytes_of(obj: Any) -> bytes:
    """The same bytes from a record in its JSON-lines form, without its contract (for a signer).

    Raises RecordRefused for what the ledger would refuse whatever the contract says."""
    env = envelope(obj)
    fields = env.fields
    content: dict[str, Any] = {}
    for name in CONTENT_FIELDS[env.type]:
        raw = fields.get(name)
        if name == "high_cost_cases":
            cases = raw or []
            if not isinstance(cases, list):
                raise refuse("invalid_field", name, "must be a list of {case_ref, cost}")
            content[name] = [
                [text_field(c, "case_ref"), _number(c.get("cost"), "cost", money=True)] for c in cases
            ]
        elif raw is None and (name in MEASURES or name in OPTIONAL_TEXT):
            content[name] = None
        elif name in MEASURES or name == "total_cost":
            content[name] = _number(raw, name, money=name == "total_cost")
        elif name in WHOLE:
            if raw is None:
                raise refuse("missing_field", name, "is required")
            content[name] = whole_value(raw, name, low=0, high=2**63)
        elif name == "evidence":
            content[name] = raw
        else:
            content[name] = text_field(fields, name)
    return canonical_text(env.type, content).encode("utf-8")


def _number(value: Any, name: str, *, money: bool = False) -> Any:
    if value is None:
        raise refuse("missing_field", name, "is required")
    try:
        return to_money(value) if money else to_measure(value)
    except NotANumber as exc:
        raise refuse(exc.code, name, str(exc)) from None


def content_digest(data: bytes) -> str:
    """The record digest of canonical bytes (as the accepted event stores it)."""
    return hashlib.sha256(data).hexdigest()[:32]


def signature_value(key_id: str, signature_b64: str) -> str:
    """The wire form of a signature: ``<key_id>:<base64>``."""
    return f"{key_id}:{signature_b64}"


def parse_signature(value: Any) -> tuple[str, str]:
    """(key id, base64 signature) of a signature's wire form; refuses anything else as bad_signature."""
    if not isinstance(value, str) or not value or len(value) > MAX_SIGNATURE_TEXT:
        raise refuse(
            "bad_signature",
            SIGNATURE_FIELD,
            "must be '<key_id>:<base64 Ed25519 signature>' (obc-ledger provider sign, produce --sign-key)",
        )
    key_id, sep, signature = value.strip().partition(":")
    if not sep or not key_id or not signature or not key_id.isascii() or not key_id.isalnum():
        raise refuse("bad_signature", SIGNATURE_FIELD, "must be '<key_id>:<base64 Ed25519 signature>'")
    return key_id, signature


@dataclass(frozen=True)
class Signed:
    """A record's verified signature: what the ledger keeps beside the accepted record."""

    key_id: str
    party: str
    signature: str  # base64
    canonical: str  # the canonical bytes, as text


__all__ = [
    "CONTENT_FIELDS",
    "KAFKA_HEADER",
    "SIGNATURE_FIELD",
    "RecordRefused",
    "Signed",
    "canonical_bytes",
    "canonical_bytes_of",
    "content_digest",
    "parse_signature",
    "signature_value",
]
