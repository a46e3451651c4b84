"""The auditor's read-side commands: explain, costs, reconcile, report.

Registered on the ``obc-ledger`` parser by :func:`add_view_commands`; each is
thin: read the (caught-up) read models, assemble in ``projections``, print.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any


def add_view_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "explain", "why a year's figures are what they are: submissions, thresholds, scores, risk share"
    )
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--indicator", metavar="K", help="only this indicator (or sub-indicator)")
    p = command("costs", "open book: cost reports by provider, period and case; budget vs cost variance")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p = command(
        "reconcile",
        "compare a year with its baselines, budget and historical spend, and a payment "
        "register (exit 3 when anything does not reconcile)",
    )
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
    p = command(
        "payments",
        "every payment decided, one line per payment and party: payment id, deciding event, "
        "finance codes, kind, period, due date, financial year, amount, currency",
    )
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
    _examples(
        p,
        "obc-ledger payments beds-msk --year 2",
        "obc-ledger payments beds-msk --csv > schedule.csv",
        "obc-ledger payments beds-msk --xlsx schedule.xlsx",
        "obc-ledger payments beds-msk --json",
    )
    p = command(
        "accruals",
        "year-end accruals for a financial year (April to March), per contract and party: "
        "what was decided and when, what is decided but not yet due, provisional year-close "
        "amounts for open contract years",
    )
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
    _examples(
        p,
        "obc-ledger accruals --financial-year 2026/27",
        "obc-ledger accruals --financial-year 2027/28 --json",
        "obc-ledger accruals --financial-year 2027/28 --contract beds-msk --xlsx accruals.xlsx",
    )
    p = command(
        "report", "write the auditor's report: a self-contained HTML page with charts (and a PDF of it)"
    )
    p.add_argument("contract_id", help="the contract's id (as registered)")
    p.add_argument("--year", type=int, help="only this contract year (default: every year of the term)")
    p.add_argument(
        "--out", type=Path, required=True, metavar="FILE.html", help="where to write the HTML page"
    )
    p.add_argument(
        "--pdf",
        type=Path,
        metavar="FILE.pdf",
        help="also print the page to A4 PDF through headless Chromium ($OBC_LEDGER_CHROMIUM or chromium)",
    )
    p.add_argument(
        "--digest", metavar="TEXT", help="a signed log digest to print in the verification section, as given"
    )
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="TIMESTAMP",
        help="the report as the ledger stood then: only events recorded up to that instant",
    )
    _examples(
        p,
        "obc-ledger report beds-msk --out report.html",
        "obc-ledger report beds-msk --out report.html --pdf report.pdf",
    )


def _examples(p: argparse.ArgumentParser, *lines: str) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)


def cmd_explain(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import _emit, _read
    from projections.explain import explain, render

    data = explain(_read(args), args.contract_id, args.year, args.indicator)
    _emit(args, data, lambda: render(data))
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import _emit, _read
    from projections.costs import costs, render

    data = costs(_read(args), args.contract_id, args.year)
    _emit(args, data, lambda: render(data))
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


def cmd_reconcile(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import EXIT_ERROR, _emit, _position_note, _read
    from projections.reconcile import EXIT_NOT_RECONCILED, InvalidRegister, failure, reconcile, render
    from projections.schedule import read_any_register, resolve, schedule_lines

    register, notes, form = None, None, None
    read = _read(args)
    if args.payments is not None:
        try:
            form, register = read_any_register(args.payments)
        except InvalidRegister as exc:
            _stderr(
                args,
                exc.to_dict(),
                [f"error: {exc.code}: {exc.message}"]
                + [f"  {where}: {message}" for where, message in exc.problems],
            )
            return EXIT_ERROR
        if (
            form == "foreign"
        ):  # the finance system's own references and dates, matched to the ledger's payments
            from projections import facts

            with read.engine.connect() as conn:
                row, definition = facts.contract(conn, args.contract_id)
            register, notes = resolve(
                register,
                schedule_lines(read, args.contract_id),
                args.year,
                definition.calendar(bool(row.extended)),
            )
    result = reconcile(
        read, args.contract_id, args.year, register, str(args.payments) if args.payments else None
    )
    result["position"] = args._position
    if result["payments"] is not None:
        result["payments"]["register_format"] = (
            "period,party,amount" if form == "ledger" else "references and dates"
        )
        result["payments"]["date_differences"] = notes or []
    _emit(args, result, lambda: render(result) + _date_notes(result))
    _position_note(args)
    if result["reconciled"]:
        return 0
    error = failure(result)
    _stderr(
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
    from ledger.adapters.tables import money, table

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


def cmd_payments(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import _emit, _position_note, _read
    from projections.schedule import COLUMNS, schedule_lines, to_csv, write_xlsx

    lines = schedule_lines(_read(args), args.contract_id, args.year)
    if args.csv:
        sys.stdout.write(to_csv(lines))
        _position_note(args)
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
        summary = {
            "out": str(args.xlsx),
            "lines": len(lines),
            "total": format(sum((Decimal(line["amount"]) for line in lines), Decimal(0)), "f"),
        }
        _emit(
            args,
            summary,
            lambda: (
                f"wrote {summary['out']}: {summary['lines']} payment line(s), total "
                f"{Decimal(summary['total']):,.2f}"
            ),
        )
        return 0
    _emit(args, lines, lambda: render_payments(lines))
    _position_note(args)
    return 0


def cmd_accruals(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import _emit, _read
    from projections.accruals import COLUMNS, MONEY, PARTY_COLUMNS, accruals, render
    from projections.schedule import write_xlsx

    data = accruals(_read(args), args.financial_year, args.contract)
    if args.xlsx is not None:
        write_xlsx(
            args.xlsx,
            [
                ("By party", [k for k, _ in PARTY_COLUMNS], data["parties"], MONEY),
                (
                    "Lines",
                    [*(k for k, _ in COLUMNS), "payment_id", "supplier_code", "cost_centre", "basis"],
                    data["lines"],
                    MONEY,
                ),
            ],
        )
        summary = {"out": str(args.xlsx), "lines": len(data["lines"]), "to_accrue": data["to_accrue"]}
        _emit(
            args,
            summary,
            lambda: (
                f"wrote {summary['out']}: {summary['lines']} line(s), to accrue "
                f"{Decimal(summary['to_accrue']):,.2f}"
            ),
        )
        return 0
    _emit(args, data, lambda: render(data))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.main import _emit, _open, _projections
    from projections.report import write

    if args.as_of:
        from projections.bootstrap import Projections, parse_instant

        projections = Projections.as_of(_open(args), parse_instant(args.as_of), {args.contract_id})
    else:
        projections = _projections(args)
    summary = write(projections, args.contract_id, args.out, args.year, args.digest)
    if args.pdf is not None:
        from projections.report import print_pdf

        summary.update(print_pdf(args.out, args.pdf))
    _emit(
        args,
        summary,
        lambda: (
            f"wrote {summary['out']} ({summary['bytes']:,} bytes): years "
            f"{', '.join(map(str, summary['years']))}, {summary['decisions']} decision(s), "
            f"{summary['charts']} chart(s), log position {summary['max_notification_id']}, "
            + (
                "verified"
                if summary["verified"]
                else "VERIFICATION FAILED: " + "; ".join(summary["verification_problems"][:3])
            )
            + (f"; {summary['pdf']} ({summary['pdf_bytes']:,} bytes)" if "pdf" in summary else "")
        ),
    )
    return 0


def _stderr(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data), file=sys.stderr)
    else:
        for line in lines:
            print(line, file=sys.stderr)


VIEW_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "explain": cmd_explain,
    "costs": cmd_costs,
    "reconcile": cmd_reconcile,
    "payments": cmd_payments,
    "accruals": cmd_accruals,
    "report": cmd_report,
}
