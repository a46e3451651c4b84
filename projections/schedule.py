"""The dated payment schedule a finance system can post, and registers read back in its terms.

``schedule_lines`` extends :func:`projections.reconcile.payment_schedule`'s rows
(``year``, ``period``, ``party``, ``amount`` — the register columns) with what a
finance team needs per line: a stable payment id, the deciding event (its id and
log position), the party's finance codes, the kind of payment, the service dates,
the due date, the financial year of the due date, and the currency.

Payment ids are ``<contract>/<period label>/<party>``: the same on every export
and after every rebuild, and new for every new payment (a true-up is a payment of
its own, never a change to an earlier one).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger.domain.errors import LedgerError
from ledger.domain.finance import financial_year, last_day_of_period
from ledger.domain.periods import QUARTERLY, parse_period

from . import facts
from . import schema as t
from .queries import ReadModels
from .reconcile import (
    _ADJUSTMENT,
    _CLOSE,
    _MONEY,
    _TRUE_UP,
    InvalidRegister,
    RegisterRow,
    label_order,
    parse_register,
    payment_schedule,
)

KINDS = {
    "period": "instalment",
    "close": "year_close",
    "true_up": "true_up",
    "adjustment": "dispute_adjustment",
}
COLUMNS = (
    "payment_id",
    "contract_id",
    "year",
    "period",
    "kind",
    "party",
    "party_name",
    "supplier_code",
    "cost_centre",
    "purchase_order",
    "service_from",
    "service_to",
    "decision_id",
    "event_position",
    "decided_at",
    "due_date",
    "financial_year",
    "amount",
    "currency",
)


def schedule_lines(read: ReadModels, contract_id: str, year: int | None = None) -> list[dict[str, Any]]:
    """Every payment decided, one line per payment and party, lead provider first within a period."""
    rows = payment_schedule(read, contract_id, year)
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        calendar = definition.calendar(bool(row.extended))
        instalments = {(i.year, i.period): i for i in facts.instalments(conn, contract_id, year)}
        decided: dict[tuple[int, str, int], Any] = {}
        counts: dict[tuple[int, str], int] = {}
        for d in facts.decisions(conn, contract_id, year):
            kind = d.kind if d.kind in ("close", "true_up") else "adjustment"
            counts[(d.year, kind)] = n = counts.get((d.year, kind), 0) + 1
            decided[(d.year, kind, n)] = d
        positions = [r.notification_id for r in [*instalments.values(), *decided.values()]]
        events = (
            {
                e.notification_id: e
                for e in conn.execute(
                    select(t.audit_trail).where(t.audit_trail.c.notification_id.in_(positions))
                )
            }
            if positions
            else {}
        )
    finance = definition.finance
    names = {p.id: p.name for p in (definition.lead_provider, *definition.subcontractors)}
    rank = {p: i for i, p in enumerate(definition.providers)}
    months = 3 if definition.period == QUARTERLY else 1
    out = []
    for r in rows:
        y, label = r["year"], r["period"]
        lo, hi = calendar.year_bounds(y)
        if m := _CLOSE.match(label):
            kind, source = "close", decided.get((y, "close", 1))
        elif m := _TRUE_UP.match(label):
            kind, source = "true_up", decided.get((y, "true_up", int(m.group(2))))
        elif m := _ADJUSTMENT.match(label):
            kind, source = "adjustment", decided.get((y, "adjustment", int(m.group(2))))
        else:
            kind, source = "period", instalments.get((y, label))
        due: date | None
        if kind == "period":
            first = parse_period(label, definition.period).first_day
            service = (max(first, lo), min(last_day_of_period(first, months), hi - timedelta(days=1)))
            due = finance.instalment_due(service[1])
        else:
            service = (lo, hi - timedelta(days=1))
            due = (
                finance.settlement_due(source.decided_at)
                if source is not None and source.decided_at
                else None
            )
        event = events.get(source.notification_id) if source is not None else None
        out.append(
            {
                "payment_id": f"{contract_id}/{label}/{r['party']}",
                "contract_id": contract_id,
                "year": y,
                "period": label,
                "kind": KINDS[kind],
                "party": r["party"],
                "party_name": names.get(r["party"]),
                **finance.codes(r["party"]),
                "service_from": service[0].isoformat(),
                "service_to": service[1].isoformat(),
                "decision_id": f"{event.originator_id}:{event.originator_version}"
                if event is not None
                else None,
                "event_position": source.notification_id if source is not None else None,
                "decided_at": source.decided_at if source is not None else None,
                "due_date": due.isoformat() if due else None,
                "financial_year": financial_year(due) if due else None,
                "amount": r["amount"],
                "currency": definition.currency,
            }
        )
    out.sort(key=lambda line: (line["year"], label_order(line["period"]), rank.get(line["party"], len(rank))))
    return out


# ------------------------------------------------------------------ writing


def to_csv(lines: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([("" if line[c] is None else line[c]) for c in COLUMNS] for line in lines)
    return buffer.getvalue()


MONEY_FORMAT = "#,##0.00"


def write_xlsx(
    path: Path, sheets: Sequence[tuple[str, Sequence[str], Sequence[Mapping[str, Any]], set[str]]]
) -> None:
    """Workbook of one sheet per (title, columns, rows, money columns). Money cells are numbers built from the
    Decimal text (openpyxl writes Decimal exactly as its shortest decimal text) with the ``#,##0.00`` format;
    dates are real dates; a frozen header row and an autofilter make it a table a finance team can sort."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    if book.active is not None:  # a new workbook's one empty sheet
        book.remove(book.active)
    for title, columns, rows, money in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            values = []
            for c in columns:
                v = row.get(c)
                if v is not None and c in money:
                    v = Decimal(v)
                elif isinstance(v, str) and c in ("due_date", "service_from", "service_to") and v:
                    v = date.fromisoformat(v)
                values.append(v)
            sheet.append(values)
        for i, c in enumerate(columns, start=1):
            letter = sheet.cell(1, i).column_letter
            if c in money:
                for cell in sheet[letter][1:]:
                    cell.number_format = MONEY_FORMAT
            elif c in ("due_date", "service_from", "service_to"):
                for cell in sheet[letter][1:]:
                    cell.number_format = "yyyy-mm-dd"
            width = max([len(str(c)), *(len(str(r.get(c) or "")) for r in rows)]) + 2
            sheet.column_dimensions[letter].width = min(width + (4 if c in money else 0), 48)
        sheet.freeze_panes = "A2"
        if rows:
            sheet.auto_filter.ref = sheet.dimensions
    try:
        book.save(path)
    except OSError as exc:
        raise LedgerError(f"cannot write {path}: {exc.strerror}", code="cannot_write") from None


