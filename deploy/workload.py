"""A multi-contract provider stream for the local cluster, built from the demo generator.

``copies`` renamed copies of each demo contract (``oxon-mh-01``, ``cheshire-amh-01``, …),
each with its own deterministic record stream (``ledger.demo.generate``: submissions,
cost reports, population counts, late returns, corrections, duplicates and invalid
records), interleaved into one arrival order as if the providers sent concurrently.
Each contract's own records keep their order, which is all the ledger needs: Kafka
keeps the order of one key (contract id) on one partition, and a JSON-lines ingest
of the same lines sees them in the same relative order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ledger.adapters.yamlio import load_yaml
from ledger.demo.generate import generate_records
from ledger.demo.loader import DEMO_CONTRACTS


@dataclass(frozen=True)
class Workload:
    contracts: tuple[tuple[str, str], ...]  # (contract id, contract YAML), in registration order
    years: int  # contract years the records cover (and that are closed)
    lines: tuple[str, ...]  # JSON lines in arrival order

    @property
    def contract_ids(self) -> list[str]:
        return [cid for cid, _ in self.contracts]

    def write_jsonl(self, path: Path) -> Path:
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            for line in self.lines:
                out.write(line + "\n")
        return path


def renamed(name: str, new_id: str) -> str:
    """The demo contract ``name``'s YAML with its id replaced by ``new_id``."""
    text = resources.files("ledger.demo").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    old = f"  id: {name}\n"
    if text.count(old) != 1:
        raise ValueError(f"cannot find the id line of {name}.yaml")
    return text.replace(old, f"  id: {new_id}\n")


def interleave(streams: list[list[str]]) -> list[str]:
    """Merge streams so each is spread evenly over the result; each keeps its own order."""
    keyed = [
        ((i + 0.5) / len(lines), s, i, line)  # float-ok: an ordering key, not money
        for s, lines in enumerate(streams)
        for i, line in enumerate(lines)
    ]
    return [line for *_, line in sorted(keyed)]


def demo_workload(copies: int = 6, years: int = 3, seed: int = 2025) -> Workload:
    """``copies`` × the two demo contracts, ``years`` contract years of records each."""
    if copies < 1 or years < 1:
        raise ValueError("copies and years must be at least 1")
    contracts: list[tuple[str, str]] = []
    streams: list[list[str]] = []
    for n in range(1, copies + 1):
        for name in DEMO_CONTRACTS:
            cid = f"{name}-{n:02d}"
            text = renamed(name, cid)
            contracts.append((cid, text))
            records = generate_records(load_yaml(text), years, seed)
            streams.append([json.dumps(r, ensure_ascii=False) for r in records])
    return Workload(tuple(contracts), years, tuple(interleave(streams)))
