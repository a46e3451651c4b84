"""A local multi-process cluster on loopback: the compose topology without Docker.

    python -m deploy.local_cluster [--consumers 3] [--partitions 6] [--copies 6] [--years 3]
                                   [--kill-one-at 0.3 [--restart-killed]] [--compare] [--out DIR]
                                   [--serve] [--keep]

(``deploy/local-cluster`` is the same thing as a script.) Starts PostgreSQL 16 (pgserver's
binaries) and the Tansu Kafka-protocol broker, creates ``ledger.records`` with
``--partitions`` partitions, its ``.dlq`` and ``ledger.decisions``, registers the
contracts of a generated multi-contract stream (deploy.workload), then runs, as separate
``obc-ledger`` processes configured only through ``OBC_LEDGER_*`` environment variables
(as in compose.yaml): ``--consumers`` consumers in one group, a projection worker
(``projections run --follow``) and a decisions publisher. It produces the stream keyed by
contract id and waits until the ledger has applied every record: the offsets the ledger
tracked in its own database reach, on every partition, the last offset the broker
acknowledged to the producer (never Kafka end offsets, which Tansu reports wrongly).

``--kill-one-at F`` SIGKILLs one consumer once a fraction F of the records is applied:
the one with the most records left on the partitions it owns (each consumer logs its
assignments, ``OBC_LEDGER_LOG_LEVEL=info``). The partitions it held stall until the
group's session timeout expires, then the others take them over (reported with the delay). ``--restart-killed`` starts a replacement once
they have. Then every contract year is closed, the publisher sends the decisions and the
projection worker catches up; the statements are read from the read models and printed.
``--compare`` ingests the same lines as one JSON-lines file into a fresh SQLite ledger
(the embedded default), closes the same years and compares every statement. Finally
every process is stopped (SIGTERM: a consumer finishes its batch and leaves the group).
``--serve`` keeps the cluster running until Ctrl-C and prints the variables to reach it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from consumers.consumer import parse_assignment, tracking_name
from consumers.decisions import KINDS
from consumers.kafka import producer
from consumers.producer import encode_line
from ledger.bootstrap import bootstrap
from ledger.domain.records import RecordRefused
from ledger.usecases import services_for

from .servers import PostgresServer, TansuBroker, start_postgres, start_tansu
from .worker import Worker
from .workload import Workload, demo_workload

RECORDS_TOPIC = "ledger.records"
DECISIONS_TOPIC = "ledger.decisions"
GROUP = "obc-ledger"
STALL_WINDOW_S = 2.0  # a partition that held records and did not move for this long after the kill
APPLY_TIMEOUT_S = 180.0


class ClusterError(RuntimeError):
    pass


# ------------------------------------------------------------------ the cluster


@dataclass
class Options:
    consumers: int = 3
    partitions: int = 6
    batch: int = 500
    session_timeout_ms: int = 6000
    kill_one_at: float | None = None
    restart_killed: bool = False
    close_years: bool = True
    poll: float = 0.2
    pg_settings: dict[str, str] | None = None  # PostgreSQL -c settings (default: fsync off, as in tests)


@dataclass
class KillReport:
    consumer: str
    pid: int
    at_records: int
    stalled_partitions: list[int] = field(default_factory=list)
    taken_over_after_s: float | None = None
    restarted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LocalCluster:
    def __init__(
        self, workload: Workload, options: Options, work: Path, say: Callable[[str], None] = print
    ) -> None:
        self.workload = workload
        self.options = options
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.postgres: PostgresServer | None = None
        self.broker: TansuBroker | None = None
        self.url = ""
        self.app: Any = None
        self.consumers: list[Worker] = []
        self.others: list[Worker] = []
        self.sent = 0
        self.refused = 0
        self.last_offsets: dict[int, int] = {}
        self.kill: KillReport | None = None
        self.timings: dict[str, float] = {}
        self.produce_started = 0.0
        self.applied_at_first_commit = 0
        self.on_first_commit: Callable[[], None] | None = None  # e.g. a benchmark's CPU snapshot
        self.projections: Any = None  # the read models (projections.bootstrap.Projections)
        # after a kill: tracked offsets then, when, when each partition first moved since, classified yet
        self._at_kill: dict[int, int] = {}
        self._killed_at = 0.0
        self._moved: dict[int, float] = {}
        self._classified = False
        self.stop_logs: dict[str, str] = {}  # workers that printed no report when stopped: their log's tail

    # ---------------------------------------------------------------- servers

    def start_servers(self) -> None:
        started = time.monotonic()
        # PostgreSQL runs as an unprivileged account when we are root: the data dir must be traversable.
        self.postgres = start_postgres(
            self.work / "pg", log_path=self.logs / "postgres.log", settings=self.options.pg_settings
        )
        self.url = self.postgres.create_database("ledger")
        self.broker = start_tansu(log_dir=self.logs)
        for topic in (RECORDS_TOPIC, f"{RECORDS_TOPIC}.dlq", DECISIONS_TOPIC):
            self.broker.create_topic(topic, partitions=self.options.partitions)
        self.timings["servers_s"] = time.monotonic() - started
        self.say(
            f"PostgreSQL 16 at {self.postgres.host}:{self.postgres.port}, Tansu broker at "
            f"{self.broker.bootstrap}; topics {RECORDS_TOPIC}, {RECORDS_TOPIC}.dlq, {DECISIONS_TOPIC} "
            f"with {self.options.partitions} partitions each"
        )

    def env(self) -> dict[str, str]:
        """What every worker shares: where the event store and the broker are.

        ``CREATE_TABLE=false`` (an eventsourcing setting): the schema was created once by
        :meth:`prepare_ledger`. Every start otherwise re-runs the event store's DDL, and
        PostgreSQL fails concurrent ``CREATE OR REPLACE FUNCTION`` with "tuple concurrently
        updated" when several workers start at once.
        """
        assert self.broker is not None
        return {
            "OBC_LEDGER_DB": self.url,
            "OBC_LEDGER_BOOTSTRAP": self.broker.bootstrap,
            "OBC_LEDGER_JSON": "1",
            "CREATE_TABLE": "false",
        }

    def prepare_ledger(self) -> None:
        """Create the schema and register the contracts once, before any worker starts."""
        world = bootstrap(self.url)
        self.app = world.ledger
        for _, text in self.workload.contracts:
            world.services.registration.register_contract(text)
        self.projections = world.projections()
        self.projections.projector.create_tables()
        self.say(f"registered {len(self.workload.contracts)} contracts")

    # ---------------------------------------------------------------- workers

    def consumer(self, n: int) -> Worker:
        o = self.options
        return Worker(
            f"consumer-{n}",
            ["consume"],
            self.env()
            | {
                "OBC_LEDGER_TOPICS": RECORDS_TOPIC,
                "OBC_LEDGER_GROUP": GROUP,
                "OBC_LEDGER_BATCH": str(o.batch),
                "OBC_LEDGER_SESSION_TIMEOUT_MS": str(o.session_timeout_ms),
                "OBC_LEDGER_LOG_LEVEL": "info",
            },
            self.logs,
        ).start()  # logs its partition assignments

    def start_consumers(self) -> None:
        self.consumers = [self.consumer(n) for n in range(1, self.options.consumers + 1)]
        self.say("started " + ", ".join(f"{w.name} (pid {w.pid})" for w in self.consumers))

    def start_others(self) -> None:
        """The projection worker and the decisions publisher."""
        self.others = [
            Worker(
                "projections",
                ["projections", "run", "--follow"],
                self.env() | {"OBC_LEDGER_POLL": "0.2"},
                self.logs,
            ).start(),
            Worker(
                "publisher",
                ["publish-decisions"],
                self.env() | {"OBC_LEDGER_TOPIC": DECISIONS_TOPIC},
                self.logs,
            ).start(),
        ]
        self.say("started " + ", ".join(f"{w.name} (pid {w.pid})" for w in self.others))

    def start_workers(self) -> None:
        self.start_consumers()
        self.start_others()

    def check_workers(self) -> None:
        for worker in self.consumers + self.others:
            if worker.proc is not None and worker.proc.poll() is not None and worker is not self._killed():
                raise ClusterError(worker.failure())

    def _killed(self) -> Worker | None:
        if self.kill is None:
            return None
        return next((w for w in self.consumers if w.name == self.kill.consumer), None)

    # ---------------------------------------------------------------- produce and wait

    def produce(self) -> None:

        assert self.broker is not None
        started = self.produce_started = time.monotonic()
        client = producer(self.broker.bootstrap)
        last: dict[int, int] = {}
        failures: list[BaseException] = []

        def acked(metadata: Any) -> None:
            last[metadata.partition] = max(last.get(metadata.partition, -1), metadata.offset)

        try:
            for line in self.workload.lines:
                try:
                    key, value = encode_line(line)
                except RecordRefused:
                    self.refused += 1  # what `obc-ledger produce` refuses before sending
                    continue
                client.send(RECORDS_TOPIC, key=key, value=value).add_callback(acked).add_errback(
                    failures.append
                )
                self.sent += 1
            client.flush()
        finally:
            client.close(timeout=10)
        if failures:
            raise ClusterError(f"{len(failures)} record(s) not acknowledged by the broker: {failures[0]}")
        self.last_offsets = {p: last.get(p, -1) for p in range(self.options.partitions)}
        self.timings["produce_s"] = time.monotonic() - started
        self.say(
            f"produced {self.sent:,} records keyed by contract id ({self.refused} refused by the producer's "
            f"checks) in {self.timings['produce_s']:.1f} s; last offsets by partition {self.last_offsets}"
        )

    def tracked(self) -> dict[int, int]:
        """The last offset the ledger applied, per partition (-1: none yet), from its own database."""

        out = {}
        for p in range(self.options.partitions):
            stored = self.app.recorder.max_tracking_id(tracking_name(RECORDS_TOPIC, p))
            out[p] = -1 if stored is None else stored
        return out

    def applied(self, tracked: dict[int, int]) -> int:
        return sum(min(tracked[p], last) + 1 for p, last in self.last_offsets.items())

    def wait_applied(self) -> None:
        o = self.options
        started = time.monotonic()
        deadline = started + APPLY_TIMEOUT_S
        last_say = started
        first_commit: float | None = None
        while True:
            tracked = self.tracked()
            now = time.monotonic()
            applied = self.applied(tracked)
            if applied and first_commit is None:
                first_commit = now
                self.applied_at_first_commit = applied
                if self.on_first_commit is not None:
                    self.on_first_commit()
            finished = all(tracked[p] >= last for p, last in self.last_offsets.items())
            victim = (
                self._victim(tracked)
                if o.kill_one_at is not None
                and self.kill is None
                and not finished
                and applied >= o.kill_one_at * self.sent
                else None
            )
            if victim is not None:
                self._kill_one(victim, tracked, applied, now)
            elif self.kill is not None:
                self._watch_takeover(tracked, now, finished)
            if finished:
                break
            self.check_workers()
            if now > deadline:
                raise ClusterError(
                    f"not all applied after {APPLY_TIMEOUT_S:.0f} s: {tracked} of {self.last_offsets}"
                )
            if now - last_say >= 5:
                last_say = now
                self.say(f"  … {applied:,} of {self.sent:,} applied")
            time.sleep(o.poll)
        self.timings["apply_s"] = time.monotonic() - started
        # consumers apply records while they are still being produced: time it from the first one sent
        self.timings["apply_from_produce_s"] = time.monotonic() - self.produce_started
        # from the first batch the ledger committed (seen within one poll) to the last: no group join
        self.timings["apply_from_first_commit_s"] = time.monotonic() - (first_commit or started)
        self.say(
            f"all {self.sent:,} records applied: the ledger's tracked offsets equal the produced ones on every "
            f"partition ({self.timings['apply_s']:.1f} s after producing)"
        )

    def assignments(self) -> dict[str, list[int]]:
        """Each running consumer's partitions of the records topic, from the last assignment it logged."""

        out = {}
        for worker in self.consumers:
            if worker.running() and worker.err.exists():
                logged = parse_assignment(worker.err.read_text(errors="replace"))
                if logged is not None:
                    out[worker.name] = logged.get(RECORDS_TOPIC, [])
        return out

    def _victim(self, tracked: dict[int, int]) -> Worker | None:
        """The consumer with the most records still to apply on the partitions it owns, if any.

        Records are keyed by contract id, so partitions hold very different numbers of
        records: a consumer whose partitions are finished would show no takeover when killed.
        """
        assignments = self.assignments()
        owned = sorted(p for partitions in assignments.values() for p in partitions)
        if owned != list(range(self.options.partitions)):
            return None  # a rebalance is under way (not every member logged the same generation yet)
        left = {
            name: sum(max(0, self.last_offsets[p] - tracked[p]) for p in partitions)
            for name, partitions in assignments.items()
        }
        name = max(left, key=lambda n: left[n], default=None)
        if name is None or left[name] == 0:
            return None  # no assignment logged yet, or none with records left: look again next poll
        return next(w for w in self.consumers if w.name == name)

    def _kill_one(self, victim: Worker, tracked: dict[int, int], applied: int, now: float) -> None:
        victim.kill()
        self.kill = KillReport(victim.name, victim.pid, applied)
        self._at_kill, self._killed_at, self._moved = dict(tracked), now, {}
        self._classified = False
        self.say(f"kill -9 {victim.name} (pid {victim.pid}) at {applied:,} of {self.sent:,} records applied")

    def _watch_takeover(self, tracked: dict[int, int], now: float, finished: bool) -> None:
        """Which partitions stalled with the killed consumer, and when the others took them over.

        A partition the killed consumer held does not move until the group reassigns it
        (its session expires first); the others' partitions keep moving meanwhile.
        """
        kill, at_kill, since = self.kill, self._at_kill, now - self._killed_at
        assert kill is not None
        for p, offset in tracked.items():
            if p not in self._moved and offset > at_kill[p]:
                self._moved[p] = now - self._killed_at
        if not self._classified and (since >= STALL_WINDOW_S or finished):
            self._classified = True
            kill.stalled_partitions = [
                p
                for p, last in self.last_offsets.items()
                if at_kill[p] < last and self._moved.get(p, since) >= STALL_WINDOW_S
            ]
            if kill.stalled_partitions:
                self.say(
                    f"partitions {kill.stalled_partitions} stalled since the kill (they were {kill.consumer}'s); "
                    f"the group reassigns them once its session expires"
                )
            else:
                self.say(f"{kill.consumer} held no unfinished partition when it was killed")
        if (
            self._classified
            and kill.stalled_partitions
            and kill.taken_over_after_s is None
            and all(p in self._moved for p in kill.stalled_partitions)
        ):
            kill.taken_over_after_s = round(max(self._moved[p] for p in kill.stalled_partitions), 1)
            self.say(
                f"partitions {kill.stalled_partitions} taken over by the other consumers "
                f"{kill.taken_over_after_s} s after the kill"
            )
        if (
            self.options.restart_killed
            and self._classified
            and kill.restarted is None
            and (kill.taken_over_after_s is not None or not kill.stalled_partitions)
        ):
            replacement = self.consumer(len(self.consumers) + 1)
            self.consumers.append(replacement)
            kill.restarted = replacement.name
            self.say(f"restarted: {replacement.name} (pid {replacement.pid}) joins the group")

    # ---------------------------------------------------------------- decisions and read models

    def close_years(self) -> int:
        started = time.monotonic()
        closed = 0
        settling = services_for(self.app).settlement
        for cid in self.workload.contract_ids:
            for year in range(1, self.workload.years + 1):
                settling.close_year(cid, year)
                closed += 1
        self.timings["close_s"] = time.monotonic() - started
        self.say(f"closed {closed} contract years ({self.timings['close_s']:.1f} s)")
        return closed

    def last_decision(self) -> int:

        position, last = 0, 0
        while True:
            page = self.app.recorder.select_notifications(
                start=position, limit=1000, topics=list(KINDS), inclusive_of_start=False
            )
            if not page:
                return last
            position = last = page[-1].id

    def wait_until(self, what: str, done: Callable[[], bool], timeout: float = 120.0) -> float:
        started = time.monotonic()
        while not done():
            self.check_workers()
            if time.monotonic() - started > timeout:
                raise ClusterError(f"{what}: not done after {timeout:.0f} s")
            time.sleep(self.options.poll)
        return time.monotonic() - started

    def wait_published(self) -> int:
        last = self.last_decision()
        self.wait_until(
            "publishing decisions",
            lambda: (self.app.recorder.max_tracking_id(f"publish:{DECISIONS_TOPIC}") or 0) >= last,
        )
        return last

    def wait_projected(self) -> dict[str, int]:
        seconds = self.wait_until("projecting", lambda: self.projections.projector.status()["lag"] == 0)
        status = self.projections.projector.status()
        self.say(
            f"read models at position {status['position']:,} of {status['head']:,} (projection worker; "
            f"waited {seconds:.1f} s)"
        )
        return status

    def events_by_topic(self) -> dict[str, int]:
        """How many events of each type the event store holds (a PostgreSQL query)."""

        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT topic, count(*) FROM ledger_events GROUP BY topic ORDER BY topic"
            ).fetchall()
        return {topic.rsplit(":", 1)[-1]: n for topic, n in rows}

    def statements(self) -> dict[str, dict[str, Any]]:
        """Every contract year's statement, from the read models the projection worker built."""
        read = self.projections.read
        return {
            cid: {str(y): read.statement(cid, y) for y in range(1, self.workload.years + 1)}
            for cid in self.workload.contract_ids
        }

    # ---------------------------------------------------------------- stop

    def settled(self) -> bool:
        """Every running consumer has logged an assignment and together they own each partition once."""
        running = [w for w in self.consumers if w.running()]
        assignments = self.assignments()
        owned = sorted(p for partitions in assignments.values() for p in partitions)
        return len(assignments) == len(running) and owned == list(range(self.options.partitions))

    def stop_workers(self, settle_s: float = 30.0) -> dict[str, Any]:  # float-ok: seconds, not money
        """Stop every worker with SIGTERM and collect the reports they print.

        The consumers are stopped once the group has settled (a replacement that is still
        joining would first have to finish its join) and all together, so that none waits
        on a rebalance caused by another's leaving. A worker that prints no report leaves
        the tail of its log in ``self.stop_logs``.
        """
        deadline = time.monotonic() + settle_s
        while not self.settled() and time.monotonic() < deadline:
            time.sleep(0.2)
        for worker in self.consumers:
            worker.terminate()
        for worker in self.consumers:
            worker.wait_stopped(self.options.session_timeout_ms / 1000 + 20)
        for worker in self.others:
            worker.stop()
        reports = {w.name: w.report() for w in self.consumers + self.others}
        self.stop_logs = {
            w.name: w.log_tail()
            for w in self.consumers + self.others
            if reports[w.name] is None and (self.kill is None or w.name != self.kill.consumer)
        }
        return reports

    def stop(self) -> None:
        for worker in self.consumers + self.others:
            worker.kill()
        if self.app is not None:
            self.app.close()
            self.app = None
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


