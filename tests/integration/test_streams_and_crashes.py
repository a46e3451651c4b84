"""Bounded streams, snapshots, and crash safety of ingest on a real SQLite file."""

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from ledger.domain.aggregates import SNAPSHOT_EVERY, YearData, year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES, OBC_LEDGER

PROVIDERS = ("circle", "physio")


def _submissions(n, year_periods=("2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1")):
    for i in range(n):
        yield json.dumps(
            {
                "type": "submission",
                "submission_id": f"s-{i:06d}",
                "contract_id": "beds-msk",
                "provider_id": PROVIDERS[i % 2],
                "indicator_id": "proms-improved",
                "period": year_periods[(i // 2) % 4],
                "numerator": str(100 + i % 50),
                "denominator": "500",
            }
        )


@pytest.fixture
def app(sqlite_url):
    ledger = Ledger.from_url(sqlite_url)
    services_for(ledger).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    return ledger


def test_a_busy_year_is_snapshotted_and_loading_it_reads_only_the_tail(app, sqlite_url):
    services_for(app).ingest.ingest_lines(_submissions(3 * SNAPSHOT_EVERY + 17), "busy.jsonl")
    stream = year_data_uuid("beds-msk", 1)
    snapshots = list(app.snapshots.get(stream, desc=True, limit=1))
    assert snapshots and snapshots[0].originator_version >= 3 * SNAPSHOT_EVERY

    fresh = Ledger.from_url(sqlite_url)
    read = []
    original_get = fresh.events.get

    def counting_get(*args, **kwargs):
        events = list(original_get(*args, **kwargs))
        read.extend(events)
        return events

    fresh.events.get = counting_get
    loaded = fresh.repository.get(stream)
    assert len(read) < SNAPSHOT_EVERY
    assert loaded.version == 3 * SNAPSHOT_EVERY + 17 + 1  # + the stream's opening event

    replayed = None
    for event in original_get(stream):
        replayed = event.mutate(replayed)
    assert isinstance(replayed, YearData)
    assert replayed.latest_submission == loaded.latest_submission and len(loaded.latest_submission) == 8


def test_an_id_reused_for_another_year_is_a_conflicting_duplicate(app):
    services_for(app).ingest.ingest_lines(_submissions(8), "y1.jsonl")
    services_for(app).ingest.ingest_lines(
        _submissions(8, ("2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1")), "y2.jsonl"
    )
    year1 = app.repository.get(year_data_uuid("beds-msk", 1))
    assert len(year1.latest_submission) == 8
    assert app._maybe(year_data_uuid("beds-msk", 2)) is None
    assert [r["code"] for r in services_for(app).ingest.rejected()] == ["conflicting_duplicate"] * 8


def _ledger_content(url):
    app = Ledger.from_url(url)
    years = {}
    for year in (1, 2, 3):
        data = app._maybe(year_data_uuid("beds-msk", year))
        years[year] = (data.version, dict(data.latest_submission)) if data else None
    rejected = sorted((r["line"], r["code"], r["raw"]) for r in services_for(app).ingest.rejected())
    with sqlite3.connect(url[len("sqlite:///") :]) as db:
        index = db.execute(
            "SELECT contract_id, record_key, digest FROM record_index ORDER BY 1, 2"
        ).fetchall()
    return years, rejected, index


def _stored_events(path):
    with sqlite3.connect(path, timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]


@pytest.mark.parametrize("kill_at_events", [1500, 9000])
def test_kill_9_during_ingest_then_rerun_equals_one_clean_ingest(tmp_path, kill_at_events):
    data = tmp_path / "stream.jsonl"
    lines = list(_submissions(20000))
    lines[5000:5000] = ['{"broken', json.dumps({"type": "submission", "contract_id": "beds-msk"})]
    data.write_text("\n".join(lines) + "\n")

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    crash_url = f"sqlite:///{tmp_path / 'crash.db'}"
    for url in (clean_url, crash_url):
        services_for(Ledger.from_url(url)).registration.register_contract(
            (EXAMPLES / "worked-example.yaml").read_text()
        )
    clean = subprocess.run([OBC_LEDGER, "--db", clean_url, "ingest", data], capture_output=True)
    assert clean.returncode == 3, clean.stderr  # the two broken lines are refused (and kept)

    proc = subprocess.Popen(
        [OBC_LEDGER, "--db", crash_url, "ingest", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while _stored_events(tmp_path / "crash.db") < kill_at_events and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _stored_events(tmp_path / "crash.db")
    assert kill_at_events <= partial < 20000, "the kill must land mid-ingest"
    rerun = subprocess.run(
        [OBC_LEDGER, "--db", crash_url, "ingest", data, "--json"], capture_output=True, text=True
    )
    assert rerun.returncode == 3, rerun.stderr
    counts = json.loads(rerun.stdout)
    assert counts["duplicates"] > 0 and counts["accepted"] > 0
    assert counts["accepted"] + counts["duplicates"] == 20000
    assert counts["rejected"] == 2
    assert _ledger_content(crash_url) == _ledger_content(clean_url)


def test_the_record_index_is_derived_from_the_events_and_can_be_rebuilt(app, sqlite_url):
    services_for(app).ingest.ingest_lines(_submissions(1200), "some.jsonl")
    path = sqlite_url[len("sqlite:///") :]
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT * FROM record_index ORDER BY 1, 2").fetchall()
    assert len(before) == 1200
    assert services_for(app).ingest.rebuild_record_index() == 1200
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM record_index ORDER BY 1, 2").fetchall() == before
    again = services_for(app).ingest.ingest_lines(_submissions(1200), "some.jsonl")
    assert (again.accepted, again.duplicates) == (0, 1200)
