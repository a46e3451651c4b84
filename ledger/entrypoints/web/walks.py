"""Whole-log work over HTTP: a request that costs the log's length, not its own.

A seal-chain walk (``GET /api/v1/digest``, ``GET /api/v1/verify``, the auditor's page) reads every
event ever stored; an as-of replay (``?as_of=`` on a statement, the report or the auditor's page)
rebuilds a contract's read models from the log. One small request, unbounded work: without a limit
any principal could keep the service's cores and the database busy with nothing but these.

* **Coalesced walks.** While a chain walk runs in a process, callers of the same kind wait for the
  next one — started as soon as the running one ends — and all share its result. Every caller's
  answer therefore comes from a walk begun *after* it asked (no tamper made before the call can be
  missed), and however many ask at once, at most one walk runs and one waits.
* **A budget per principal.** Each principal may start ``OBC_LEDGER_LOG_WALKS_PER_MINUTE`` (default
  20; ``0`` turns the limit off) walks and replays a minute, in a burst as large; past it the
  answer is 429 ``rate_limited`` with ``Retry-After``. The first refusal of every run of refusals
  is recorded in the ledger as an ``AccessRefused`` naming the principal (a caller refused a
  thousand times a minute is not let write a thousand events); every one goes to the security log.

* **Refusals recorded, within a budget.** A read refused to a principal (a contract it is not party
  to, or one that does not exist) is an ``AccessRefused`` event: one small request, one write to
  the log for good. Each principal may have ``OBC_LEDGER_REFUSALS_PER_MINUTE`` (default 60; ``0``
  turns the limit off) refusals a minute recorded, in a burst as large; past it a request that
  would be refused is answered 429 ``rate_limited`` instead, the first of the run recorded and
  every one on the security log. Reads it may make are never slowed.

Both are per worker process (``serve --workers N`` gives a principal N budgets).
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from ledger.entrypoints.web.auth import Principal, log_refusal, record_refusal
from ledger.entrypoints.web.errors import RateLimited

T = TypeVar("T")

WALKS_ENV = "OBC_LEDGER_LOG_WALKS_PER_MINUTE"
WALKS_PER_MINUTE = 20
MAX_PRINCIPALS = 10_000  # kept budgets; beyond, the full ones (no recent use) are forgotten


REFUSALS_ENV = "OBC_LEDGER_REFUSALS_PER_MINUTE"
REFUSALS_PER_MINUTE = 60


def _per_minute(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def walks_per_minute() -> int:
    return _per_minute(WALKS_ENV, WALKS_PER_MINUTE)


def refusals_per_minute() -> int:
    return _per_minute(REFUSALS_ENV, REFUSALS_PER_MINUTE)


@dataclass
class _Bucket:
    tokens: float  # float-ok: a count of requests, not money
    at: float  # float-ok: time.monotonic()
    refusing: bool = False  # the last request was refused (its refusal already recorded)

    def level(self, now: float, rate: float) -> float:  # float-ok: seconds, requests a second
        """The tokens it would hold at ``now``, refilled at ``rate`` a second (before any cap)."""
        return self.tokens + (now - self.at) * rate


@dataclass
class Budget:
    """A token bucket per principal: ``per_minute`` requests a minute, ``per_minute`` at once."""

    per_minute: int = WALKS_PER_MINUTE
    clock: Callable[[], float] = time.monotonic  # float-ok: seconds
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spend(self, principal: str) -> tuple[int, bool]:
        """Take one request from ``principal``'s budget: ``(0, False)`` when allowed, else
        ``(seconds until the next one is, first)`` — ``first`` for the first refusal of a run."""
        if self.per_minute <= 0:
            return 0, False
        rate = self.per_minute / 60  # float-ok: requests per second
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(principal)
            if bucket is None:
                if len(self._buckets) >= MAX_PRINCIPALS:
                    self._forget_full(now, rate)
                bucket = self._buckets[principal] = _Bucket(float(self.per_minute), now)  # float-ok
            bucket.tokens = min(float(self.per_minute), bucket.level(now, rate))  # float-ok
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                bucket.refusing = False
                return 0, False
            first, bucket.refusing = not bucket.refusing, True
            return max(1, math.ceil((1 - bucket.tokens) / rate)), first

    def has_room(self, principal: str) -> bool:
        """Whether ``principal`` could spend one now (nothing is spent)."""
        if self.per_minute <= 0:
            return True
        with self._lock:
            bucket = self._buckets.get(principal)
            return bucket is None or bucket.level(self.clock(), self.per_minute / 60) >= 1

    def _forget_full(self, now: float, rate: float) -> None:  # float-ok: seconds, requests a second
        for name, bucket in list(self._buckets.items()):
            if bucket.level(now, rate) >= self.per_minute:
                del self._buckets[name]


@dataclass
class _Slot:
    started: int = 0  # walks begun
    finished: int = 0  # the number of the last walk to end
    running: bool = False
    outcome: tuple[Any, BaseException | None] = (None, None)
    turn: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class Coalesced:
    """At most one run of each kind at a time; a caller shares the first run begun after it asked."""

    _slots: dict[str, _Slot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, kind: str, work: Callable[[], T]) -> T:
        with self._lock:
            slot = self._slots.setdefault(kind, _Slot())
        with slot.turn:
            wanted = slot.started + 1  # the running walk (if any) began before this call: not it
            while slot.finished < wanted:
                if not slot.running:
                    slot.running = True
                    slot.started += 1
                    number = slot.started
                    break
                slot.turn.wait()
            else:
                return self._shared(slot.outcome)
        outcome: tuple[Any, BaseException | None] = (None, RuntimeError("the walk was interrupted"))
        try:
            outcome = (work(), None)
        except Exception as exc:  # shared with every waiter, raised to each
            outcome = (None, exc)
        finally:
            with slot.turn:
                slot.running, slot.finished, slot.outcome = False, number, outcome
                slot.turn.notify_all()
        return self._shared(outcome)

    @staticmethod
    def _shared(outcome: tuple[Any, BaseException | None]) -> Any:
        value, error = outcome
        if error is not None:
            raise error
        return copy.deepcopy(value)  # each caller its own copy: none can change another's answer


def charge(
    world: Any, request: Request | None, p: Principal, action: str, budget: Budget, spent: str
) -> None:
    """Take one from ``p``'s ``budget``; past it, 429 ``rate_limited`` ("``p`` has ``spent``; retry in
    N s"), on the security log every time and recorded in the ledger for the first of a run."""
    wait, first = budget.spend(p.principal)
    if not wait:
        return
    refused = RateLimited(f"{p.principal} has {spent}; retry in {wait} s", retry_after=wait)
    log_refusal(request, "rate_limited", principal=p.principal, actor=p.actor, action=action)
    if first:
        record_refusal(world, p.principal, p.actor, action, f"rate_limited: {refused.message}")
    raise refused


def spend(request: Request, p: Principal, action: str) -> None:
    """Charge one walk or replay to ``p`` (429 ``rate_limited`` past its budget, the refusal kept)."""
    world = request.app.state.world
    charge(
        world,
        request,
        p,
        action,
        world.walks,
        f"used its {world.walks.per_minute} log walks and replays of this minute",
    )


def chain_walk(request: Request, p: Principal, kind: str, work: Callable[[], T]) -> T:
    """``work`` (a walk of the seal chain) charged to ``p`` and coalesced with its kind's others."""
    spend(request, p, kind)
    return request.app.state.world.chain.run(kind, work)
