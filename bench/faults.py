"""Fault runs: ``obc-ledger consume`` and ``ingest`` killed with SIGKILL at random points, then compared.

    python -m bench.faults [--backend sqlite|postgres|both] [--rounds 20] [--kills 5] [--pg-rounds 4]
                           [--ingest-rounds 2] [--ingest-kills 5] [--records 4000] [--contracts 6]
                           [--batch 500] [--seed N] [--quick] [--json] [--keep]

Each *round* builds a provider stream (deploy/streams.py: submissions,
corrections, cost reports, ~5% byte-identical duplicates, ~2% records only the ledger can
refuse, ~1% bytes that are not records at all), ingests its JSON lines into a clean
SQLite ledger (the reference), and sends it to a fresh 3-partition topic of a Tansu broker.
Then ``--kills`` times: start ``obc-ledger consume`` (a real process, as deployed) and
SIGKILL it when the ledger's tracked offsets reach a random point of the stream, plus a
random delay of up to one batch's time (so the kill lands anywhere in a batch's cycle:
poll, decode, apply, dead letters sent, save), or, one time in five, at a random instant
of its start-up, group join or recovery. A last ``consume --until-idle`` runs to the end.
The round *differs* if any of these is not equal to the reference / the stream: every
statement (each contract, each year), the accepted records (ids and digests, latest data
per slot), the rejections (a multiset of code, contract, type, id; one wire rejection per
distinct garbage message), the dead letters (one per bad message, none twice, exactly the
bad messages' coordinates), the tracked offsets (every record produced). Ingest rounds do the same with ``obc-ledger ingest FILE``
killed at random instants and re-run (a re-run acknowledges what was applied).

Prints kills, kills that landed mid-stream, and rounds with any difference, per backend
(PostgreSQL from pgserver's binaries). Exits 1 if a round differed. ``--quick`` (the test
suite's): one round of 3 consume kills (1,500 records) and one of 2 ingest kills (6,000), SQLite.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from consumers.consumer import parse_assignment, records_saved
from consumers.dead_letters import dlq_topic, parse_key
from consumers.kafka import ensure_topic, producer, read_tail
from deploy.servers import PostgresServer, TansuBroker, start_postgres, start_tansu
from deploy.streams import Stream, contract_ids, make_stream, register
from deploy.worker import Worker
from ledger.bootstrap import bootstrap
from ledger.domain.aggregates import year_data_uuid
from ledger.domain.records import ID_FIELDS
from ledger.usecases import services_for
from ledger.usecases.application import Ledger

PARTITIONS = 3
YEARS = (1, 2, 3)
SESSION_MS = 3000  # a killed member's session expires quickly: the next process joins sooner
WIRE_CODES = {
    "empty_message",
    "truncated",
    "unsupported_framing",
    "unknown_schema_id",
    "undecodable",
    "unexpected_schema",
    "message_too_large",
    "unprocessable",
}
RUN_TIMEOUT_S = 120.0
KILL_JITTER_S = 0.1  # after the target point: about one batch of 500 (poll, apply, dead letters, save)


@dataclass
class RoundResult:
    backend: str
    what: str  # consume | ingest
    seed: int
    kills: int = 0
    mid_stream: int = 0  # kills after some but before all records were saved
    landed: list[int] = field(default_factory=list)  # records saved when each kill landed
    early: int = 0  # kills at a random instant of start-up, join or recovery (not at a point of the stream)
    finished_first: int = 0  # ingest runs that ended before their kill (not counted as kills)
    last_run: dict[str, Any] = field(default_factory=dict)  # the last consume: exit, consumed, assigned
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0  # float-ok: seconds, not money

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "what": self.what,
            "seed": self.seed,
            "kills": self.kills,
            "mid_stream": self.mid_stream,
            "early": self.early,
            "finished_first": self.finished_first,
            "last_run": self.last_run,
            "landed": self.landed,
            "differences": self.differences,
            "seconds": round(self.seconds, 1),
        }


# ------------------------------------------------------------------ what must be equal


def record_keys(lines: list[str]) -> dict[str, set[str]]:
    """contract id -> "type:id" of every record in ``lines``."""
    keys: dict[str, set[str]] = {}
    for line in lines:
        r = json.loads(line)
        keys.setdefault(r["contract_id"], set()).add(f"{r['type']}:{r[ID_FIELDS[r['type']]]}")
    return keys


def ledger_figures(url: str, contracts: list[str], keys: dict[str, set[str]]) -> dict[str, Any]:
    """What must be equal however the records arrived, by part: statements, accepted records, rejections."""
    app = bootstrap(url).ledger
    accepted: dict[Any, Any] = {}
    statements: dict[Any, Any] = {}
    for cid in contracts:
        accepted[cid] = app.recorder.lookup_records(cid, sorted(keys.get(cid, ())))
        for year in YEARS:
            agg = app._maybe(year_data_uuid(cid, year))
            accepted[(cid, year)] = (
                None
                if agg is None
                else (dict(agg.latest_submission), dict(agg.latest_cost), dict(agg.population))
            )
            statements[(cid, year)] = services_for(app).settlement.statement(cid, year)
    rows = services_for(app).ingest.rejected()
    rejections = Counter(
        (r["code"], r["contract_id"], r["record_type"], r["record_id"])
        for r in rows
        if r["code"] not in WIRE_CODES
    )
    wire = Counter(r["code"] for r in rows if r["code"] in WIRE_CODES)
    return {"statements": statements, "accepted records": accepted, "rejections": rejections, "wire": wire}


def differences(got: dict[str, Any], want: dict[str, Any], expected_wire: int) -> list[str]:
    out = []
    for part in ("statements", "accepted records", "rejections"):
        if got[part] != want[part]:
            keys = set(got[part]) | set(want[part])
            bad = sorted(str(k) for k in keys if got[part].get(k) != want[part].get(k))
            out.append(f"{part} differ for {len(bad)} key(s), first {bad[:3]}")
    if (
        sum(got["wire"].values()) != expected_wire
    ):  # one per distinct message (identical bytes are one rejection)
        out.append(
            f"wire rejections {dict(got['wire'])}, expected {expected_wire} (one per distinct message)"
        )
    return out


def dlq_differences(bootstrap: str, topic: str, expected: set[str]) -> list[str]:
    letters = [
        m for p in range(PARTITIONS) for m in read_tail(bootstrap, TopicPartition(dlq_topic(topic), p), 0)
    ]
    keys = [m.key.decode() for m in letters]
    out = []
    twice = [k for k, n in Counter(keys).items() if n > 1]
    if twice:
        out.append(
            f"{len(twice)} dead letter(s) sent more than once ({len(keys)} for {len(set(keys))} messages)"
        )
    if set(keys) != expected:
        out.append(
            f"dead letters for {len(set(keys) - expected)} good message(s), "
            f"none for {len(expected - set(keys))} bad one(s)"
        )
    if any(parse_key(m.key)[:2] != (topic, m.partition) for m in letters):  # type: ignore[index]
        out.append("a dead letter is on another partition than its source's")
    return out


def progress(app: Ledger, topic: str) -> int:
    """Records saved so far: the tracked offsets + 1, summed over the partitions."""
    return sum(records_saved(app, topic, p) for p in range(PARTITIONS))


# ------------------------------------------------------------------ one round


def send(bootstrap: str, topic: str, stream: Stream) -> tuple[set[str], Counter[int]]:
    """Send the stream; return the bad messages' 'topic:partition:offset' and the records per partition."""
    client = producer(bootstrap)
    futures = [(client.send(topic, key=key, value=value), bad) for key, value, bad in stream.messages()]
    client.flush()
    bad_keys, per_partition = set(), Counter()
    for future, bad in futures:
        md = future.get(timeout=30)
        per_partition[md.partition] += 1
        if bad:
            bad_keys.add(f"{topic}:{md.partition}:{md.offset}")
    client.close()
    return bad_keys, per_partition


