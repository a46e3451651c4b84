"""Avro on the wire: Confluent framing and the providers' record types.

A message value is ``0x00`` + the schema id (4 bytes, big endian) + the Avro body
written with that schema (ids from :mod:`schemas`). Decoding resolves the writer's
version to the newest reader of its subject, so v1 messages stay readable.

* :func:`encode_record` turns a record in its JSON-lines form (contract-format.md)
  into framed bytes, refusing what cannot be checked or encoded without the ledger
  (:class:`ledger.domain.records.RecordRefused`, the same reason codes as ``ingest``).
* :func:`decode_record` turns framed bytes back into the JSON-lines form, or raises
  :class:`SerializationError` with a stable code (the message goes to the dead letters).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from copy import deepcopy
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

import schemas
from ledger.domain.records import (
    ID_FIELDS,
    RecordRefused,
    envelope,
    measure_field,
    money_field,
    refuse,
    text_field,
    whole_value,
    within,
)
from schemas.confluent import ConfluentRegistry, NotInRegistry, full_name

MAGIC = 0
HEADER = struct.Struct(">bI")
MAX_MONEY = Decimal(10) ** 16  # decimal(18, 2)
# Longest Avro decimal read: decimal(38) fits 16 bytes; ours are decimal(18, 2), 8 bytes. fastavro
# turns decimal bytes into an int and then a Decimal, quadratic in the length (a 900 KB field took
# a minute), so decimals are read as plain bytes and converted here after this check.
MAX_DECIMAL_BYTES = 16


class SerializationError(Exception):
    """Bytes that are not a record we can read; ``code`` is stable (a dead-letter reason)."""

    def __init__(self, code: str, message: str, schema_id: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.schema_id = schema_id


# ---------------------------------------------------------------- framing


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + body


def unframe(data: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro body) of a Confluent-framed message."""
    if not data:
        raise SerializationError("empty_message", "the message has no value")
    if data[0] != MAGIC:
        hint = " (magic byte 1: a schema GUID framing this ledger does not accept)" if data[0] == 1 else ""
        raise SerializationError(
            "unsupported_framing", f"magic byte {data[0]}, expected 0 (Confluent framing){hint}"
        )
    if len(data) < HEADER.size:
        raise SerializationError("truncated", f"{len(data)} byte(s): shorter than the 5-byte framing header")
    return HEADER.unpack_from(data)[1], data[HEADER.size :]


class LocalIds:
    """Ids on the wire are the fixed ids of :data:`schemas.SCHEMA_IDS` (no registry configured)."""

    def __init__(self) -> None:
        self._resolved: dict[int, tuple[schemas.SchemaVersion, Any, Any]] = {}

    def wire_id(self, schema_id: int) -> int:
        return schema_id

    def resolve(self, wire_id: int) -> tuple[schemas.SchemaVersion, Any, Any]:
        """(writer version, writer schema, reader schema or None when the writer is the newest)."""
        found = self._resolved.get(wire_id)
        if found is None:
            found = self._resolved[wire_id] = self._lookup(wire_id)
        return found

    def _lookup(self, wire_id: int) -> tuple[schemas.SchemaVersion, Any, Any]:
        return self._local(wire_id)

    @staticmethod
    def _local(schema_id: int) -> tuple[schemas.SchemaVersion, Any, Any]:
        try:
            writer = schemas.by_id(schema_id)
        except schemas.UnknownSchema:
            raise SerializationError(
                "unknown_schema_id", f"schema id {schema_id} is not in the registry", schema_id
            ) from None
        reader = schemas.latest(writer.subject)
        return (
            writer,
            schemas.parsed(schema_id),
            None if reader.id == schema_id else schemas.parsed(reader.id),
        )


class RegistryIds(LocalIds):
    """Ids on the wire are a Confluent-compatible registry's (schemas/confluent.py)."""

    def __init__(self, registry: Any) -> None:
        super().__init__()
        self.registry = registry
        self._wire: dict[int, int] = {}

    def wire_id(self, schema_id: int) -> int:
        found = self._wire.get(schema_id)
        if found is None:
            sv = schemas.by_id(schema_id)
            found = self._wire[schema_id] = self.registry.register(schemas.raw(sv.subject, sv.version))
        return found

    def _lookup(self, wire_id: int) -> tuple[schemas.SchemaVersion, Any, Any]:
        try:
            document = self.registry.schema(wire_id)  # RegistryUnavailable propagates: not a dead letter
        except NotInRegistry as exc:
            raise SerializationError("unknown_schema_id", str(exc), wire_id) from None
        try:
            writer_schema = parse_schema(document)
        except Exception as exc:  # fastavro's SchemaParseException and friends
            raise SerializationError(
                "unknown_schema_id",
                f"schema id {wire_id} in the registry is not a usable Avro schema ({exc})"[:300],
                wire_id,
            ) from None
        canonical = to_parsing_canonical_form(writer_schema)
        for schema_id in schemas.SCHEMA_IDS:
            if to_parsing_canonical_form(schemas.parsed(schema_id)) == canonical:
                return self._local(schema_id)
        name = full_name(document)
        for subject in schemas.subjects():
            newest = schemas.latest(subject)
            if full_name(schemas.raw(subject, newest.version)) == name:
                # a version this ledger does not have: the writer's schema, resolved to our newest reader
                return schemas.SchemaVersion(wire_id, subject, 0), writer_schema, schemas.parsed(newest.id)
        raise SerializationError(
            "unknown_schema_id",
            f"schema id {wire_id} is a {name} schema, which this ledger does not read",
            wire_id,
        )


