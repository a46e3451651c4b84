"""Contract calendar: periods (``YYYY-MM`` or ``YYYY-Qn``) and contract years.

Contract year *y* is the 12 months starting at ``start`` + (y-1) years; a period
belongs to the contract year that contains its first day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date
from functools import lru_cache

from ledger.domain.ids import safe

MONTHLY = "monthly"
QUARTERLY = "quarterly"

# ASCII digits only, matched whole (``fullmatch``: no trailing newline), so each period has
# exactly one spelling; the stored label is rebuilt from the parsed period, never the sender's text.
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])", re.ASCII)
_QUARTER = re.compile(r"([0-9]{4})-Q([1-4])", re.ASCII)


# The grammar before this round (any Unicode digit, a trailing newline allowed): only to read back
# what a ledger stored under it (:func:`stored_period`), never to accept new input.
_LEGACY_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_LEGACY_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


class PeriodError(ValueError):
    """A period text that is malformed or of the wrong kind for the contract."""


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later (29 February falls back to the 28th)."""
    year = day.year + years
    last = calendar.monthrange(year, day.month)[1]
    return date(year, day.month, min(day.day, last))


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month or quarter; ordered by its first day."""

    first_day: date
    label: str

    @property
    def kind(self) -> str:
        return QUARTERLY if "-Q" in self.label else MONTHLY

    def next(self) -> Period:
        step = 3 if self.kind == QUARTERLY else 1
        month0 = self.first_day.month - 1 + step
        first = date(self.first_day.year + month0 // 12, month0 % 12 + 1, 1)
        return period_starting(first, self.kind)


def period_starting(first: date, kind: str) -> Period:
    if kind == QUARTERLY:
        return Period(first, f"{first.year}-Q{(first.month - 1) // 3 + 1}")
    return Period(first, f"{first.year}-{first.month:02d}")


@lru_cache(maxsize=4096)
def parse_period(text: str, kind: str) -> Period:
    """Parse ``text`` as a period of ``kind`` (monthly or quarterly)."""
    if not isinstance(text, str):
        raise PeriodError(f"{text!r} is not a period")
    if kind == QUARTERLY:
        m = _QUARTER.fullmatch(text)
        if not m:
            raise PeriodError(f"{safe(text)} is not a quarter; expected YYYY-Qn (n = 1..4)")
        return period_starting(_first_day(text, int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1), QUARTERLY)
    m = _MONTH.fullmatch(text)
    if not m:
        raise PeriodError(f"{safe(text)} is not a month; expected YYYY-MM")
    return period_starting(_first_day(text, int(m.group(1)), int(m.group(2))), MONTHLY)


@lru_cache(maxsize=4096)
def stored_period(text: str, kind: str) -> Period:
    """A period label read back from the ledger's events. New records carry the canonical label
    (:func:`parse_period`); a record accepted before periods were held to ASCII digits may carry
    another spelling (``٢٠٢٥-Q3``). It is read as it was then, its label kept, so a replay, a rebuild
    or a close of an existing ledger gives the figures it gave (and never fails on such a record)."""
    try:
        return parse_period(text, kind)
    except PeriodError:
        m = (_LEGACY_QUARTER if kind == QUARTERLY else _LEGACY_MONTH).match(text)
        if not m:
            raise
        month = (int(m.group(2)) - 1) * 3 + 1 if kind == QUARTERLY else int(m.group(2))
        return Period(_first_day(text, int(m.group(1)), month), text)


def _first_day(text: str, year: int, month: int) -> date:
    if not MINYEAR <= year <= MAXYEAR:  # year 0000
        raise PeriodError(f"{safe(text)} has year {year}, out of range ({MINYEAR}..{MAXYEAR})")
    return date(year, month, 1)


@dataclass(frozen=True)
class Calendar:
    """The periods and years of one contract."""

    start: date
    kind: str
    years: int  # years currently in the term (base term plus any recorded extension)

    def year_bounds(self, year: int) -> tuple[date, date]:
        """First day of contract year ``year`` and first day of the next."""
        return add_years(self.start, year - 1), add_years(self.start, year)

    def year_of_date(self, day: date) -> int | None:
        if day < self.start:
            return None
        year = day.year - self.start.year + 1
        while add_years(self.start, year - 1) > day:
            year -= 1
        while add_years(self.start, year) <= day:
            year += 1
        return year if 1 <= year <= self.years else None

    def year_of(self, period: Period) -> int | None:
        """The contract year containing the period's first day, or None outside the term."""
        return _year_of(self, period.first_day)

    def periods(self, year: int) -> tuple[Period, ...]:
        return _periods(self.start, self.kind, year)

    def period(self, text: str) -> Period:
        return parse_period(text, self.kind)

    def stored(self, text: str) -> Period:
        """A period label of a stored record (see :func:`stored_period`)."""
        return stored_period(text, self.kind)


@lru_cache(maxsize=65536)
def _year_of(calendar: Calendar, day: date) -> int | None:
    return calendar.year_of_date(day)


@lru_cache(maxsize=1024)
def _periods(start: date, kind: str, year: int) -> tuple[Period, ...]:
    lo, hi = add_years(start, year - 1), add_years(start, year)
    if kind == QUARTERLY:
        first = date(lo.year, ((lo.month - 1) // 3) * 3 + 1, 1)
    else:
        first = date(lo.year, lo.month, 1)
    current = period_starting(first, kind)
    if current.first_day < lo:
        current = current.next()
    out = []
    while current.first_day < hi:
        out.append(current)
        current = current.next()
    return tuple(out)
