"""The contract's optional ``finance`` section: payment terms and each party's finance codes.

    finance:
      payment_terms:
        instalment_due_days: 0    # days after the last day of an instalment's period (0: due on that day)
        settlement_due_days: 30   # days after the decision for year-close payments, true-ups and adjustments
      parties:
        circle: {supplier_code: "SUP-0042", cost_centre: "MSK100", purchase_order: "PO-2025-118"}

Every key is optional; without the section instalments are due on the last day of
their period and decided payments 30 days after the decision date (the NHS's
30-day prompt-payment target). Codes are free text a finance system uses as
references; parties are provider ids of the contract.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

DEFAULT_INSTALMENT_DUE_DAYS = 0
DEFAULT_SETTLEMENT_DUE_DAYS = 30
CODES = ("supplier_code", "cost_centre", "purchase_order")
MAX_DUE_DAYS = 366


@dataclass(frozen=True)
class FinanceTerms:
    instalment_due_days: int = DEFAULT_INSTALMENT_DUE_DAYS
    settlement_due_days: int = DEFAULT_SETTLEMENT_DUE_DAYS
    parties: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def codes(self, party: str) -> dict[str, str | None]:
        given = self.parties.get(party, {})
        return {k: given.get(k) for k in CODES}

    def instalment_due(self, last_day: date) -> date:
        return last_day + timedelta(days=self.instalment_due_days)

    def settlement_due(self, decided_at: str) -> date:
        return decided_on(decided_at) + timedelta(days=self.settlement_due_days)


DEFAULT = FinanceTerms()


def decided_on(timestamp: str) -> date:
    """The UTC calendar day of a ledger timestamp (``…Z`` or ``+00:00``)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).date()


def financial_year(day: date) -> str:
    """The UK financial year (1 April to 31 March) holding ``day``: ``2027/28``."""
    first = day.year if day.month >= 4 else day.year - 1
    return f"{first}/{(first + 1) % 100:02d}"


def financial_year_bounds(label: str) -> tuple[date, date]:
    """First and last day of a financial year ``YYYY/YY``; ValueError if it is not one."""
    head, _, tail = label.partition("/")
    if not (
        len(head) == 4
        and head.isdigit()
        and len(tail) == 2
        and tail.isdigit()
        and (int(head) + 1) % 100 == int(tail)
    ):
        raise ValueError(f"{label!r} is not a financial year YYYY/YY (such as 2027/28)")
    return date(int(head), 4, 1), date(int(head) + 1, 3, 31)


def last_day_of_period(first_day: date, months: int) -> date:
    year, month = first_day.year, first_day.month + months - 1
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, _calendar.monthrange(year, month)[1])


def parse_finance(r: Any, raw: Any, providers: list[str]) -> FinanceTerms:
    """Read the ``finance`` section with the definition's reader ``r`` (problems are collected there)."""
    doc = r.mapping(raw, "finance", required=False)
    if doc is None:
        return DEFAULT
    r.unknown_keys(doc, {"payment_terms", "parties"}, "finance")
    terms = r.mapping(doc.get("payment_terms"), "finance.payment_terms", required=False) or {}
    r.unknown_keys(terms, {"instalment_due_days", "settlement_due_days"}, "finance.payment_terms")
    instalment = r.integer(
        terms.get("instalment_due_days", DEFAULT_INSTALMENT_DUE_DAYS),
        "finance.payment_terms.instalment_due_days",
        low=0,
        high=MAX_DUE_DAYS,
    )
    settlement = r.integer(
        terms.get("settlement_due_days", DEFAULT_SETTLEMENT_DUE_DAYS),
        "finance.payment_terms.settlement_due_days",
        low=0,
        high=MAX_DUE_DAYS,
    )
    parties: dict[str, dict[str, str]] = {}
    for party, codes in (r.mapping(doc.get("parties"), "finance.parties", required=False) or {}).items():
        path = f"finance.parties.{party}"
        if party not in providers:
            r.problem(path, f"is not a provider of the contract (providers: {', '.join(providers)})")
            continue
        codes = r.mapping(codes, path) or {}
        r.unknown_keys(codes, set(CODES), path)
        parties[str(party)] = {
            k: text
            for k in CODES
            if k in codes
            and (text := r.text(str(codes[k]) if isinstance(codes[k], int) else codes[k], f"{path}.{k}"))
            is not None
        }
    return FinanceTerms(
        instalment if instalment is not None else DEFAULT_INSTALMENT_DUE_DAYS,
        settlement if settlement is not None else DEFAULT_SETTLEMENT_DUE_DAYS,
        parties,
    )