class Round:
    def __init__(
        self,
        backend: str,
        what: str,
        new_url: Callable[[str], str],
        broker: TansuBroker,
        work: Path,
        records: int,
        contracts: int,
        batch: int,
        seed: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.result = RoundResult(backend, what, seed)
        self.broker, self.work, self.batch = broker, work, batch
        self.contracts = contract_ids(contracts)
        self.stream = make_stream(records, self.contracts, seed=seed, bad_rate=0.02, garbage_rate=0.01)
        self.name = f"faults-{what}-{backend}-{seed}"
        self.reference = f"sqlite:///{work / f'{self.name}-reference.db'}"
        register(bootstrap(self.reference).ledger, self.contracts)
        bootstrap(self.reference).services.ingest.ingest_lines(self.stream.lines, "reference.jsonl")
        self.new_url = new_url
        self.url = new_url(self.name)
        self.app = bootstrap(self.url).ledger
        register(self.app, self.contracts)
        self.keys = record_keys(self.stream.lines)
        self.runs = 0
        self.last_kill = float("-inf")  # when the last consume was SIGKILLed (its session outlives it)

    def worker(self, *args: str) -> Worker:
        self.runs += 1
        return Worker(f"{self.name}-{self.runs}", ["--db", self.url, "--json", *args], {}, self.work).start()

    def consume_args(self, *extra: str) -> list[str]:
        return [
            "consume",
            "--bootstrap",
            self.broker.bootstrap,
            "--topic",
            self.name,
            "--group",
            self.name,
            "--batch",
            str(self.batch),
            "--session-timeout-ms",
            str(SESSION_MS),
            *extra,
        ]

    def tracked(self) -> dict[int, int]:
        """Records saved per partition: the ledger's tracked offset + 1."""
        return {p: records_saved(self.app, self.name, p) for p in range(PARTITIONS)}

    def run_consume(self, kills: int) -> RoundResult:
        started = time.monotonic()
        self.broker.create_topic(self.name, partitions=PARTITIONS)
        ensure_topic(self.broker.bootstrap, dlq_topic(self.name), PARTITIONS)
        expected_dlq, produced = send(self.broker.bootstrap, self.name, self.stream)
        total = self.stream.total
        for n in range(kills):
            worker = self.worker(*self.consume_args())
            done = progress(self.app, self.name)
            if self.rng.random() < 0.2 or done >= total:  # a random instant of start-up, join or recovery
                self.result.early += 1
                time.sleep(self.rng.uniform(0.0, 3.0))
            else:  # a random point of what is left, spread over the kills still to come
                span = (total - done) * 2 / (kills - n + 1)
                target = min(total, done + self.rng.uniform(1, max(1.0, span)))
                deadline = time.monotonic() + RUN_TIMEOUT_S
                while (
                    progress(self.app, self.name) < target
                    and worker.running()
                    and time.monotonic() < deadline
                ):
                    time.sleep(self.rng.uniform(0.005, 0.05))
                time.sleep(self.rng.uniform(0.0, KILL_JITTER_S))  # anywhere in the next batch's cycle
            if not worker.running():
                self.result.differences.append(f"consume exited before its kill: {worker.failure()}")
                break
            worker.kill()
            self.last_kill = time.monotonic()
            self.note_kill(progress(self.app, self.name), total)
        # A SIGKILLed member stays in the group until its session expires; a consumer joining before
        # that may be handed none of the partitions the dead member held, read its own to the end and
        # leave, idle (seen: one partition left unread). The last run starts once every session of a
        # killed process has expired, as an operator's restart after a crash would.
        # One last run. The CI flakes of seeds 245110, 935062 and 582405 (one partition of one
        # record "left unread"), for which this harness had grown reruns and a fallback group, were
        # its own miscount of a tracked offset 0 as "nothing saved" (records_saved counts it now):
        # the assignments the last run logs showed every partition assigned and nothing left. They
        # are kept in the report, so a real stuck group would show which member held what.
        time.sleep(max(0.0, self.last_kill + 2 * SESSION_MS / 1000 - time.monotonic()))
        wanted = {p: produced[p] for p in range(PARTITIONS)}
        final = self.worker("--log-level", "info", *self.consume_args("--until-idle", "3"))
        final.wait_stopped(RUN_TIMEOUT_S + 60)
        report = final.report()
        log_text = final.err.read_text(errors="replace") if final.err.exists() else ""
        self.result.last_run = {
            "exit": final.proc.returncode,  # type: ignore[union-attr]
            "consumed": report["consumed"] if report else None,
            "assigned": parse_assignment(log_text),  # its last assignment, as it logged it
        }
        if final.proc.returncode != 0 or report is None:  # type: ignore[union-attr]
            self.result.differences.append(f"the last consume failed: {final.failure()}")
        elif not report["reconciles"]:
            self.result.differences.append(f"the last consume's counts do not reconcile: {report}")
        tracked = self.tracked()
        if tracked != wanted:
            self.result.differences.append(
                f"tracked offsets {tracked}, produced {dict(produced)}; the last run {self.result.last_run}"
            )
        self.compare()
        self.result.differences += dlq_differences(self.broker.bootstrap, self.name, expected_dlq)
        self.result.seconds = time.monotonic() - started
        return self.result

    def run_ingest(self, kills: int) -> RoundResult:
        started = time.monotonic()
        data = self.work / f"{self.name}.jsonl"
        data.write_text("\n".join(self.stream.lines) + "\n")
        start_up, estimate = self.timed_ingest_estimate()
        for _ in range(3 * kills):
            if self.result.kills == kills:
                break
            worker = self.worker("ingest", str(data))
            began, wait = time.monotonic(), self.rng.uniform(start_up, estimate)
            while worker.running() and time.monotonic() - began < wait:
                time.sleep(0.01)
            if not worker.running():  # it finished first: not a kill; aim the next ones earlier
                self.result.finished_first += 1
                estimate = max(start_up, 0.9 * (time.monotonic() - began))
                continue
            worker.kill()
            self.note_kill(self.accepted_so_far(), sum(map(len, self.keys.values())))
        final = self.worker("ingest", str(data))
        final.wait_stopped(RUN_TIMEOUT_S)
        if final.proc.returncode not in (0, 3):  # type: ignore[union-attr]  # 3: some records refused, as they should be
            self.result.differences.append(f"the last ingest failed: {final.failure()}")
        self.compare(expected_wire=0)
        self.result.seconds = time.monotonic() - started
        return self.result

    def timed_ingest_estimate(self) -> tuple[float, float]:  # float-ok: seconds, not money
        """Seconds ``obc-ledger --version`` takes (start-up), and one uninterrupted ingest of the stream
        into a scratch ledger on the same backend."""
        timings = []
        scratch = self.new_url(f"{self.name}-scratch")
        register(bootstrap(scratch).ledger, self.contracts)
        data = self.work / f"{self.name}.jsonl"
        for args in (["--version"], ["--db", scratch, "--json", "ingest", str(data)]):
            began = time.monotonic()
            Worker(f"{self.name}-scratch", args, {}, self.work).start().wait_stopped(RUN_TIMEOUT_S)
            timings.append(time.monotonic() - began)
        return timings[0], max(timings)

    def accepted_so_far(self) -> int:
        return sum(
            len(self.app.recorder.lookup_records(cid, sorted(self.keys.get(cid, ()))))
            for cid in self.contracts
        )

    def note_kill(self, landed: int, total: int) -> None:
        self.result.kills += 1
        self.result.landed.append(landed)
        self.result.mid_stream += 0 < landed < total

    def compare(self, expected_wire: int | None = None) -> None:
        keys = self.keys
        wire = (
            len({value for g in self.stream.garbage.values() for _, value, _ in g})
            if expected_wire is None
            else expected_wire
        )
        self.result.differences += differences(
            ledger_figures(self.url, self.contracts, keys),
            ledger_figures(self.reference, self.contracts, keys),
            wire,
        )


# ------------------------------------------------------------------ the whole run


def run(args: argparse.Namespace, say: Callable[[str], None]) -> list[RoundResult]:
    work = Path(tempfile.mkdtemp(prefix="obc-faults-"))
    results: list[RoundResult] = []
    broker: TansuBroker | None = None
    postgres: PostgresServer | None = None
    rng = random.Random(args.seed)
    try:
        broker = start_tansu(log_dir=work)
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            if backend == "postgres":
                postgres = start_postgres(
                    Path(tempfile.mkdtemp(prefix="obc-faults-pg-")), log_path=work / "pg.log"
                )
                pg = postgres

                def new_url(name: str, pg: PostgresServer = pg) -> str:  # this backend's server
                    return pg.create_database(name.replace("-", "_")[:63])

                rounds = args.pg_rounds
            else:

                def new_url(name: str) -> str:
                    return f"sqlite:///{work / f'{name}.db'}"

                rounds = args.rounds
            plan = [("consume", args.kills)] * rounds + [("ingest", args.ingest_kills)] * args.ingest_rounds
            for what, kills in plan:
                seed = rng.randrange(10**6)
                records = args.records if what == "consume" else args.ingest_records
                one = Round(backend, what, new_url, broker, work, records, args.contracts, args.batch, seed)
                result = one.run_consume(kills) if what == "consume" else one.run_ingest(kills)
                results.append(result)
                first = f", {result.finished_first} run(s) finished first" if result.finished_first else ""
                say(
                    f"{backend:8} {what:7} seed {seed:6}: {result.kills} kills ({result.mid_stream} mid-stream, "
                    f"{result.early} early, saved {result.landed}{first}), {result.seconds:.0f} s: "
                    f"{'; '.join(result.differences) if result.differences else 'equal to the clean ledger'}"
                )
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.data_dir, ignore_errors=True)
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


