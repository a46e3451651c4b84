"""Stored topics are part of the record: moving code must not change them.

eventsourcing stores each event with the topic of its class (``module:QualName``) and
finds the class again from that topic. The aggregates were written as ``ledger.domain``
before the code was layered (they now live in :mod:`ledger.domain.aggregates`); their
classes keep that topic, so a ledger written before the move opens, verifies and
replays unchanged, and one written after it has byte-for-byte the same stored form.
Each class gets its own ``TOPIC`` (eventsourcing's hook for this) and its topic is
registered for resolution; nested event classes are pinned one by one so none
inherits its parent's.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic, register_topic

STORED_MODULE = "ledger.domain"


def keep_stored_topics(namespace: dict[str, Any], stored_module: str = STORED_MODULE) -> None:
    """Pin every class defined in the module ``namespace`` belongs to (and its nested classes)."""
    here = namespace["__name__"]
    for obj in list(namespace.values()):
        if isinstance(obj, type) and obj.__module__ == here and "." not in obj.__qualname__:
            _pin(obj, here, stored_module)


def _pin(cls: type, here: str, stored_module: str) -> None:
    topic = f"{stored_module}:{cls.__qualname__}"
    cls.TOPIC = topic  # type: ignore[attr-defined]  # eventsourcing's construct_topic reads it
    register_topic(topic, cls)
    if get_topic(cls) != topic:  # a topic cached before pinning would silently win
        raise RuntimeError(f"{cls.__qualname__}: stored topic {get_topic(cls)!r}, expected {topic!r}")
    for member in list(vars(cls).values()):
        if (
            isinstance(member, type)
            and member.__module__ == here
            and member.__qualname__.startswith(cls.__qualname__ + ".")
        ):
            _pin(member, here, stored_module)
