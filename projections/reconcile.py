"""Reconciliation of a contract year: baselines, spend, and the finance system's payment register.

Three comparisons, each listing every difference:

(a) **Indicators**: each measure's value (as decided, and as the data held now
    gives it) against its historical baseline (the contract's ``baselines`` and
    every ``baseline record``) and the thresholds resolved from it.
(b) **Spend**: the current cost reports against the budget (now and as decided)
    and the contract's ``budget.historical_spend``.
(c) **Payments**: the ledger's decided payments per period and party against a
    payment-register CSV exported from the finance system.

Something *does not reconcile* when the ledger's decision no longer agrees with
the data and terms now held (a corrected submission or cost report, a budget or
baseline change not yet restated) or when the register differs from the ledger.
Comparisons of a value with its baseline or of spend with history are reported,
never failures on their own.

Payment register format (CSV, UTF-8, an optional byte-order mark):

    period,party,amount
    2026-Q2,circle,4234291.20
    Y2-close,circle,1920462.50
    Y2-true-up-1,circle,-882144.00

* The header names the columns ``period``, ``party`` and ``amount`` (any order,
  case-insensitive); further columns (a payment reference, say) are ignored.
* ``amount`` is money: an optional ``-``, digits, at most two decimal places; no
  thousands separators or currency sign. It is read as Decimal, never float.
* ``period`` is an instalment's period (``YYYY-MM`` or ``YYYY-Qn``, as in the
  ledger), ``Y<n>-close`` for contract year n's year-close payment,
  ``Y<n>-true-up-<k>`` for the k-th true-up of year n and ``Y<n>-adjustment-<k>``
  for its k-th manual adjustment (an upheld dispute), each in the order decided.
* Rows of the same period and party are added up (part payments). Rows of other
  contract years, or outside the term, are counted and otherwise ignored.

The ledger's side: instalments per period and party (``instalment_parties``);
the year-close payment per party is the close decision's ``by_party`` less the
instalments already paid to that party in the year (so it holds the outcome
payment, reserve, risk-share adjustment, high-cost reimbursement and any core
balance paid at close); each true-up's and manual adjustment's ``by_party``. A missing row
counts as zero, so parties owed 0.00 need no row. ``difference`` is register −
ledger.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from ledger.adapters.render import money_text, number_text
from ledger.domain.definition import ContractDefinition, baseline_for
from ledger.domain.errors import LedgerError
from ledger.domain.numbers import ONE, ZERO, exact, fmt, fmt_money
from ledger.domain.periods import MONTHLY, QUARTERLY, PeriodError, parse_period
from ledger.domain.variations import year_terms

from . import facts
from .queries import ReadModels

HEADER = ("period", "party", "amount")
EXIT_NOT_RECONCILED = 3
_MONEY = re.compile(r"^-?\d+(\.\d{1,2})?$")
_CLOSE = re.compile(r"^Y(\d+)-close$")
_TRUE_UP = re.compile(r"^Y(\d+)-true-up-(\d+)$")
_ADJUSTMENT = re.compile(r"^Y(\d+)-adjustment-(\d+)$")
_UNMATCHED = re.compile(r"^Y(\d+)-unmatched-(.+)$")  # a finance system's row matching no ledger payment


def close_label(year: int) -> str:
    return f"Y{year}-close"


def true_up_label(year: int, n: int) -> str:
    return f"Y{year}-true-up-{n}"


def adjustment_label(year: int, n: int) -> str:
    return f"Y{year}-adjustment-{n}"


class NotReconciled(LedgerError):
    """The ledger and what it is compared with differ; ``mismatches`` lists every difference."""

    code = "not_reconciled"


class InvalidRegister(LedgerError):
    """The payment register cannot be read; ``problems`` lists every ``where: message``."""

    code = "invalid_payment_register"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s); nothing was compared")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.code,
            "message": self.message,
            "problems": [{"path": p, "message": m} for p, m in self.problems],
        }


@dataclass(frozen=True)
class RegisterRow:
    line: int
    period: str
    party: str
    amount: Decimal


# ------------------------------------------------------------------- register


def read_register(path: Path) -> list[RegisterRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", code="file_not_found") from None
    except UnicodeDecodeError:
        raise InvalidRegister(str(path), [(f"{path.name}", "is not UTF-8 text")]) from None
    return parse_register(text, path.name)


def parse_register(text: str, source: str = "register") -> list[RegisterRow]:
    """Every row of a register CSV, or InvalidRegister listing every problem at once."""
    reader = csv.reader(io.StringIO(text[1:] if text.startswith("\ufeff") else text))
    problems: list[tuple[str, str]] = []
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    missing = [h for h in HEADER if h not in names]
    if header is None or missing:
        raise InvalidRegister(
            source,
            [
                (
                    f"{source}:1",
                    f"the header must name the columns {','.join(HEADER)} "
                    f"(missing: {', '.join(missing or HEADER)})",
                )
            ],
        )
    col = {h: names.index(h) for h in HEADER}
    rows: list[RegisterRow] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        where = f"{source}:{line}"
        if len(cells) != len(names):  # more is usually an unquoted comma: 1,234.56
            problems.append((where, f"expected {len(names)} columns as in the header, found {len(cells)}"))
            continue
        period, party, amount = (cells[col[h]].strip() for h in HEADER)
        bad = False
        if not period:
            problems.append((f"{where}: period", "is empty"))
            bad = True
        elif _label_year(period) is _INVALID:
            problems.append(
                (
                    f"{where}: period",
                    f"{period!r} is not YYYY-MM, YYYY-Qn, Y<n>-close, "
                    f"Y<n>-true-up-<k> or Y<n>-adjustment-<k>",
                )
            )
            bad = True
        if not party:
            problems.append((f"{where}: party", "is empty"))
            bad = True
        if not _MONEY.match(amount):
            problems.append(
                (
                    f"{where}: amount",
                    f"{amount!r} is not money (digits, an optional '-', at most "
                    f"two decimal places, no separators or currency sign)",
                )
            )
            bad = True
        if not bad:
            rows.append(RegisterRow(line, period, party, Decimal(amount)))
    if problems:
        raise InvalidRegister(source, problems)
    return rows


_INVALID = object()


def _label_year(label: str) -> Any:
    """('close'|'true_up'|'period', year or first day) for a register period label, or _INVALID."""
    if m := _CLOSE.match(label):
        return ("close", int(m.group(1)))
    if m := _TRUE_UP.match(label):
        return ("true_up", int(m.group(1)))
    if m := _ADJUSTMENT.match(label):
        return ("adjustment", int(m.group(1)))
    if m := _UNMATCHED.match(label):
        return ("unmatched", int(m.group(1)))
    for kind in (QUARTERLY, MONTHLY):
        try:
            return ("period", parse_period(label, kind).first_day)
        except PeriodError:
            continue
    return _INVALID


# --------------------------------------------------------------- the ledger


def ledger_payments(conn: Connection, contract_id: str, year: int) -> dict[tuple[str, str], Decimal]:
    """What the ledger decided to pay in a contract year, per (period label, party)."""
    out: dict[tuple[str, str], Decimal] = {}
    paid: dict[str, Decimal] = {}
    for r in facts.instalment_parties(conn, contract_id, year):
        out[(r.period, r.party_id)] = r.amount
        paid[r.party_id] = paid.get(r.party_id, ZERO) + r.amount
    decided = facts.decisions(conn, contract_id, year)
    parties = facts.decision_parties(conn, [d.notification_id for d in decided])
    counts: dict[str, int] = {}
    for d in decided:
        by_party = parties.get(d.notification_id, {})
        counts[d.kind] = n = counts.get(d.kind, 0) + 1
        if d.kind == "close":
            for party in dict.fromkeys([*by_party, *paid]):
                out[(close_label(year), party)] = by_party.get(party, ZERO) - paid.get(party, ZERO)
            continue
        label = true_up_label(year, n) if d.kind == "true_up" else adjustment_label(year, n)
        for party, amount in by_party.items():
            out[(label, party)] = amount
    return out


def payment_schedule(read: ReadModels, contract_id: str, year: int | None = None) -> list[dict[str, Any]]:
    """Every payment the ledger decided, as payment-register rows (``period``, ``party``,
    ``amount`` — what ``reconcile --payments`` reads), year by year in register order;
    parties owed 0.00 are left out, as a register may leave them out."""
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        if year is not None:
            facts.check_year(row, definition, year)
        years = [year] if year is not None else range(1, definition.term_years(bool(row.extended)) + 1)
        out = []
        for y in years:
            payments = ledger_payments(conn, contract_id, y)
            out += [
                {"year": y, "period": label, "party": party, "amount": fmt_money(amount)}
                for (label, party), amount in sorted(
                    payments.items(), key=lambda kv: (label_order(kv[0][0]), kv[0][1])
                )
                if amount != ZERO
            ]
    return out


def label_order(label: str) -> tuple[int, int, str]:
    """Register order of a payment label: instalments, the close, true-ups, adjustments, unmatched."""
    if _CLOSE.match(label):
        return (1, 0, label)
    if m := _TRUE_UP.match(label):
        return (2, int(m.group(2)), label)
    if m := _ADJUSTMENT.match(label):
        return (3, int(m.group(2)), label)
    if _UNMATCHED.match(label):
        return (4, 0, label)
    return (0, 0, label)


def compare_payments(
    ledger: Mapping[tuple[str, str], Decimal], register: Sequence[RegisterRow], parties: Sequence[str]
) -> list[dict[str, Any]]:
    """One line per (period, party) on either side; missing counts as zero."""
    paid: dict[tuple[str, str], Decimal] = {}
    lines_of: dict[tuple[str, str], list[int]] = {}
    for row in register:
        key = (row.period, row.party)
        paid[key] = paid.get(key, ZERO) + row.amount
        lines_of.setdefault(key, []).append(row.line)
    rank = {p: i for i, p in enumerate(parties)}
    keys = sorted(set(ledger) | set(paid), key=lambda k: (label_order(k[0]), rank.get(k[1], len(rank)), k[1]))
    out = []
    for key in keys:
        decided, booked = ledger.get(key), paid.get(key)
        if (decided or ZERO) == (booked or ZERO):
            status = "ok"
        elif booked is None:
            status = "missing_in_register"
        elif decided is None:
            status = "missing_in_ledger"
        else:
            status = "amount_differs"
        if status == "ok" and decided is None and booked == ZERO:
            continue
        out.append(
            {
                "period": key[0],
                "party": key[1],
                "ledger": fmt_money(decided) if decided is not None else None,
                "register": fmt_money(booked) if booked is not None else None,
                "difference": fmt_money((booked or ZERO) - (decided or ZERO)),
                "status": status,
                "register_lines": lines_of.get(key, []),
            }
        )
    return out


# ---------------------------------------------------------------- reconcile


def reconcile(
    read: ReadModels,
    contract_id: str,
    year: int,
    register: Sequence[RegisterRow] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        facts.check_year(row, definition, year)
        decided = facts.decisions(conn, contract_id, year)
        now = read.provisional(conn, row, definition, year)
        baselines = facts.terms_baselines(conn, contract_id, definition, year)
        recorded = facts.recorded_baselines(conn, contract_id)
        current_costs = [r for r in facts.cost_reports(conn, contract_id, year) if r.is_current]
        budget_now = facts.budget_now(conn, contract_id, definition, year)
        payments = ledger_payments(conn, contract_id, year) if register is not None else None
    restated = [d for d in decided if d.kind in ("close", "true_up")]  # adjustments carry no figures
    in_force = restated[-1] if restated else None
    figures = json.loads(in_force.figures) if in_force else None
    trace = json.loads(in_force.trace) if in_force else None
    mismatches: list[dict[str, Any]] = []

    indicators = _indicators(
        year_terms(definition, year), year, now, trace, baselines, recorded, in_force, mismatches
    )
    decision = None
    if in_force is not None and figures is not None:
        decision = {
            "kind": in_force.kind,
            "decided_at": in_force.decided_at,
            "decisions": len(decided),
            "total_in_force": figures["total"],
            "total_from_data_now": fmt_money(now.total),
        }
        if Decimal(figures["total"]) != now.total:
            mismatches.append(
                {
                    "check": "decision",
                    "key": f"year {year} total",
                    "ledger": figures["total"],
                    "now": fmt_money(now.total),
                    "difference": fmt_money(now.total - Decimal(figures["total"])),
                    "message": f"the data and terms now held give a total of {fmt_money(now.total)}, "
                    f"the decision in force {figures['total']}: run "
                    f"`obc-ledger restate {contract_id} {year}`",
                }
            )
    spend = _spend(definition, year, figures, budget_now, current_costs, mismatches)
    result: dict[str, Any] = {
        "contract_id": contract_id,
        "year": year,
        "closed": bool(decided),
        "decision": decision,
        "indicators": indicators,
        "spend": spend,
        "payments": None,
    }
    if register is not None and payments is not None:
        result["payments"] = _payments(definition, row, year, payments, register, source, mismatches)
    result["mismatches"] = mismatches
    result["reconciled"] = not mismatches
    return result


def _indicators(
    definition: ContractDefinition,
    year: int,
    now: Any,
    trace: Mapping[str, Any] | None,
    baselines: Mapping[str, Decimal],
    recorded: Sequence[Any],
    in_force: Any,
    mismatches: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    decided_measures = {
        m["id"]: (i, m) for i in (trace or {}).get("indicators", []) for m in i.get("measures", [])
    }
    used_baselines = (trace or {}).get("baselines", {})
    contract_baselines = dict(definition.baselines)
    current = {m.measure_id: (ind, m) for ind in now.indicators for m in ind.measures}
    out = []
    for ind in definition.indicators:
        for m in ind.measures:
            _, m_now = current[m.id]
            decided = decided_measures.get(m.id, (None, None))[1]
            base_now = baseline_for(baselines, m.id)
            value_now = m_now.value
            value = (
                Decimal(decided["value"])
                if decided and decided.get("value") is not None
                else (None if decided else value_now)
            )
            entry: dict[str, Any] = {
                "indicator_id": ind.id,
                "measure_id": m.id,
                "linked": ind.paid_from_year <= year,
                "value_decided": decided.get("value") if decided else None,
                "value_now": fmt(value_now),
                "score_decided": decided.get("score") if decided else None,
                "score_now": fmt(m_now.score),
                "historical_baseline": fmt(baseline_for(contract_baselines, m.id)),
                "recorded_baselines": [
                    {"key": r.key, "value": fmt(r.value), "recorded_at": r.recorded_at, "note": r.note}
                    for r in recorded
                    if r.key in (m.id, m.id.rsplit(".", 1)[-1])
                ],
                "baseline_now": fmt(base_now),
                "baseline_used": fmt(baseline_for({k: Decimal(v) for k, v in used_baselines.items()}, m.id))
                if trace
                else None,
                "thresholds_now": m_now.trace.get("scoring"),
                "thresholds_used": decided.get("scoring") if decided else None,
                "vs_baseline": None,
                "notes": [],
            }
            if value is not None and base_now is not None:
                with exact():
                    entry["vs_baseline"] = {
                        "difference": fmt(value - base_now),
                        "relative_change": fmt(value / base_now - ONE) if base_now else None,
                    }
            if in_force is None:
                entry["status"] = "provisional"
            elif _number(entry["value_decided"]) != _number(entry["value_now"]):
                entry["status"] = "value_changed"
                mismatches.append(
                    {
                        "check": "indicator",
                        "key": m.id,
                        "ledger": entry["value_decided"],
                        "now": entry["value_now"],
                        "message": f"{m.id}: decided on value {entry['value_decided']}, the submissions "
                        f"now held give {entry['value_now']} (corrections or late data "
                        f"not yet restated)",
                    }
                )
            else:
                entry["status"] = "ok"
            if trace and _number(entry["baseline_used"]) != _number(entry["baseline_now"]):
                entry["notes"].append(
                    f"baseline now {entry['baseline_now']}, the decision used "
                    f"{entry['baseline_used']} (decisions keep the baseline they used; "
                    f"a restatement would use the new one)"
                )
            if value is None:
                entry["notes"].append("no submission: missing")
            out.append(entry)
    return out


def _number(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _spend(
    definition: ContractDefinition,
    year: int,
    figures: Mapping[str, Any] | None,
    budget_now: Decimal,
    current_costs: Sequence[Any],
    mismatches: list[dict[str, Any]],
) -> dict[str, Any]:
    costs_now = sum((r.total_cost for r in current_costs), ZERO)
    history = [{"year": y, "amount": fmt_money(a)} for y, a in definition.budget.historical_spend]
    latest = definition.budget.historical_spend[-1] if definition.budget.historical_spend else None
    rs = (figures or {}).get("risk_share") or None
    out: dict[str, Any] = {
        "budget_now": fmt_money(budget_now),
        "budget_decided": figures["budget"] if figures else None,
        "costs_now": fmt_money(costs_now),
        "costs_decided": rs["costs"] if rs else None,
        "cost_reports": len(current_costs),
        "variance_now": fmt_money(budget_now - costs_now),
        "historical_spend": history,
        "vs_historical": None,
    }
    if latest is not None:
        with exact():
            out["vs_historical"] = {
                "year": latest[0],
                "amount": fmt_money(latest[1]),
                "spend_difference": fmt_money(costs_now - latest[1]) if current_costs else None,
                "spend_relative_change": fmt(costs_now / latest[1] - ONE)
                if current_costs and latest[1]
                else None,
                "budget_difference": fmt_money(budget_now - latest[1]),
                "budget_relative_change": fmt(budget_now / latest[1] - ONE) if latest[1] else None,
            }
    if figures is not None and Decimal(figures["budget"]) != budget_now:
        mismatches.append(
            {
                "check": "spend",
                "key": "budget",
                "ledger": figures["budget"],
                "now": fmt_money(budget_now),
                "difference": fmt_money(budget_now - Decimal(figures["budget"])),
                "message": f"the budget is now {fmt_money(budget_now)}, the decision used "
                f"{figures['budget']}",
            }
        )
    if rs is not None and Decimal(rs["costs"]) != costs_now:
        mismatches.append(
            {
                "check": "spend",
                "key": "costs",
                "ledger": rs["costs"],
                "now": fmt_money(costs_now),
                "difference": fmt_money(costs_now - Decimal(rs["costs"])),
                "message": f"current cost reports total {fmt_money(costs_now)}, the risk share was "
                f"decided on {rs['costs']}",
            }
        )
    return out


def _payments(
    definition: ContractDefinition,
    row: Any,
    year: int,
    ledger: Mapping[tuple[str, str], Decimal],
    register: Sequence[RegisterRow],
    source: str | None,
    mismatches: list[dict[str, Any]],
) -> dict[str, Any]:
    calendar = definition.calendar(bool(row.extended))
    mine, other_years, outside = [], 0, 0
    for r in register:
        kind, where = _label_year(r.period)
        row_year = where if kind != "period" else calendar.year_of_date(where)
        if row_year == year:
            mine.append(r)
        elif row_year is None or not 1 <= row_year <= calendar.years:
            outside += 1
        else:
            other_years += 1
    parties = list(definition.providers_ever)
    lines = compare_payments(ledger, mine, parties)
    for line in lines:
        if line["status"] != "ok":
            mismatches.append(
                {
                    "check": "payment",
                    "key": f"{line['period']} {line['party']}",
                    "ledger": line["ledger"],
                    "register": line["register"],
                    "difference": line["difference"],
                    "status": line["status"],
                    "message": f"{line['period']} {line['party']}: {line['status'].replace('_', ' ')} "
                    f"(ledger {line['ledger'] or '—'}, register {line['register'] or '—'}, "
                    f"difference {line['difference']})",
                }
            )
    return {
        "source": source,
        "rows": len(register),
        "rows_for_year": len(mine),
        "rows_other_years": other_years,
        "rows_outside_term": outside,
        "close_label": close_label(year),
        "ledger_total": fmt_money(sum(ledger.values(), ZERO)),
        "register_total": fmt_money(sum((r.amount for r in mine), ZERO)),
        "lines": lines,
    }


# ---------------------------------------------------------------------- text


_m = money_text


def _n(value: str | None) -> str:
    return number_text(value, limit=12, places=6, mark="")


def render(r: Mapping[str, Any]) -> str:
    lines = [
        f"Reconciliation  {r['contract_id']}  contract year {r['year']}  "
        f"({'closed' if r['closed'] else 'open: provisional figures'})"
    ]
    if r["decision"]:
        d = r["decision"]
        lines.append(
            f"  decision in force: {d['kind']} {d['decided_at']} ({d['decisions']} decision(s)); "
            f"total {_m(d['total_in_force'])}, from the data now {_m(d['total_from_data_now'])}"
        )
    lines += [
        "",
        "(a) Indicators against historical baselines and thresholds",
        f"  {'measure':<36}{'decided':>12}{'now':>12}{'baseline':>10}{'vs base':>11}  status",
    ]
    for i in r["indicators"]:
        vs = i["vs_baseline"]
        rel = f"{Decimal(vs['relative_change']) * 100:+.1f}%" if vs and vs["relative_change"] else "—"
        lines.append(
            f"  {i['measure_id'][:35]:<36}{_n(i['value_decided']):>12}{_n(i['value_now']):>12}"
            f"{_n(i['baseline_now']):>10}{rel:>11}  {i['status']}"
        )
        lines += [f"      note: {n}" for n in i["notes"] if n != "no submission: missing"]
    s = r["spend"]
    lines += [
        "",
        "(b) Spend against budget and historical spend",
        f"  budget now {_m(s['budget_now'])}"
        + (f", decided {_m(s['budget_decided'])}" if s["budget_decided"] else ""),
        f"  costs now {_m(s['costs_now'])} ({s['cost_reports']} current report(s))"
        + (f", decided {_m(s['costs_decided'])}" if s["costs_decided"] else ""),
        f"  variance (budget − costs) {_m(s['variance_now'])}",
    ]
    for h in s["historical_spend"]:
        lines.append(f"  historical spend {h['year']}: {_m(h['amount'])}")
    if s["vs_historical"]:
        v = s["vs_historical"]
        if v["spend_difference"] is not None:
            lines.append(
                f"  spend vs {v['year']}: {_m(v['spend_difference'])} "
                f"({Decimal(v['spend_relative_change']) * 100:+.2f}%)"
            )
        lines.append(
            f"  budget vs {v['year']}: {_m(v['budget_difference'])}"
            + (
                f" ({Decimal(v['budget_relative_change']) * 100:+.2f}%)"
                if v["budget_relative_change"]
                else ""
            )
        )
    p = r["payments"]
    if p is not None:
        lines += [
            "",
            f"(c) Payments against the register {p['source']} ({p['rows_for_year']} row(s) for the year; "
            f"{p['rows_other_years']} for other years and {p['rows_outside_term']} outside the term ignored)",
            f"  {'period':<16}{'party':<16}{'ledger':>18}{'register':>18}{'difference':>16}  status",
        ]
        for line in p["lines"]:
            lines.append(
                f"  {line['period']:<16}{line['party']:<16}{_m(line['ledger']):>18}"
                f"{_m(line['register']):>18}{_m(line['difference']):>16}  {line['status']}"
            )
        lines.append(f"  {'total':<32}{_m(p['ledger_total']):>18}{_m(p['register_total']):>18}")
    lines.append("")
    if r["reconciled"]:
        lines.append("reconciled: nothing differs")
    else:
        lines.append(f"NOT RECONCILED: {len(r['mismatches'])} difference(s)")
        lines += [f"  {m['check']}: {m['message']}" for m in r["mismatches"]]
    return "\n".join(lines)


def failure(result: Mapping[str, Any]) -> NotReconciled:
    n = len(result["mismatches"])
    checks = sorted({m["check"] for m in result["mismatches"]})
    return NotReconciled(
        f"{result['contract_id']} year {result['year']}: {n} difference(s) ({', '.join(checks)})"
    )
