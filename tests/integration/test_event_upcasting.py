"""An event stored in its older form is read back upcast, through eventsourcing's own repository.

``Settlement.TrueUpDecided`` is at version 2 (``variations`` added with contract variations): a
version-1 true-up — no ``class_version``, no ``variations`` in its stored state — is written to a
real SQLite event store through the recorder, then loaded.
"""

import json

from ledger.domain.aggregates import Settlement, YearData, settlement_uuid, year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import worked_example_ledger


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