# ------------------------------------------------------------------ the embedded default, for comparison


def embedded_statements(workload: Workload, work: Path) -> dict[str, dict[str, Any]]:
    """The same lines as ONE JSON-lines file ingested into a fresh SQLite ledger; the same years closed."""
    path = workload.write_jsonl(work / "records.jsonl")
    world = bootstrap(f"sqlite:///{work / 'embedded.db'}")
    app, services = world.ledger, world.services
    try:
        for _, text in workload.contracts:
            services.registration.register_contract(text)
        with open(path, encoding="utf-8") as handle:
            services.ingest.ingest_lines(handle, path.name)
        for cid in workload.contract_ids:
            for year in range(1, workload.years + 1):
                services.settlement.close_year(cid, year)
        return {
            cid: {str(y): services.settlement.statement(cid, y) for y in range(1, workload.years + 1)}
            for cid in workload.contract_ids
        }
    finally:
        app.close()


# ------------------------------------------------------------------ printing


def summary_rows(statements: dict[str, dict[str, Any]]) -> list[str]:
    head = f"{'contract':<18}{'year':>5}{'budget':>17}{'core':>17}{'outcomes':>15}{'risk share':>14}{'total':>17}"
    rows = [head, "-" * len(head)]
    for cid, years in statements.items():
        for year, st in years.items():
            risk = st["risk_share"]["adjustment"] if st.get("risk_share") else "—"
            rows.append(
                f"{cid:<18}{year:>5}{st['budget']:>17}{st['core']['annual']:>17}"
                f"{st['outcomes']['payment']:>15}{risk:>14}{st['total']:>17}"
            )
    return rows


