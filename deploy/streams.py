"""A deterministic provider stream with bad records, for the streaming tests and the fault
benchmark (``bench/faults.py``): contracts, records, bad records.

Several copies of the worked-example contract (so records keyed by contract id spread
over partitions); submissions with corrections, cost reports, byte-identical
duplicates, records only the ledger can refuse, and (Kafka only) bytes that are not
records at all.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass, field
from importlib import resources

from consumers.codec import encode_record, frame
from ledger.usecases import services_for

WORKED = resources.files("ledger.examples").joinpath("worked-example.yaml").read_text(encoding="utf-8")
MEASURES = (
    ("proms-improved", "ratio"),
    ("readmissions", "value"),
    ("shared-decisions.offered", "ratio"),
    ("shared-decisions.documented", "ratio"),
)
PROVIDERS = ("circle", "physio")
PERIODS = tuple(f"{y}-Q{q}" for y in (2025, 2026, 2027, 2028) for q in (1, 2, 3, 4))[
    1:13
]  # 2025-Q2 .. 2028-Q1


def contract_yaml(contract_id: str) -> str:
    return WORKED.replace("id: beds-msk", f"id: {contract_id}", 1)


def contract_ids(n: int) -> list[str]:
    return [f"msk-{i:02d}" for i in range(n)]


def register(app, contracts: list[str]) -> None:
    for cid in contracts:
        services_for(app).registration.register_contract(contract_yaml(cid))


@dataclass
class Stream:
    lines: list[str] = field(default_factory=list)  # the JSON-lines file (records, duplicates, bad records)
    bad_lines: set[int] = field(default_factory=set)  # indexes into lines the ledger refuses
    duplicates: int = 0
    # Kafka-only messages (not records at all), inserted before lines[i]: i -> [(key, value, code)]
    garbage: dict[int, list[tuple[bytes | None, bytes, str]]] = field(default_factory=dict)

    def messages(self):
        """(key, value, is_bad) in the order they are sent."""
        for i, line in enumerate(self.lines):
            for key, value, _ in self.garbage.get(i, ()):
                yield key, value, True
            key, value = encode_record(json.loads(line))
            yield key, value, i in self.bad_lines

    @property
    def bad_count(self) -> int:
        return len(self.bad_lines) + sum(len(g) for g in self.garbage.values())

    @property
    def total(self) -> int:
        return len(self.lines) + sum(len(g) for g in self.garbage.values())


def _garbage(rng: random.Random, good: bytes) -> tuple[bytes | None, bytes, str]:
    kind = rng.randrange(5)
    if kind == 0:
        return None, b"\x07" + rng.randbytes(rng.randint(0, 40)), "unsupported_framing"
    if kind == 1:
        return b"x", b"\x01" + rng.randbytes(16) + good[5:], "unsupported_framing"
    if kind == 2:
        return b"x", frame(rng.choice([77, 42, 4242]), good[5:]), "unknown_schema_id"
    if kind == 3:
        return b"x", good[: rng.randint(5, len(good) - 1)], "undecodable"
    return b"x", struct.pack(">bI", 0, 1)[:3], "truncated"


def make_stream(
    n: int,
    contracts: list[str],
    seed: int = 7,
    duplicate_rate: float = 0.05,
    bad_rate: float = 0.01,
    garbage_rate: float = 0.005,
) -> Stream:
    rng = random.Random(seed)
    stream = Stream()
    serial = 0
    conflicts: list[dict] = []  # accepted submissions whose id a bad record will reuse
    while len(stream.lines) < n:
        roll = rng.random()
        if stream.lines and roll < duplicate_rate:
            i = rng.randrange(len(stream.lines))
            stream.lines.append(stream.lines[i])
            stream.duplicates += 1
            if i in stream.bad_lines:
                stream.bad_lines.add(len(stream.lines) - 1)
            continue
        serial += 1
        cid = rng.choice(contracts)
        provider = rng.choice(PROVIDERS)
        period = rng.choice(PERIODS)
        bad = rng.random() < bad_rate
        if rng.random() < 0.06:
            record = {
                "type": "cost_report",
                "report_id": f"c-{serial:06d}",
                "contract_id": cid,
                "provider_id": provider,
                "period": period,
                "total_cost": f"{rng.randint(1_000_000, 9_000_000)}.{rng.randint(0, 99):02d}",
                "high_cost_cases": [{"case_ref": f"HC-{serial}", "cost": "25000.00"}]
                if rng.random() < 0.3
                else [],
            }
            if bad:
                record["total_cost"] = "-1.00"
        else:
            measure, unit = rng.choice(MEASURES)
            record = {
                "type": "submission",
                "submission_id": f"s-{serial:06d}",
                "contract_id": cid,
                "provider_id": provider,
                "indicator_id": measure,
                "period": period,
            }
            if unit == "ratio":
                den = rng.randint(300, 600)
                record.update(numerator=str(rng.randint(den // 2, den)), denominator=str(den))
            else:
                record["value"] = str(rng.randint(50, 120))
            if bad:
                spoil = rng.randrange(5)
                if spoil == 0:
                    record["contract_id"] = "no-such-contract"
                elif spoil == 1:
                    record["provider_id"] = "stranger"
                elif spoil == 2:
                    record["period"] = "2031-Q1"
                elif spoil == 3 and unit == "ratio":
                    record["numerator"] = str(int(record["denominator"]) + 1)
                elif conflicts:
                    record = dict(rng.choice(conflicts))  # the same id with other content
                    if "value" in record:
                        record["value"] = str(int(record["value"]) + 1)
                    else:
                        record["numerator"] = str(int(record["numerator"]) - 1)
                else:
                    record["indicator_id"] = "no-such-indicator"
            elif rng.random() < 0.01:
                conflicts.append(record)
        if bad:
            stream.bad_lines.add(len(stream.lines))
        stream.lines.append(json.dumps(record))
        if rng.random() < garbage_rate:
            good = encode_record(record)[1]
            stream.garbage.setdefault(len(stream.lines) - 1, []).append(_garbage(rng, good))
    return stream
