"""Shared helpers for the benchmarks: memory, timers, synthetic contracts and record streams.

Everything here is deterministic for a given seed and holds O(1) records in memory:
:func:`iter_records` is a generator and :func:`write_jsonl` streams it to disk.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

try:  # psutil is in the test extra; fall back to getrusage when it is missing
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

# ----------------------------------------------------------------------------- memory


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB"


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of ``pid`` (default: this process)."""
    if psutil is not None:
        return psutil.Process(pid or os.getpid()).memory_info().rss
    if pid is None or pid == os.getpid():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_self() -> int:
    """High-water RSS of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_children() -> int:
    """High-water RSS over all waited-for children so far (the max, not the sum)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


class RssSampler:
    """Polls a process's RSS on a background thread; keeps the maximum."""

    def __init__(self, pid: int | None = None, interval: float = 0.05) -> None:
        self.pid = pid or os.getpid()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except Exception:  # the process has gone
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Milestones:
    """Wraps a line iterator; records (lines consumed, seconds, RSS) every ``every`` lines."""

    lines: Iterable[str]
    every: int = 25_000
    samples: list[tuple[int, float, int]] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        start = time.perf_counter()
        n = 0
        for n, line in enumerate(self.lines, start=1):
            if n % self.every == 0:
                self.samples.append((n, time.perf_counter() - start, rss_bytes()))
            yield line
        if not self.samples or self.samples[-1][0] != n:
            self.samples.append((n, time.perf_counter() - start, rss_bytes()))


# ----------------------------------------------------------------------------- timing