def serve_until_interrupted(cluster: LocalCluster, say: Callable[[str], None]) -> None:
    """Keep the cluster up for experiments: kill a consumer, start another, query with the CLI."""
    say("\nthe cluster keeps running until Ctrl-C. In another shell, from the repository root:")
    for key, value in cluster.env().items():
        if key != "OBC_LEDGER_JSON":
            say(f"  export {key}='{value}'")
    say(f"  .venv/bin/obc-ledger statement {cluster.workload.contract_ids[0]} --year 1")
    say(
        f"  OBC_LEDGER_GROUP={GROUP} OBC_LEDGER_SESSION_TIMEOUT_MS={cluster.options.session_timeout_ms} "
        f".venv/bin/obc-ledger consume          # another consumer joins the group"
    )
    say("  kill -9 PID                      # a consumer dies; the group moves its partitions")
    say("  running: " + ", ".join(f"{w.name} pid {w.pid}" for w in cluster.consumers + cluster.others))
    reported: set[str] = set()
    try:
        while True:
            time.sleep(1)
            for worker in cluster.consumers + cluster.others:
                if not worker.running() and worker.name not in reported:
                    reported.add(worker.name)
                    code = worker.proc.returncode if worker.proc else None
                    say(f"{worker.name} (pid {worker.pid}) exited ({code}); the cluster keeps running")
    except KeyboardInterrupt:
        say("stopping")


