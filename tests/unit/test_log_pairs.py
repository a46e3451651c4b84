"""verify's walk pairs every stored event with its seal by notification id, page by page: each id once,
in order, with whatever either side lacks (a removed event, an unsealed one) kept unpaired."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.adapters.audit import _pairs


class _Recorder:
    def __init__(self, event_ids, seal_ids):
        self.events = [(n, "s", 1, "t", b"") for n in sorted(event_ids)]
        self.seals = [(n, "s", 1, "h", "g") for n in sorted(seal_ids)]
        self.reads = 0

    def select_log(self, after, limit):
        self.reads += 1
        return [e for e in self.events if after is None or e[0] > after][:limit]  # None: from the first

    def select_seals(self, after, limit):
        self.reads += 1
        return [s for s in self.seals if after is None or s[0] > after][:limit]


class _App:
    def __init__(self, recorder):
        self.recorder = recorder


def _expected(event_ids, seal_ids):
    return [
        (n if n in event_ids else None, n if n in seal_ids else None)
        for n in sorted(set(event_ids) | set(seal_ids))
    ]


def _walk(event_ids, seal_ids, page):
    recorder = _Recorder(event_ids, seal_ids)
    out = [
        (event[0] if event is not None else None, seal[0] if seal is not None else None)
        for event, seal in _pairs(_App(recorder), page=page)
    ]
    return out, recorder.reads


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(-5, 60)), st.sets(st.integers(-5, 60)), st.integers(1, 7))  # ids ≤ 0 too
def test_every_id_is_walked_once_in_order(event_ids, seal_ids, page):
    out, _ = _walk(event_ids, seal_ids, page)
    assert out == _expected(event_ids, seal_ids)


def test_an_untouched_log_is_paired_page_by_page():
    ids = set(range(1, 101))
    out, reads = _walk(ids, ids, page=10)
    assert out == [(n, n) for n in range(1, 101)]
    assert reads == 2 * 11  # ten full pages and the empty one that ends the walk, on each side


def test_seal_rows_are_the_documented_chain():
    """The seals the recorders write are the chain the module documents: stream_hash, then global_hash."""
    from uuid import uuid4

    from eventsourcing.persistence import StoredEvent

    from ledger.adapters.audit import GENESIS, global_hash, seal_rows, stream_hash

    a, b = uuid4(), uuid4()
    events = [
        StoredEvent(a, 1, "t:A", b"{}"),
        StoredEvent(b, 1, "t:B", b'{"x":1}'),
        StoredEvent(a, 2, "t:A", "text \u00e9 state"),
    ]
    stored = {b.hex: "f" * 64}  # b already has a sealed event
    rows = seal_rows(events, [7, 8, 9], "e" * 64, stored.get)
    previous, streams = "e" * 64, {a.hex: GENESIS, b.hex: "f" * 64}
    for (nid, oid, version, sh, gh), event, expected_nid in zip(rows, events, [7, 8, 9], strict=True):
        assert (nid, oid, version) == (expected_nid, event.originator_id.hex, event.originator_version)
        assert sh == stream_hash(streams[oid], event.originator_id, version, event.topic, event.state)
        assert gh == global_hash(previous, nid, sh)
        previous, streams[oid] = gh, sh
