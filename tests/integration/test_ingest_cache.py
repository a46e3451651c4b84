"""The ingest's cache of year streams lets go of a stream no recent record used, and a record using it
again finds its state as the store has it (issue 15: memory bounded by the streams in use)."""

import json

import pytest

from bench.common import iter_records, make_contract
from ledger.domain.aggregates import year_data_uuid
from ledger.usecases import ingest, services_for
from ledger.usecases.application import Ledger
from tests.support.cli import stored_states


def _ledger(tmp_path, name, specs):
    url = f"sqlite:///{tmp_path / name}"
    app = Ledger.from_url(url)
    for spec in specs:
        services_for(app).registration.register_contract(spec.yaml)
    return url, app


@pytest.fixture
def feed():
    """Contract a's first records, then only contract b's, then a correction of a's first submission."""
    specs = [make_contract(cid, indicators=4, providers=2, years=1) for cid in ("cache-a", "cache-b")]
    lines = list(iter_records(specs, 400, duplicate_rate=0, correction_rate=0))
    by = {spec.contract_id: [ln for ln in lines if f'"{spec.contract_id}"' in ln] for spec in specs}
    first = json.loads(next(ln for ln in by["cache-a"] if '"submission"' in ln))
    correction = dict(first, submission_id=first["submission_id"] + "-fix", numerator="1")
    return specs, by["cache-a"][:20], by["cache-b"][:150], json.dumps(correction), first["submission_id"]


def _ingest(app, chunks):
    session = services_for(app).ingest.ingest_session("cache.jsonl")
    held = []
    for chunk in chunks:
        for i, text in enumerate(chunk):
            session.apply_text(text, i + 1)
        session.flush()
        held.append({key[0] for key in session._years})
    return held


def test_a_stream_idle_for_idle_records_and_its_own_length_is_let_go_at_a_flush_and_reloaded_as_stored(
    tmp_path, monkeypatch, feed
):
    specs, a_lines, b_lines, correction, corrected = feed
    monkeypatch.setattr(ingest, "IDLE_RECORDS", 10)
    url, app = _ledger(tmp_path, "idle.db", specs)
    held = _ingest(app, [a_lines, b_lines[:15], b_lines[15:], [correction]])
    # a's stream (21 events) outlasts 10 idle records while it has more events than that; not 135
    data = app.repository.get(year_data_uuid("cache-a", 1))
    assert data.version == len(a_lines) + 2
    assert held == [{"cache-a"}, {"cache-a", "cache-b"}, {"cache-b"}, {"cache-a", "cache-b"}]
    (latest,) = [s for s in data.latest_submission.values() if s.submission_id.endswith("-fix")]
    assert latest.supersedes == corrected  # the reloaded stream knew the slot's submission

    monkeypatch.setattr(ingest, "IDLE_RECORDS", 10**9)
    kept_url, kept = _ledger(tmp_path, "kept.db", specs)
    assert _ingest(kept, [a_lines, b_lines[:15], b_lines[15:], [correction]])[2] == {"cache-a", "cache-b"}
    strip = ("timestamp", "originator_id")
    assert [{k: v for k, v in s.items() if k not in strip} for s in stored_states(url, "YearData")] == [
        {k: v for k, v in s.items() if k not in strip} for s in stored_states(kept_url, "YearData")
    ]