def _label(writer: schemas.SchemaVersion) -> str:
    return (
        f"{writer.subject} v{writer.version}"
        if writer.version
        else f"{writer.subject} (registry id {writer.id})"
    )


class Codec:
    """Frames and reads Avro messages with one set of schema ids: the fixed ids of :mod:`schemas`
    (:data:`FIXED_IDS`), or a Confluent-compatible registry's (:meth:`for_registry`).

    Built once by the wiring (``ledger.bootstrap``) and handed to the producer, the consumer, the
    dead letters and the decisions publisher; there is no process-wide registry setting.
    """

    def __init__(self, ids: LocalIds | None = None) -> None:
        self.ids = ids if ids is not None else LocalIds()
        self._plain: dict[int, tuple[Any, Any, bool]] = {}  # id -> plain writer, plain reader, has decimals

    @classmethod
    def for_registry(cls, url: str | None) -> Codec:
        """Ids from the registry at ``url`` (None or empty: the local fixed ids)."""
        if not url:
            return cls()
        return cls(RegistryIds(ConfluentRegistry(url)))

    def encode(self, schema_id: int, value: Mapping[str, Any]) -> bytes:
        """Avro body written with local schema ``schema_id``, framed with its id on the wire."""
        return frame(self.ids.wire_id(schema_id), avro_body(schema_id, value))

    def decode(
        self, data: bytes | None, subjects: tuple[str, ...] | None = None
    ) -> tuple[schemas.SchemaVersion, dict[str, Any]]:
        """Read framed bytes with the newest reader of the writer's subject."""
        schema_id, body = unframe(data)
        writer, writer_schema, reader_schema = self.ids.resolve(schema_id)
        if subjects is not None and writer.subject not in subjects:
            raise SerializationError(
                "unexpected_schema",
                f"schema id {schema_id} is a {writer.subject} schema; this topic carries {', '.join(subjects)}",
                schema_id,
            )
        read_as = reader_schema if reader_schema is not None else writer_schema  # what ``value`` follows
        plain = self._plain.get(schema_id)
        if plain is None:
            plain = (
                _without_decimals(writer_schema),
                _without_decimals(reader_schema),
                _has_decimals(read_as),
            )
            if len(self._plain) < 1024:
                self._plain[schema_id] = plain
        fo = io.BytesIO(body)
        try:
            value = schemaless_reader(fo, plain[0], plain[1])
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, UnicodeDecodeError, …
            raise SerializationError(
                "undecodable",
                f"not a valid {_label(writer)} Avro body ({type(exc).__name__}: {exc})"[:300],
                schema_id,
            ) from None
        if fo.tell() != len(body):
            raise SerializationError(
                "undecodable",
                f"{len(body) - fo.tell()} trailing byte(s) after the {_label(writer)} Avro body",
                schema_id,
            )
        if not isinstance(value, dict):  # every schema of schemas/ is a record
            raise SerializationError(
                "undecodable", f"a {_label(writer)} body that is not a record", schema_id
            )
        if not plain[2]:  # no decimal to convert or bound (a submission's numbers are text)
            return writer, value
        try:
            value = _with_decimals(value, read_as, "")
        except _LongDecimal as exc:
            raise SerializationError(
                "undecodable",
                f"{exc.path}: a decimal of {exc.length:,} bytes in a {_label(writer)} body; "
                f"at most {MAX_DECIMAL_BYTES} bytes are read",
                schema_id,
            ) from None
        except Exception as exc:  # a registry schema's odd precision (0, a string, …)
            raise SerializationError(
                "undecodable",
                f"a decimal in a {_label(writer)} body cannot be read ({type(exc).__name__}: {exc})"[:300],
                schema_id,
            ) from None
        return writer, value

    def encode_record(self, obj: Any) -> tuple[bytes, bytes]:
        """(key, framed value) for a record in its JSON-lines form; the key is the contract id."""
        subject, value = to_avro(obj)
        return value["contract_id"].encode(), self.encode(schemas.latest(subject).id, value)

    def decode_record(self, data: bytes | None) -> dict[str, Any]:
        """A provider's record from framed bytes, in its JSON-lines form; raises SerializationError."""
        writer, value = self.decode(data, schemas.RECORD_SUBJECTS)
        return from_avro(writer.subject, value)


