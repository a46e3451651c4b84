"""Whole-log work over HTTP is bounded: chain walks coalesce, and each principal has a budget of
walks and as-of replays (429 ``rate_limited`` past it, the first refusal of a run recorded)."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.entrypoints.web.walks import Budget, Coalesced
from tests.support.cli import EXAMPLES, Cli, stored_states
from tests.support.service import start_service

CONTRACT = "beds-msk"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0  # float-ok: seconds

    def __call__(self) -> float:
        return self.now


def test_a_budget_allows_its_burst_then_refuses_until_it_refills():
    clock = Clock()
    budget = Budget(per_minute=3, clock=clock)
    assert [budget.spend("a") for _ in range(3)] == [(0, False)] * 3
    assert budget.spend("a") == (20, True)  # one request back every 20 s; the first refusal of a run
    assert budget.spend("a") == (20, False)
    assert budget.spend("b") == (0, False)  # another principal's budget is its own
    clock.now += 19
    assert budget.spend("a") == (1, False)
    clock.now += 1
    assert budget.spend("a") == (0, False)
    assert budget.spend("a") == (20, True)  # a new run of refusals: recorded again
    clock.now += 3600
    assert [budget.spend("a") for _ in range(4)] == [(0, False)] * 3 + [(20, True)]  # never above the burst


def test_a_budget_of_zero_is_no_limit():
    budget = Budget(per_minute=0)
    assert all(budget.spend("a") == (0, False) for _ in range(1000))
    assert budget.has_room("a")


def test_whether_a_budget_has_room_is_told_without_spending_it():
    clock = Clock()
    budget = Budget(per_minute=2, clock=clock)
    assert budget.has_room("a") and budget.has_room("a")  # asking spends nothing
    budget.spend("a")
    budget.spend("a")
    assert not budget.has_room("a") and budget.has_room("b")
    clock.now += 29
    assert not budget.has_room("a")
    clock.now += 1
    assert budget.has_room("a")
    assert budget.spend("a") == (0, False)


def test_callers_share_the_next_walk_never_one_begun_before_they_asked():
    coalesced = Coalesced()
    started, release = threading.Event(), threading.Event()
    walks: list[int] = []

    def walk() -> dict[str, int]:
        walks.append(len(walks) + 1)
        started.set()
        release.wait(10)
        return {"walk": len(walks)}

    results: dict[str, dict[str, int]] = {}

    def call(name: str) -> None:
        results[name] = coalesced.run("verify", walk)

    first = threading.Thread(target=call, args=("first",))
    first.start()
    assert started.wait(10)
    started.clear()
    late = [threading.Thread(target=call, args=(f"late{i}",)) for i in range(5)]
    for t in late:
        t.start()
    time.sleep(0.2)  # the late callers are waiting, not walking
    assert walks == [1]
    release.set()
    for t in [first, *late]:
        t.join(10)
    assert walks == [1, 2]  # one more walk for all five late callers
    assert results["first"] == {"walk": 1}
    assert all(results[f"late{i}"] == {"walk": 2} for i in range(5))
    results["late0"]["walk"] = 99
    assert results["late1"] == {"walk": 2}  # each caller its own copy


def test_a_failed_walk_is_raised_to_every_caller_and_the_next_one_runs_again():
    coalesced = Coalesced()
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("seal 7 does not match")

    for _ in range(2):
        with pytest.raises(ValueError, match="seal 7"):
            coalesced.run("digest", broken)
    assert len(calls) == 2
    assert coalesced.run("digest", lambda: 5) == 5


@pytest.fixture(scope="module")
def limited_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("walks")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    service = start_service(
        db_url,
        tmp / "service.log",
        env={"OBC_LEDGER_LOG_WALKS_PER_MINUTE": "3", "OBC_LEDGER_REFUSALS_PER_MINUTE": "3"},
    )
    yield service
    service.stop()


def test_past_its_budget_a_principal_is_refused_429_and_the_refusal_is_recorded_once(limited_service):
    token = limited_service.token("auditor", "Replaying")
    other = limited_service.token("auditor", "Another auditor")
    walks = [
        "/api/v1/verify",
        "/api/v1/digest",
        f"/api/v1/contracts/{CONTRACT}/years/1/statement?as_of=2030-01-01T00:00:00Z",
    ]
    with limited_service.client(token) as c:
        principal = c.get("/api/v1/whoami").json()["principal"]
        assert [c.get(path).status_code for path in walks] == [200, 200, 200]
        refused = [
            c.get(path)
            for path in [*walks, "/audit", f"/api/v1/contracts/{CONTRACT}/report?as_of=2030-01-01T00:00:00Z"]
        ]
        assert c.get(f"/api/v1/contracts/{CONTRACT}/years/1/statement").status_code == 200  # no replay: free
    assert [r.status_code for r in refused] == [429] * 5
    body = refused[0].json()
    assert body["error"] == "rate_limited"
    assert principal in body["message"] and "3 log walks and replays" in body["message"]
    assert all(1 <= int(r.headers["Retry-After"]) <= 20 for r in refused)
    assert "text/html" in refused[3].headers["content-type"] and "rate_limited" in refused[3].text
    recorded = [
        e for e in stored_states(limited_service.db_url, "AccessRefused") if e.get("principal") == principal
    ]
    assert len(recorded) == 1  # the first of the run; the rest are on the security log
    assert recorded[0]["actor"] == "auditor" and recorded[0]["action"] == "verify"
    assert recorded[0]["reason"].startswith("rate_limited: ")
    log = limited_service.log.read_text()
    assert log.count('"event": "rate_limited"') >= 5 and principal in log
    with limited_service.client(other) as c:  # another principal is not slowed by the first
        assert c.get("/api/v1/verify").json()["ok"] is True


def test_a_principal_probing_for_contracts_has_three_refusals_recorded_then_429_and_one_more(limited_service):
    """Each refused read is an event; a prober past its budget gets 429, and writes one event more."""
    token = limited_service.token("provider:circle", "Probing")
    other = limited_service.token("provider:luton", "Another provider")
    probes = [f"/api/v1/contracts/guess-{i}/years/1/statement" for i in range(7)]
    with limited_service.client(token) as c:
        principal = c.get("/api/v1/whoami").json()["principal"]
        answers = []
        for i, path in enumerate(probes):
            answers.append(c.get(path))
            if i == 4:  # past the budget its own contract is read as ever
                assert c.get(f"/api/v1/contracts/{CONTRACT}/years/1/statement").status_code == 200
    assert [r.status_code for r in answers] == [404] * 3 + [429] * 4
    assert answers[0].json()["error"] == "unknown_contract"
    limited = answers[3].json()
    assert limited["error"] == "rate_limited" and "3 refused reads of this minute" in limited["message"]
    assert principal in limited["message"] and 1 <= int(answers[3].headers["Retry-After"]) <= 20
    recorded = [
        e for e in stored_states(limited_service.db_url, "AccessRefused") if e.get("principal") == principal
    ]
    assert [e["contract_id"] for e in recorded] == ["guess-0", "guess-1", "guess-2", None]
    assert recorded[-1]["reason"].startswith("rate_limited: ") and recorded[-1]["action"] == "read"
    log = limited_service.log.read_text()
    assert log.count(f'"principal": "{principal}"') >= 4, (
        "every refusal past the budget is on the security log"
    )
    with limited_service.client(other) as c:  # another principal's refusals are its own budget's
        assert c.get("/api/v1/contracts/guess-0/years/1/statement").status_code == 404