def run(
    workload: Workload,
    options: Options,
    work: Path,
    *,
    compare: bool = False,
    serve: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    cluster = LocalCluster(workload, options, work, say)
    result: dict[str, Any] = {
        "records": len(workload.lines),
        "contracts": workload.contract_ids,
        "years": workload.years,
        "consumers": options.consumers,
        "partitions": options.partitions,
    }
    started = time.monotonic()
    try:
        cluster.start_servers()
        cluster.prepare_ledger()
        cluster.start_workers()
        cluster.produce()
        cluster.wait_applied()
        if options.close_years:
            cluster.close_years()
            result["last_decision"] = cluster.wait_published()
        result["read_models"] = cluster.wait_projected()
        statements = cluster.statements()
        result["rejected_records"] = len(cluster.projections.read.rejected())
        result["events_by_type"] = cluster.events_by_topic()
        say("")
        for row in summary_rows(statements):
            say(row)
        if serve:
            serve_until_interrupted(cluster, say)
        result["worker_reports"] = cluster.stop_workers()
        result["stop_logs"] = cluster.stop_logs
    finally:
        cluster.stop()
    result.update(
        sent=cluster.sent,
        refused_by_producer=cluster.refused,
        last_offsets=cluster.last_offsets,
        kill=cluster.kill.to_dict() if cluster.kill else None,
        timings={k: round(v, 2) for k, v in cluster.timings.items()},
        seconds=round(time.monotonic() - started, 1),
        statements=statements,
    )
    consumed = {
        name: r.get("consumed")
        for name, r in result["worker_reports"].items()
        if name.startswith("consumer") and r
    }
    say(f"\nconsumer reports (a killed consumer prints none): {consumed}")
    if compare:
        reference = embedded_statements(workload, work)
        same = sum(statements[c][y] == reference[c][y] for c in reference for y in reference[c])
        total = sum(len(v) for v in reference.values())
        result["compared"] = {"identical": same, "statements": total}
        say(
            f"compared with one JSON-lines ingest into SQLite (the embedded default): {same} of {total} "
            f"statements identical"
        )
    say(f"done in {result['seconds']} s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local_cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--consumers", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--copies", type=int, default=6, help="copies of each of the two demo contracts (default 6)"
    )
    parser.add_argument(
        "--years", type=int, default=3, help="contract years of records, then closed (default 3)"
    )
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--batch", type=int, default=500, help="records per consumer transaction (default 500)"
    )
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument(
        "--kill-one-at",
        type=float,
        metavar="FRACTION",
        help="SIGKILL one consumer once this fraction of the records is applied",
    )
    parser.add_argument(
        "--restart-killed",
        action="store_true",
        help="start a replacement once the killed consumer's partitions were taken over",
    )
    parser.add_argument("--no-close", action="store_true", help="do not close the years (no decisions)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare every statement with one JSON-lines ingest into SQLite",
    )
    parser.add_argument("--out", type=Path, help="write result.json (statements, reports, timings) here")
    parser.add_argument("--serve", action="store_true", help="keep the cluster running until Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args(argv)
    if args.kill_one_at is not None and not 0 < args.kill_one_at < 1:
        parser.error("--kill-one-at must be between 0 and 1")
    if args.kill_one_at is not None and args.consumers < 2:
        parser.error("--kill-one-at needs at least 2 consumers (the others take over)")
    options = Options(
        consumers=args.consumers,
        partitions=args.partitions,
        batch=args.batch,
        session_timeout_ms=args.session_timeout_ms,
        kill_one_at=args.kill_one_at,
        restart_killed=args.restart_killed,
        close_years=not args.no_close,
    )
    workload = demo_workload(args.copies, args.years, args.seed)
    print(
        f"workload: {len(workload.lines):,} records for {len(workload.contracts)} contracts, "
        f"{workload.years} years each"
    )
    # Not under a 0700 directory: as root, PostgreSQL runs as an unprivileged account that must reach its data.
    work = Path(tempfile.mkdtemp(prefix="obc-local-cluster-"))
    work.chmod(0o755)
    try:
        result = run(workload, options, work, compare=args.compare, serve=args.serve)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "result.json").write_text(json.dumps(result, indent=2))
    if args.compare and result["compared"]["identical"] != result["compared"]["statements"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
