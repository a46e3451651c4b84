"""Idempotency keys expire, and a claim whose request never completed is not held forever.

TokenStore on a real database (SQLite and PostgreSQL) with a clock the test moves: a key's first
response is replayed for IDEMPOTENCY_TTL and then pruned; a claim left at status 0 by a worker killed
mid-request blocks retries (409 in progress) only for IDEMPOTENCY_LEASE, after which a retry of the
same request takes it over — once, however many retries race for it.
"""

from datetime import UTC, datetime
from threading import Barrier, Thread

import pytest
from sqlalchemy import func, select

from ledger.adapters.tokens import IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, TokenStore, idempotency_table

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    clock = Clock()
    s = TokenStore(url, clock=clock)
    s.test_clock = clock  # type: ignore[attr-defined]
    return s


def rows(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(idempotency_table)).scalar_one()


def test_a_completed_key_is_replayed_until_it_expires_then_pruned_and_runs_anew(store):
    clock = store.test_clock
    assert store.reserve("token:a", "k1", "POST", "/pay", "sha-1") is None
    store.complete("token:a", "k1", 200, "application/json", b'{"paid": 1}')
    clock.now = T0 + IDEMPOTENCY_TTL - IDEMPOTENCY_LEASE
    replay = store.reserve("token:a", "k1", "POST", "/pay", "sha-1")
    assert replay is not None and (replay.status, replay.body) == (200, b'{"paid": 1}')
    assert store.reserve("token:b", "k2", "POST", "/pay", "sha-2") is None  # another key, kept
    clock.now = T0 + IDEMPOTENCY_TTL
    assert store.prune() == 1 and rows(store) == 1  # k1 gone, k2 (younger) kept
    assert store.reserve("token:a", "k1", "POST", "/pay", "sha-1") is None  # a new first request


def test_an_expired_key_not_yet_pruned_is_claimed_anew_even_for_another_request(store):
    clock = store.test_clock
    assert store.reserve("token:a", "k1", "POST", "/pay", "sha-1") is None
    store.complete("token:a", "k1", 200, "application/json", b"{}")
    store.prune()  # prunes nothing yet, and will not run again for a minute
    clock.now = T0 + IDEMPOTENCY_TTL + IDEMPOTENCY_LEASE / 1000
    assert store.reserve("token:a", "k1", "POST", "/other", "sha-other") is None
    claimed = store.reserve("token:a", "k1", "POST", "/other", "sha-other")
    assert claimed is not None and claimed.status == 0 and claimed.request_sha256 == "sha-other"


def test_an_abandoned_claim_blocks_retries_for_the_lease_then_one_retry_takes_it_over(store):
    clock = store.test_clock
    assert store.reserve("token:a", "k1", "POST", "/pay", "sha-1") is None  # the worker dies here
    clock.now = T0 + IDEMPOTENCY_LEASE / 2
    running = store.reserve("token:a", "k1", "POST", "/pay", "sha-1")
    assert running is not None and running.status == 0  # 409 idempotency_in_progress
    clock.now = T0 + IDEMPOTENCY_LEASE
    other = store.reserve("token:a", "k1", "POST", "/pay", "sha-different")
    assert other is not None and other.request_sha256 == "sha-1"  # 422 reused: not taken over
    results: list[object] = []
    start = Barrier(4)

    def retry() -> None:
        start.wait()
        results.append(store.reserve("token:a", "k1", "POST", "/pay", "sha-1"))

    threads = [Thread(target=retry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 1  # exactly one retry runs the request again
    assert all(r is not None and r.status == 0 for r in results if r is not None)  # the rest: in progress
    store.complete("token:a", "k1", 201, "application/json", b'{"ok": true}')
    done = store.reserve("token:a", "k1", "POST", "/pay", "sha-1")
    assert done is not None and (done.status, done.body) == (201, b'{"ok": true}')
