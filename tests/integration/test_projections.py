"""Read models: derived only from the event log, rebuildable, exactly-once, and replayable as of any instant."""

import json
import random
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest

from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from projections.bootstrap import Projections
from projections.projector import table_rows
from tests.support.cli import EXAMPLES, OBC_LEDGER

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())
CONTRACT = (EXAMPLES / "worked-example.yaml").read_text()
PERIODS = {
    1: ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"],
    2: ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"],
    3: ["2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"],
}
MEASURES = {
    "proms-improved": "ratio",
    "readmissions": "value",
    "shared-decisions.offered": "ratio",
    "shared-decisions.documented": "ratio",
}


def _example(url):
    app = Ledger.from_url(url)
    services_for(app).registration.register_contract(CONTRACT)
    services_for(app).ingest.ingest_lines(
        (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "example.jsonl"
    )
    return app


def test_statements_from_the_read_models_equal_those_from_the_aggregates(sqlite_url):
    app = _example(sqlite_url)
    read = Projections.for_ledger(app, sqlite_url).current()
    assert read.statement("beds-msk", 2) == services_for(app).settlement.statement(
        "beds-msk", 2
    )  # open year, provisional
    for year in (1, 2):
        services_for(app).settlement.close_year("beds-msk", year)
    read = Projections.for_ledger(app, sqlite_url).current()
    for expected in EXPECTED:
        assert (
            read.statement("beds-msk", expected["year"])
            == expected
            == services_for(app).settlement.statement("beds-msk", expected["year"])
        )
    assert read.statement("beds-msk", 3) == services_for(app).settlement.statement("beds-msk", 3)


def _random_record(rng, n):
    year = rng.choice([1, 2, 3])
    period = rng.choice(PERIODS[year])
    if rng.random() < 0.2:
        return {
            "type": "cost_report",
            "report_id": f"c-{n}",
            "contract_id": "beds-msk",
            "provider_id": rng.choice(["circle", "physio"]),
            "period": period,
            "total_cost": f"{rng.randint(400000, 6000000)}.{rng.randint(0, 99):02d}",
            "high_cost_cases": [
                {"case_ref": f"HC-{rng.randint(1, 6)}", "cost": f"{rng.randint(1000, 30000)}.00"}
                for _ in range(rng.randint(0, 2))
            ],
        }
    measure = rng.choice(list(MEASURES))
    record = {
        "type": "submission",
        "submission_id": f"s-{n}",
        "contract_id": "beds-msk",
        "provider_id": rng.choice(["circle", "physio"]),
        "indicator_id": measure,
        "period": period,
    }
    if MEASURES[measure] == "ratio":
        den = rng.randint(1, 600)
        record.update(numerator=str(rng.randint(0, den)), denominator=str(den))
    else:
        record["value"] = str(rng.randint(40, 120))
    return record


def _random_commands(app, rng, steps, after_each=lambda: None):
    sent = []
    for step in range(steps):
        roll = rng.random()
        if roll < 0.6:
            batch = [_random_record(rng, f"{step}-{i}") for i in range(rng.randint(1, 40))]
            if sent and rng.random() < 0.3:
                batch += rng.sample(sent, min(5, len(sent)))  # re-sent duplicates
            sent += batch
            services_for(app).ingest.ingest_lines(
                [json.dumps(r) for r in batch] + ["{broken"], f"batch-{step}.jsonl"
            )
        elif roll < 0.75:
            year = rng.choice([1, 2, 3])
            services_for(app).settlement.pay("beds-msk", rng.choice(PERIODS[year]))
        elif roll < 0.9:
            year = rng.choice([1, 2, 3])
            settlement = services_for(app).settlement.settlement_state("beds-msk", year)
            if settlement is None or not settlement.closed:
                services_for(app).settlement.close_year("beds-msk", year)
        else:
            year = rng.choice([1, 2, 3])
            settlement = services_for(app).settlement.settlement_state("beds-msk", year)
            if settlement is not None and settlement.closed:
                services_for(app).settlement.restate("beds-msk", year)
        after_each()


@pytest.mark.parametrize("seed", [7, 2026])
def test_random_scenario_statements_agree_and_rebuild_equals_live(tmp_path, seed):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    app = Ledger.from_url(url)
    services_for(app).registration.register_contract(CONTRACT)
    live = Projections.for_ledger(app, url)
    _random_commands(app, random.Random(seed), 60, after_each=live.projector.run)
    live.projector.run()
    for year in (1, 2, 3):
        assert live.read.statement("beds-msk", year) == services_for(app).settlement.statement(
            "beds-msk", year
        )

    rebuilt = Projections(app, f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuilt.projector.rebuild()
    live_tables = dict(table_rows(live.engine))
    assert sum(len(rows) for rows in live_tables.values()) > 100
    assert dict(table_rows(rebuilt.engine)) == live_tables
    assert rebuilt.projector.position() == live.projector.position() == live.projector.head()


def test_replay_as_of_shows_only_what_was_known_then(sqlite_url, cli):
    app = _example(sqlite_url)
    services_for(app).settlement.close_year("beds-msk", 2)
    before_correction = datetime.now(UTC)
    time.sleep(0.01)
    services_for(app).ingest.ingest_lines(
        [
            json.dumps(
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                }
            )
        ],
        "late.jsonl",
    )
    after_correction = datetime.now(UTC)
    time.sleep(0.01)
    services_for(app).settlement.restate("beds-msk", 2)
    after_restatement = datetime.now(UTC)

    def replay(instant):
        return cli.ok("replay", "--as-of", instant.isoformat(), "--json").json()["contracts"]["beds-msk"]

    for instant in (before_correction, after_correction):
        known = replay(instant)
        assert [d["kind"] for d in known["decisions"]] == ["close"]
        assert next(s for s in known["statements"] if s["year"] == 2) == EXPECTED[1]
    known = replay(after_restatement)
    assert [(d["kind"], d["amount"]) for d in known["decisions"]] == [
        ("close", "21813025.07"),
        ("true_up", "-882144.00"),
    ]
    one = cli.ok(
        "statement", "beds-msk", "--year", "2", "--as-of", after_correction.isoformat(), "--json"
    ).json()
    assert one == EXPECTED[1]
    assert cli.ok("replay", "--as-of", "2000-01-01", "--json").json()["contracts"] == {}
    versions = cli.ok(
        "submissions",
        "beds-msk",
        "--indicator",
        "readmissions",
        "--period",
        "2027-Q1",
        "--all-versions",
        "--json",
    ).json()
    assert [(v["submission_id"], v["current"]) for v in versions] == [("s-0018", False), ("s-0419", True)]


def test_history_lists_every_settlement_event_with_the_data_it_used(sqlite_url, cli):
    app = _example(sqlite_url)
    services_for(app).settlement.close_year("beds-msk", 2)
    history = cli.ok("history", "beds-msk", "--year", "2", "--json").json()
    events = [h["event"] for h in history]
    assert events == ["budget_set"] + ["instalment_decided"] * 4 + ["year_closed"]
    assert "s-0019" in history[-1]["submissions_used"] and "s-0017" not in history[-1]["submissions_used"]
    assert history[-1]["cost_reports_used"] == [f"c-000{i}" for i in range(1, 9)]


def test_a_separate_projections_database_works_the_same(tmp_path):
    ledger_url = f"sqlite:///{tmp_path / 'events.db'}"
    services_for(_example(ledger_url)).settlement.close_year("beds-msk", 1)
    from tests.support.cli import Cli

    cli = Cli(ledger_url)
    separate = f"sqlite:///{tmp_path / 'reads.db'}"
    statement = cli.ok("statement", "beds-msk", "--year", "1", "--projections-db", separate, "--json").json()
    assert statement == EXPECTED[0]
    status = cli.ok("projections", "status", "--projections-db", separate, "--json").json()
    assert status["lag"] == 0 and status["position"] > 30


def test_projections_on_postgresql_match_the_example(postgres_url):
    app = _example(postgres_url)
    services_for(app).settlement.close_year("beds-msk", 1)
    services_for(app).settlement.close_year("beds-msk", 2)
    read = Projections.for_ledger(app, postgres_url).current()
    assert [read.statement("beds-msk", y) for y in (1, 2)] == EXPECTED


def test_kill_9_during_rebuild_then_run_gives_the_same_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = Ledger.from_url(url)
    services_for(app).registration.register_contract(CONTRACT)
    rng = random.Random(5)
    records = [json.dumps(_random_record(rng, n)) for n in range(30000)]
    services_for(app).ingest.ingest_lines(records, "big.jsonl")
    services_for(app).settlement.close_year("beds-msk", 1)
    reference = Projections(app, f"sqlite:///{tmp_path / 'reference.db'}")
    reference.projector.run()

    reads = f"sqlite:///{tmp_path / 'reads.db'}"
    proc = subprocess.Popen(
        [OBC_LEDGER, "--db", url, "--projections-db", reads, "projections", "rebuild"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = Projections(app, reads)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if probe.projector.position() > 5000:
                break
        except Exception:
            pass  # tables not created yet
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < probe.projector.position() < reference.projector.position(), "the kill must land mid-rebuild"
    subprocess.run([OBC_LEDGER, "--db", url, "--projections-db", reads, "projections", "run"], check=True)
    assert dict(table_rows(probe.engine)) == dict(table_rows(reference.engine))


@pytest.mark.parametrize("where", ["sqlite", "postgres"])
def test_the_fast_rebuild_path_writes_exactly_the_rows_of_the_ordinary_handlers(tmp_path, request, where):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = Ledger.from_url(url)
    services_for(app).registration.register_contract(CONTRACT)
    _random_commands(app, random.Random(3), 40)
    # SQLite: executemany through the driver; PostgreSQL: COPY
    read_db = (
        f"sqlite:///{tmp_path / 'fast.db'}" if where == "sqlite" else request.getfixturevalue("postgres_url")
    )
    fast = Projections(app, read_db)
    fast.projector.rebuild()
    ordinary = Projections.as_of(app, datetime(9999, 1, 1, tzinfo=UTC))  # as-of reads take the slow path
    fast_rows = dict(table_rows(fast.engine))
    assert sum(len(r) for r in fast_rows.values()) > 200
    assert fast_rows == dict(table_rows(ordinary.engine))
