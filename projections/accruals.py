"""Year-end accruals by UK financial year (1 April to 31 March), per contract and party.

For each contract year overlapping the financial year:

* every payment decided (instalments, year-close payments, true-ups, dispute
  adjustments) from the dated schedule, with when it was decided and when it is
  due; a year-level payment (close, true-up, adjustment) counts towards the
  financial year by the share of the contract year's days inside it, an
  instalment wholly in the financial year of its period;
* what is decided but not yet due at the financial year's end (due after 31 March);
* for a contract year not yet closed, a provisional settlement from the data held
  now (current submissions and cost reports, the budget and baselines in force):
  each party's share of the year total less the instalments decided so far, again
  by the year's share of days in the financial year.

``to_accrue`` = not yet due at year end + provisional. Each line's ``basis`` says
how it was estimated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from ledger.adapters.tables import table
from ledger.domain.errors import InvalidCommand
from ledger.domain.finance import decided_on, financial_year_bounds
from ledger.domain.numbers import ZERO, fmt, fmt_money, money

from . import facts
from . import schema as t
from .queries import ReadModels
from .schedule import schedule_lines

STATUSES = ("due_by_year_end", "decided_not_due", "decided_after_year_end", "provisional")


def accruals(
    read: ReadModels, financial_year: str, contract_ids: Iterable[str] | None = None
) -> dict[str, Any]:
    try:
        fy_first, fy_last = financial_year_bounds(financial_year)
    except ValueError as exc:
        raise InvalidCommand(str(exc), code="invalid_financial_year") from None
    with read.engine.connect() as conn:
        ids = (
            list(contract_ids)
            if contract_ids
            else list(
                conn.execute(select(t.contracts.c.contract_id).order_by(t.contracts.c.contract_id)).scalars()
            )
        )
        position = conn.execute(select(func.max(t.audit_trail.c.notification_id))).scalar()
    lines: list[dict[str, Any]] = []
    for contract_id in ids:
        lines += _contract(read, contract_id, fy_first, fy_last)
    summary: dict[tuple[str, str], dict[str, Decimal]] = {}
    for line in lines:
        s = summary.setdefault((line["contract_id"], line["party"]), dict.fromkeys(STATUSES, ZERO))
        s[line["status"]] += Decimal(line["fy_amount"])
    parties = [
        {
            "contract_id": c,
            "party": p,
            **{k: fmt_money(v) for k, v in s.items()},
            "to_accrue": fmt_money(s["decided_not_due"] + s["decided_after_year_end"] + s["provisional"]),
        }
        for (c, p), s in summary.items()
    ]
    return {
        "financial_year": financial_year,
        "from": fy_first.isoformat(),
        "to": fy_last.isoformat(),
        "log_position": position,
        "contracts": ids,
        "parties": parties,
        "lines": lines,
        "to_accrue": fmt_money(sum((Decimal(p["to_accrue"]) for p in parties), ZERO)),
    }


def _overlap(lo: date, hi_exclusive: date, fy_first: date, fy_last: date) -> tuple[int, int]:
    days = (hi_exclusive - lo).days
    inside = (min(hi_exclusive, date.fromordinal(fy_last.toordinal() + 1)) - max(lo, fy_first)).days
    return max(inside, 0), days


def _contract(read: ReadModels, contract_id: str, fy_first: date, fy_last: date) -> list[dict[str, Any]]:
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        calendar = definition.calendar(bool(row.extended))
        years = [
            y
            for y in range(1, calendar.years + 1)
            if _overlap(*calendar.year_bounds(y), fy_first, fy_last)[0] > 0
        ]
        closed = {d.year for d in facts.decisions(conn, contract_id) if d.kind == "close"}
        provisional = {y: read.provisional(conn, row, definition, y) for y in years if y not in closed}
        decided_core = {y: facts.instalment_parties(conn, contract_id, y) for y in provisional}
        counts = {
            y: (
                sum(1 for r in facts.submissions(conn, contract_id, y) if r.is_current),
                sum(1 for r in facts.cost_reports(conn, contract_id, y) if r.is_current),
            )
            for y in provisional
        }
    rank = {p: i for i, p in enumerate(definition.providers)}
    out: list[dict[str, Any]] = []
    for y in years:
        inside, days = _overlap(*calendar.year_bounds(y), fy_first, fy_last)
        share = Decimal(inside) / Decimal(days)
        for line in schedule_lines(read, contract_id, y) if y in closed or y in provisional else []:
            whole = line["kind"] == "instalment"
            if whole:
                period_first = date.fromisoformat(line["service_from"])
                if not fy_first <= period_first <= fy_last:
                    continue
            amount = Decimal(line["amount"])
            fy_amount = amount if whole else money(amount * share)
            decided = decided_on(line["decided_at"]) if line["decided_at"] else None
            due = date.fromisoformat(line["due_date"]) if line["due_date"] else None
            if decided is not None and decided > fy_last:
                status = "decided_after_year_end"
            elif due is not None and due > fy_last:
                status = "decided_not_due"
            else:
                status = "due_by_year_end"
            basis = (
                "instalment of a period inside the financial year, as decided"
                if whole
                else f"{line['kind'].replace('_', ' ')} of contract year {y} as decided, × {inside}/{days} days "
                f"of the contract year inside the financial year"
            )
            out.append(
                {
                    "contract_id": contract_id,
                    "party": line["party"],
                    "year": y,
                    "kind": line["kind"],
                    "payment_id": line["payment_id"],
                    "period": line["period"],
                    "decided_at": line["decided_at"],
                    "due_date": line["due_date"],
                    "amount": line["amount"],
                    "fy_share": fmt(share),
                    "fy_amount": fmt_money(fy_amount),
                    "status": status,
                    "basis": basis,
                    **{k: line[k] for k in ("supplier_code", "cost_centre")},
                }
            )
        if y in provisional:
            settled = provisional[y]
            paid: dict[str, Decimal] = {}
            for r in decided_core[y]:
                paid[r.party_id] = paid.get(r.party_id, ZERO) + r.amount
            subs, reports = counts[y]
            periods = len(calendar.periods(y))
            for party in sorted(settled.by_party, key=lambda p: rank.get(p, len(rank))):
                estimate = settled.by_party[party] - paid.get(party, ZERO)
                codes = definition.finance.codes(party)
                out.append(
                    {
                        "contract_id": contract_id,
                        "party": party,
                        "year": y,
                        "kind": "provisional_year_close",
                        "payment_id": None,
                        "period": f"Y{y}-close",
                        "decided_at": None,
                        "due_date": None,
                        "amount": fmt_money(estimate),
                        "fy_share": fmt(share),
                        "fy_amount": fmt_money(money(estimate * share)),
                        "status": "provisional",
                        "basis": (
                            f"contract year {y} is open: provisional settlement from the data held now "
                            f"({subs} current submission(s), {reports} current cost report(s), "
                            f"{len({r.period for r in decided_core[y]})} of {periods} "
                            f"instalment(s) decided); the party's share of the year total "
                            f"{settled.by_party[party]:,.2f} less instalments decided "
                            f"{paid.get(party, ZERO):,.2f} (undecided core instalments included), "
                            f"× {inside}/{days} days inside the financial year; not extrapolated; the year "
                            f"total {settled.total:,.2f} is core {settled.core:,.2f}, outcomes "
                            f"{settled.outcome_payment:,.2f}, reserve {settled.reserve:,.2f}, risk-share adjustment "
                            f"{(settled.risk.adjustment if settled.risk else ZERO):,.2f}, high-cost "
                            f"{settled.high_cost_reimbursement:,.2f}"
                            + (
                                "; no cost report yet, so the risk share is on zero costs"
                                if settled.risk and not reports
                                else ""
                            )
                        ),
                        "supplier_code": codes["supplier_code"],
                        "cost_centre": codes["cost_centre"],
                    }
                )
    out.sort(key=lambda r: (r["year"], rank.get(r["party"], len(rank)), r["status"] == "provisional"))
    return out


COLUMNS: Sequence[tuple[str, str]] = (
    ("contract_id", "contract"),
    ("party", "party"),
    ("year", "year"),
    ("kind", "kind"),
    ("period", "period"),
    ("decided_at", "decided at"),
    ("due_date", "due"),
    ("amount", "amount"),
    ("fy_share", "FY share"),
    ("fy_amount", "in FY"),
    ("status", "status"),
)
PARTY_COLUMNS: Sequence[tuple[str, str]] = (
    ("contract_id", "contract"),
    ("party", "party"),
    ("due_by_year_end", "due by year end"),
    ("decided_not_due", "decided, not due"),
    ("decided_after_year_end", "decided after year end"),
    ("provisional", "provisional"),
    ("to_accrue", "to accrue"),
)
MONEY = {
    "amount",
    "fy_amount",
    "due_by_year_end",
    "decided_not_due",
    "decided_after_year_end",
    "provisional",
    "to_accrue",
}


def render(data: dict[str, Any]) -> str:
    head = (
        f"Accruals  financial year {data['financial_year']} ({data['from']} to {data['to']})  "
        f"log position {data['log_position']}"
    )
    if not data["lines"]:
        return head + "\n\nno contract year overlaps this financial year"
    basis = sorted({line["basis"] for line in data["lines"]})
    return "\n\n".join(
        [
            head,
            table(PARTY_COLUMNS, data["parties"], money_columns=MONEY, title="By contract and party"),
            table(COLUMNS, data["lines"], money_columns=MONEY, title="Lines"),
            "How each line was estimated:\n" + "\n".join(f"  - {b}" for b in basis),
            f"to accrue at {data['to']}: {Decimal(data['to_accrue']):,.2f}",
        ]
    )