class Timer:
    """Filled in by :func:`timed` when its block ends."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """``with timed() as t: ...`` then ``t.seconds`` (wall clock, perf_counter)."""
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_psutil: int
    stdout: str
    stderr: str


def run_child(argv: Sequence[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run a subprocess, timing it and sampling its RSS (psutil) until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with RssSampler(proc.pid, interval=0.02) as sampler:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    return ChildRun(proc.returncode, seconds, sampler.peak, out, err)


def venv_bin(name: str) -> str:
    """A console script next to the running interpreter (the project's virtualenv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def copy_sqlite(src: Path, dst: Path) -> None:
    """Copy a closed SQLite database (and any WAL/SHM side files)."""
    for suffix in ("", "-wal", "-shm"):
        s = Path(str(src) + suffix)
        if s.exists():
            shutil.copyfile(s, Path(str(dst) + suffix))


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(Path(path).resolve())  # absolute: sqlite:////abs/path.db


def count_events(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(str(path)) as db:
        return db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]


def rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "inf"


# ----------------------------------------------------------------------------- contracts


@dataclass(frozen=True)
class MeasureSpec:
    key: str  # indicator id or "indicator.sub"
    unit: str  # ratio | value


@dataclass(frozen=True)
class ContractSpec:
    contract_id: str
    providers: tuple[str, ...]  # lead first
    measures: tuple[MeasureSpec, ...]
    periods: tuple[str, ...]  # every period label of the term, in order
    periods_per_year: int
    yaml: str


def _months(start_year: int, start_month: int, count: int) -> list[str]:
    out = []
    y, m = start_year, start_month
    for _ in range(count):
        out.append(f"{y}-{m:02d}")
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return out


# Indicator kinds cycled through: (unit, aggregation, scoring YAML); {b} is replaced by the baseline key.
_KINDS = [
    ("ratio", "sum", '{rule: sliding, zero_at: "0.50", full_at: "0.90"}'),
    ("value", "sum", '{rule: fixed, direction: lower, target: {baseline_change: "-0.10"}}'),
    (
        "ratio",
        "latest",
        '{rule: bands, bands: [{at_least: "0.60", score: "0.5"}, {at_least: "0.80", score: "1"}]}',
    ),
    ("ratio", "mean", '{rule: fixed, direction: higher, target: "0.75"}'),
    ("value", "mean", '{rule: sliding, zero_at: "80", full_at: "120"}'),
]


def make_contract(
    contract_id: str,
    indicators: int = 16,
    providers: int = 4,
    years: int = 5,
    with_subcomponents: int = 2,
    start: str = "2025-04-01",
) -> ContractSpec:
    """A valid monthly contract: ``indicators`` indicators (the first ``with_subcomponents`` of them
    have two subcomponents each), a lead provider and ``providers - 1`` subcontractors with a
    core_split, outcomes and a tiered risk share from year 1, all three scoring rules."""
    if providers < 1 or indicators < 1:
        raise ValueError("need at least one provider and one indicator")
    lead = "lead"
    subs = [f"sub{i}" for i in range(1, providers)]
    parties = [lead, *subs]
    sub_share = Decimal("0.05") if providers <= 11 else Decimal(1) / Decimal(20 * providers)
    lead_share = Decimal(1) - sub_share * len(subs)
    y0, m0 = int(start[:4]), int(start[5:7])
    per_year = 12
    periods = _months(y0, m0, years * per_year)

    lines = [
        "contract:",
        f"  id: {contract_id}",
        f"  name: Benchmark contract {contract_id}",
        "  model: population",
        "  commissioner: {id: ccg, name: Benchmark CCG}",
        f"  lead_provider: {{id: {lead}, name: Lead provider}}",
    ]
    if subs:
        lines.append("  subcontractors:")
        lines += [f"    - {{id: {s}, name: Subcontractor {s}}}" for s in subs]
    lines += [
        "  currency: GBP",
        f"  start: {start}",
        f"  years: {years}",
        "  period: monthly",
        "",
        "budget:",
        '  year1: "12000000.00"',
        '  efficiency: "0.04"',
        '  uplift: "0.021"',
        "",
        "payment:",
    ]
    if subs:
        split = ", ".join([f'{lead}: "{lead_share}"'] + [f'{s}: "{sub_share}"' for s in subs])
        lines.append(f"  core_split: {{{split}}}")
    lines += [
        "  schedule:",
        '    - {from_year: 1, core: "0.90", outcomes: "0.10", risk_share: standard}',
        "  risk_share:",
        "    standard:",
        "      reference: budget",
        "      tiers:",
        '        - {upto: "0.02", provider_share: "1"}',
        '        - {upto: "0.10", provider_gain_share: "0.5", provider_loss_share: "0.6"}',
        '        - {upto: null, provider_share: "0"}',
        '      cap: "0.10"',
        '      high_cost_threshold: "20000.00"',
        "",
    ]
    measures: list[MeasureSpec] = []
    baselines: list[str] = []
    ind_lines: list[str] = []
    k = 0
    for i in range(indicators):
        iid = f"ind-{i + 1:03d}"
        ind_lines.append(f"  - id: {iid}")
        ind_lines.append(f"    name: Indicator {i + 1}")
        ind_lines.append("    domain: clinical")
        ind_lines.append(f'    weight: "{1 + i % 3}"')
        ind_lines.append("    paid_from_year: 1")
        if subs and i % 4 == 0:
            ind_lines.append(f'    attribution: {{{lead}: "0.8", {subs[0]}: "0.2"}}')
        if i < with_subcomponents:
            ind_lines.append("    subcomponents:")
            for j, (unit, agg, scoring) in enumerate([_KINDS[0], _KINDS[2]]):
                sid = f"part-{j + 1}"
                ind_lines.append(
                    f'      - {{id: {sid}, weight: "0.5", unit: {unit}, aggregation: {agg}, '
                    f"scoring: {scoring}}}"
                )
                measures.append(MeasureSpec(f"{iid}.{sid}", unit))
            continue
        unit, agg, scoring = _KINDS[k % len(_KINDS)]
        k += 1
        ind_lines.append(f"    unit: {unit}")
        ind_lines.append(f"    aggregation: {agg}")
        ind_lines.append(f"    scoring: {scoring}")
        if "baseline_change" in scoring:
            # a yearly sum of ~100 a month per provider
            baselines.append(f'  {iid}: "{100 * per_year * providers}"')
        measures.append(MeasureSpec(iid, unit))
    if baselines:
        lines.append("baselines:")
        lines += baselines
        lines.append("")
    lines.append("indicators:")
    lines += ind_lines
    return ContractSpec(
        contract_id, tuple(parties), tuple(measures), tuple(periods), per_year, "\n".join(lines) + "\n"
    )


# ----------------------------------------------------------------------------- records


@dataclass
class StreamCounts:
    lines: int = 0
    submissions: int = 0
    cost_reports: int = 0
    duplicates: int = 0
    corrections: int = 0

    def __str__(self) -> str:
        return (
            f"{self.lines:,} lines: {self.submissions:,} submissions, {self.cost_reports:,} cost reports, "
            f"{self.duplicates:,} exact duplicates, {self.corrections:,} corrections"
        )


def _submission(rng: random.Random, sid: str, cid: str, provider: str, m: MeasureSpec, period: str) -> dict:
    rec: dict[str, Any] = {
        "type": "submission",
        "submission_id": sid,
        "contract_id": cid,
        "provider_id": provider,
        "indicator_id": m.key,
        "period": period,
    }
    if m.unit == "ratio":
        den = rng.randint(200, 600)
        rec["numerator"] = str(rng.randint(den // 2, den))
        rec["denominator"] = str(den)
    else:
        rec["value"] = str(rng.randint(70, 130))
    return rec


def _cost_report(
    rng: random.Random, rid: str, cid: str, provider: str, period: str, n_providers: int
) -> dict:
    pence = rng.randint(80_000_000, 120_000_000) // n_providers  # ~£1m a month over all providers
    rec: dict[str, Any] = {
        "type": "cost_report",
        "report_id": rid,
        "contract_id": cid,
        "provider_id": provider,
        "period": period,
        "total_cost": f"{pence // 100}.{pence % 100:02d}",
        "high_cost_cases": [],
    }
    for c in range(rng.choice((0, 0, 0, 1, 2))):
        cost = rng.randint(500_000, 4_000_000)
        rec["high_cost_cases"].append(
            {"case_ref": f"HC-{period}-{provider}-{c}", "cost": f"{cost // 100}.{cost % 100:02d}"}
        )
    return rec


def iter_records(
    contracts: Sequence[ContractSpec],
    total: int,
    seed: int = 2026,
    duplicate_rate: float = 0.01,
    correction_rate: float = 0.003,
    counts: StreamCounts | None = None,
    years: int | None = None,
) -> Iterator[str]:
    """Yield ``total`` JSON lines (or fewer if the contracts' terms run out).

    Arrival order is period by period; within a period every contract's providers send one cost
    report and one submission per measure. About ``duplicate_rate`` of lines re-send a recent line
    byte for byte; about ``correction_rate`` re-submit a recent (provider, measure, period) under a
    new id with new figures. Only a bounded window of recent lines is held (for the duplicates).
    ``years`` limits the stream to the first ``years`` contract years.
    """
    rng = random.Random(seed)
    counts = counts if counts is not None else StreamCounts()
    recent: deque[str] = deque(maxlen=2000)
    recent_subs: deque[tuple[ContractSpec, str, MeasureSpec, str]] = deque(maxlen=2000)
    serial = 0
    emitted = 0

    def emit(line: str) -> Iterator[str]:
        nonlocal emitted
        emitted += 1
        counts.lines += 1
        yield line
        recent.append(line)

    def extras() -> Iterator[str]:
        nonlocal serial
        if recent and rng.random() < duplicate_rate and emitted < total:
            counts.duplicates += 1
            yield from emit(rng.choice(recent))
        if recent_subs and rng.random() < correction_rate and emitted < total:
            spec, provider, m, period = rng.choice(recent_subs)
            serial += 1
            counts.corrections += 1
            counts.submissions += 1
            yield from emit(
                json.dumps(
                    _submission(rng, f"{spec.contract_id}-s{serial}", spec.contract_id, provider, m, period)
                )
            )

    n_periods = max(len(c.periods) for c in contracts)
    if years is not None:
        n_periods = min(n_periods, years * max(c.periods_per_year for c in contracts))
    for p in range(n_periods):
        for spec in contracts:
            if p >= len(spec.periods):
                continue
            period = spec.periods[p]
            for provider in spec.providers:
                if emitted >= total:
                    return
                serial += 1
                counts.cost_reports += 1
                yield from emit(
                    json.dumps(
                        _cost_report(
                            rng,
                            f"{spec.contract_id}-c{serial}",
                            spec.contract_id,
                            provider,
                            period,
                            len(spec.providers),
                        )
                    )
                )
                yield from extras()
                for m in spec.measures:
                    if emitted >= total:
                        return
                    serial += 1
                    counts.submissions += 1
                    yield from emit(
                        json.dumps(
                            _submission(
                                rng, f"{spec.contract_id}-s{serial}", spec.contract_id, provider, m, period
                            )
                        )
                    )
                    recent_subs.append((spec, provider, m, period))
                    yield from extras()


def write_jsonl(lines: Iterable[str], path: Path) -> int:
    """Stream lines to ``path``; returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for line in lines:
            out.write(line)
            out.write("\n")
            n += 1
    return n


def copy_head(src: Path, dst: Path, n: int) -> int:
    """Copy the first ``n`` lines of ``src`` to ``dst``."""
    written = 0
    with open(src, encoding="utf-8") as i, open(dst, "w", encoding="utf-8", newline="\n") as o:
        for line in i:
            if written >= n:
                break
            o.write(line)
            written += 1
    return written


def slots_per_contract(spec: ContractSpec) -> int:
    """Records one contract produces over its whole term (without duplicates or corrections)."""
    return len(spec.periods) * len(spec.providers) * (len(spec.measures) + 1)


# ----------------------------------------------------------------------------- the ceiling


class CeilingStream(Aggregate):
    """A stream whose events carry the same fields as ``YearData.SubmissionAccepted``.

    Used to measure what the event store alone can save: no validation, no state kept.
    """

    @event("Started")
    def __init__(self, name: str) -> None:
        self.name = name

    class Submitted(Aggregate.Event):
        submission_id: str
        provider_id: str
        indicator_id: str
        period: str
        numerator: Decimal | None
        denominator: Decimal | None
        value: Decimal | None
        digest: str
        supersedes: str | None
        actor: str

        def apply(self, agg: CeilingStream) -> None:
            pass


class CeilingApp(Application):
    name = "ceiling"
