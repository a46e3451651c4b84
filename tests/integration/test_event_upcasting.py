"""An event stored in its older form is read back upcast, through eventsourcing's own repository.

``Settlement.TrueUpDecided`` is at version 2 (``variations`` added with contract variations): a
version-1 true-up — no ``class_version``, no ``variations`` in its stored state — is written to a
real SQLite event store through the recorder, then loaded.
"""

import json
import sqlite3
import sys
from pathlib import Path

from ledger.domain.aggregates import Settlement, YearData, row_fields, settlement_uuid, year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from ledger.usecases.checks import replayed
from tests.support.cli import Cli, worked_example_ledger


def _as_version_1(app: Ledger, event: Settlement.TrueUpDecided):
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.compressor is None and app.mapper.cipher is None  # plain JSON, as recorded
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["variations"]
    return type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state, separators=(",", ":")).encode(),
    )


def test_a_version_1_true_up_is_read_back_as_version_2(tmp_path):
    app = worked_example_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    settlement = app.repository.get(settlement_uuid("beds-msk", 1))
    settlement.true_up(
        amount=1,
        by_party={"beds-msk-lead": 1},
        reason="an older release's restatement",
        figures=settlement.current_figures(),
        trace=settlement.current_trace(),
        decided_at="2026-05-01T00:00:00Z",
        actor="system",
        variations=["cv-new"],
    )
    (pending,) = settlement.collect_events()
    old = _as_version_1(app, pending)
    assert not {"variations", "class_version"} & set(json.loads(old.state))
    app.recorder.insert_events([old])

    loaded = Ledger.from_url(f"sqlite:///{tmp_path / 'l.db'}")
    again = loaded.repository.get(settlement_uuid("beds-msk", 1))
    assert again.version == settlement.version
    assert again.true_ups[-1]["reason"] == "an older release's restatement"
    assert again.true_ups[-1]["variations"] == []  # upcast: the registered terms
    (_, event) = list(loaded.recorded(Settlement.TrueUpDecided))[-1]
    assert type(event).class_version == 2 and event.variations == []
    # the statement takes it like any true-up
    statement = services_for(loaded).settlement.statement("beds-msk", 1)
    assert statement["true_ups"][-1]["reason"] == "an older release's restatement"


def test_a_snapshot_gives_the_named_state_back(tmp_path):
    app = worked_example_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    data = app.repository.get(year_data_uuid("beds-msk", 1))
    app.snapshot(data)
    loaded = Ledger.from_url(f"sqlite:///{tmp_path / 'l.db'}")
    again = loaded.repository.get(year_data_uuid("beds-msk", 1))
    assert isinstance(again, YearData) and again.latest_submission == data.latest_submission
    assert all(type(v).__name__ == "SubmissionState" for v in again.latest_submission.values())


# ----------------------------------------------------- a snapshot an older release took (YearData v1)


def _as_version_1_snapshot(db: Path, app: Ledger, stream) -> dict:
    """Rewrite ``stream``'s stored snapshot into the layout release 1 of YearData wrote: no
    ``class_version``, the latest submissions as one flat ``latest_submission`` dict
    ("measure|period|provider" -> [id, party, indicator, period, numerator, denominator, value,
    supersedes]) in the order the slots first arrived, as that release's apply method filled it."""
    conn = sqlite3.connect(db)
    (raw,) = conn.execute(
        "SELECT state FROM stored_snapshots WHERE originator_id = ?", (stream.hex,)
    ).fetchone()
    stored = json.loads(bytes(raw))
    state = stored["state"]
    assert state.pop("class_version") == 2
    nested = state.pop("submitted")
    flat: dict = {}
    for _, event in app.recorded(YearData.SubmissionAccepted):
        if event.originator_id != stream:
            continue
        row = nested[event.indicator_id][event.provider_id][event.period]
        if row[0] == event.submission_id:  # the latest version of its slot: where release 1 kept it
            key = f"{event.indicator_id}|{event.period}|{event.provider_id}"
            sid, numerator, denominator, value, supersedes = row_fields(row)
            flat[key] = [sid, event.provider_id, event.indicator_id, event.period, numerator, denominator]
            flat[key] += [value, supersedes]  # release 1 kept all eight, None included
        else:  # an earlier version: release 1 made its slot's entry on first arrival
            flat.setdefault(f"{event.indicator_id}|{event.period}|{event.provider_id}", None)
    assert None not in flat.values()
    state["latest_submission"] = flat
    conn.execute(
        "UPDATE stored_snapshots SET state = ? WHERE originator_id = ?",
        (json.dumps(stored).encode(), stream.hex),
    )
    conn.commit()
    conn.close()
    return flat


