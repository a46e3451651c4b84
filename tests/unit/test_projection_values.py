"""What the read models hold: bounded plain decimals; what they print: one safe line."""

from decimal import Decimal

import pytest

from projections.codec import decimal_text
from projections.projector import one_line
from projections.schema import MAX_PLACES, plain


@pytest.mark.parametrize(
    "value, text",
    [
        ("1E+3", "1000"),
        ("0.50", "0.50"),
        ("-3", "-3"),
        ("1E-100", "0." + "0" * 99 + "1"),
        ("1_000", "1000"),
        ("\u0661\u0662", "12"),
    ],
)
def test_decimals_within_the_read_models_range_are_plain_text(value, text):
    assert plain(Decimal(value)) == text
    assert decimal_text({"_type_": "decimal_str", "_data_": value}) == text


@pytest.mark.parametrize(
    "value", ["1E-999999999", "1E+999999999", f"1E+{MAX_PLACES + 1}", "1E-101", "NaN", "-Infinity", "sNaN"]
)
def test_a_decimal_the_read_models_cannot_hold_is_refused_without_expanding_it(value):
    with pytest.raises(ValueError, match="decimal"):
        plain(Decimal(value))
    with pytest.raises(ValueError):
        decimal_text({"_type_": "decimal_str", "_data_": value})


def test_a_reason_is_printed_on_one_line_with_invisible_characters_escaped():
    assert one_line("id 'a\nb\u202ec\u200b\x00'", 100) == "id 'a\\nb\\u202ec\\u200b\\x00'"
    assert one_line("x" * 500, 10) == "x" * 10 + "…"
