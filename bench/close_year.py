"""Year-close latency on one large contract.

    python -m bench.close_year [--indicators 40] [--providers 5] [--repeat 3]

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
Figures are printed, never asserted. Target: close_year under 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ledger.application import Ledger

from .common import (StreamCounts, copy_sqlite, count_events, iter_records, make_contract, mib, peak_rss_self,
                     run_child, sqlite_url, timed, venv_bin, write_jsonl)

TARGET_SECONDS = 1.0


def cold(db: Path, work: Callable[[Ledger], Any]) -> float:
    """Seconds for ``work`` on a freshly opened application (application start-up excluded)."""
    app = Ledger.from_url(sqlite_url(db))
    try:
        with timed() as t:
            work(app)
        return t.seconds
    finally:
        app.close()


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def describe(label: str, seconds: list[float]) -> str:
    best, med = min(seconds), statistics.median(seconds)
    return f"   {label:<34} best {best * 1000:8.1f} ms   median {med * 1000:8.1f} ms   (n={len(seconds)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.close_year", description=__doc__.split("\n\n")[0])
    p.add_argument("--indicators", type=int, default=40)
    p.add_argument("--providers", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=2026)
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
        print(f"bench.close_year: contract {cid}: {args.indicators} indicators ({len(spec.measures)} measures), "
              f"{len(spec.providers)} providers, 12 monthly periods of year 1; temp dir {tmp}")
        print(f"data: {counts}")

        base = tmp / "ingested.db"
        app = Ledger.from_url(sqlite_url(base))
        app.register_contract(spec.yaml)
        with open(data, encoding="utf-8") as handle, timed() as t:
            report = app.ingest_lines(handle, data.name)
        app.close()
        print(f"ingested in {t.seconds:.2f} s: accepted {report.accepted:,}, duplicates {report.duplicates:,}, "
              f"rejected {report.rejected:,}, corrections {report.corrections:,}; {count_events(base):,} events stored")

        open_stmt, close, closed_stmt, close_replay = [], [], [], []
        result: dict[str, Any] = {}
        for i in range(args.repeat):
            db = tmp / f"run-{i}.db"
            copy_sqlite(base, db)
            open_stmt.append(cold(db, lambda a: a.statement(cid, 1)))
            close.append(cold(db, lambda a: result.update(a.close_year(cid, 1))))
            closed_stmt.append(cold(db, lambda a: a.statement(cid, 1)))
            remove_db(db)
            # the same close with the snapshots deleted: the year's data stream replayed from event 1
            copy_sqlite(base, db)
            with sqlite3.connect(str(db)) as conn:
                snapshots = conn.execute("DELETE FROM stored_snapshots").rowcount
            close_replay.append(cold(db, lambda a: a.close_year(cid, 1)))
            remove_db(db)

        print("\n== in-process (fresh Ledger each call, timing excludes opening it)")
        print(describe("statement (open year)", open_stmt))
        print(describe("close_year", close))
        print(describe("statement (closed year)", closed_stmt))
        print(describe(f"close_year, {snapshots} snapshot(s) deleted", close_replay))
        scored = sum(1 for ind in result["outcomes"]["indicators"] if ind.get("status") == "scored")
        print(f"   year 1 closed: total {result['total']}, outcomes payment {result['outcomes']['payment']}, "
              f"{scored}/{len(result['outcomes']['indicators'])} indicators scored, "
              f"{len(result['core']['instalments'])} instalments; peak RSS {mib(peak_rss_self())}")

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
            print(f"   obc-ledger close-year {cid} 1   {close_run.seconds * 1000:8.1f} ms   "
                  f"peak RSS {mib(close_run.peak_rss_psutil)}")
            print(f"   obc-ledger statement --year 1      {stmt_run.seconds * 1000:8.1f} ms   "
                  f"peak RSS {mib(stmt_run.peak_rss_psutil)}")

        best = min(close)
        print(f"\n== summary: close_year best {best:.3f} s, median {statistics.median(close):.3f} s; "
              f"target < {TARGET_SECONDS:.0f} s: {'met' if statistics.median(close) < TARGET_SECONDS else 'MISSED'}")
        return 0
    finally:
        if args.keep:
            print(f"\n(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