def summary(results: list[RoundResult]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(
            (r.backend, r.what),
            {
                "backend": r.backend,
                "what": r.what,
                "rounds": 0,
                "kills": 0,
                "mid_stream": 0,
                "early": 0,
                "rounds_with_any_difference": 0,
                "seconds": 0.0,
            },
        )
        row["rounds"] += 1
        row["kills"] += r.kills
        row["mid_stream"] += r.mid_stream
        row["early"] += r.early
        row["rounds_with_any_difference"] += bool(r.differences)
        row["seconds"] = round(row["seconds"] + r.seconds, 1)
    return list(rows.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--rounds", type=int, default=20, help="consume rounds on SQLite (default 20)")
    p.add_argument("--pg-rounds", type=int, default=4, help="consume rounds on PostgreSQL (default 4)")
    p.add_argument("--kills", type=int, default=5, help="consume kills per round (default 5)")
    p.add_argument("--ingest-rounds", type=int, default=2, help="ingest rounds per backend (default 2)")
    p.add_argument("--ingest-kills", type=int, default=5, help="ingest kills per round (default 5)")
    p.add_argument("--records", type=int, default=4000, help="JSON lines per round (default 4000)")
    p.add_argument(
        "--ingest-records",
        type=int,
        default=10_000,
        help="JSON lines per ingest round (default 10000: ingest saves 2,000 per transaction)",
    )
    p.add_argument("--contracts", type=int, default=6)
    p.add_argument("--batch", type=int, default=500, help="consume --batch (default 500)")
    p.add_argument("--seed", type=int, default=None, help="seed of the rounds' seeds (default: random)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the test suite's run: 1 round of 3 consume kills and "
        "1 of 2 ingest kills, small streams, SQLite",
    )
    p.add_argument("--json", action="store_true", help="print the rounds and the summary as JSON")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args(argv)
    if args.quick:
        args.backend, args.rounds, args.kills, args.ingest_rounds, args.ingest_kills = "sqlite", 1, 3, 1, 2
        args.records, args.ingest_records, args.contracts, args.batch = 1500, 6000, 3, 200
    if args.seed is None:
        args.seed = random.randrange(10**6)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = (lambda _: None) if args.json else (lambda line: print(line, flush=True))
    say(f"bench.faults seed {args.seed}")
    results = run(args, say)
    rows = summary(results)
    if args.json:
        print(
            json.dumps(
                {"seed": args.seed, "summary": rows, "rounds": [r.to_dict() for r in results]}, indent=2
            )
        )
    else:
        print(
            f"\n{'backend':8} {'what':7} {'rounds':>6} {'kills':>6} {'mid-stream':>10} {'early':>5} "
            f"{'rounds differing':>16} {'seconds':>8}"
        )
        for row in rows:
            print(
                f"{row['backend']:8} {row['what']:7} {row['rounds']:>6} {row['kills']:>6} {row['mid_stream']:>10} "
                f"{row['early']:>5} {row['rounds_with_any_difference']:>16} {row['seconds']:>8.0f}"
            )
    return 1 if any(r.differences for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
