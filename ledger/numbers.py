"""Decimal helpers: money is Decimal, rounded to pence ROUND_HALF_UP; never float.

Ratios, scores and weights stay exact Decimal at context precision 28.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Iterator, Mapping
from contextlib import contextmanager

PENNY = Decimal("0.01")
ZERO = Decimal("0")
ONE = Decimal("1")
PRECISION = 28


class NotANumber(ValueError):
    """Raised by :func:`to_decimal` for text that is not a finite decimal number."""


def to_decimal(value: object) -> Decimal:
    """Read a number from its text (str, int or Decimal); floats and bools are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise NotANumber(f"{value!r} must be written as a decimal string or integer, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text:
            raise NotANumber("empty text is not a number")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise NotANumber(f"{value!r} is not a number") from None
    else:
        raise NotANumber(f"{value!r} is not a number")
    if not result.is_finite():
        raise NotANumber(f"{value!r} is not a finite number")
    return result


def money(value: Decimal) -> Decimal:
    """Round an amount to pence, half up."""
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


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
