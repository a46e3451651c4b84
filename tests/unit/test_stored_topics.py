"""Moving code never changes the stored record: every event keeps its ``ledger.domain:`` topic."""

from __future__ import annotations

import inspect

from eventsourcing.utils import get_topic, resolve_topic

import ledger.domain.aggregates as aggregates
from ledger.adapters.store import CLOSED_TOPIC


def _classes(cls: type):
    yield cls
    for member in vars(cls).values():
        if inspect.isclass(member) and member.__qualname__.startswith(cls.__qualname__ + "."):
            yield from _classes(member)


def test_every_aggregate_and_event_class_keeps_the_topic_it_was_first_stored_under():
    found = [
        c
        for top in vars(aggregates).values()
        if inspect.isclass(top) and top.__module__ == aggregates.__name__
        for c in _classes(top)
    ]
    assert len(found) > 20  # the aggregates and their events, nested
    for cls in found:
        topic = get_topic(cls)
        assert topic == f"ledger.domain:{cls.__qualname__}", topic
        assert resolve_topic(topic) is cls


def test_a_year_close_is_stored_under_the_topic_the_store_and_the_projector_look_for():
    assert get_topic(aggregates.Settlement.YearClosed) == CLOSED_TOPIC
