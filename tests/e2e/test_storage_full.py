"""Disk full: writes fail with their own code, nothing half-applied; reads answer from what is projected.

The database really is full: every SQLite connection opened while ``full_disk`` is on gets
``PRAGMA max_page_count`` set to the file's current size, so any write needing a new page fails
with SQLITE_FULL ("database or disk is full"), as on a full disk.
"""

import json
import sqlite3
import sqlite3.dbapi2

import pytest

from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

WARNING = "warning: read models are {lag} events behind (storage_full): figures as of notification {position}"


@pytest.fixture
def full_disk(monkeypatch):
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    class Disk:
        def fill(self) -> None:  # eventsourcing calls sqlite3.connect, SQLAlchemy sqlite3.dbapi2.connect
            monkeypatch.setattr(sqlite3, "connect", connect)
            monkeypatch.setattr(sqlite3.dbapi2, "connect", connect)

        def free(self) -> None:
            monkeypatch.setattr(sqlite3, "connect", real)
            monkeypatch.setattr(sqlite3.dbapi2, "connect", real)

    return Disk()


def _records(tmp_path, name, n, prefix):
    path = tmp_path / name
    path.write_text(
        "".join(
            json.dumps(
                {
                    "type": "submission",
                    "submission_id": f"{prefix}-{i}",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"][i % 4],
                    "value": str(60 + i % 40),
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path


def _head(url):
    app = Ledger.from_url(url)
    return app.recorder.max_notification_id()


def test_reads_answer_from_the_read_models_and_name_the_lag_while_the_disk_is_full(
    cli, sqlite_url, tmp_path, full_disk
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "1")
    before = {
        args: cli.ok(*args, "--json").out
        for args in (("statement", "beds-msk", "--year", "1"), ("contract", "list"), ("payments", "beds-msk"))
    }
    position = cli.ok("projections", "status", "--json").json()["position"]
    cli.ok("ingest", _records(tmp_path, "year2.jsonl", 400, "s2"))  # events the read models have not seen
    lag = _head(sqlite_url) - position
    assert lag >= 400

    full_disk.fill()
    for args, out in before.items():
        result = cli(*args, "--json")
        assert result.code == 0, result.err
        assert result.out == out  # the figures as already projected
        assert result.err.splitlines() == [WARNING.format(lag=lag, position=position)]
    assert cli.ok("projections", "status", "--json").json()["lag"] == lag

    full_disk.free()
    caught_up = cli("statement", "beds-msk", "--year", "1", "--json")
    assert (
        caught_up.code == 0
        and caught_up.err == ""
        and caught_up.out == before[("statement", "beds-msk", "--year", "1")]
    )
    assert cli.ok("projections", "status", "--json").json()["lag"] == 0


def test_a_write_on_a_full_disk_fails_as_storage_full_and_keeps_nothing_of_the_batch(
    cli, sqlite_url, tmp_path, full_disk
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    head = _head(sqlite_url)
    full_disk.fill()
    records = _records(tmp_path, "many.jsonl", 400, "s")
    plain = cli("ingest", records)
    assert plain.code == 1
    assert plain.err.count("\n") == 1 and plain.err.startswith(
        "error: storage_full: the database or disk is full"
    )
    as_json = json.loads(cli("ingest", records, "--json").err)
    assert as_json["error"] == "storage_full"
    assert json.loads(cli("close-year", "beds-msk", "1", "--json").err)["error"] == "storage_full"
    assert _head(sqlite_url) == head  # nothing half-applied

    full_disk.free()
    assert (
        cli.ok("ingest", records, "--json").json()["accepted"] == 400
    )  # all of it, once, when space returns
