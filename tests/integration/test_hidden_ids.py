"""An event stored with a notification id ≤ 0 (outside the sealed log's ids) is caught, not used unseen."""

import json
import sqlite3

import psycopg
import pytest

from ledger.domain.aggregates import contract_uuid
from ledger.usecases.application import Ledger
from ledger.usecases.services import services_for
from tests.support.cli import Cli, worked_example_ledger

BUDGET_TOPIC = "ledger.domain:Contract.BudgetSet"


def _hide_budget_event(db, rowid, forge=lambda state: state):
    """A copy of the first budget event (``forge``d) at the contract stream's next version, at ``rowid``."""
    conn = sqlite3.connect(db)
    oid = contract_uuid("beds-msk").hex
    rows = conn.execute(
        "SELECT originator_id, originator_version, state FROM stored_events WHERE topic = ? ORDER BY rowid",
        (BUDGET_TOPIC,),
    ).fetchall()
    assert rows, "the worked example sets a budget"
    stream = rows[0][0]
    assert stream.replace("-", "") == oid
    (top,) = conn.execute(
        "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ?", (stream,)
    ).fetchone()
    conn.execute(
        "INSERT INTO stored_events(rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        (rowid, stream, top + 1, BUDGET_TOPIC, forge(rows[0][2])),
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("rowid", [-1, 0])
def test_an_event_at_a_rowid_of_zero_or_below_is_reported_by_every_form_of_verify(tmp_path, rowid):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    _hide_budget_event(db, rowid)
    cli = Cli(url)
    for extra in ([], ["--seals-only"], ["--read-models"]):
        result = cli("verify", "--json", *extra)
        assert result.code == 1, (extra, result.out, result.err)
        problem = json.loads(result.out)["first_broken_link"]
        assert problem["kind"] == "unsealed" and problem["notification_id"] == rowid
        assert f"event #{rowid}" in problem["message"]
    plain = cli("verify")
    assert plain.code == 1 and f"BROKEN after 0 good event(s): event #{rowid}" in plain.out


def test_a_hidden_record_event_at_rowid_minus_one_is_reported_not_a_crash(tmp_path):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    conn = sqlite3.connect(db)
    row = conn.execute(
        "SELECT originator_id, originator_version, topic, state FROM stored_events "
        "WHERE topic LIKE '%YearData.SubmissionAccepted' ORDER BY rowid LIMIT 1"
    ).fetchone()
    conn.execute(
        "INSERT INTO stored_events(rowid, originator_id, originator_version, topic, state) VALUES (-1, ?, ?, ?, ?)",
        ("0" * 32, 1, row[2], row[3]),
    )
    conn.commit()
    conn.close()
    result = Cli(url)("verify")
    assert result.code == 1 and "Traceback" not in result.err
    assert "event #-1" in result.out


def test_postgres_refuses_a_notification_id_of_zero_or_below(postgres_url):
    worked_example_ledger(postgres_url)
    oid = contract_uuid("beds-msk")
    with psycopg.connect(postgres_url) as conn:
        state = conn.execute(
            "SELECT state FROM ledger_events WHERE topic = %s LIMIT 1", (BUDGET_TOPIC,)
        ).fetchone()[0]
        for nid in (-1, 0):
            with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
                conn.execute(
                    "INSERT INTO ledger_events (notification_id, originator_id, originator_version, topic, "
                    "state) VALUES (%s, %s, 99, %s, %s)",
                    (nid, oid, BUDGET_TOPIC, state),
                )
    assert Cli(postgres_url)("verify", "--seals-only").code == 0


def test_postgres_verify_reports_an_id_below_one_stored_before_the_check_existed(postgres_url):
    worked_example_ledger(postgres_url)
    oid = contract_uuid("beds-msk")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("ALTER TABLE ledger_events DROP CONSTRAINT obc_positive_id")
        state = conn.execute(
            "SELECT state FROM ledger_events WHERE topic = %s LIMIT 1", (BUDGET_TOPIC,)
        ).fetchone()[0]
        (top,) = conn.execute(
            "SELECT MAX(originator_version) FROM ledger_events WHERE originator_id = %s", (oid,)
        ).fetchone()
        conn.execute(
            "INSERT INTO ledger_events (notification_id, originator_id, originator_version, topic, state) "
            "VALUES (-1, %s, %s, %s, %s)",
            (oid, top + 1, BUDGET_TOPIC, state),
        )
    for extra in ([], ["--seals-only"]):
        result = Cli(postgres_url)("verify", "--json", *extra)
        assert result.code == 1, result.out
        assert json.loads(result.out)["first_broken_link"]["notification_id"] == -1


def test_a_stream_holding_rows_the_sealed_log_does_not_cover_is_reported(tmp_path, monkeypatch):
    """The GROUP BY check after the walk: a stream's stored rows must be the versions the walk covered."""
    from ledger.adapters import audit

    app = worked_example_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert audit.verify(app).ok
    real = app.recorder.stream_versions()
    oid = contract_uuid("beds-msk").hex
    rows, highest = real[oid]
    monkeypatch.setattr(
        app.recorder, "stream_versions", lambda upto=None: {**real, oid: (rows + 1, highest + 1)}
    )
    result = audit.verify(app)
    assert not result.ok and result.problem["kind"] == "unsealed"
    assert result.problem["stream"] == oid and result.problem["contract_id"] == "beds-msk"
    assert f"holds {rows + 1} stored event(s) up to version {highest + 1}" in result.problem["message"]


def _budget_of_99m(state: bytes) -> bytes:
    """A budget event's state, changed to a year-2 budget of £99m."""
    forged = json.loads(state)
    forged["year"], forged["amount"]["_data_"] = 2, "99000000.00"
    forged["reason"], forged["note"] = "adjustment", "written behind the ledger's back"
    return json.dumps(forged).encode()


def _year_2_budget(cli) -> list[str]:
    """Year 2's budget and every change to it, as budget show lists them."""
    return [y["amount"] for y in cli.ok("budget", "show", "beds-msk", "--json").json() if y["year"] == 2]


@pytest.mark.parametrize("rowid", [-1, 0])
def test_an_event_hidden_at_an_id_below_one_changes_no_figure_and_verify_reports_it(tmp_path, rowid):
    # the stream was loaded by originator id alone, so a row outside the sealed log's ids was
    # applied: budget show gave year 2 a £99m budget that verify then said was unsealed
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    cli = Cli(url)
    before = _year_2_budget(cli)
    _hide_budget_event(tmp_path / "ledger.db", rowid, _budget_of_99m)
    assert before == ["23523840.00"] and _year_2_budget(cli) == before
    assert "99000000" not in cli.ok("budget", "show", "beds-msk").out
    result = cli("verify", "--json")
    assert result.code == 1 and json.loads(result.out)["first_broken_link"]["notification_id"] == rowid


def test_postgres_applies_no_event_stored_below_one_before_the_check_existed(postgres_url):
    worked_example_ledger(postgres_url)
    cli = Cli(postgres_url)
    before = _year_2_budget(cli)
    oid = contract_uuid("beds-msk")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("ALTER TABLE ledger_events DROP CONSTRAINT obc_positive_id")
        state = conn.execute(
            "SELECT state FROM ledger_events WHERE topic = %s ORDER BY originator_version DESC LIMIT 1",
            (BUDGET_TOPIC,),
        ).fetchone()[0]
        (top,) = conn.execute(
            "SELECT MAX(originator_version) FROM ledger_events WHERE originator_id = %s", (oid,)
        ).fetchone()
        conn.execute(
            "INSERT INTO ledger_events (notification_id, originator_id, originator_version, topic, state) "
            "VALUES (-1, %s, %s, %s, %s)",
            (oid, top + 1, BUDGET_TOPIC, _budget_of_99m(bytes(state))),
        )
    assert before == ["23523840.00"] and _year_2_budget(cli) == before
    assert cli("verify", "--json").code == 1


def test_a_rejection_stored_at_rowid_minus_one_is_not_listed_and_verify_reports_it(tmp_path):
    # the log was read from its very first row, whatever its id: a Rejection.Recorded stored at
    # rowid -1 under a new stream was listed (the demo's list, read from the log) as if kept
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    cli = Cli(url)
    cli.refused("ingest", _bad_line(tmp_path))
    (kept,) = cli.ok("rejected", "list", "--json").json()
    with sqlite3.connect(db) as conn:
        topic, state = conn.execute(
            "SELECT topic, state FROM stored_events WHERE topic LIKE '%Rejection.Recorded' LIMIT 1"
        ).fetchone()
        forged = state.replace(b"bad.jsonl", b"forged.jsonl")
        assert forged != state
        conn.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (-1, ?, 1, ?, ?)",
            ("f" * 32, topic, forged),
        )
    assert cli.ok("rejected", "list", "--json").json() == [kept]
    app = Ledger.from_url(url)
    assert [r["source"] for r in services_for(app).ingest.rejected()] == ["bad.jsonl"]
    assert min(n.id for n in app.recorder.select_notifications(None, 10_000)) == 1
    assert min(n.id for n in app.recorder.select_notifications(-5, 10, inclusive_of_start=False)) == 1
    result = cli("verify", "--json")
    assert result.code == 1 and json.loads(result.out)["first_broken_link"]["notification_id"] == -1


def _bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "submission", "submission_id": "s-x", "contract_id": "beds-msk"}\n')
    return path
