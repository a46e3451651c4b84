"""The contract calendar as the generator needs it: periods, years and their ends.

Contract year *y* is the 12 months starting at ``start`` + (y-1) years; a period
(``YYYY-MM`` or ``YYYY-Qn``) belongs to the year that contains its first day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class Period:
    label: str
    first: date
    last: date
    year: int  # contract year
    index: int  # 1-based position within the year
    count: int  # periods in the year


def start_of(definition: dict[str, Any]) -> date:
    start = definition["contract"]["start"]
    return start if isinstance(start, date) else date.fromisoformat(str(start))


def is_quarterly(definition: dict[str, Any]) -> bool:
    return definition["contract"].get("period", "monthly") == "quarterly"


def add_years(day: date, years: int) -> date:
    year = day.year + years
    return date(year, day.month, min(day.day, calendar.monthrange(year, day.month)[1]))


def add_months(first: date, months: int) -> date:
    month0 = first.month - 1 + months
    return date(first.year + month0 // 12, month0 % 12 + 1, 1)


def year_start(definition: dict[str, Any], year: int) -> date:
    return add_years(start_of(definition), year - 1)


def year_end(definition: dict[str, Any], year: int) -> date:
    """The last day of contract year ``year``."""
    return add_years(start_of(definition), year) - timedelta(days=1)


def _label(first: date, quarterly: bool) -> str:
    if quarterly:
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    return f"{first.year}-{first.month:02d}"


def periods(definition: dict[str, Any], year: int) -> list[Period]:
    """The periods whose first day falls in contract year ``year``, in order."""
    quarterly = is_quarterly(definition)
    step = 3 if quarterly else 1
    lo, hi = year_start(definition, year), year_start(definition, year + 1)
    first = date(lo.year, ((lo.month - 1) // step) * step + 1, 1)
    if first < lo:
        first = add_months(first, step)
    firsts = []
    while first < hi:
        firsts.append(first)
        first = add_months(first, step)
    return [
        Period(_label(f, quarterly), f, add_months(f, step) - timedelta(days=1), year, i, len(firsts))
        for i, f in enumerate(firsts, start=1)
    ]


def period_before_start(definition: dict[str, Any]) -> str:
    """The period just before the contract's first period: outside the term."""
    first = periods(definition, 1)[0].first
    step = 3 if is_quarterly(definition) else 1
    return _label(add_months(first, -step), is_quarterly(definition))
