"""``dispute raise | resolve | list``: disputes on payment decisions."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.adapters.tables import table
from ledger.entrypoints.cli.common import emit, utc
from ledger.entrypoints.cli.context import Context, Handler


def dispute(parser: argparse.ArgumentParser, command: Any) -> Handler:
    dsub = parser.add_subparsers(dest="dispute_command", metavar="ACTION")
    dsub.required = True
    p = command(
        "raise", "a provider disputes a year's latest decision (within the contract's time bar)", dsub
    )
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--reason", required=True)
    p = command("resolve", "the commissioner upholds or rejects a dispute", dsub)
    p.add_argument("contract_id")
    p.add_argument("dispute_id")
    p.add_argument("--year", type=int, required=True)
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--upheld", action="store_true")
    verdict.add_argument("--rejected", action="store_true")
    p.add_argument("--note", required=True)
    p.add_argument(
        "--adjust",
        metavar="AMOUNT",
        help="upheld: a manual adjustment of this amount (else the year is restated)",
    )
    p.add_argument("--party", help="who receives the adjustment (default the lead provider)")
    p = command("list", "disputes of a contract", dsub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int)
    return cmd_dispute


def cmd_dispute(args: argparse.Namespace, ctx: Context) -> int:
    action = args.dispute_command
    if action == "raise":
        d = ctx.services.disputes.raise_dispute(args.contract_id, args.year, args.reason, actor=ctx.actor)
        emit(
            args,
            d,
            lambda: (
                f"dispute {d['dispute_id']} raised on the {d['decision']} of {args.contract_id} "
                f"year {args.year} (decided {d['decision_at']})"
            ),
        )
        return 0
    if action == "resolve":
        out = ctx.services.disputes.resolve_dispute(
            args.contract_id,
            args.year,
            args.dispute_id,
            args.upheld,
            args.note,
            actor=ctx.actor,
            adjust=args.adjust,
            party=args.party,
        )

        def text() -> str:
            line = f"dispute {out['dispute_id']} {out['status']}"
            if "adjustment" in out:
                line += f"; adjustment {out['adjustment']['amount']} to {out['adjustment']['party']}"
            elif (true_up := out.get("true_up")) is not None:
                line += f"; true-up {true_up['amount']} ({true_up['reason']})"
            elif out["status"] == "upheld":
                line += "; the year was restated with no difference"
            return line

        emit(args, out, text)
        return 0
    rows = ctx.services.disputes.disputes(args.contract_id, args.year)
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("year", "year"),
                    ("dispute_id", "dispute"),
                    ("status", "status"),
                    ("raised_at", "raised at (UTC)"),
                    ("raised_by", "by"),
                    ("reason", "reason"),
                    ("resolution", "resolution"),
                ],
                [
                    dict(
                        r,
                        raised_at=utc(r["raised_at"]),
                        resolution=r["resolution"]["note"] if r["resolution"] else None,
                    )
                    for r in rows
                ],
            )
            if rows
            else "no disputes"
        ),
    )
    return 0
