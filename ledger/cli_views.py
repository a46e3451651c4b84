"""The auditor's read-side commands: explain, costs, reconcile, report.

Registered on the ``obc-ledger`` parser by :func:`add_view_commands`; each is
thin: read the (caught-up) read models, assemble in ``projections``, print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable


def add_view_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("explain", "why a year's figures are what they are: submissions, thresholds, scores, risk share")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--indicator", metavar="K", help="only this indicator (or sub-indicator)")
    p = command("costs", "open book: cost reports by provider, period and case; budget vs cost variance")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p = command("reconcile", "compare a year with its baselines, budget and historical spend, and a payment "
                             "register (exit 3 when anything does not reconcile)")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--payments", type=Path, metavar="FILE.csv",
                   help="the finance system's payment register: CSV with header period,party,amount")
    p = command("payments", "every payment decided, by period and party, in the payment-register format "
                            "`reconcile --payments` reads (period,party,amount)")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, help="only this contract year (default: every year of the term)")
    p.add_argument("--csv", action="store_true", help="CSV with the header period,party,amount")
    p = command("report", "write the auditor's report: a self-contained HTML page with charts")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, help="only this contract year (default: every year of the term)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    p.add_argument("--as-of", dest="as_of", metavar="TIMESTAMP",
                   help="the report as the ledger stood then: only events recorded up to that instant")


def cmd_explain(args: argparse.Namespace) -> int:
    from projections.explain import explain, render

    from .cli import _emit, _read

    data = explain(_read(args), args.contract_id, args.year, args.indicator)
    _emit(args, data, lambda: render(data))
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    from projections.costs import costs, render

    from .cli import _emit, _read

    data = costs(_read(args), args.contract_id, args.year)
    _emit(args, data, lambda: render(data))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from projections.reconcile import (EXIT_NOT_RECONCILED, InvalidRegister, failure, read_register, reconcile,
                                       render)

    from .cli import EXIT_ERROR, _emit, _position_note, _read

    register = None
    if args.payments is not None:
        try:
            register = read_register(args.payments)
        except InvalidRegister as exc:
            _stderr(args, exc.to_dict(), [f"error: {exc.code}: {exc.message}"]
                    + [f"  {where}: {message}" for where, message in exc.problems])
            return EXIT_ERROR
    result = reconcile(_read(args), args.contract_id, args.year, register,
                       str(args.payments) if args.payments else None)
    result["position"] = args._position
    _emit(args, result, lambda: render(result))
    _position_note(args)
    if result["reconciled"]:
        return 0
    error = failure(result)
    _stderr(args, {**error.to_dict(), "mismatches": len(result["mismatches"])},
            [f"error: {error.code}: {error.message}"])
    return EXIT_NOT_RECONCILED


def cmd_payments(args: argparse.Namespace) -> int:
    import csv

    from projections.reconcile import payment_schedule

    from .cli import _emit, _position_note, _read

    rows = payment_schedule(_read(args), args.contract_id, args.year)
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["period", "party", "amount"])
        writer.writerows([r["period"], r["party"], r["amount"]] for r in rows)
        _position_note(args)
        return 0
    _emit(args, rows, lambda: "\n".join(
        f"year {r['year']}  {r['period']:<18} {r['party']:<16} {r['amount']:>16}" for r in rows)
        or "no payments decided yet")
    _position_note(args)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from projections.report import write

    from .cli import _emit, _open, _projections

    if args.as_of:
        from projections.bootstrap import Projections, parse_instant

        projections = Projections.as_of(_open(args), parse_instant(args.as_of), {args.contract_id})
    else:
        projections = _projections(args)
    summary = write(projections, args.contract_id, args.out, args.year)
    _emit(args, summary, lambda: (f"wrote {summary['out']} ({summary['bytes']:,} bytes): years "
                                  f"{', '.join(map(str, summary['years']))}, {summary['decisions']} decision(s), "
                                  f"{summary['charts']} chart(s), log position {summary['max_notification_id']}, "
                                  + ("verified" if summary["verified"] else "VERIFICATION FAILED: "
                                     + "; ".join(summary["verification_problems"][:3]))))
    return 0


def _stderr(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data), file=sys.stderr)
    else:
        for line in lines:
            print(line, file=sys.stderr)


VIEW_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "explain": cmd_explain, "costs": cmd_costs, "reconcile": cmd_reconcile, "payments": cmd_payments,
    "report": cmd_report,
}
