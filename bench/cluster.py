"""Cluster throughput: 1, 2 and 3 consumer processes on PostgreSQL, and the per-event costs.

    python -m bench.cluster [--records 60000] [--contracts 40] [--partitions 6] [--consumers 1,2,3]
                            [--batch 2000] [--durable] [--keep]

For each consumer count, a fresh local cluster (deploy/local_cluster.py: PostgreSQL 16 from
pgserver's binaries, the Tansu broker, N ``obc-ledger consume`` processes in one group, then the
projection worker and the decisions publisher, all on this machine) is given the same stream:
``--records`` JSON lines for ``--contracts`` synthetic monthly contracts (bench.common:
16 indicators, 4 providers, one cost report and one submission per measure, provider and month,
~1% duplicates, a few corrections), produced keyed by contract id BEFORE the consumers start, so
that producing does not compete for the CPUs. Throughput = records applied after the first batch
the ledger committed (the group has joined) ÷ seconds until its tracked offsets reach the produced
ones on every partition; with the CPU seconds each process used meanwhile (psutil), per record.
Then the projection worker starts and catches up: events/s and CPU per event.

Then, on the last run's database: rows and bytes (``pg_total_relation_size``: heap, TOAST and
indexes) of every event-store table and of the read models, per stored event and per record;
and the replay costs: ``projections rebuild`` (read models from position zero) and ``verify``
(every seal recomputed), in events/s. PostgreSQL runs with fsync off unless ``--durable``.

Figures are printed, never asserted. The model in deploy/README.md uses them.
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

from deploy.local_cluster import LocalCluster, Options
from deploy.workload import Workload
from ledger.adapters import audit

from .common import StreamCounts, iter_records, make_contract

EVENT_STORE = ("ledger_events", "ledger_snapshots", "notification_tracking", "record_index", "event_hashes")
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def bench_workload(records: int, contracts: int, seed: int = 2026) -> Workload:
    specs = [
        make_contract(f"bench-{i + 1:03d}", indicators=16, providers=4, years=5) for i in range(contracts)
    ]
    counts = StreamCounts()
    lines = tuple(iter_records(specs, records, seed=seed, counts=counts))
    print(f"workload: {counts}; {contracts} contracts")
    return Workload(tuple((s.contract_id, s.yaml) for s in specs), 5, lines)


def table_sizes(url: str) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes incl. TOAST and indexes) for every table of the public schema."""
    import psycopg

    out = {}
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for t in tables:
            rows = conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            size = conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
            out[t] = (rows, size)
    return out


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its live children)."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True) if children else []
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def cpu_snapshot(cluster: LocalCluster) -> dict[str, float]:
    assert cluster.postgres is not None and cluster.broker is not None
    snap = {
        "consumers": sum(cpu_seconds(w.pid) for w in cluster.consumers if w.running()),
        "projections": 0.0,
    }
    for worker in cluster.others:
        snap[worker.name] = cpu_seconds(worker.pid)
    snap["postgres"] = cpu_seconds(cluster.postgres.process.pid, children=True)
    snap["broker"] = cpu_seconds(cluster.broker.process.pid)
    return snap


def run_one(workload: Workload, consumers: int, args: argparse.Namespace, last: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"obc-bench-cluster-{consumers}-"))
    work.chmod(0o755)
    options = Options(
        consumers=consumers,
        partitions=args.partitions,
        batch=args.batch,
        close_years=False,
        session_timeout_ms=6000,
        pg_settings=DURABLE if args.durable else None,
    )
    cluster = LocalCluster(workload, options, work, say=lambda line: print(f"  {line}"))
    out: dict[str, Any] = {"consumers": consumers}
    try:
        cluster.start_servers()
        cluster.prepare_ledger()
        cluster.produce()  # the whole stream waits in the topic: producing does not compete for the CPUs
        first: list[dict[str, float]] = []
        cluster.on_first_commit = lambda: first.append(cpu_snapshot(cluster))  # start-up and join excluded
        cluster.start_consumers()
        cluster.wait_applied()
        seconds = cluster.timings["apply_from_first_commit_s"]
        applied = cpu_snapshot(cluster)
        before = first[0]
        timed_records = cluster.sent - cluster.applied_at_first_commit  # those applied after the first commit
        out.update(
            records=cluster.sent, timed_records=timed_records, seconds=seconds, rate=timed_records / seconds
        )
        cluster.start_others()
        started = time.monotonic()
        status = cluster.wait_projected()
        out["projection"] = (status["head"], time.monotonic() - started)
        after = cpu_snapshot(cluster)
        out["cpu"] = {k: applied[k] - before[k] for k in ("consumers", "postgres", "broker")}
        out["cpu"]["projections"] = after["projections"]
        out["cpu"]["postgres (projecting)"] = after["postgres"] - applied["postgres"]
        reports = cluster.stop_workers()
        out["consumer_reports"] = {k: v for k, v in reports.items() if k.startswith("consumer")}
        if last:
            out["sizes"] = table_sizes(cluster.url)
            out["events"] = status["head"]
            app = cluster.app
            started = time.perf_counter()
            rebuilt = cluster.projections.projector.rebuild()
            out["rebuild"] = (rebuilt, time.perf_counter() - started)
            started = time.perf_counter()
            result = audit.verify(app, None)
            out["verify"] = (result.checked, time.perf_counter() - started, result.ok)
    finally:
        cluster.stop()
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return out


