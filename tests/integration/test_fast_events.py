"""The year streams' events made on ingest's fast path (``LedgerAggregate._emit``) are the library's own:
the same inputs ingested through eventsourcing's decorated command methods give the same stored
events (topics, versions and every field but the moment they were made), and every stream read back
through eventsourcing's repository is the aggregate that ingest built in memory, and that the ordinary
path built. ``verify`` passes on both ledgers."""

import json
from datetime import datetime

import pytest

from ledger.adapters.audit import verify
from ledger.domain import aggregates
from ledger.domain.aggregates import YearData, year_data_uuid
from ledger.usecases import ingest as ingest_module
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from ledger.usecases.ingest import IngestSession
from tests.e2e.test_contract_terms import CAPITATION
from tests.support.cli import EXAMPLES, ROOT

RATE_CARDS = ROOT / "tests" / "data" / "rate_cards"
CONTRACTS = [
    (EXAMPLES / "worked-example.yaml").read_text(),
    (RATE_CARDS / "employ.yaml").read_text(),
    (RATE_CARDS / "msk-gain.yaml").read_text(),
    CAPITATION,
]
POPULATION = [
    {
        "type": "population",
        "record_id": f"p-{i}",
        "contract_id": "cap-demo",
        "year": 1 + i % 2,
        "segment_id": ("low", "high")[i % 2],
        "count": 1000 + 90 * i,
    }
    for i in range(6)
]


def _lines():
    lines = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()
    lines += (RATE_CARDS / "employ-claims.jsonl").read_text().splitlines()
    lines += (RATE_CARDS / "msk-gain-episodes.jsonl").read_text().splitlines()
    return [line for line in lines if line.strip()] + [json.dumps(p) for p in POPULATION]


def _ordinary_emit(self, event_class, **fields):
    """The ordinary path: the decorated command method of ``event_class``, called by its name."""
    method = {
        YearData.SubmissionAccepted: "_submission_accepted",
        YearData.CostReported: "_cost_reported",
        YearData.PopulationCounted: "_population_counted",
        YearData.OutcomeClaimed: "_outcome_claimed",
        YearData.PromEpisodeRecorded: "_prom_episode_recorded",
    }[event_class]
    getattr(self, method)(**fields)


class _Clock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 1, 9, 0, tzinfo=tz)


def _ingest(url, monkeypatch, ordinary):
    app = Ledger.from_url(url)
    services = services_for(app)
    for text in CONTRACTS:
        services.registration.register_contract(text)
    emitted = []
    with monkeypatch.context() as m:
        fast = aggregates.LedgerAggregate._emit

        def watching(self, event_class, **fields):
            emitted.append(event_class)
            (_ordinary_emit if ordinary else fast)(self, event_class, **fields)

        m.setattr(aggregates.LedgerAggregate, "_emit", watching)
        m.setattr(ingest_module, "datetime", _Clock)  # a claim's arrival is stamped with the clock's time
        built = {}
        original_flush = IngestSession.flush

        def keeping(session, *args, **kwargs):
            built.update({a.id: a for a in session._touched.values() if isinstance(a, YearData)})
            return original_flush(session, *args, **kwargs)

        m.setattr(IngestSession, "flush", keeping)
        report = services.ingest.ingest_lines(_lines(), "mixed.jsonl", batch_size=7)
    return app, report, built, emitted


def _stored(app):
    """Every year-stream event as stored: topic, version and its state's fields in their stored order
    (the moment it was made left out)."""
    rows = []
    for n, _ in app.recorded(
        *[getattr(YearData, name) for name in dir(YearData) if _is_event(YearData, name)]
    ):
        pairs = json.loads(n.state, object_pairs_hook=list)
        kept = [(k, v) for k, v in pairs if k != "timestamp"]
        rows.append((n.topic, n.originator_version, kept))
    return rows


def _is_event(cls, name):
    value = getattr(cls, name)
    return (
        isinstance(value, type)
        and issubclass(value, aggregates.Aggregate.Event)
        and value.__qualname__.startswith("YearData.")
    )


def _state(aggregate):
    return {
        k: v
        for k, v in vars(aggregate).items()
        if k not in ("_pending_events", "_modified_on", "_created_on")
    }


@pytest.fixture
def both(tmp_path, monkeypatch):
    fast = _ingest(f"sqlite:///{tmp_path / 'fast.db'}", monkeypatch, ordinary=False)
    ordinary = _ingest(f"sqlite:///{tmp_path / 'ordinary.db'}", monkeypatch, ordinary=True)
    return fast, ordinary


def test_every_record_kind_took_the_fast_path(both):
    (_, report, _, emitted), _ = both
    assert report.rejected == 0 and report.accepted > 40
    assert set(emitted) == {
        YearData.SubmissionAccepted,
        YearData.CostReported,
        YearData.PopulationCounted,
        YearData.OutcomeClaimed,
        YearData.PromEpisodeRecorded,
    }


def test_fast_events_are_stored_as_the_ordinary_paths(both):
    (fast_app, fast_report, _, _), (ordinary_app, ordinary_report, _, _) = both
    assert fast_report.to_dict() == ordinary_report.to_dict()
    fast, ordinary = _stored(fast_app), _stored(ordinary_app)
    assert len(fast) > 40 and fast == ordinary


def test_streams_read_back_through_the_repository_are_what_ingest_built(both):
    (fast_app, _, built, _), (ordinary_app, _, ordinary_built, _) = both
    assert built.keys() == ordinary_built.keys() and len(built) >= 5
    fresh = Ledger.from_url(f"sqlite:///{fast_app.env['SQLITE_DBNAME']}")  # no cache of ingest's aggregates
    for stream_id, in_memory in built.items():
        loaded = fresh.repository.get(stream_id)
        assert _state(loaded) == _state(in_memory)
        assert _state(loaded) == _state(ordinary_app.repository.get(stream_id))
        assert loaded.modified_on == in_memory.modified_on
    assert verify(fast_app).ok and verify(ordinary_app).ok
    assert year_data_uuid("beds-msk", 1) in built
