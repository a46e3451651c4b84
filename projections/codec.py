"""The event store's stored form, as the projector reads it without eventsourcing's transcoder.

A documented speed choice: 99% of a ledger's events are submissions and cost reports, and a
rebuild of a million of them is seconds only when their stored JSON is read straight into
rows, without building ``Decimal`` and ``datetime`` objects first (``Projector._project``
and ``_Fast``). Everything that knows how eventsourcing stores an event is here, in one
place:

- an event's *kind* is its topic less the aggregates' stored module
  (``"ledger.domain:YearData.CostReported"`` is ``"YearData.CostReported"``);
- the state is UTF-8 JSON (no cipher, no compressor: the projector refuses a store with
  either), read by the standard library's own scanner;
- a stored event's row (the recorders' ``select_log``: id, stream id as 32 hex digits, version, topic,
  state) is read into :class:`Stored`, the stream id in the text form ``str(uuid)`` gives, without a
  ``UUID`` object per event;
- a ``Decimal`` is stored as ``{"_type_": "decimal_str", "_data_": text}`` and a
  ``datetime`` as ``{"_type_": "datetime_iso", "_data_": isoformat}`` (eventsourcing's
  ``DecimalAsStr`` and ``DatetimeAsISO`` transcodings).

``tests/unit/test_projector_codec.py`` checks this module against the transcoder on real
stored events of every kind the projector reads, so a change in the stored form (a new
eventsourcing release, a topic no longer pinned, a renamed transcoding)
fails that test, not a read model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from json.scanner import make_scanner
from typing import Any, NamedTuple
from uuid import UUID

from ledger.domain.topics import STORED_MODULE
from projections.schema import MAX_PLACES, plain

# every stored topic starts with the aggregates' stored module (pinned: ledger/domain/topics.py)
TOPIC_PREFIX = f"{STORED_MODULE}:"
# 99% of a ledger's events: read from their stored JSON on the fast path
HOT = ("YearData.SubmissionAccepted", "YearData.CostReported")

# what json.JSONDecoder().scan_once is; typeshed types make_scanner's context as make_scanner
# itself (its own TODO says a decoder duck-types it)
_SCAN = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


class Stored(NamedTuple):
    """A stored event as the projector reads it (the attributes of eventsourcing's ``Notification``,
    the stream id as ``str(notification.originator_id)`` would give it)."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


def stored(row: tuple[int, str, int, str, bytes]) -> Stored:
    """A ``select_log`` row as :class:`Stored`."""
    nid, oid, version, topic, state = row
    if len(oid) == 32:
        text = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:]}"
    else:
        text = str(UUID(oid))
    return Stored(nid, text, version, topic, state)


def readable(mapper: Any) -> bool:
    """Whether the store's events can be read here: plain JSON, neither encrypted nor compressed."""
    return getattr(mapper, "cipher", None) is None and getattr(mapper, "compressor", None) is None


_KINDS: dict[str, str] = {}


def kind(topic: str) -> str:
    """The event's kind, ``Aggregate.Event``, from its stored topic."""
    found = _KINDS.get(topic)
    if found is None:
        found = topic[len(TOPIC_PREFIX) :] if topic.startswith(TOPIC_PREFIX) else topic
        if len(_KINDS) < 1000:  # the ledger has a few dozen topics; a hostile log cannot grow this
            _KINDS[topic] = found
    return found


def scan(state: bytes) -> dict[str, Any]:
    """The stored state as JSON values: Decimals and datetimes still in their stored dicts."""
    value: dict[str, Any] = _SCAN(state.decode(), 0)[0]
    return value


def recorded_at(state: Mapping[str, Any]) -> str:
    """The event's timestamp from scanned state, as :func:`when` gives it from decoded state."""
    text: str = state["timestamp"]["_data_"]
    return text


def when(timestamp: datetime) -> str:
    """A decoded event's timestamp as the read models hold it."""
    return timestamp.isoformat()


def decimal_text(value: Any) -> str | None:
    """A stored Decimal (its dict, or its text) as the read models' plain text, or None."""
    if value is None:
        return None
    text = value["_data_"] if type(value) is dict else value
    if (
        type(text) is str
        and len(text) <= 2 * MAX_PLACES + 2
        and text.isascii()
        and text[text[:1] == "-" :].replace(".", "", 1).isdigit()
    ):  # plain already (no exponent, NaN, "_")
        return text
    return plain(Decimal(text))