def _is_decimal(schema: Any) -> bool:
    return (
        isinstance(schema, dict) and schema.get("type") == "bytes" and schema.get("logicalType") == "decimal"
    )


def _nodes(schema: Any) -> Iterator[Any]:
    """Every dict and list of a parsed schema, each once (its named types included)."""
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, dict):
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))


def _without_decimals(schema: Any) -> Any:
    """A copy of a parsed schema whose bytes decimals are plain bytes (fastavro then leaves them alone)."""
    if schema is None:
        return None
    copy = deepcopy(schema)  # keeps __named_schemas pointing at the copied (stripped) types
    for node in list(_nodes(copy)):
        if _is_decimal(node):
            del node["logicalType"]
    return copy


def _has_decimals(schema: Any) -> bool:
    """Whether a parsed schema has a bytes decimal anywhere (else :func:`_with_decimals` has nothing to do)."""
    return schema is not None and any(_is_decimal(node) for node in _nodes(schema))


class _LongDecimal(Exception):
    def __init__(self, path: str, length: int) -> None:
        self.path, self.length = path, length


def _with_decimals(value: Any, schema: Any, path: str, named: Mapping[str, Any] | None = None) -> Any:
    """``value`` read with :func:`_without_decimals`'s schema, its decimal bytes turned into Decimal as
    fastavro would (precision and scale of the schema), refusing bytes longer than MAX_DECIMAL_BYTES."""
    if named is None:
        named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if _is_decimal(schema):
        if not isinstance(value, bytes):
            return value
        if len(value) > MAX_DECIMAL_BYTES:
            raise _LongDecimal(path or "value", len(value))
        context = Context(prec=schema["precision"])
        return context.create_decimal(int.from_bytes(value, "big", signed=True)).scaleb(
            -schema.get("scale", 0), context
        )
    if isinstance(schema, list):  # a union: the branch the value was read with
        for branch in schema:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            if _is_decimal(resolved) and isinstance(value, bytes):
                return _with_decimals(value, resolved, path, named)
        for branch in schema:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            kind = resolved.get("type") if isinstance(resolved, dict) else None
            if (kind == "record" and isinstance(value, dict)) or (
                kind == "array" and isinstance(value, list)
            ):
                return _with_decimals(value, resolved, path, named)
            if kind == "map" and isinstance(value, dict):
                return _with_decimals(value, resolved, path, named)
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if kind == "record" and isinstance(value, dict):
        for field in schema.get("fields", ()):
            name = field["name"]
            if name in value:
                value[name] = _with_decimals(
                    value[name], field["type"], f"{path}.{name}" if path else name, named
                )
        return value
    if kind == "array" and isinstance(value, list):
        return [_with_decimals(v, schema["items"], f"{path}[{i}]", named) for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: _with_decimals(v, schema["values"], f"{path}.{k}", named) for k, v in value.items()}
    return value


