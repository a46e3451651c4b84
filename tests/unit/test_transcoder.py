"""The encoders made once give the bytes of the library's encoders made per call: the event store's
transcoder (eventsourcing's JSONTranscoder) and the canonical text a record's digest and signature cover."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.adapters.transcoder import LedgerTranscoder
from ledger.domain import records


def _registered(transcoder):
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY, OURS = _registered(JSONTranscoder()), _registered(LedgerTranscoder())

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    _text,
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
    st.uuids(),
)
_values = st.recursive(
    _leaf, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_text, c, max_size=3)), max_leaves=10
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_text, _values, max_size=8))
def test_event_states_encode_to_the_librarys_bytes(state):
    assert OURS.encode(state) == LIBRARY.encode(state)
    assert OURS.decode(OURS.encode(state)) == LIBRARY.decode(LIBRARY.encode(state))


def test_a_typical_event_state_and_the_refusals_match():
    state = {
        "timestamp": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        "numerator": Decimal("396"),
        "cases": [["HC-1", Decimal("15527.97")]],
        "id": UUID(int=7),
        "note": "caf\u00e9 \u2028",
    }
    assert OURS.encode(state) == LIBRARY.encode(state)
    for bad in ({"x": object()}, {"x": "\ud800"}):
        with pytest.raises(Exception) as ours:
            OURS.encode(bad)
        with pytest.raises(Exception) as library:
            LIBRARY.encode(bad)
        assert type(ours.value) is type(library.value)


_canonical = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), _text),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_text, c, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(_text, st.dictionaries(_text, _canonical, max_size=8))
def test_canonical_text_is_the_sorted_compact_json_of_the_standard_encoder(kind, content):
    assert records._ENCODE([kind, content]) == records._SLOW_ENCODE([kind, content])
