"""Deterministic demo data: the providers' record stream for a demo contract.

    python -m ledger.demo.generate OUT_DIR [--seed 2025] [--years N]

writes ``OUT_DIR/<contract-id>.jsonl`` for both demo contracts (``oxon-mh``,
``cheshire-amh``) and prints counts by record type and by kind. The same seed
always gives byte-identical files: only ``random.Random(seed)`` draws of
integers, ``Decimal`` and ``datetime`` are used, and no float reaches a record.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.demo.anomalies import add_corrections, add_duplicates, add_invalid_records, add_late_submissions
from ledger.demo.finance import add_cost_reports, add_population_counts
from ledger.demo.loader import DEMO_CONTRACTS, load_definition
from ledger.demo.measures import add_submissions
from ledger.demo.stream import KINDS, Stream, Tagged

__all__ = ["generate_records", "generate_tagged_records", "load_definition", "main", "write_jsonl"]


def generate_tagged_records(
    definition: dict[str, Any], years: int | None = None, seed: int = 2025
) -> list[Tagged]:
    """The stream in arrival order, each record with its kind, detail and contract year."""
    contract = definition["contract"]
    term = int(contract["years"]) + int(contract.get("extension_years") or 0)
    years = int(contract["years"]) if years is None else years
    if not 1 <= years <= term:
        raise ValueError(f"years must be between 1 and {term} for {contract['id']} (got {years})")
    stream = Stream(contract["id"], random.Random(f"obc-ledger-demo:{seed}:{contract['id']}"))
    add_submissions(stream, definition, years)
    add_cost_reports(stream, definition, years)
    add_population_counts(stream, definition, years)
    add_late_submissions(stream, definition, years)
    add_corrections(stream, definition)
    add_duplicates(stream)
    add_invalid_records(stream, definition)
    tagged = stream.materialize()
    for item in tagged:
        _check_no_floats(item.record)
    return tagged


def generate_records(definition: dict[str, Any], years: int, seed: int = 2025) -> list[dict]:
    """The providers' records (submission, cost_report, population) in arrival order."""
    return [item.record for item in generate_tagged_records(definition, years, seed)]


def _check_no_floats(value: Any) -> None:
    if isinstance(value, (float, Decimal)):
        raise TypeError(f"a record field must be text or a whole number, not {value!r}")
    if isinstance(value, dict):
        for item in value.values():
            _check_no_floats(item)
    elif isinstance(value, list):
        for item in value:
            _check_no_floats(item)


def write_jsonl(records: Iterable[dict], path: str | Path) -> None:
    """One JSON object per line (UTF-8, newline-terminated)."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def summary(tagged: Sequence[Tagged]) -> dict[str, Counter]:
    return {
        "type": Counter(t.record["type"] for t in tagged),
        "kind": Counter(t.kind for t in tagged),
        "late": Counter(t.kind for t in tagged if t.detail == "late"),
        "invalid": Counter(t.detail for t in tagged if t.kind == "invalid"),
    }


def _line(counter: Counter, keys: Iterable[str]) -> str:
    return ", ".join(f"{k} {counter.get(k, 0)}" for k in keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.demo.generate",
        description="Write the demo contracts' record streams as JSON lines.",
    )
    parser.add_argument("out_dir", help="directory for <contract-id>.jsonl (created if missing)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--years", type=int, default=None, help="contract years to generate (default: the term)"
    )
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    totals: dict[str, Counter] = {"type": Counter(), "kind": Counter()}
    for name in DEMO_CONTRACTS:
        definition = load_definition(name)
        tagged = generate_tagged_records(definition, args.years, args.seed)
        path = out_dir / f"{definition['contract']['id']}.jsonl"
        write_jsonl((t.record for t in tagged), path)
        counts = summary(tagged)
        totals["type"].update(counts["type"])
        totals["kind"].update(counts["kind"])
        print(f"{definition['contract']['id']}: {len(tagged)} records -> {path}")
        print(f"  by type: {_line(counts['type'], ('submission', 'cost_report', 'population'))}")
        print(f"  by kind: {_line(counts['kind'], KINDS)}")
        print(f"  late (> 60 days after their year ends): {_line(counts['late'], ('normal', 'correction'))}")
        print(f"  invalid: {', '.join(sorted(counts['invalid']))}")
    print(f"total: {sum(totals['type'].values())} records")
    print(f"  by type: {_line(totals['type'], ('submission', 'cost_report', 'population'))}")
    print(f"  by kind: {_line(totals['kind'], KINDS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
