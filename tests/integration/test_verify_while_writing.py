"""verify and digest while the ledger is being written: each check covers the log as it stood when it
began, so a batch appended meanwhile is never reported as a tamper (before, a quarter of the chain
walks under a steady writer reported a removed or unsealed event, and the record-index check called
a record accepted meanwhile one "no event accepted")."""

from __future__ import annotations

import json
import threading
import time

from ledger.adapters import audit
from ledger.bootstrap import bootstrap
from ledger.usecases.checks import check_derived
from ledger.usecases.ingest import IngestSession
from tests.support.cli import worked_example_ledger


def test_walks_under_a_steady_writer_never_report_a_tamper(ledger_url):
    reader = bootstrap(ledger_url)
    writer = bootstrap(ledger_url)
    for n in range(20):
        writer.services.access.record_refusal("auditor", "read", f"before {n}")
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            writer.services.access.record_refusal("auditor", "read", f"probe {written[0]}")
            written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    problems, refusals, digests = [], [], []
    try:
        deadline = time.monotonic() + 90  # a slow machine walks fewer times a second, not fewer walks
        while (len(digests) < 30 or written[0] < 60) and time.monotonic() < deadline:
            result = audit.verify(reader.ledger)
            if result.problem:
                problems.append(result.problem["message"])
            try:
                digests.append(audit.digest(reader.ledger, verified=audit.check_head(reader.ledger)))
            except Exception as exc:  # any refusal here is the false alarm under test
                refusals.append(str(exc))
    finally:
        stop.set()
        thread.join(30)
    assert problems == [] and written[0] > 50
    assert refusals == [] and len(digests) >= 10  # the walks really ran beside the writes
    positions = [d["position"] for d in digests]
    assert positions == sorted(positions) and positions[-1] > positions[0]
    whole = audit.verify(reader.ledger, witnessed=digests)  # each digest is of a prefix of the log
    assert whole.ok and all(check["ok"] for check in whole.witness or [])


def _submit(app, n: int) -> None:
    session = IngestSession(app.ledger, "stream", "provider:circle")
    record = {
        "type": "submission",
        "submission_id": f"live-{n}",
        "contract_id": "beds-msk",
        "provider_id": "circle",
        "indicator_id": "proms-improved",
        "period": "2025-Q2",
        "numerator": "300",
        "denominator": "480",
    }
    outcome = session.apply_text(json.dumps(record))
    assert outcome.status == "accepted", outcome
    session.flush()


def test_a_record_accepted_between_the_index_checks_reads_is_not_reported(ledger_url, monkeypatch):
    """The record-index check reads the index and the events: a batch lands before each read (the
    worst moments for it), and neither is taken for an index row no event accepted, or the reverse."""
    worked_example_ledger(ledger_url)
    reader, writer = bootstrap(ledger_url), bootstrap(ledger_url)
    landed: list[str] = []
    recorder = reader.ledger.recorder
    for name in ("select_record_index", "select_notifications"):
        real = getattr(recorder, name)

        def landing_first(*args, _real=real, _name=name, **kwargs):
            if _name not in landed:
                landed.append(_name)
                _submit(writer, len(landed))
            return _real(*args, **kwargs)

        monkeypatch.setattr(recorder, name, landing_first)
    result = check_derived(reader.ledger)
    assert sorted(landed) == ["select_notifications", "select_record_index"]  # both moments were hit
    assert result["problems"] == []
    monkeypatch.undo()
    after = check_derived(reader.ledger)
    assert after["problems"] == [] and after["index_rows"] == result["index_rows"] + 1  # the later one


def test_read_models_projected_into_while_they_are_compared_are_not_reported(ledger_url, monkeypatch):
    """Another process projects a new record into the live read models while verify compares them:
    the comparison is made again at the new position, and nothing is reported."""
    from projections import verify as read_models

    worked_example_ledger(ledger_url)
    reader, writer = bootstrap(ledger_url), bootstrap(ledger_url)
    live, other = reader.projections(), writer.projections()
    other.projector.run()
    real_rows = read_models._rows
    landed = []

    def projected_meanwhile(engine, table):
        if engine is live.engine and len(landed) < 2:  # twice: the second lands in the re-comparison
            landed.append(table.name)
            _submit(writer, len(landed))
            other.projector.run()
        return real_rows(engine, table)

    monkeypatch.setattr(read_models, "_rows", projected_meanwhile)
    result = read_models.verify_read_models(live)
    assert len(landed) == 2
    assert result["ok"] is True and result["differences"] == [], result["differences"][:3]
    assert result["position"] == other.projector.position()  # compared where the live models stood
    monkeypatch.setattr(read_models, "_rows", real_rows)

    def always_moving(engine, table):
        if engine is live.engine:
            landed.append(table.name)
            _submit(writer, len(landed))
            other.projector.run()
        return real_rows(engine, table)

    monkeypatch.setattr(read_models, "_rows", always_moving)
    restless = read_models.verify_read_models(live, attempts=3)
    assert restless["ok"] is False and restless["differences"] == []
    assert "moved during each of 3 comparisons" in restless["unsettled"]
