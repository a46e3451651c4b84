"""Avro schemas: the wire contract with providers and finance systems, versioned.

Every schema version has one fixed id, listed in :data:`SCHEMA_IDS` and nowhere
else; it is the id carried in each message's Confluent framing (magic byte 0,
4-byte big-endian id, Avro body). Ids are never reused or renumbered: a new
version gets a new id and old messages stay readable by the newest reader of
their subject (checked transitively in tests/unit/test_avro_schemas.py).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

# id -> (subject, version). Append only.
SCHEMA_IDS: dict[int, tuple[str, int]] = {
    1: ("submission", 1),
    2: ("submission", 2),
    3: ("cost_report", 1),
    4: ("population", 1),
    5: ("dead_letter", 1),
    6: ("decision", 1),
    7: ("dead_letter", 2),
    8: ("outcome_claim", 1),
    9: ("prom_episode", 1),
}

# Subjects a provider may send on an inbound topic (the record's ``type``).
RECORD_SUBJECTS = ("submission", "cost_report", "population", "outcome_claim", "prom_episode")


class SchemaVersion(NamedTuple):
    id: int
    subject: str
    version: int


class UnknownSchema(LookupError):
    pass


def raw(subject: str, version: int) -> dict[str, Any]:
    """The schema document of ``subject`` version ``version`` (``schemas/<subject>.v<version>.avsc``)."""
    text = files(__name__).joinpath(f"{subject}.v{version}.avsc").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _versions(subject: str) -> tuple[SchemaVersion, ...]:
    return tuple(
        sorted(
            (SchemaVersion(i, s, v) for i, (s, v) in SCHEMA_IDS.items() if s == subject),
            key=lambda sv: sv.version,
        )
    )


def versions(subject: str) -> list[SchemaVersion]:
    """Every registered version of ``subject``, oldest first."""
    found = _versions(subject)
    if not found:
        raise UnknownSchema(f"no schema subject {subject!r}")
    return list(found)


def subjects() -> list[str]:
    return sorted({s for s, _ in SCHEMA_IDS.values()})


@cache
def latest(subject: str) -> SchemaVersion:
    return versions(subject)[-1]


def by_id(schema_id: int) -> SchemaVersion:
    try:
        subject, version = SCHEMA_IDS[schema_id]
    except KeyError:
        raise UnknownSchema(f"schema id {schema_id} is not registered") from None
    return SchemaVersion(schema_id, subject, version)


@cache
def parsed(schema_id: int) -> Any:
    """The fastavro-parsed schema for ``schema_id``."""
    from fastavro import parse_schema

    sv = by_id(schema_id)
    return parse_schema(raw(sv.subject, sv.version))


def incompatibilities(subject: str, candidate: dict[str, Any], before: int | None = None) -> list[str]:
    """Why ``candidate`` cannot be the next version of ``subject`` (empty: it can).

    ``before``: check only against versions older than this one (to re-check a
    registered version against its predecessors).

    Transitive: the candidate, as reader, must read data written with *every* earlier
    version (auditors replay all history with today's reader). Uses the ``avro``
    package's checker (a test/dev dependency).
    """
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.schema import parse

    reader = parse(json.dumps(candidate))
    problems = []
    for sv in versions(subject):
        if before is not None and sv.version >= before:
            continue
        writer = parse(json.dumps(raw(sv.subject, sv.version)))
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
        if result.compatibility is not SchemaCompatibilityType.compatible:
            kinds = ", ".join(sorted(k.value for k in result.incompatibilities))
            detail = "; ".join(sorted(str(m) for m in result.messages))
            problems.append(f"cannot read {subject} v{sv.version} (id {sv.id}): {kinds} ({detail})")
    return problems
