"""Decimal helpers: money is Decimal, rounded to pence ROUND_HALF_UP; never float.

Ratios, scores and weights stay exact Decimal at context precision 28.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import overload

PENNY = Decimal("0.01")
ZERO = Decimal("0")
ONE = Decimal("1")
PRECISION = 28


# The grammar every number entering the ledger obeys (records, contracts, CLI arguments,
# Kafka messages). Bounded text, digits and exponent: nothing a sender writes can make
# arithmetic overflow, formatting allocate gigabytes, or a read model refuse a value.
MAX_NUMBER_TEXT = 64  # characters of a number's text
MAX_DIGITS = 28  # significant digits (the arithmetic's precision)
MAX_MAGNITUDE_DIGITS = 18  # integer digits of any number (|x| < 10^18)
MAX_PLACES = 18  # decimal places of any number
MONEY_DIGITS = 13  # integer digits of an amount (up to 9,999,999,999,999.99)
MONEY_PLACES = 2
MEASURE_DIGITS = 15  # integer digits of a numerator, denominator, value or baseline
MEASURE_PLACES = 12
MAX_COUNT = 10**12  # a population count or other whole number, exclusive


_LIMITS = {d: 10 ** min(d, MAX_DIGITS) for d in range(MAX_DIGITS + 1)}

# One shared Decimal per small whole number or short text: a year's thousands of slots repeat the
# same counts (numerators, denominators, populations), and each Decimal is ~104 bytes. Decimals are
# immutable, and the key is the exact int or text, so the value and its exponent are what
# Decimal(value) gives. Bounded: once full, new values are made but not kept.
SHARED_INT_BELOW = 1 << 16
SHARED_TEXT_CHARS = 6
SHARED_CAP = 1 << 16
_shared: dict[int | str, Decimal] = {}


def shared_decimal(value: int | str) -> Decimal:
    """``Decimal(value)``; for an int in [0, 65536) or a text of at most 6 characters, one shared
    object per distinct value (memory)."""
    if isinstance(value, str) and type(value) is str:
        small = len(value) <= SHARED_TEXT_CHARS
    elif isinstance(value, int) and type(value) is int:  # not a bool
        small = 0 <= value < SHARED_INT_BELOW
    else:  # anything else (a stored event's odd data): exactly what Decimal makes of it, not kept
        return Decimal(value)
    if not small:
        return Decimal(value)
    d = _shared.get(value)
    if d is None:
        d = Decimal(value)
        if len(_shared) < SHARED_CAP:
            _shared[value] = d
    return d


_PLAIN: dict[tuple[int, int], re.Pattern[str] | None] = {}


def _plain_pattern(digits: int, places: int) -> re.Pattern[str] | None:
    """Plain decimal text (ASCII digits, an optional point) that cannot break the bounds: at most
    ``digits`` integer and ``places`` decimal digits, within the arithmetic's precision."""
    key = (digits, places)
    if key not in _PLAIN:
        whole = min(digits, MAX_DIGITS)
        fits = whole >= 1 and places >= 1 and whole + places <= MAX_DIGITS
        _PLAIN[key] = re.compile(f"[0-9]{{1,{whole}}}(?:\\.[0-9]{{1,{places}}})?") if fits else None
    return _PLAIN[key]


# Number text: ASCII digits, an optional sign, point and exponent (no "_", no other digits or spaces).
_GRAMMAR = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_SPECIAL = frozenset({"nan", "snan", "inf", "infinity"})


class NotANumber(ValueError):
    """Raised by :func:`to_decimal` for text that is not a finite decimal number."""

    code = "non_numeric"


