"""The public worked example (``ledger/examples``) as test material.

The only I/O in the unit tests is reading these three files. Records are
replayed the way the spec describes: a repeated id with the same content is a
duplicate (not applied twice) and, per (indicator, period, provider) for
submissions and (provider, period) for cost reports, the latest version in
arrival order counts.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import ledger.examples
from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import ContractDefinition, parse_definition
from ledger.domain.records import CostReport, Submission, check_record, envelope, parse_json_line
from ledger.domain.rules.outcomes import Observation
from ledger.domain.rules.riskshare import CostFact

EXAMPLES = Path(ledger.examples.__file__).parent


@lru_cache(maxsize=1)
def _document() -> Any:
    return load_yaml((EXAMPLES / "worked-example.yaml").read_text())


def document() -> dict[str, Any]:
    """A fresh, freely mutable copy of the worked example's contract document."""
    return copy.deepcopy(_document())


@lru_cache(maxsize=1)
def definition() -> ContractDefinition:
    return parse_definition(document())


@lru_cache(maxsize=1)
def expected_statements() -> dict[int, dict[str, Any]]:
    statements = json.loads((EXAMPLES / "worked-example-expected.json").read_text())
    return {s["year"]: s for s in statements}


@lru_cache(maxsize=1)
def data_lines() -> tuple[str, ...]:
    text = (EXAMPLES / "worked-example-data.jsonl").read_text()
    return tuple(line for line in text.splitlines() if line.strip())


def accepted_records(defn: ContractDefinition | None = None) -> list[Submission | CostReport]:
    """Every accepted record in arrival order, duplicates (same id, same content) dropped."""
    defn = defn or definition()
    calendar = defn.calendar()
    seen: dict[str, str] = {}
    out = []
    for line in data_lines():
        record = check_record(envelope(parse_json_line(line)), defn, calendar)
        if record.record_id in seen:
            assert seen[record.record_id] == record.digest, f"conflicting duplicate {record.record_id}"
            continue
        seen[record.record_id] = record.digest
        out.append(record)
    return out


def latest_for_year(
    year: int, defn: ContractDefinition | None = None
) -> tuple[list[Observation], list[CostFact]]:
    """Observations and cost facts of ``year``: the latest version per key, in arrival order."""
    defn = defn or definition()
    calendar = defn.calendar()
    submissions: dict[tuple[str, str, str], Submission] = {}
    costs: dict[tuple[str, str], CostReport] = {}
    for record in accepted_records(defn):
        if record.year != year:
            continue
        if isinstance(record, Submission):
            submissions[(record.indicator_id, record.period, record.provider_id)] = record
        else:
            costs[(record.provider_id, record.period)] = record
    observations = [
        Observation(
            s.submission_id,
            s.indicator_id,
            s.provider_id,
            calendar.period(s.period),
            s.numerator,
            s.denominator,
            s.value,
        )
        for s in submissions.values()
    ]
    facts = [
        CostFact(c.report_id, c.provider_id, calendar.period(c.period), c.total_cost, c.high_cost_cases)
        for c in costs.values()
    ]
    return observations, facts
