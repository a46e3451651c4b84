"""Settlement: ``pay``, ``close-year``, ``restate``, ``completeness`` and the shadow ``whatif``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.adapters.render import render_statement
from ledger.adapters.tables import table
from ledger.domain.errors import InvalidCommand
from ledger.entrypoints.cli.common import emit, read_document, year_range
from ledger.entrypoints.cli.context import Context, Handler


def pay(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--through", required=True, metavar="PERIOD", help="YYYY-MM or YYYY-Qn")
    return cmd_pay


def close_year(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("year", type=int)
    return cmd_close_year


def completeness(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, help="one contract year (default: every year of the term)")
    return cmd_completeness


def whatif(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("file", type=Path, nargs="?", help="the variation (YAML, as for contract vary)")
    p.add_argument(
        "--years",
        metavar="A-B",
        help="the years to settle (default: from the variation's effective year to the last closed year)",
    )
    p.add_argument(
        "--schedule-of-year",
        dest="schedule_of_year",
        type=int,
        metavar="Z",
        help="settle the years with the schedule entry and risk-share terms in force in year Z",
    )
    return cmd_whatif


def restate(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument("year", type=int)
    return cmd_restate


def cmd_pay(args: argparse.Namespace, ctx: Context) -> int:
    decided = ctx.services.settlement.pay(args.contract_id, args.through, actor=ctx.actor)
    emit(
        args,
        decided,
        lambda: (
            table(
                [
                    ("contract_id", "contract"),
                    ("year", "year"),
                    ("period", "period"),
                    ("amount", "core instalment"),
                ],
                decided,
                money_columns=["amount"],
            )
            if decided
            else f"no instalments due through {args.through} (all already decided)"
        ),
    )
    return 0


def cmd_close_year(args: argparse.Namespace, ctx: Context) -> int:
    statement = ctx.services.settlement.close_year(args.contract_id, args.year, actor=ctx.actor)
    gaps = ctx.services.settlement.data_gaps(args.contract_id, args.year)
    for line in gaps.lines():  # the close went ahead on the data held: say what was never sent
        print(f"warning: year {args.year} of {args.contract_id}: {line}", file=sys.stderr)
    emit(
        args,
        statement,
        lambda: (
            f"closed year {args.year} of {args.contract_id}\n\n"
            + render_statement(statement)
            + _completeness_text(gaps)
        ),
    )
    return 0


def _completeness_text(gaps: Any) -> str:
    if gaps.complete:
        return "\n\ndata completeness: every cost report and indicator period is in"
    return (
        f"\n\ndata completeness: {len(gaps.cost_reports_missing)} cost report(s) and "
        f"{len(gaps.submissions_missing)} indicator period(s) missing\n"
        + "\n".join(f"  {line}" for line in gaps.lines())
    )


def cmd_completeness(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.ledger  # the read check (READ_TARGETS) has run
    contract, definition = app.load_contract(args.contract_id)
    years = [args.year] if args.year else list(range(1, definition.term_years(contract.extended) + 1))
    found = [ctx.services.settlement.data_gaps(args.contract_id, year) for year in years]
    emit(
        args,
        [g.to_dict() for g in found],
        lambda: "\n".join(
            f"year {g.year}: "
            + ("complete" if g.complete else f"{len(g.lines())} gap(s)")
            + "".join(f"\n  {line}" for line in g.lines())
            for g in found
        ),
    )
    return 0


def cmd_whatif(args: argparse.Namespace, ctx: Context) -> int:
    text = None
    if args.file is not None:
        text = read_document(args.file)
    if args.file is None and args.schedule_of_year is None:
        raise InvalidCommand("give a variation FILE or --schedule-of-year Z")
    result = ctx.services.registration.whatif(
        args.contract_id, text, year_range(args.years), args.schedule_of_year, actor=ctx.actor
    )
    emit(args, result, lambda: whatif_text(result))
    return 0


def whatif_text(result: Mapping[str, Any]) -> str:
    """Each year's statement in force beside the what-if, with the difference per line and per party."""

    def net(st: dict[str, Any]) -> Decimal:
        return Decimal(st["total"]) + sum((Decimal(t["amount"]) for t in st["true_ups"]), Decimal("0"))

    def money_of(value: Any) -> Decimal:
        return Decimal(value) if value is not None else Decimal("0")

    def lines_of(st: dict[str, Any]) -> list[tuple[str, Decimal]]:
        risk = st.get("risk_share") or {}
        return [
            ("budget", money_of(st["budget"])),
            ("core", money_of(st["core"]["annual"])),
            ("outcome payment", money_of(st["outcomes"]["payment"])),
            ("reserve", money_of(st["reserve"])),
            ("risk-share adjustment", money_of(risk.get("adjustment"))),
            ("high-cost reimbursement", money_of(st["high_cost_reimbursement"])),
            ("rate card", money_of((st.get("rate_card") or {}).get("payment"))),
            ("health gain", sum((money_of(g["payment"]) for g in st.get("health_gain") or []), Decimal("0"))),
            ("year-close payment", money_of(st["year_close_payment"])),
            ("true-ups", net(st) - Decimal(st["total"])),
            ("net total", net(st)),
        ]

    out = [
        f"what-if for {result['contract_id']}: {result['variation_id']} (effective from year "
        f"{result['effective_from_year']}); nothing recorded"
    ]
    for y in result["years"]:
        now, new = y["in_force"], y["whatif"]
        out.append("")
        out.append(f"year {y['year']}{'':<19}{'in force':>18}{'what-if':>18}{'difference':>18}")
        for (label, a), (_, b) in zip(lines_of(now), lines_of(new), strict=True):
            out.append(f"  {label:<24}{a:>18,.2f}{b:>18,.2f}{b - a:>18,.2f}")
        out.append("  by party")
        for party, diff in y["difference"]["by_party"].items():
            before = Decimal(new["by_party"].get(party, "0")) - Decimal(diff)
            out.append(
                f"    {party:<22}{before:>18,.2f}{Decimal(new['by_party'].get(party, '0')):>18,.2f}"
                f"{Decimal(diff):>18,.2f}"
            )
    return "\n".join(out)


def cmd_restate(args: argparse.Namespace, ctx: Context) -> int:
    true_up = ctx.services.settlement.restate(args.contract_id, args.year, actor=ctx.actor)
    # a rate card's caps run over the term: later closed years whose figures changed are restated too (§8)
    later = ctx.services.settlement.restate_later_years(args.contract_id, args.year, actor=ctx.actor)
    doc: dict[str, Any] = {"contract_id": args.contract_id, "year": args.year, "true_up": true_up}
    if later:
        doc["later_years"] = later

    def text() -> str:
        lines = [
            f"true-up for {args.contract_id} year {args.year}: {true_up['amount']} ({true_up['reason']})"
            if true_up
            else f"restated {args.contract_id} year {args.year}: no difference, nothing recorded"
        ]
        lines += [
            f"true-up for {args.contract_id} year {y['year']}: {y['true_up']['amount']} "
            f"({y['true_up']['reason']})"
            for y in later
        ]
        return "\n".join(lines)

    emit(args, doc, text)
    return 0
