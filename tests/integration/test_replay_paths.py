"""The ledger's own replay paths give what eventsourcing's give.

``project_events`` is the library's ``project_aggregate`` with its per-event protocol check made
once per event class; ``stream_events`` reads a stream a page at a time. Both are checked here
against the library on the worked example's real streams (a close's replay, a repository load).
"""

import pytest
from eventsourcing.application import project_aggregate

from ledger.domain.aggregates import contract_uuid, settlement_uuid, year_data_uuid
from ledger.usecases.application import project_events
from ledger.usecases.checks import replayed, stream_events
from tests.support.cli import worked_example_ledger

STREAMS = [
    contract_uuid("beds-msk"),
    year_data_uuid("beds-msk", 1),
    year_data_uuid("beds-msk", 2),
    settlement_uuid("beds-msk", 1),
]


def _state(aggregate):
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def test_paged_reads_and_the_fast_projection_build_the_library_s_aggregates(tmp_path):
    app = worked_example_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    for stream in STREAMS:
        everything = list(app.events.get(stream))
        assert len(everything) > 2, "a stream long enough to page"
        for page in (1, 2, len(everything), len(everything) + 1, 5000):
            paged = list(stream_events(app, stream, page=page))
            assert [(e.originator_version, type(e)) for e in paged] == [
                (e.originator_version, type(e)) for e in everything
            ], f"page {page}"
        ours = project_events(None, list(app.events.get(stream)))
        theirs = project_aggregate(None, list(app.events.get(stream)))
        assert _state(ours) == _state(theirs)
        assert _state(replayed(app, stream)[0]) == _state(theirs)
        assert _state(app.repository.get(stream)) == _state(theirs), "the repository projects the same"
        assert _state(app.repository.get(stream, version=2)) == _state(
            project_aggregate(None, everything[:2])
        )


def test_an_event_that_cannot_mutate_is_refused():
    class NotAnEvent:
        originator_version = 1

    with pytest.raises(TypeError, match="NotAnEvent cannot mutate an aggregate"):
        project_events(None, [NotAnEvent()])
