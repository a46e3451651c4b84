"""Derived state checked against the sealed events, not trusted: snapshots and the record index.

Neither is sealed by the chain (a snapshot is a cache of a replay; the record index is
a lookup table written with the events), so whoever can write the database can forge
them. Nothing that decides money takes them on trust:

* :func:`replayed` rebuilds an aggregate from its events; when a snapshot is stored
  its state is compared with the replay at the snapshot's version, and a snapshot
  that differs is reported (``snapshot_forged``) and ignored. Year closes and
  restatements load the year's data this way (:meth:`ledger.usecases.settlement.Settling.compute_year`).
* :func:`check_derived` (run by ``verify``) replays every aggregate that has a
  snapshot and rebuilds the record index from the events, comparing row by row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import get_topic

from ledger.adapters.gcpace import bulk_pace
from ledger.domain.aggregates import YearData
from ledger.usecases.application import project_events

log = logging.getLogger("obc_ledger.checks")


def _encoded(app: Any, state: dict[str, Any]) -> bytes:
    """An aggregate's state as compared: its attributes in name order (their order is no part of the
    state: an upcast snapshot adds its new ones last), everything within them in its own order."""
    return app.mapper.transcoder.encode({k: state[k] for k in sorted(state) if k != "_pending_events"})


def _where(state: dict[str, Any], aggregate_id: Any) -> str:
    if "contract_id" in state and "year" in state:
        return f"contract {state['contract_id']} year {state['year']}"
    if "contract_id" in state:
        return f"contract {state['contract_id']}"
    return f"stream {aggregate_id}"


REPLAY_PAGE = 5000  # events read at a time by a replay


def stream_events(app: Any, aggregate_id: UUID, page: int = REPLAY_PAGE) -> Iterator[Any]:
    """A stream's events in order, read ``page`` at a time: the store hands a whole read over at once
    (its rows, then their stored events), so a stream of 100,000 events read in one go held both
    copies of every event beside the aggregate being rebuilt (a rate-card close's peak memory)."""
    after = None
    while True:
        events = list(app.events.get(aggregate_id, gt=after, limit=page))
        yield from events
        if len(events) < page:
            return
        after = events[-1].originator_version


def replayed(app: Any, aggregate_id: UUID) -> tuple[Any, dict[str, Any] | None]:
    """The aggregate rebuilt from its events alone (None when it has none), and the problem with its
    latest snapshot when that does not match the replay at the snapshot's version."""
    problem = None
    unreadable: Exception | None = None
    try:
        snapshot = (
            next(iter(app.snapshots.get(aggregate_id, desc=True, limit=1)), None) if app.snapshots else None
        )
    except Exception as exc:  # stored bytes the mapper cannot decode: not what any release wrote
        snapshot, unreadable = None, exc
    aggregate: Any = None
    with bulk_pace():  # a year's stream is bulk work: tens of thousands of events
        for event in stream_events(app, aggregate_id):
            aggregate = project_events(aggregate, (event,))
            if snapshot is not None and event.originator_version == snapshot.originator_version:
                ours = type(aggregate).Snapshot.take(aggregate).state
                try:
                    theirs = (  # what it restores to, by the library's own upcasts (an older release's layout)
                        type(aggregate).Snapshot.take(snapshot.mutate(None)).state
                        if snapshot.topic == get_topic(type(aggregate))  # never a class the snapshot names
                        else dict(snapshot.state)
                    )
                    same = _encoded(app, ours) == _encoded(app, theirs)
                except Exception:  # a snapshot no upcast can read: not what any release wrote
                    theirs, same = dict(snapshot.state), False
                if not same:
                    problem = _forged(aggregate_id, snapshot, ours, theirs)
                snapshot = None
    if snapshot is not None:  # a snapshot of a version the stream does not have
        problem = {
            "kind": "snapshot_forged",
            "stream": str(aggregate_id),
            "version": snapshot.originator_version,
            "where": _where(dict(snapshot.state), aggregate_id),
            "message": f"the snapshot of {_where(dict(snapshot.state), aggregate_id)} is of version "
            f"{snapshot.originator_version}, which its stream does not have",
        }
    if unreadable is not None:
        where = _where(vars(aggregate), aggregate_id) if aggregate is not None else f"stream {aggregate_id}"
        problem = {
            "kind": "snapshot_forged",
            "stream": str(aggregate_id),
            "version": None,
            "where": where,
            "message": f"the latest snapshot of {where} cannot be read ({type(unreadable).__name__}): "
            f"forged or corrupt",
        }
    if problem is not None:
        log.warning("%s; the events were used instead", problem["message"])
    return aggregate, problem


def _forged(aggregate_id: Any, snapshot: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    fields = sorted(
        k for k in set(ours) | set(theirs) if k != "_pending_events" and ours.get(k) != theirs.get(k)
    )
    where = _where(ours, aggregate_id)
    return {
        "kind": "snapshot_forged",
        "stream": str(aggregate_id),
        "version": snapshot.originator_version,
        "where": where,
        "fields": fields,
        "message": f"the snapshot of {where} (version {snapshot.originator_version}) does not match a replay "
        f"of its events (differs in {', '.join(fields) or 'encoding'}): forged or corrupt",
    }


def snapshot_ids(app: Any) -> Iterator[UUID]:
    recorder = app.snapshots.recorder if app.snapshots else None
    if recorder is None:
        return
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {recorder.events_table_name}")
            rows = [r[0] for r in c.fetchall()]
    else:
        from psycopg.sql import SQL, Identifier

        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT DISTINCT originator_id FROM {t}").format(
                    t=Identifier(recorder.datastore.schema, recorder.events_table_name)
                )
            )
            rows = [r["originator_id"] for r in curs.fetchall()]
    for value in rows:
        yield value if isinstance(value, UUID) else UUID(str(value))


