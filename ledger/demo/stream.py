"""A record stream under construction: events with an arrival date, ids given at the end.

Every generated record is an :class:`Event` with a simulated arrival date and a
kind (``normal``, ``correction``, ``duplicate``, ``invalid``) plus a detail
(e.g. ``late``, ``zero_denominator``). Ids are handed out in arrival order, per
record type, once the stream is complete; a duplicate (or a conflicting
duplicate) takes the id of the record it repeats.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from ledger.domain.records import ID_FIELDS

ID_LETTERS = {"submission": "s", "cost_report": "c", "population": "p"}
KINDS = ("normal", "correction", "duplicate", "invalid")


class Tagged(NamedTuple):
    """A record with what the generator knows about it (not part of the record)."""

    kind: str
    detail: str
    year: int  # contract year the data belongs to (0 when it belongs to none)
    record: dict[str, Any]


@dataclass(eq=False)
class Event:
    arrival: date
    seq: int
    type: str
    body: dict[str, Any]  # the record's fields other than type and its id
    kind: str = "normal"
    detail: str = ""
    year: int = 0
    same_id_as: Event | None = None  # a duplicate takes its original's id
    record_id: str = field(default="", init=False)


class Stream:
    def __init__(self, contract_id: str, rng: random.Random) -> None:
        self.contract_id = contract_id
        self.rng = rng
        self.events: list[Event] = []

    def add(
        self,
        arrival: date,
        type_: str,
        body: dict[str, Any],
        *,
        kind: str = "normal",
        detail: str = "",
        year: int = 0,
        same_id_as: Event | None = None,
    ) -> Event:
        event = Event(arrival, len(self.events), type_, body, kind, detail, year, same_id_as)
        self.events.append(event)
        return event

    def of(self, type_: str, kind: str = "normal") -> list[Event]:
        return [e for e in self.events if e.type == type_ and e.kind == kind]

    def materialize(self) -> list[Tagged]:
        """The records in arrival order (ties in creation order), with their ids."""
        ordered = sorted(self.events, key=lambda e: (e.arrival, e.seq))
        counters = dict.fromkeys(ID_FIELDS, 0)
        out: list[Tagged] = []
        for event in ordered:
            original = event.same_id_as
            if original is None:
                counters[event.type] += 1
                letter = ID_LETTERS[event.type]
                event.record_id = f"{self.contract_id}-{letter}-{counters[event.type]:06d}"
            elif not original.record_id:
                raise AssertionError("a duplicate must arrive after the record it repeats")
            else:
                event.record_id = original.record_id
            record = {"type": event.type, ID_FIELDS[event.type]: event.record_id, **copy.deepcopy(event.body)}
            out.append(Tagged(event.kind, event.detail, event.year, record))
        return out