def avro_body(schema_id: int, value: Mapping[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schemas.parsed(schema_id), dict(value))
    return out.getvalue()


def encode(schema_id: int, value: Mapping[str, Any]) -> bytes:
    """:meth:`Codec.encode` with the fixed ids of :mod:`schemas`."""
    return FIXED_IDS.encode(schema_id, value)


def decode(
    data: bytes | None, subjects: tuple[str, ...] | None = None
) -> tuple[schemas.SchemaVersion, dict[str, Any]]:
    """:meth:`Codec.decode` with the fixed ids of :mod:`schemas`."""
    return FIXED_IDS.decode(data, subjects)


# ---------------------------------------------------------------- records


def _decimal_text(obj: Mapping[str, Any], name: str) -> str | None:
    number = measure_field(obj, name, required=False)
    if number is None:
        return None
    value = obj[name]
    return value.strip() if isinstance(value, str) else format(number, "f")


def _money(obj: Mapping[str, Any], name: str, path: str | None = None) -> Decimal:
    with within(path.rsplit(".", 1)[0]) if path and "." in path else nullcontext():
        amount = money_field(obj, name, allow_negative=True)  # the sign is the ledger's to judge
    return amount.quantize(Decimal("0.01"))  # bounded to 13 integer digits: fits decimal(18, 2)


def _whole(obj: Mapping[str, Any], name: str, code: str) -> int:
    value = obj.get(name)
    if value is None:
        raise refuse("missing_field", name, "is required")
    try:
        return whole_value(value, name, low=0, high=2**31 - 1)
    except RecordRefused as exc:
        if exc.refusal.code == "non_numeric":
            raise refuse(code, name, exc.refusal.message) from None
        raise


def to_avro(obj: Any) -> tuple[str, dict[str, Any]]:
    """(subject, Avro value) of a record in its JSON-lines form; raises RecordRefused.

    Checks what needs no contract: the envelope, required fields, numbers that are
    numbers, money with at most two places. The rest (is the provider a party, is the
    period in the term, …) is the ledger's to decide, and goes to the dead letters.
    """
    env = envelope(obj)
    kind = env.type
    if kind == "submission":
        value: dict[str, Any] = {"submission_id": env.record_id, "contract_id": env.contract_id}
        for name in ("provider_id", "indicator_id", "period"):
            value[name] = text_field(obj, name)
        for name in ("numerator", "denominator", "value"):
            value[name] = _decimal_text(obj, name)
        if value["value"] is None and value["numerator"] is None:
            raise refuse("missing_field", "value", "send value, or numerator and denominator")
        if value["numerator"] is not None and value["denominator"] is None:
            raise refuse("missing_field", "denominator", "a numerator needs its denominator")
        value["submitted_at"] = None
        return kind, value
    if kind == "outcome_claim":
        value = {"claim_id": env.record_id, "contract_id": env.contract_id}
        for name in ("provider_id", "participant_id", "outcome_id", "period"):
            value[name] = text_field(obj, name)
        evidence = obj.get("evidence")
        if evidence is not None and not isinstance(evidence, str):
            raise refuse("invalid_field", "evidence", "must be text")
        value["evidence"] = evidence
        value["supersedes"] = text_field(obj, "supersedes") if obj.get("supersedes") is not None else None
        return kind, value
    if kind == "prom_episode":
        value = {"episode_id": env.record_id, "contract_id": env.contract_id}
        for name in ("provider_id", "health_gain_id", "period"):
            value[name] = text_field(obj, name)
        for name in ("pre_score", "post_score"):
            text = _decimal_text(obj, name)
            if text is None:
                raise refuse("missing_field", name, "is required")
            value[name] = text
        value["expected_gain"] = _decimal_text(obj, "expected_gain")
        value["supersedes"] = text_field(obj, "supersedes") if obj.get("supersedes") is not None else None
        return kind, value
    if kind == "cost_report":
        value = {
            "report_id": env.record_id,
            "contract_id": env.contract_id,
            "provider_id": text_field(obj, "provider_id"),
            "period": text_field(obj, "period"),
            "total_cost": _money(obj, "total_cost"),
            "high_cost_cases": [],
        }
        cases = obj.get("high_cost_cases") or []
        if not isinstance(cases, list):
            raise refuse("invalid_field", "high_cost_cases", "must be a list of {case_ref, cost}")
        for i, case in enumerate(cases):
            path = f"high_cost_cases[{i}]"
            if not isinstance(case, dict):
                raise refuse("invalid_field", path, "must be an object {case_ref, cost}")
            with within(path):
                ref = text_field(case, "case_ref")
            value["high_cost_cases"].append({"case_ref": ref, "cost": _money(case, "cost", f"{path}.cost")})
        return kind, value
    return kind, {
        "record_id": env.record_id,
        "contract_id": env.contract_id,
        "year": _whole(obj, "year", "invalid_field"),
        "segment_id": text_field(obj, "segment_id"),
        "count": _whole(obj, "count", "non_numeric"),
    }


def check_record(obj: Any) -> None:
    """Raise RecordRefused if ``obj`` could not be sent; touches no registry (``produce --check``)."""
    subject, value = to_avro(obj)
    avro_body(schemas.latest(subject).id, value)


def encode_record(obj: Any) -> tuple[bytes, bytes]:
    """:meth:`Codec.encode_record` with the fixed ids of :mod:`schemas`."""
    return FIXED_IDS.encode_record(obj)


def from_avro(subject: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-lines form of a decoded record (``type`` first, absent optionals dropped)."""
    out: dict[str, Any] = {"type": subject}
    out.update((name, v) for name, v in value.items() if v is not None)
    at = out.get("submitted_at")
    if isinstance(at, datetime):
        out["submitted_at"] = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return out


def decode_record(data: bytes | None) -> dict[str, Any]:
    """:meth:`Codec.decode_record` with the fixed ids of :mod:`schemas`."""
    return FIXED_IDS.decode_record(data)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def record_text(record: Mapping[str, Any]) -> str:
    """A decoded record as one JSON line (kept as the raw text of a rejected record)."""
    return json.dumps(record, default=_json_default, separators=(", ", ": "))


FIXED_IDS = Codec()  # the fixed ids of schemas/: no registry

assert set(ID_FIELDS) == set(schemas.RECORD_SUBJECTS)
