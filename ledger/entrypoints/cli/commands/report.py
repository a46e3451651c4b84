"""``report``: the auditor's HTML report (and its PDF).

A module of its own: the report draws its charts with matplotlib, which the other read-side
commands need not import.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ledger.entrypoints.cli.common import emit, examples
from ledger.entrypoints.cli.context import Context, Handler
from projections.bootstrap import parse_instant
from projections.report import print_pdf, write


def report(p: argparse.ArgumentParser, command: Any) -> Handler:
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
    examples(
        p,
        "obc-ledger report beds-msk --out report.html",
        "obc-ledger report beds-msk --out report.html --pdf report.pdf",
    )
    return cmd_report


def cmd_report(args: argparse.Namespace, ctx: Context) -> int:
    if args.as_of is not None:  # an empty --as-of "" is refused (invalid_instant), not taken for none
        projections = ctx.app.projections_as_of(parse_instant(args.as_of), {args.contract_id})
    else:
        projections = ctx.projections()
    summary = write(projections, args.contract_id, args.out, args.year, args.digest)
    if args.pdf is not None:
        summary.update(print_pdf(args.out, args.pdf))
    emit(
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
