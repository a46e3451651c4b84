"""Year-close latency on one large contract.

    python -m bench.close_year [--indicators 40] [--providers 5] [--repeat 3] [--variations 0]

One monthly contract with ``--indicators`` indicators (two of them with two subcomponents each)
and ``--providers`` providers; a full year of data is ingested: one submission per
(measure, provider, month) and one cost report per (provider, month), with ~1% exact duplicates
and a few corrections. Then, in a fresh application (cold: nothing cached), it times

* ``statement`` of the open year (computes the year from the data held),
* ``close_year`` (decides the 12 instalments, settles outcomes and risk share, saves, returns the statement),
* ``statement`` of the closed year (reads the recorded decision),

each on its own copy of the database, ``--repeat`` times; ``close_year`` again with the snapshots
deleted (the year's stream replayed from its first event); and ``obc-ledger close-year`` and
``obc-ledger statement`` through the CLI (wall time including Python start-up).
With ``--variations N`` the contract is first varied N times, every variation effective from
year 1 (so year 1 is settled on terms built from all N): indicator weights amended, the schedule
replaced, the core split replaced, an indicator added (no data: missing), the risk-share terms replaced (in turn).
Figures are printed, never asserted. Target: close_year under 1 s; with 5 variations within 20%
of the unvaried contract.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.adapters.yamlio import load_yaml
from ledger.bootstrap import bootstrap
from ledger.usecases import services_for
from ledger.usecases.application import Ledger

from .common import (
    StreamCounts,
    copy_sqlite,
    count_events,
    iter_records,
    make_contract,
    mib,
    peak_rss_self,
    run_child,
    sqlite_url,
    timed,
    venv_bin,
    write_jsonl,
)

TARGET_SECONDS = 1.0


def cold(db: Path, work: Callable[[Ledger], Any]) -> float:
    """Seconds for ``work`` on a freshly opened application (application start-up excluded)."""
    app = bootstrap(sqlite_url(db)).ledger
    try:
        with timed() as t:
            work(app)
        return t.seconds
    finally:
        app.close()


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def variation_texts(contract_id: str, contract_yaml: str, count: int) -> list[str]:
    """``count`` valid variations of the benchmark contract, all effective from year 1."""
    doc = load_yaml(contract_yaml)
    ids = [i["id"] for i in doc["indicators"]]
    providers = [
        doc["contract"]["lead_provider"]["id"],
        *(p["id"] for p in doc["contract"].get("subcontractors") or []),
    ]
    share = doc["payment"]["risk_share"]
    name = next(iter(share))
    texts = []
    for k in range(count):
        head = (
            f"variation: {{id: bench-v{k + 1}, contract_id: {contract_id}, effective_from_year: 1, "
            f"reason: benchmark variation {k + 1}}}\nchanges:\n"
        )
        kind = k % 5
        if kind == 0:
            body = f'  indicators:\n    amend:\n      - {{id: {ids[-1 - k]}, weight: "2"}}\n'
        elif kind == 1:
            body = (
                '  payment:\n    schedule:\n      - {from_year: 1, core: "0.85", outcomes: "0.15", '
                f"risk_share: {name}}}\n"
            )
        elif kind == 2:
            parts = dict.fromkeys(providers[1:], "0")
            parts[providers[0]] = "1"
            body = (
                "  payment:\n    core_split: {" + ", ".join(f'{p}: "{v}"' for p, v in parts.items()) + "}\n"
            )
        elif kind == 3:
            body = (
                f'  indicators:\n    add:\n      - {{id: bench-added-{k + 1}, weight: "1", '
                f'scoring: {{rule: fixed, direction: higher, target: "0.5"}}}}\n'
            )
        else:
            body = (
                "  payment:\n    risk_share:\n      " + name + ': {reference: budget, cap: "0.1", '
                'tiers: [{upto: "0.05", provider_share: "0.5"}, {upto: null, provider_share: "0.2"}]}\n'
            )
        texts.append(head + body)
    return texts


def describe(label: str, seconds: list[float]) -> str:
    best, med = min(seconds), statistics.median(seconds)
    return f"   {label:<34} best {best * 1000:8.1f} ms   median {med * 1000:8.1f} ms   (n={len(seconds)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.close_year", description=__doc__.split("\n\n")[0])
    p.add_argument("--indicators", type=int, default=40)
    p.add_argument("--providers", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--variations", type=int, default=0, help="vary the contract N times (from year 1) first")
    p.add_argument("--no-cli", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (its path is printed)")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="obc-bench-close-"))
    try:
        spec = make_contract("bench-close", indicators=args.indicators, providers=args.providers, years=3)
        cid = spec.contract_id
        data = tmp / "year1.jsonl"
        counts = StreamCounts()
        write_jsonl(iter_records([spec], 10**9, seed=args.seed, counts=counts, years=1), data)
        print(
            f"bench.close_year: contract {cid}: {args.indicators} indicators ({len(spec.measures)} measures), "
            f"{len(spec.providers)} providers, 12 monthly periods of year 1; temp dir {tmp}"
        )
        print(f"data: {counts}")

        base = tmp / "ingested.db"
        app = bootstrap(sqlite_url(base)).ledger
        services_for(app).registration.register_contract(spec.yaml)
        for text in variation_texts(cid, spec.yaml, args.variations):
            services_for(app).registration.vary_contract(cid, text)
        if args.variations:
            print(f"recorded {args.variations} variation(s), all effective from year 1")
        with open(data, encoding="utf-8") as handle, timed() as t:
            report = services_for(app).ingest.ingest_lines(handle, data.name)
        app.close()
        print(
            f"ingested in {t.seconds:.2f} s: accepted {report.accepted:,}, duplicates {report.duplicates:,}, "
            f"rejected {report.rejected:,}, corrections {report.corrections:,}; {count_events(base):,} events stored"
        )

        open_stmt, close, closed_stmt, close_replay = [], [], [], []
        result: dict[str, Any] = {}
        for i in range(args.repeat):
            db = tmp / f"run-{i}.db"
            copy_sqlite(base, db)
            open_stmt.append(cold(db, lambda a: services_for(a).settlement.statement(cid, 1)))
            close.append(cold(db, lambda a: result.update(services_for(a).settlement.close_year(cid, 1))))
            closed_stmt.append(cold(db, lambda a: services_for(a).settlement.statement(cid, 1)))
            remove_db(db)
            # the same close with the snapshots deleted: the year's data stream replayed from event 1
            copy_sqlite(base, db)
            with sqlite3.connect(str(db)) as conn:
                snapshots = conn.execute("DELETE FROM stored_snapshots").rowcount
            close_replay.append(cold(db, lambda a: services_for(a).settlement.close_year(cid, 1)))
            remove_db(db)

        print("\n== in-process (fresh Ledger each call, timing excludes opening it)")
        print(describe("statement (open year)", open_stmt))
        print(describe("close_year", close))
        print(describe("statement (closed year)", closed_stmt))
        print(describe(f"close_year, {snapshots} snapshot(s) deleted", close_replay))
        scored = sum(1 for ind in result["outcomes"]["indicators"] if ind.get("status") == "scored")
        print(
            f"   year 1 closed: total {result['total']}, outcomes payment {result['outcomes']['payment']}, "
            f"{scored}/{len(result['outcomes']['indicators'])} indicators scored, "
            f"{len(result['core']['instalments'])} instalments; peak RSS {mib(peak_rss_self())}"
        )

        if not args.no_cli:
            db = tmp / "cli.db"
            copy_sqlite(base, db)
            obc = venv_bin("obc-ledger")
            version = run_child([obc, "--version"])
            close_run = run_child([obc, "--db", sqlite_url(db), "--json", "close-year", cid, "1"])
            stmt_run = run_child([obc, "--db", sqlite_url(db), "--json", "statement", cid, "--year", "1"])
            for name, run in (("close-year", close_run), ("statement", stmt_run)):
                if run.returncode != 0:
                    raise SystemExit(f"obc-ledger {name} failed: {run.stderr.strip()}")
            print("\n== CLI (wall, Python start-up included)")
            print(f"   obc-ledger --version               {version.seconds * 1000:8.1f} ms")
            print(
                f"   obc-ledger close-year {cid} 1   {close_run.seconds * 1000:8.1f} ms   "
                f"peak RSS {mib(close_run.peak_rss_psutil)}"
            )
            print(
                f"   obc-ledger statement --year 1      {stmt_run.seconds * 1000:8.1f} ms   "
                f"peak RSS {mib(stmt_run.peak_rss_psutil)}"
            )

        best = min(close)
        print(
            f"\n== summary: close_year best {best:.3f} s, median {statistics.median(close):.3f} s; "
            f"target < {TARGET_SECONDS:.0f} s: {'met' if statistics.median(close) < TARGET_SECONDS else 'MISSED'}"
        )
        return 0
    finally:
        if args.keep:
            print(f"\n(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
