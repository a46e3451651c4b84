"""The bounded grammar of numbers and ids, and the framing of input lines."""

import io
import unicodedata
from decimal import Decimal

import pytest

from ledger.adapters.framing import read_lines, text_lines
from ledger.adapters.yamlio import YamlRefused, load_yaml
from ledger.domain.ids import _FORBIDDEN_CATEGORIES, id_problem, printable, text_problem
from ledger.domain.numbers import NotANumber, NumberOutOfRange, to_decimal, to_measure, to_money


@pytest.mark.parametrize(
    "text, parse, code",
    [
        ("1e999999999", to_measure, "number_out_of_range"),
        ("1e-999999999", to_measure, "number_out_of_range"),
        ("0e-999999999", to_decimal, "number_out_of_range"),
        ("1E+30", to_money, "number_out_of_range"),
        ("10000000000000", to_money, "number_out_of_range"),
        ("12.345", to_money, "invalid_amount"),
        ("0.0000000000001", to_measure, "number_out_of_range"),
        ("1" * 65, to_decimal, "number_out_of_range"),
        ("1." + "1" * 40, to_decimal, "number_out_of_range"),
        ("NaN", to_decimal, "non_numeric"),
        ("abc", to_decimal, "non_numeric"),
    ],
)
def test_numbers_beyond_the_bounds_are_refused_with_a_code(text, parse, code):
    with pytest.raises(NotANumber) as err:
        parse(text)
    assert err.value.code == code


@pytest.mark.parametrize(
    "text, parse, value",
    [
        ("9999999999999.99", to_money, Decimal("9999999999999.99")),
        ("100.000", to_measure, Decimal("100.000")),  # trailing zeros are not places that matter
        ("0E+999999999", to_decimal, Decimal(0)),  # printed as "0", not a billion zeros
        ("1.5E3", to_measure, Decimal("1500")),
        (10**14, to_measure, Decimal(10**14)),
    ],
)
def test_numbers_within_the_bounds_are_read_exactly(text, parse, value):
    assert parse(text) == value


def test_an_out_of_range_number_is_a_not_a_number_too():
    assert issubclass(NumberOutOfRange, NotANumber)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("a\nb", "control character U+000A"),
        ("a\x00", "U+0000"),
        ("x\u202ey", "format (bidi or zero-width)"),
        ("x\u200by", "U+200B"),
        ("x" * 129, "at most 128"),
        (" x", "white space"),
        ("\ud800", "lone surrogate"),
        ("a\u00a0b", "unusual space"),
        ("", "empty"),
        (5, "must be text"),
    ],
)
def test_ids_that_could_hide_forge_or_overflow_are_refused(value, fragment):
    assert fragment in (id_problem(value) or "")


def _slow_id_verdict(value: str) -> bool:
    """The character rule of id_problem without its ASCII fast path: True when every character passes."""
    for char in value:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES or (category == "Zs" and char != " "):
            return False
    return True


def test_the_ascii_fast_path_of_ids_gives_the_full_rule_s_verdict_for_every_ascii_character():
    for code in range(128):
        char = chr(code)
        for value in (f"a{char}b", f"ab{char}cd{char}e"):
            assert (id_problem(value) is None) == _slow_id_verdict(value), (code, value)
    assert "control character U+001F" in (id_problem("ab\x1fc") or "")
    assert "control character U+007F" in (id_problem("ab\x7fc") or "")
    assert id_problem("ab cd") is None


def test_ordinary_ids_and_text_pass_and_output_is_escaped():
    assert id_problem("s-0001") is None and id_problem("Case 12/A") is None
    assert text_problem("a note, with punctuation: £10") is None
    assert text_problem("two\nlines") is not None
    assert printable("a\x1b[31m\u202eb") == "a\\x1b[31m\\u202eb"


def test_framing_refuses_bad_bytes_line_by_line_and_keeps_numbering():
    stream = io.BytesIO(b'{"a": 1}\n\n\xef\xbb\xbf{"b": 2}\n{"c": "\xe9"}\r\n' + b"x" * 40 + b"\n{}")
    lines = list(read_lines(stream, limit=32))
    assert [(line.number, line.refusal.code if line.refusal else None) for line in lines] == [
        (1, None),
        (3, "invalid_encoding"),
        (4, "invalid_encoding"),
        (5, "line_too_long"),
        (6, None),
    ]
    assert "(40 bytes, sha256 " in lines[3].refusal.message and len(lines[3].raw) == 32
    assert lines[2].raw == '{"c": "\\xe9"}'


def test_text_lines_refuse_lone_surrogates_and_smuggled_bytes():
    lines = list(text_lines(["ok", "bad \ud800", "latin \udce9"]))
    assert [line.refusal.code if line.refusal else None for line in lines] == [
        None,
        "invalid_encoding",
        "invalid_encoding",
    ]


@pytest.mark.parametrize(
    "text, code",
    [
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
            ),
            "alias_limit",
        ),
        ("x: " + "[" * 80 + "]" * 80, "document_too_deep"),
        ("#" * (1024 * 1024 + 1), "document_too_large"),
    ],
)
def test_yaml_documents_are_bounded_before_they_are_built(text, code):
    with pytest.raises(YamlRefused) as err:
        load_yaml(text)
    assert err.value.code == code


def test_yaml_aliases_within_the_bound_still_work():
    assert load_yaml("x: &x {k: 1.5}\ny: *x") == {"x": {"k": Decimal("1.5")}, "y": {"k": Decimal("1.5")}}
