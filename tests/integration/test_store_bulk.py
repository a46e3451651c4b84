"""The SQLite recorder writes a batch's events in one statement and names their notification ids
from the rowids SQLite gave them: the ids it reports are the rows' own, batch after batch and
writer after writer, and the seals are written against them."""

import sqlite3

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.adapters.audit import verify
from ledger.domain.aggregates import Rejection
from ledger.usecases.application import Ledger


def _rejections(prefix, n):
    return [
        Rejection(
            key=f"{prefix}-{i}",
            source="test",
            line=i,
            raw="{}",
            code="invalid_json",
            field=None,
            message="not valid JSON",
            contract_id=None,
            record_type=None,
            record_id=None,
            actor="system",
        )
        for i in range(n)
    ]


def _rows(path):
    with sqlite3.connect(path) as conn:
        events = conn.execute("SELECT rowid, originator_id, originator_version FROM stored_events").fetchall()
        seals = conn.execute("SELECT notification_id, originator_id, originator_version FROM event_hashes")
        return sorted(events), sorted(seals.fetchall())


def test_reported_ids_are_the_rows_ids_across_batches_and_writers(tmp_path):
    path = tmp_path / "ledger.db"
    first, second = Ledger.from_url(f"sqlite:///{path}"), Ledger.from_url(f"sqlite:///{path}")
    reported = {}
    for round_ in range(3):
        for writer, app in (("a", first), ("b", second)):
            batch = _rejections(f"{writer}{round_}", 7 + round_)
            for recording in app.save(*batch):
                n = recording.notification
                reported[n.id] = (n.originator_id.hex, n.originator_version)
    events, seals = _rows(path)
    assert {rowid: (oid, version) for rowid, oid, version in events} == reported
    assert seals == events  # each seal names its event's own notification id
    assert verify(first).ok


def test_a_batch_that_fails_writes_nothing(tmp_path):
    path = tmp_path / "ledger.db"
    app = Ledger.from_url(f"sqlite:///{path}")
    app.save(*_rejections("x", 3))
    before = _rows(path)
    again = _rejections("y", 2) + _rejections("x", 1)  # the last one's stream already exists
    with pytest.raises(IntegrityError):
        app.save(*again)
    assert _rows(path) == before
    recordings = app.save(*_rejections("y", 2))
    assert [r.notification.id for r in recordings] == [len(before[0]) + 1, len(before[0]) + 2]
    assert verify(app).ok


def test_rows_removed_from_the_end_are_not_mistaken_for_the_batchs(tmp_path):
    """Deleting the newest rows (and their seals) makes SQLite reuse their rowids: the ids reported are
    still the rows' own. (Such a cut tail is caught by a witnessed digest: test_insider_tamper.py.)"""
    path = tmp_path / "ledger.db"
    app = Ledger.from_url(f"sqlite:///{path}")
    app.save(*_rejections("x", 4))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid > 2")
        conn.execute("DELETE FROM event_hashes WHERE notification_id > 2")
    recordings = app.save(*_rejections("z", 3))
    events, _ = _rows(path)
    assert [r.notification.id for r in recordings] == [3, 4, 5]
    assert [rowid for rowid, _, _ in events] == [1, 2, 3, 4, 5]
    assert verify(app).ok