class NumberOutOfRange(NotANumber):
    """A number outside the ledger's bounds (too many digits, too large or too small)."""

    code = "number_out_of_range"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def to_decimal(
    value: object, *, digits: int = MAX_MAGNITUDE_DIGITS, places: int = MAX_PLACES, exact_places: bool = False
) -> Decimal:
    """Read a number from its text (str, int or Decimal); floats and bools are refused.

    At most ``digits`` integer digits and ``places`` decimal places (trailing zeros do not
    count unless ``exact_places``, as for money, where ``10.000`` has three places).
    """
    if type(value) is int and abs(value) < _LIMITS.get(digits, 0):
        return shared_decimal(value)  # what the checks below conclude for a whole number this small
    if type(value) is str and len(value) <= MAX_NUMBER_TEXT:
        plain = _plain_pattern(digits, places)
        if plain is not None and plain.fullmatch(value):
            return shared_decimal(value)  # what the checks below conclude for plain digits within the bounds
    if isinstance(value, bool | float):
        raise NotANumber(f"{value!r} must be written as a decimal string or integer, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if abs(value) >= 10 ** min(digits, MAX_DIGITS):
            raise NumberOutOfRange(f"{_shown(value)} has more than {digits} integer digits")
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip(" ")  # ASCII spaces only: not tabs, newlines, U+001C..U+001F, U+0085, U+00A0
        if not text:
            raise NotANumber("empty text is not a number")
        if len(text) > MAX_NUMBER_TEXT:
            raise NumberOutOfRange(f"{_shown(value)} is longer than {MAX_NUMBER_TEXT} characters")
        if not _GRAMMAR.fullmatch(text):  # Decimal() alone also takes "1_000", "١٢" and other whitespace
            if text.lower().lstrip("+-") in _SPECIAL:
                raise NotANumber(f"{_shown(value)} is not a finite number")
            raise NotANumber(
                f"{_shown(value)} is not a number (ASCII digits, optional sign, point and exponent)"
            )
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise NotANumber(f"{_shown(value)} is not a number") from None
    else:
        raise NotANumber(f"{_shown(value)} is not a number")
    if not result.is_finite():
        raise NotANumber(f"{_shown(value)} is not a finite number")
    check_bounds(result, value, digits=digits, places=places, exact_places=exact_places)
    if result.is_zero() and result.as_tuple().exponent > 0:  # type: ignore[operator]
        return Decimal(0)  # 0E+999999999 would print as a billion zeros
    return result


def check_bounds(
    number: Decimal, shown: object, *, digits: int, places: int, exact_places: bool = False
) -> None:
    """Raise :class:`NumberOutOfRange` unless ``number`` fits the digits and places given.

    Works on the number's digits and exponent only (never ``normalize``/``quantize``, which
    overflow or underflow on exponents like 1e-999999999).
    """
    _, coefficient, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    trailing = 0
    if not exact_places:  # 100.000 has no decimal places that matter
        while trailing < len(coefficient) - 1 and coefficient[-1 - trailing] == 0:
            trailing += 1
    significant = len(coefficient) - trailing
    exponent += trailing
    if significant > MAX_DIGITS:
        raise NumberOutOfRange(f"{_shown(shown)} has more than {MAX_DIGITS} significant digits")
    if any(coefficient) and significant + exponent > digits:
        raise NumberOutOfRange(f"{_shown(shown)} is too large (at most {digits} integer digits)")
    if exponent < -places:
        if exact_places and places == MONEY_PLACES:
            raise NumberOutOfRange(
                f"an amount has at most {places} decimal places (got {_shown(shown)})", code="invalid_amount"
            )
        raise NumberOutOfRange(f"{_shown(shown)} has more than {places} decimal places")


def to_money(value: object) -> Decimal:
    """An amount: at most 13 integer digits and exactly 2 places at most."""
    return to_decimal(value, digits=MONEY_DIGITS, places=MONEY_PLACES, exact_places=True)


def to_measure(value: object) -> Decimal:
    """A numerator, denominator, indicator value or baseline: 15 integer digits, 12 places."""
    return to_decimal(value, digits=MEASURE_DIGITS, places=MEASURE_PLACES)


def money(value: Decimal) -> Decimal:
    """Round an amount to pence, half up."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


@overload
def fmt(value: Decimal) -> str: ...
@overload
def fmt(value: None) -> None: ...
@overload
def fmt(value: Decimal | None) -> str | None: ...
def fmt(value: Decimal | None) -> str | None:
    """Plain decimal text (no exponent), as written in statements."""
    if value is None:
        return None
    if value.is_zero() and value.is_signed():
        value = -value
    return format(value, "f")


def fmt_money(value: Decimal) -> str:
    """Money with exactly two places."""
    rounded = money(value)
    if rounded.is_zero():
        rounded = abs(rounded)
    return format(rounded, "f")


@contextmanager
def exact() -> Iterator[Context]:
    """Arithmetic at the spec's context: precision 28, half-even (Python's default)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        yield ctx


def split(amount: Decimal, fractions: Mapping[str, Decimal], lead: str) -> dict[str, Decimal]:
    """Split ``amount`` by ``fractions``: each party rounded to pence, lead takes the remainder.

    The lead is always present in the result (with the remainder), and the parts
    sum to ``amount`` exactly.
    """
    parts: dict[str, Decimal] = {}
    for party, fraction in fractions.items():
        if party != lead:
            parts[party] = money(amount * fraction)
    parts[lead] = amount - sum(parts.values(), ZERO)
    return parts
