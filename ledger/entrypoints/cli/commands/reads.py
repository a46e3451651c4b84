"""Reads of the read models: ``statement``, ``history``, ``submissions``, ``decisions``, ``replay``."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.adapters.render import render_statement
from ledger.adapters.tables import table
from ledger.entrypoints.cli.common import emit, utc
from ledger.entrypoints.cli.context import Context, Handler
from projections.bootstrap import parse_instant


def statement(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="TIMESTAMP",
        help="the statement as it stood at this recorded instant (ISO 8601)",
    )
    return cmd_statement


def history(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    return cmd_history


def submissions(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--indicator")
    p.add_argument("--period")
    p.add_argument("--all-versions", dest="all_versions", action="store_true")
    return cmd_submissions


def decisions(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    return cmd_decisions


def replay(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument(
        "--as-of",
        dest="as_of",
        required=True,
        metavar="TIMESTAMP",
        help="ISO 8601; naive times are UTC; a bare date means the end of that day",
    )
    p.add_argument("--contract")
    return cmd_replay


def cmd_statement(args: argparse.Namespace, ctx: Context) -> int:
    if args.as_of is not None:  # an empty --as-of "" is refused (invalid_instant), not taken for none
        read = ctx.app.projections_as_of(parse_instant(args.as_of), {args.contract_id}).read
    else:
        read = ctx.read()
    statement = read.statement(args.contract_id, args.year)
    emit(args, statement, lambda: render_statement(statement))
    ctx.position_note()
    return 0


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.read().history(args.contract_id, args.year)
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("at", "recorded at (UTC)"),
                    ("event", "event"),
                    ("period", "period"),
                    ("amount", "amount"),
                    ("reason", "reason"),
                    ("actor", "by"),
                ],
                [dict(r, at=utc(r["at"])) for r in rows],
                money_columns=["amount"],
            )
            if rows
            else "nothing recorded for that year yet"
        ),
    )
    return 0


def cmd_submissions(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.read().submissions(args.contract_id, args.indicator, args.period, args.all_versions)
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("period", "period"),
                    ("indicator_id", "indicator"),
                    ("provider_id", "provider"),
                    ("figure", "figure"),
                    ("submission_id", "submission"),
                    ("status", "status"),
                ],
                [
                    dict(
                        r,
                        figure=(f"{r['numerator']}/{r['denominator']}" if r["value"] is None else r["value"]),
                        status="current" if r["current"] else f"superseded by {r['superseded_by']}",
                    )
                    for r in rows
                ],
            )
            if rows
            else "no submissions"
        ),
    )
    return 0


def cmd_decisions(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.read().decisions(args.contract_id)
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("year", "year"),
                    ("kind", "decision"),
                    ("decided_at", "decided at (UTC)"),
                    ("amount", "amount"),
                    ("reason", "reason"),
                ],
                [dict(r, decided_at=utc(r["decided_at"])) for r in rows],
                money_columns=["amount"],
            )
            if rows
            else "no decisions yet"
        ),
    )
    return 0


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    instant = parse_instant(args.as_of)
    read = ctx.app.projections_as_of(instant, {args.contract} if args.contract else None).read
    may = ctx.readable()
    contracts = [args.contract] if args.contract else [cid for cid in read.contract_ids() if may(cid)]
    data: dict[str, Any] = {"as_of": instant.isoformat(), "contracts": {}}
    for cid in contracts:
        data["contracts"][cid] = {
            "statements": [read.statement(cid, y) for y in read.settled_years(cid)],
            "decisions": read.decisions(cid),
        }

    def text() -> str:
        out = [f"ledger as recorded at {instant.isoformat()}"]
        for cid, c in data["contracts"].items():
            out.append(f"\n== {cid}: {len(c['decisions'])} decision(s)")
            if c["decisions"]:
                out.append(
                    table(
                        [
                            ("year", "year"),
                            ("kind", "decision"),
                            ("decided_at", "decided at (UTC)"),
                            ("amount", "amount"),
                            ("reason", "reason"),
                        ],
                        [dict(d, decided_at=utc(d["decided_at"])) for d in c["decisions"]],
                        money_columns=["amount"],
                    )
                )
            for st in c["statements"]:
                out += ["", render_statement(st)]
        return "\n".join(out)

    emit(args, data, text)
    return 0
