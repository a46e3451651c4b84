"""``verify`` and ``verify --read-models`` throughput, beside the raw read of the same rows in one run.

    python -m bench.verify [--events 1000000] [--contracts 48] [--reuse DIR] [--keep]

Generates a SQLite ledger of at least ``--events`` events with :func:`bench.projections.generate`
(or reuses ``DIR/ledger.db`` from a ``bench.projections --keep`` run), then in one process:

1. the raw read of the notification log and of the seals (pages of 5,000, undecoded), and the raw
   sha256 chain: the log's bytes read with the bare ``sqlite3`` driver and hashed with the seals' two
   sha256 per event, nothing compared (the physical limit ``verify`` is measured against);
2. ``audit.verify`` (every seal recomputed from the stored bytes);
3. ``checks.check_derived`` (every snapshot replayed, the record index rebuilt and compared);
4. ``verify_read_models`` (live read models caught up, a rebuild into a scratch file, every table
   compared row by row) — the live read models are built first, untimed.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import mib, sqlite_url
from .projections import build_specs, generate

PAGE = 5000


def raw_chain(ledger: Path) -> dict[str, Any]:
    """The physical limit of ``verify``: the log's bytes read with the bare driver and chained with
    the same two sha256 per event as :mod:`ledger.adapters.audit` (stream hash, then global hash);
    no seal rows read, nothing compared, no report."""
    import hashlib
    import sqlite3

    from ledger.adapters.audit import GENESIS

    con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    n = 0
    previous, streams = GENESIS, dict[str, str]()
    t0 = time.perf_counter()
    cursor = con.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
    )
    sha256 = hashlib.sha256
    genesis = GENESIS
    while rows := cursor.fetchmany(PAGE):
        for nid, oid, version, topic, state in rows:
            h = sha256(f"{streams.get(oid, genesis)}\n{oid}\n{version}\n{topic}\n".encode())
            h.update(state)
            stream = streams[oid] = h.hexdigest()
            previous = sha256(f"{previous}\n{nid}\n{stream}".encode()).hexdigest()
        n += len(rows)
    seconds = time.perf_counter() - t0
    con.close()
    return {"events": n, "seconds": seconds, "head": previous}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--contracts", type=int, default=48)
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--reuse", type=Path, default=None, help="a directory holding ledger.db")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="obc-bench-verify-"))
    ledger = tmp / "ledger.db"
    try:
        print(
            f"bench.verify: ≥ {args.events:,} events, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, temp dir {tmp}"
        )
        if args.reuse is None:
            g = generate(
                ledger,
                None,
                build_specs(args.events, args.contracts),
                args.events,
                args.events * 2,
                args.chunk,
                args.seed,
            )
            print(f"generation: {g['events']:,} events in {g['seconds']:.1f} s")
        print(f"ledger file {mib(ledger.stat().st_size)}")
        from ledger.adapters import audit
        from ledger.bootstrap import bootstrap
        from ledger.usecases.checks import check_derived
        from projections.verify import verify_read_models

        world = bootstrap(sqlite_url(ledger), projections_url=sqlite_url(tmp / "read-models.db"))
        app = world.ledger
        t0 = time.perf_counter()
        n, last = 0, None
        while page := app.recorder.select_notifications(start=last, limit=PAGE, inclusive_of_start=False):
            n, last = n + len(page), page[-1].id
        t_raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        s, after = 0, 0
        while seals := app.recorder.select_seals(after, PAGE):
            s, after = s + len(seals), seals[-1][0]
        t_seals = time.perf_counter() - t0
        print(
            f"raw read: {n:,} events in {t_raw:.1f} s ({n / t_raw:,.0f}/s); {s:,} seals in {t_seals:.1f} s "
            f"({s / t_seals:,.0f}/s); both {n / (t_raw + t_seals):,.0f} events/s"
        )
        chain = raw_chain(ledger)
        print(
            f"raw sha256 chain (sqlite3 cursor over stored_events, the seal's two sha256 per event over the same "
            f"bytes, nothing compared): {chain['events']:,} events in {chain['seconds']:.1f} s "
            f"({chain['events'] / chain['seconds']:,.0f}/s); head = last seal: "
            f"{chain['head'] == (app.recorder.last_seal() or (0, None))[1]}"
        )
        t0 = time.perf_counter()
        result = audit.verify(app)
        t = time.perf_counter() - t0
        print(
            f"verify (seals): {result.checked:,} events in {t:.1f} s -> {result.checked / t:,.0f} events/s "
            f"(ok={result.ok}); {t / (t_raw + t_seals):.1f}x the raw read"
        )
        print(
            f"verify / raw hash chain: {100 * chain['seconds'] / t:.1f} %   (rates; the issue's target ≥ 50%; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
        )
        t0 = time.perf_counter()
        derived = check_derived(app)
        t = time.perf_counter() - t0
        print(
            f"verify (snapshots + record index): {derived['snapshots_checked']} snapshot(s) replayed, "
            f"{derived['index_rows']:,} index rows compared in {t:.1f} s ({len(derived['problems'])} problem(s))"
        )
        live = world.projections()
        t0 = time.perf_counter()
        live.projector.run()
        t_live = time.perf_counter() - t0
        print(f"live read models built (untimed in what follows): {t_live:.1f} s")
        t0 = time.perf_counter()
        models = verify_read_models(live)
        t = time.perf_counter() - t0
        print(
            f"verify --read-models: {n:,} events rebuilt and {models['rows_compared']:,} rows compared in "
            f"{t:.1f} s -> {n / t:,.0f} events/s (ok={models['ok']}, {len(models['differences'])} differences)"
        )
        app.close()
    finally:
        if args.keep or args.reuse:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