def show_run(r: dict[str, Any]) -> None:
    per = ", ".join(f"{k}: {v['consumed']:,}" for k, v in r["consumer_reports"].items() if v)
    print(
        f"  -> {r['timed_records']:,} records applied in {r['seconds']:.1f} s after the first commit: "
        f"{r['rate']:,.0f} records/s  (consumed: {per})"
    )
    cpu, n = r["cpu"], r["timed_records"]
    consume = cpu["consumers"] + cpu["postgres"] + cpu["broker"]
    print(
        f"     CPU ms per record while consuming: consumers {cpu['consumers'] * 1000 / n:.3f}, postgres "
        f"{cpu['postgres'] * 1000 / n:.3f}, broker {cpu['broker'] * 1000 / n:.3f}; total {consume * 1000 / n:.3f}"
    )
    events, seconds = r["projection"]
    print(
        f"     then the projection worker caught up with {events:,} events in {seconds:.1f} s "
        f"({events / seconds:,.0f} events/s; CPU ms per event: worker {cpu['projections'] * 1000 / events:.3f}, "
        f"postgres {cpu['postgres (projecting)'] * 1000 / events:.3f})"
    )


def show_sizes(result: dict[str, Any], records: int) -> None:
    sizes, events = result["sizes"], result["events"]
    print(
        f"\nstorage after {records:,} records -> {events:,} stored events "
        f"({events / records:.2f} events per record):"
    )
    print(f"  {'table':<24}{'rows':>10}{'MiB':>10}{'bytes/event':>13}")
    store = 0
    for t in EVENT_STORE:
        rows, size = sizes.get(t, (0, 0))
        store += size
        print(f"  {t:<24}{rows:>10,}{size / 2**20:>10.1f}{size / events:>13,.0f}")
    print(
        f"  {'event store':<24}{'':>10}{store / 2**20:>10.1f}{store / events:>13,.0f}"
        f"   ({store / records:,.0f} bytes per record)"
    )
    reads = sum(size for t, (_, size) in sizes.items() if t not in EVENT_STORE)
    print(
        f"  {'read models (all)':<24}{'':>10}{reads / 2**20:>10.1f}{reads / events:>13,.0f}"
        f"   ({reads / records:,.0f} bytes per record)"
    )
    n, seconds = result["rebuild"]
    print(
        f"\nreplay from zero: projections rebuild of {n:,} events in {seconds:.1f} s -> {n / seconds:,.0f} events/s"
    )
    n, seconds, ok = result["verify"]
    print(
        f"verify (every seal recomputed): {n:,} events in {seconds:.1f} s -> {n / seconds:,.0f} events/s "
        f"({'ok' if ok else 'BROKEN'})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--contracts", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--consumers", default="1,2,3", help="comma-separated consumer counts (default 1,2,3)"
    )
    parser.add_argument(
        "--batch", type=int, default=2000, help="records per consumer transaction (default 2000)"
    )
    parser.add_argument(
        "--durable", action="store_true", help="PostgreSQL with fsync and synchronous_commit on"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.consumers.split(",")]
    print(
        f"machine: {os.cpu_count()} CPU(s); PostgreSQL {'durable (fsync on)' if args.durable else 'fsync off'}; "
        f"{args.partitions} partitions; batch {args.batch}"
    )
    workload = bench_workload(args.records, args.contracts)
    results = []
    for i, n in enumerate(counts):
        print(f"\n== {n} consumer(s)")
        results.append(run_one(workload, n, args, last=i == len(counts) - 1))
        show_run(results[-1])
    print(
        f"\nsummary (records/s from the first commit to the last; consumers, PostgreSQL and the broker share "
        f"the {os.cpu_count()} CPU(s)):"
    )
    base = results[0]["rate"]
    for r in results:
        print(f"  {r['consumers']} consumer(s): {r['rate']:>8,.0f} records/s  (x{r['rate'] / base:.2f})")
    show_sizes(results[-1], results[-1]["records"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