# ------------------------------------------------------- registers read back

REFERENCE_COLUMNS = ("payment_id", "reference", "invoice_reference", "our_reference", "remittance_reference")
DATE_COLUMNS = ("due_date", "payment_date", "paid_on", "date")
PARTY_COLUMNS = ("party", "supplier_code")
_UNMATCHED = re.compile(r"^Y(\d+)-unmatched-(.+)$")


@dataclass(frozen=True)
class ForeignRow:
    line: int
    reference: str | None
    day: date | None
    party: str | None
    supplier: str | None
    amount: Decimal


def is_ledger_format(text: str) -> bool:
    """The register has the ledger's own columns ``period,party,amount`` (the old format and the new export)."""
    head = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    names = {h.strip().lower() for h in head}
    return {"period", "party", "amount"} <= names


def parse_foreign(text: str, source: str = "register") -> list[ForeignRow]:
    """A finance system's own register: an ``amount`` column, and either a reference column holding the
    ledger's payment ids, or a date and a party (its id or supplier code); other columns are ignored."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None) or []
    names = [h.strip().lower() for h in header]
    ref = next((names.index(c) for c in REFERENCE_COLUMNS if c in names), None)
    day = next((names.index(c) for c in DATE_COLUMNS if c in names), None)
    party = names.index("party") if "party" in names else None
    supplier = names.index("supplier_code") if "supplier_code" in names else None
    if "amount" not in names or (ref is None and (day is None or (party is None and supplier is None))):
        raise InvalidRegister(
            source,
            [
                (
                    f"{source}:1",
                    "the header must name period,party,amount, or amount with "
                    f"a reference ({', '.join(REFERENCE_COLUMNS)}) or a date "
                    f"({', '.join(DATE_COLUMNS)}) and party or supplier_code",
                )
            ],
        )
    amount_at = names.index("amount")
    rows, problems = [], []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        where = f"{source}:{reader.line_num}"
        if len(cells) != len(names):
            problems.append((where, f"expected {len(names)} columns as in the header, found {len(cells)}"))
            continue

        def cell(i: int | None, cells: list[str] = cells) -> str | None:  # this row's cells
            return (cells[i].strip() or None) if i is not None else None

        amount, when = cells[amount_at].strip(), cell(day)
        parsed_day = None
        if when is not None:
            try:
                parsed_day = date.fromisoformat(when[:10])
            except ValueError:
                problems.append((f"{where}: {names[day]}", f"{when!r} is not a date YYYY-MM-DD"))  # type: ignore
                continue
        if not _MONEY.match(amount):
            problems.append(
                (
                    f"{where}: amount",
                    f"{amount!r} is not money (digits, an optional '-', at most "
                    f"two decimal places, no separators or currency sign)",
                )
            )
            continue
        rows.append(
            ForeignRow(reader.line_num, cell(ref), parsed_day, cell(party), cell(supplier), Decimal(amount))
        )
    if problems:
        raise InvalidRegister(source, problems)
    return rows


def resolve(
    rows: Sequence[ForeignRow], lines: Sequence[Mapping[str, Any]], year: int, calendar: Any
) -> tuple[list[RegisterRow], list[dict[str, Any]]]:
    """Each row as the ledger's (period, party): by payment id, else by party (or supplier code) and due date
    (the amount chooses between payments due the same day). A row matching nothing keeps its own reference
    as ``Y<year>-unmatched-<reference>`` and shows as missing in the ledger."""
    by_id = {line["payment_id"]: line for line in lines}
    out, notes = [], []
    for r in rows:
        line = by_id.get(r.reference) if r.reference else None
        if line is None and r.day is not None:
            candidates = [
                x
                for x in lines
                if x["due_date"] == r.day.isoformat()
                and (
                    (r.party is not None and x["party"] == r.party)
                    or (r.supplier is not None and x["supplier_code"] == r.supplier)
                )
            ]
            exact = [x for x in candidates if Decimal(x["amount"]) == r.amount]
            matching = exact or candidates
            line = matching[0] if matching else None
        if line is None:
            own = r.reference or f"{r.day.isoformat() if r.day else ''}-{r.party or r.supplier}"
            row_year = calendar.year_of_date(r.day) if r.day else None
            out.append(
                RegisterRow(
                    r.line, f"Y{row_year or year}-unmatched-{own}", r.party or r.supplier or "?", r.amount
                )
            )
            continue
        if r.day is not None and r.day.isoformat() != line["due_date"]:
            notes.append(
                {
                    "register_line": r.line,
                    "payment_id": line["payment_id"],
                    "due_date": line["due_date"],
                    "register_date": r.day.isoformat(),
                }
            )
        out.append(RegisterRow(r.line, line["period"], line["party"], r.amount))
    return out, notes


def read_any_register(path: Path) -> tuple[str, Any]:
    """('ledger', rows) for a register with period,party,amount columns, else ('foreign', rows)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", code="file_not_found") from None
    except UnicodeDecodeError:
        raise InvalidRegister(str(path), [(f"{path.name}", "is not UTF-8 text")]) from None
    if is_ledger_format(text):
        return "ledger", parse_register(text, path.name)
    return "foreign", parse_foreign(text, path.name)
