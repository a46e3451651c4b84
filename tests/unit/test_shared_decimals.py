"""Small Decimals are shared objects (memory), and are exactly what Decimal(value) makes.

A year stream holds thousands of slots whose counts repeat; ingest and the event store's decoding
hand out one object per distinct small int or short text. Sharing must never change a value, its
exponent or its text: Decimal('1.0') stays Decimal('1.0'), never the Decimal('1') it equals.
"""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.adapters.transcoder import LedgerTranscoder, SharedDecimalAsStr
from ledger.domain import numbers
from ledger.domain.numbers import shared_decimal, to_decimal

texts = st.from_regex(r"[0-9]{1,4}(\.[0-9]{0,2})?|-?[0-9]\.?[0-9]?|[0-9]{5,9}", fullmatch=True)


def same(a: Decimal, b: Decimal) -> bool:
    return str(a) == str(b) and a.as_tuple() == b.as_tuple()


@given(st.integers(min_value=-(10**20), max_value=10**20) | texts)
def test_a_shared_decimal_is_exactly_decimal_of_its_value(value):
    assert same(shared_decimal(value), Decimal(value))
    assert same(shared_decimal(value), Decimal(value))  # again, from the cache if kept


def test_equal_values_of_other_exponents_are_not_merged():
    one, one_point_zero, hundredth = shared_decimal("1"), shared_decimal("1.0"), shared_decimal("1.00")
    assert (str(one), str(one_point_zero), str(hundredth)) == ("1", "1.0", "1.00")
    assert shared_decimal(1) is shared_decimal(1) and str(shared_decimal(1)) == "1"


def test_small_values_are_one_object_large_ones_are_not_kept():
    assert shared_decimal(407) is shared_decimal(407)
    assert shared_decimal("407.5") is shared_decimal("407.5")
    assert shared_decimal(numbers.SHARED_INT_BELOW) is not shared_decimal(numbers.SHARED_INT_BELOW)
    assert shared_decimal(-1) is not shared_decimal(-1)
    assert shared_decimal("1234567.89") is not shared_decimal("1234567.89")


def test_the_cache_stops_growing_at_its_cap(monkeypatch):
    monkeypatch.setattr(numbers, "_shared", {})
    monkeypatch.setattr(numbers, "SHARED_CAP", 10)
    for i in range(50):
        shared_decimal(i)
    assert len(numbers._shared) == 10
    assert same(shared_decimal(49), Decimal(49))


def test_anything_else_is_what_decimal_makes_of_it():
    assert same(shared_decimal(True), Decimal(True))  # type: ignore[arg-type]
    assert same(shared_decimal(Decimal("2.50")), Decimal("2.50"))  # type: ignore[arg-type]


def test_ingest_numbers_and_stored_decimals_come_back_shared_and_exact():
    assert to_decimal(512, digits=15, places=12) is to_decimal(512, digits=15, places=12)
    assert to_decimal("0.85", digits=15, places=12) is to_decimal("0.85", digits=15, places=12)
    transcoder = LedgerTranscoder()
    transcoder.register(SharedDecimalAsStr())
    for text in ("407", "0.850", "1E+3", "-0", "123456789.123"):
        stored = transcoder.encode({"n": Decimal(text)})
        back = transcoder.decode(stored)["n"]
        assert same(back, Decimal(text)), text
    a = transcoder.decode(transcoder.encode({"n": Decimal("407")}))["n"]
    b = transcoder.decode(transcoder.encode({"n": Decimal("407")}))["n"]
    assert a is b