def test_a_version_1_year_snapshot_is_restored_in_the_new_layout_and_verify_finds_it_sound(tmp_path):
    db = tmp_path / "l.db"
    app = worked_example_ledger(f"sqlite:///{db}")
    stream = year_data_uuid("beds-msk", 1)
    data = app.repository.get(stream)
    app.snapshot(data)
    flat = _as_version_1_snapshot(db, app, stream)
    assert len(flat) == len(data.latest_submission) > 0

    loaded = Ledger.from_url(f"sqlite:///{db}")
    again = loaded.repository.get(stream)
    assert again.submitted == data.submitted and again.latest_submission == data.latest_submission
    assert all(
        type(row) is tuple
        for by_party in again.submitted.values()
        for p in by_party.values()
        for row in p.values()
    )
    # the check compares the replay with what the old snapshot restores to, key order included
    _, problem = replayed(loaded, stream)
    assert problem is None
    verified = Cli(f"sqlite:///{db}")("verify", "--json")
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["derived_state"]["problems"] == []


def test_a_forged_version_1_year_snapshot_is_still_reported(tmp_path):
    db = tmp_path / "l.db"
    app = worked_example_ledger(f"sqlite:///{db}")
    stream = year_data_uuid("beds-msk", 1)
    app.snapshot(app.repository.get(stream))
    flat = _as_version_1_snapshot(db, app, stream)
    conn = sqlite3.connect(db)
    (raw,) = conn.execute("SELECT state FROM stored_snapshots").fetchone()
    stored = json.loads(bytes(raw))
    key = next(k for k, row in flat.items() if row[4] is not None)  # a numerator, as release 1 stored it
    stored["state"]["latest_submission"][key][4] = {"_type_": "decimal_str", "_data_": "999999"}
    conn.execute("UPDATE stored_snapshots SET state = ?", (json.dumps(stored).encode(),))
    conn.commit()
    conn.close()
    _, problem = replayed(Ledger.from_url(f"sqlite:///{db}"), stream)
    assert problem is not None and problem["kind"] == "snapshot_forged" and problem["fields"] == ["submitted"]


def test_a_snapshot_of_claims_and_episodes_restores_the_state_their_events_build(tmp_path):
    """Arrival as a tuple and the repeated names as one shared copy, as the apply methods keep them."""
    data_dir = Path(__file__).parents[1] / "data" / "rate_cards"
    url = f"sqlite:///{tmp_path / 'l.db'}"
    app = Ledger.from_url(url)
    for name, records in (("employ", "employ-claims"), ("msk-gain", "msk-gain-episodes")):
        services_for(app).registration.register_contract((data_dir / f"{name}.yaml").read_text())
        report = services_for(app).ingest.ingest_lines((data_dir / f"{records}.jsonl").open(), records)
        assert report.accepted > 0 and report.rejected == 0
    streams = ((year_data_uuid("ldn-employ", 1), "claims"), (year_data_uuid("msk-gain", 1), "episodes"))
    for stream_id, kind in streams:
        built = app.repository.get(stream_id)
        assert getattr(built, kind)
        app.snapshot(built)
        loaded = Ledger.from_url(url)
        again = loaded.repository.get(stream_id)
        assert getattr(again, kind) == getattr(built, kind)
        for row in getattr(again, kind).values():
            assert type(row) is type(next(iter(getattr(built, kind).values())))
            assert row.provider_id is sys.intern(row.provider_id) and row.period is sys.intern(row.period)
        if kind == "claims":
            assert all(type(c.arrival) is tuple for c in again.claims.values())
        _, problem = replayed(app, stream_id)
        assert problem is None
