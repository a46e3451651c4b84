"""The HTTP service: upload throughput against the CLI's ingest, statement latency, memory.

    python -m bench.service [--records 100000] [--clients 20] [--requests 10000] [--keep]

1. Generates ``--records`` JSON lines (bench.common's synthetic contracts, as bench.ingest) and
   registers the contracts in a template SQLite ledger.
2. ``obc-ledger ingest FILE`` on a copy (subprocess, wall seconds) and, in the same run, the same
   file POSTed to ``/api/v1/records`` of ``obc-ledger serve`` on another copy (one request,
   wall seconds from the first byte sent to the report received); the ratio of their throughputs
   (target ≥ 70%).
3. ``obc-ledger demo`` builds the demo ledger; the service on it answers the statement API
   (``/api/v1/contracts/ID/years/Y/statement``) and the statement page with ``--clients``
   concurrent clients; p50/p95/p99 of each (target p95 < 150 ms on SQLite).
4. The service's RSS after ``--requests`` requests in all.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import (
    StreamCounts,
    copy_sqlite,
    iter_records,
    mib,
    run_child,
    sqlite_url,
    venv_bin,
    write_jsonl,
)
from bench.ingest import build_specs, register
from tests.support.service import start_service

TARGET_UPLOAD_SHARE = 0.70
TARGET_P95_MS = 150.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def upload_vs_ingest(tmp: Path, records: int) -> dict[str, Any]:
    specs = build_specs(records, 50, 3, 3)
    data = tmp / "records.jsonl"
    counts = StreamCounts()
    write_jsonl(iter_records(specs, records, counts=counts), data)
    template = tmp / "template.db"
    register(specs, template)
    print(f"generated {counts.lines:,} lines ({mib(data.stat().st_size)}); {len(specs)} contracts registered")

    cli_db = tmp / "cli.db"
    copy_sqlite(template, cli_db)
    run = run_child([venv_bin("obc-ledger"), "--db", sqlite_url(cli_db), "--json", "ingest", str(data)])
    if run.returncode not in (0, 3):
        raise SystemExit(f"obc-ledger ingest failed ({run.returncode}): {run.stderr.strip()}")
    cli_report = json.loads(run.stdout)

    api_db = tmp / "api.db"
    copy_sqlite(template, api_db)
    service = start_service(sqlite_url(api_db), tmp / "upload-service.log")
    try:
        token = service.token("system", "bench")
        body = data.read_bytes()
        with service.client(token) as c:
            started = time.perf_counter()
            r = c.post(
                "/api/v1/records",
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
                timeout=3600,
            )
            api_seconds = time.perf_counter() - started
        api_report = r.json()
        if r.status_code != 200:
            raise SystemExit(f"upload failed ({r.status_code}): {r.text[:500]}")
    finally:
        service.stop()
    n = counts.lines
    same = {k: cli_report[k] for k in ("accepted", "duplicates", "rejected")} == {
        k: api_report[k] for k in ("accepted", "duplicates", "rejected")
    }
    return {
        "lines": n,
        "cli_seconds": run.seconds,
        "api_seconds": api_seconds,
        "cli_rate": n / run.seconds,
        "api_rate": n / api_seconds,
        "share": run.seconds / api_seconds,
        "same_report": same,
        "cli_report": {k: cli_report[k] for k in ("accepted", "duplicates", "rejected")},
        "api_report": {k: api_report[k] for k in ("accepted", "duplicates", "rejected")},
    }


def latencies(
    service: Any, token: str, paths: list[str], clients: int, per_client: int
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {p: [] for p in paths}
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for i in range(per_client):
                path = paths[(index + i) % len(paths)]
                started = time.perf_counter()
                r = c.get(path)
                ms = (time.perf_counter() - started) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"GET {path}: {r.status_code} {r.text[:300]}")
                with lock:
                    found[path].append(ms)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def statement_latency(tmp: Path, clients: int, total_requests: int, workers: int = 1) -> dict[str, Any]:
    out = tmp / "demo"
    if not (out / "demo.db").exists():
        run = run_child([venv_bin("obc-ledger"), "demo", "--out", str(out)])
        if run.returncode != 0:
            raise SystemExit(f"obc-ledger demo failed: {run.stderr[-500:]}")
    db = sqlite_url(out / "demo.db")
    service = start_service(db, tmp / f"demo-service-{workers}.log", workers=workers)
    try:
        token = service.token("auditor", "bench")
        api = "/api/v1/contracts/oxon-mh/years/3/statement"
        page = "/contracts/oxon-mh/years/3/statement"
        with service.client(token) as c:  # warm: the read models catch up once
            for path in (api, page):
                assert c.get(path).status_code == 200
        process = psutil.Process(service.process.pid)

        def rss() -> int:  # the server and its worker processes
            return process.memory_info().rss + sum(
                c.memory_info().rss for c in process.children(recursive=True)
            )

        rss_start = rss()
        per_client = max(1, 1000 // clients)
        offset = service.log.stat().st_size
        started = time.perf_counter()
        measured = latencies(service, token, [api, page], clients, per_client)
        seconds = time.perf_counter() - started
        with open(service.log, "rb") as handle:  # the service's own access log: time inside the server
            handle.seek(offset)
            inside: dict[str, list[float]] = {api: [], page: []}
            for line in handle:
                if line.startswith(b"{"):
                    entry = json.loads(line)
                    if entry.get("path") in inside:
                        inside[entry["path"]].append(float(entry["ms"]))
        done = sum(len(v) for v in measured.values()) + 2
        rest = max(0, total_requests - done)
        if rest:
            latencies(
                service, token, [api, page, "/api/v1/contracts", "/contracts"], clients, rest // clients + 1
            )
            done += (rest // clients + 1) * clients
        rss_end = rss()
    finally:
        service.stop()
    return {
        "measured": measured,
        "inside": inside,
        "seconds": seconds,
        "requests": done,
        "rss_start": rss_start,
        "rss_end": rss_end,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.service")
    p.add_argument("--records", type=int, default=100_000, help="0: skip the upload comparison")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="service worker processes to try")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="obc-bench-service-"))
    print(f"bench.service: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, temp dir {tmp}")
    try:
        up = upload_vs_ingest(tmp, args.records) if args.records else None
        if up:
            print(
                f"upload {up['lines']:,} records: CLI ingest {up['cli_seconds']:.1f} s ({up['cli_rate']:,.0f}/s); "
                f"API upload {up['api_seconds']:.1f} s ({up['api_rate']:,.0f}/s); API/CLI throughput "
                f"{up['share']:.0%} (target ≥ {TARGET_UPLOAD_SHARE:.0%}); same counts: {up['same_report']} "
                f"{up['api_report']}"
            )
        for workers in args.workers:
            lat = statement_latency(tmp, args.clients, args.requests, workers)
            print(f"-- serve --workers {workers}, demo ledger, {args.clients} concurrent clients")
            for path, values in lat["measured"].items():
                p95 = percentile(values, 95)
                print(
                    f"{path}: {len(values)} requests: p50 {percentile(values, 50):.1f} ms, "
                    f"p95 {p95:.1f} ms, p99 {percentile(values, 99):.1f} ms, mean {statistics.mean(values):.1f} ms "
                    f"(target p95 < {TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'MISSED'})"
                )
            for path, values in lat["inside"].items():
                if values:
                    print(
                        f"  {path} inside the server (access log): p50 {percentile(values, 50):.1f} ms, "
                        f"p95 {percentile(values, 95):.1f} ms, p99 {percentile(values, 99):.1f} ms"
                    )
            total = sum(len(v) for v in lat["measured"].values())
            print(f"throughput while measured: {total / lat['seconds']:,.0f} requests/s")
            print(
                f"service RSS ({workers} worker(s) and the supervisor): {mib(lat['rss_start'])} after warm-up, "
                f"{mib(lat['rss_end'])} after {lat['requests']:,} requests"
            )
        print(
            f"load average while run: {os.getloadavg()[0]:.1f} (other work on the machine slows every figure)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