def expected_record_index(
    app: Any, upto: int | None = None
) -> tuple[dict[tuple[str, str], tuple[str, int]], list[dict[str, Any]]]:
    """The record index as the events (up to notification id ``upto``) make it: (contract, key) ->
    (digest, notification id), and every id accepted twice with different content."""
    opened = get_topic(YearData.Opened)
    id_fields = {
        get_topic(YearData.SubmissionAccepted): ("submission", "submission_id"),
        get_topic(YearData.CostReported): ("cost_report", "report_id"),
        get_topic(YearData.PopulationCounted): ("population", "record_id"),
        get_topic(YearData.OutcomeClaimed): ("outcome_claim", "claim_id"),
        get_topic(YearData.PromEpisodeRecorded): ("prom_episode", "episode_id"),
    }
    contract_of: dict[Any, str] = {}
    rows: dict[tuple[str, str], tuple[str, int]] = {}
    problems = []
    for n in _notifications(app, [opened, *id_fields], upto):
        state = json.loads(n.state)  # plain JSON: only ids and digests are read (no Decimal decoding)
        if n.topic == opened:
            contract_of[n.originator_id] = state["contract_id"]
            continue
        kind, name = id_fields[n.topic]
        if n.originator_id not in contract_of:  # a record before its year was opened: not the ledger's
            problems.append(
                {
                    "kind": "record_without_year",
                    "stream": str(n.originator_id),
                    "events": [n.id],
                    "message": f"event #{n.id} records {kind} {state.get(name)!r} in stream "
                    f"{n.originator_id} before that year was opened: it was written behind the "
                    f"ledger's back",
                }
            )
            continue
        key = (contract_of[n.originator_id], f"{kind}:{state[name]}")
        digest = state["digest"]
        if key in rows and rows[key][0] != digest:
            problems.append(
                {
                    "kind": "record_id_reused",
                    "contract": key[0],
                    "record": key[1],
                    "events": [rows[key][1], n.id],
                    "message": f"record {key[1]} of contract {key[0]} was accepted twice with different "
                    f"content (events #{rows[key][1]} and #{n.id}): its index row had been "
                    f"removed",
                }
            )
            continue
        rows.setdefault(key, (digest, n.id))
    return rows, problems


def _notifications(app: Any, topics: list[str], upto: int | None = None, page: int = 5000) -> Iterator[Any]:
    start = None
    while found := app.recorder.select_notifications(
        start=start, limit=page, stop=upto, topics=topics, inclusive_of_start=False
    ):
        yield from found
        start = found[-1].id


def check_derived(app: Any) -> dict[str, Any]:
    """Every stored snapshot replayed and the record index rebuilt, compared with what is stored."""
    problems: list[dict[str, Any]] = []
    checked = 0
    for aggregate_id in snapshot_ids(app):
        checked += 1
        _, problem = replayed(app, aggregate_id)
        if problem is not None:
            problems.append(problem)
    bound, index = app.recorder.select_record_index()  # the index first, with the log it is of
    expected, reused = expected_record_index(app, 0 if bound is None else bound)
    problems += reused
    stored = {(c, k): d for c, k, d in index}
    for key, (want, nid) in expected.items():
        have = stored.get(key)
        if have is None:
            problems.append(
                {
                    "kind": "record_index_missing",
                    "contract": key[0],
                    "record": key[1],
                    "message": f"the record index lacks {key[1]} of contract {key[0]} (accepted at event "
                    f"#{nid}): a different record could be accepted under its id",
                }
            )
        elif have != want:
            problems.append(
                {
                    "kind": "record_index_altered",
                    "contract": key[0],
                    "record": key[1],
                    "live": have,
                    "from_events": want,
                    "message": f"the record index holds digest {have[:12]}… for {key[1]} of contract "
                    f"{key[0]}; its event (#{nid}) has {want[:12]}…",
                }
            )
    for key in stored.keys() - expected.keys():
        problems.append(
            {
                "kind": "record_index_extra",
                "contract": key[0],
                "record": key[1],
                "message": f"the record index holds {key[1]} of contract {key[0]}, which no event "
                f"accepted: a genuine record under that id would be refused",
            }
        )
    return {"snapshots_checked": checked, "index_rows": len(stored), "problems": problems}
