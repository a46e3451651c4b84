"""The auditor's read-side commands: explain, costs, reconcile, payments, accruals (report: report.py).

Each is thin: read the (caught-up) read models, assemble in ``projections``, print.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.adapters.tables import money, table
from ledger.entrypoints.cli.common import emit, examples, to_stderr
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.errors import EXIT_ERROR
from projections import accruals as accruals_view
from projections import costs as costs_view
from projections import explain as explain_view
from projections import facts
from projections import reconcile as reconcile_view
from projections.reconcile import EXIT_NOT_RECONCILED, InvalidRegister
from projections.schedule import COLUMNS, read_any_register, resolve, schedule_lines, to_csv, write_xlsx


def explain(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--indicator", metavar="K", help="only this indicator (or sub-indicator)")
    return cmd_explain


def costs(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    return cmd_costs


def reconcile(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument(
        "--payments",
        type=Path,
        metavar="FILE.csv",
        help="the finance system's payment register: CSV with the columns period,party,amount (as "
        "`payments --csv` writes), or amount with the ledger's payment_id as a reference, or amount "
        "with a due_date/payment_date and party or supplier_code",
    )
    return cmd_reconcile


def payments(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id", help="the contract's id (as registered)")
    p.add_argument("--year", type=int, help="only this contract year (default: every year of the term)")
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--csv",
        action="store_true",
        help="CSV on stdout, one payment per line (its columns include period,party,amount, so "
        "`reconcile --payments` reads it back)",
    )
    out.add_argument(
        "--xlsx",
        type=Path,
        metavar="FILE.xlsx",
        help="an xlsx workbook: the schedule, and totals per year and party (money as numbers, #,##0.00)",
    )
    examples(
        p,
        "obc-ledger payments beds-msk --year 2",
        "obc-ledger payments beds-msk --csv > schedule.csv",
        "obc-ledger payments beds-msk --xlsx schedule.xlsx",
        "obc-ledger payments beds-msk --json",
    )
    return cmd_payments


def accruals(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument(
        "--financial-year",
        dest="financial_year",
        required=True,
        metavar="YYYY/YY",
        help="the UK financial year, e.g. 2027/28 (1 April 2027 to 31 March 2028)",
    )
    p.add_argument(
        "--contract",
        action="append",
        metavar="ID",
        help="only this contract (repeatable; default: every registered contract)",
    )
    p.add_argument(
        "--xlsx",
        type=Path,
        metavar="FILE.xlsx",
        help="an xlsx workbook: totals per contract and party, and every line with its basis",
    )
    examples(
        p,
        "obc-ledger accruals --financial-year 2026/27",
        "obc-ledger accruals --financial-year 2027/28 --json",
        "obc-ledger accruals --financial-year 2027/28 --contract beds-msk --xlsx accruals.xlsx",
    )
    return cmd_accruals


def cmd_explain(args: argparse.Namespace, ctx: Context) -> int:
    data = explain_view.explain(ctx.read(), args.contract_id, args.year, args.indicator)
    emit(args, data, lambda: explain_view.render(data))
    return 0


def cmd_costs(args: argparse.Namespace, ctx: Context) -> int:
    data = costs_view.costs(ctx.read(), args.contract_id, args.year)
    emit(args, data, lambda: costs_view.render(data))
    return 0


def _date_notes(result: dict[str, Any]) -> str:
    p = result.get("payments") or {}
    notes = p.get("date_differences") or []
    head = (
        f"\n(register read by {p['register_format']})"
        if p.get("register_format") == "references and dates"
        else ""
    )
    return head + "".join(
        f"\n  note: register line {n['register_line']} ({n['payment_id']}) dated "
        f"{n['register_date']}, due {n['due_date']}"
        for n in notes
    )


def cmd_reconcile(args: argparse.Namespace, ctx: Context) -> int:
    register, notes, form = None, None, None
    read = ctx.read()
    if args.payments is not None:
        try:
            form, register = read_any_register(args.payments)
        except InvalidRegister as exc:
            to_stderr(
                args,
                exc.to_dict(),
                [f"error: {exc.code}: {exc.message}"]
                + [f"  {where}: {message}" for where, message in exc.problems],
            )
            return EXIT_ERROR
        if (
            form == "foreign"
        ):  # the finance system's own references and dates, matched to the ledger's payments
            with read.engine.connect() as conn:
                row, definition = facts.contract(conn, args.contract_id)
            register, notes = resolve(
                register,
                schedule_lines(read, args.contract_id),
                args.year,
                definition.calendar(bool(row.extended)),
            )
    result = reconcile_view.reconcile(
        read, args.contract_id, args.year, register, str(args.payments) if args.payments else None
    )
    result["position"] = ctx.position
    if result["payments"] is not None:
        result["payments"]["register_format"] = (
            "period,party,amount" if form == "ledger" else "references and dates"
        )
        result["payments"]["date_differences"] = notes or []
    emit(args, result, lambda: reconcile_view.render(result) + _date_notes(result))
    ctx.position_note()
    if result["reconciled"]:
        return 0
    error = reconcile_view.failure(result)
    to_stderr(
        args,
        {**error.to_dict(), "mismatches": len(result["mismatches"])},
        [f"error: {error.code}: {error.message}"],
    )
    return EXIT_NOT_RECONCILED


PAYMENT_COLUMNS = (
    ("payment_id", "payment id"),
    ("kind", "kind"),
    ("party", "party"),
    ("supplier_code", "supplier"),
    ("cost_centre", "cost centre"),
    ("decided_at", "decided at"),
    ("event_position", "event"),
    ("due_date", "due"),
    ("financial_year", "FY"),
    ("amount", "amount"),
    ("currency", "cur."),
)


def render_payments(lines: list[dict[str, Any]]) -> str:
    if not lines:
        return "no payments decided yet"
    out = []
    for year in dict.fromkeys(line["year"] for line in lines):
        mine = [line for line in lines if line["year"] == year]
        out.append(
            table(
                PAYMENT_COLUMNS,
                mine,
                money_columns={"amount"},
                title=f"Contract year {year}: {len(mine)} payment line(s), total "
                f"{money(sum(Decimal(m['amount']) for m in mine))}",
            )
        )
    return "\n\n".join(out)


def cmd_payments(args: argparse.Namespace, ctx: Context) -> int:
    lines = schedule_lines(ctx.read(), args.contract_id, args.year)
    if args.csv:
        sys.stdout.write(to_csv(lines))
        ctx.position_note()
        return 0
    if args.xlsx is not None:
        totals: dict[tuple[int, str], Decimal] = {}
        for line in lines:
            totals[(line["year"], line["party"])] = totals.get(
                (line["year"], line["party"]), Decimal(0)
            ) + Decimal(line["amount"])
        write_xlsx(
            args.xlsx,
            [
                ("Payments", COLUMNS, lines, {"amount"}),
                (
                    "Totals",
                    ("year", "party", "amount"),
                    [{"year": y, "party": p, "amount": format(a, "f")} for (y, p), a in totals.items()],
                    {"amount"},
                ),
            ],
        )
        summary: dict[str, Any] = {
            "out": str(args.xlsx),
            "lines": len(lines),
            "total": format(sum((Decimal(line["amount"]) for line in lines), Decimal(0)), "f"),
        }
        emit(
            args,
            summary,
            lambda: (
                f"wrote {summary['out']}: {summary['lines']} payment line(s), total "
                f"{Decimal(summary['total']):,.2f}"
            ),
        )
        return 0
    emit(args, lines, lambda: render_payments(lines))
    ctx.position_note()
    return 0


def cmd_accruals(args: argparse.Namespace, ctx: Context) -> int:
    data = accruals_view.accruals(ctx.read(), args.financial_year, args.contract)
    if args.xlsx is not None:
        write_xlsx(
            args.xlsx,
            [
                (
                    "By party",
                    [k for k, _ in accruals_view.PARTY_COLUMNS],
                    data["parties"],
                    accruals_view.MONEY,
                ),
                (
                    "Lines",
                    [
                        *(k for k, _ in accruals_view.COLUMNS),
                        "payment_id",
                        "supplier_code",
                        "cost_centre",
                        "basis",
                    ],
                    data["lines"],
                    accruals_view.MONEY,
                ),
            ],
        )
        summary = {"out": str(args.xlsx), "lines": len(data["lines"]), "to_accrue": data["to_accrue"]}
        emit(
            args,
            summary,
            lambda: (
                f"wrote {summary['out']}: {summary['lines']} line(s), to accrue "
                f"{Decimal(summary['to_accrue']):,.2f}"
            ),
        )
        return 0
    emit(args, data, lambda: accruals_view.render(data))
    return 0
