"""verify and digest while the ledger is being written: the walk covers the log as it stood when it
began, so a batch appended meanwhile is never reported as a removed or unsealed event (before, a
quarter of the walks under a steady writer raised such a false tamper alarm)."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.adapters import audit
from ledger.bootstrap import bootstrap


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


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
        deadline = time.monotonic() + 15
        while len(digests) < 30 and time.monotonic() < deadline:
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
