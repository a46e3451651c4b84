"""``contract``, ``budget`` and ``baseline``: register, vary and inspect contracts and their budgets."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.adapters.tables import table
from ledger.entrypoints.cli.common import emit, read_document, yaml_text
from ledger.entrypoints.cli.context import Context, Handler


def contract(parser: argparse.ArgumentParser, command: Any) -> Handler:
    csub = parser.add_subparsers(dest="contract_command", metavar="ACTION")
    csub.required = True
    p = command("register", "register a contract from its YAML definition (validated as a whole)", csub)
    p.add_argument("file", type=Path)
    command("list", "list registered contracts", csub)
    p = command("show", "show a contract's terms, budgets and baselines", csub)
    p.add_argument("contract_id")
    p = command(
        "extend", "record the contract's extension (extension_years) and set those years' budgets", csub
    )
    p.add_argument("contract_id")
    p = command("vary", "record a contract variation (validated against every year it affects)", csub)
    p.add_argument("contract_id")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--restate",
        action="store_true",
        help="the variation reaches a closed year: restate the closed years from its effective year",
    )
    p = command("terms", "the terms in force for a contract year, in the contract definition's shape", csub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p = command("variations", "the contract's variations, in recording order", csub)
    p.add_argument("contract_id")
    return cmd_contract


def budget(parser: argparse.ArgumentParser, command: Any) -> Handler:
    bsub = parser.add_subparsers(dest="budget_command", metavar="ACTION")
    bsub.required = True
    p = command("show", "budget by year with every recorded change and its reason", bsub)
    p.add_argument("contract_id")
    p = command("adjust", "record a reasoned budget adjustment for a year", bsub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--amount", required=True, help="the new budget for the year, e.g. 12000000.00")
    p.add_argument(
        "--reason", required=True, help="efficiency, uplift, population, extension, variation or correction"
    )
    p.add_argument("--note", default="")
    return cmd_budget


def baseline(parser: argparse.ArgumentParser, command: Any) -> Handler:
    blsub = parser.add_subparsers(dest="baseline_command", metavar="ACTION")
    blsub.required = True
    p = command("record", "record (or re-record) an indicator's historical baseline", blsub)
    p.add_argument("contract_id")
    p.add_argument("key", help="indicator or sub-indicator id")
    p.add_argument("value")
    p.add_argument("--note", default="")
    return cmd_baseline


def cmd_contract(args: argparse.Namespace, ctx: Context) -> int:
    action = args.contract_command
    if action == "register":
        text = read_document(args.file)
        definition, created = ctx.services.registration.register_contract(text, actor=ctx.actor)
        data = {
            "contract_id": definition.id,
            "registered": created,
            "years": definition.years,
            "indicators": len(definition.indicators),
        }
        emit(
            args,
            data,
            lambda: (
                f"registered contract {definition.id} ({definition.name}): "
                f"{definition.years} years, {len(definition.indicators)} indicators"
                if created
                else f"contract {definition.id} is already registered with this definition; nothing changed"
            ),
        )
        return 0
    if action == "list":
        may = ctx.readable()
        rows = [r for r in ctx.projections().current().contracts() if may(r["contract_id"])]
        emit(
            args,
            rows,
            lambda: (
                table(
                    [
                        ("contract_id", "contract"),
                        ("model", "model"),
                        ("start", "start"),
                        ("years", "years"),
                        ("period", "period"),
                        ("lead_provider", "lead provider"),
                        ("name", "name"),
                    ],
                    rows,
                )
                if rows
                else "no contracts registered"
            ),
        )
        return 0
    if action == "extend":
        years = ctx.services.registration.record_extension(args.contract_id, actor=ctx.actor)
        emit(
            args,
            {"contract_id": args.contract_id, "extension_years": years},
            lambda: f"extended {args.contract_id}: years {', '.join(map(str, years))} added",
        )
        return 0
    if action == "vary":
        text = read_document(args.file)
        result = ctx.services.registration.vary_contract(
            args.contract_id, text, restate=args.restate, actor=ctx.actor
        )
        emit(args, result, lambda: _variation_text(result))
        return 0
    if action == "terms":
        terms = ctx.services.registration.contract_terms(args.contract_id, args.year)
        emit(args, terms, lambda: yaml_text(terms))
        return 0
    if action == "variations":
        variations = ctx.services.registration.variations(args.contract_id)
        emit(
            args,
            variations,
            lambda: (
                "\n\n".join(
                    table(
                        [
                            ("variation_id", "variation"),
                            ("effective_from_year", "from year"),
                            ("reason", "reason"),
                        ],
                        [r],
                    )
                    + "".join(f"\n  - {c}" for c in r["changes"])
                    for r in variations
                )
                or "no variations recorded"
            ),
        )
        return 0
    data = ctx.projections().current().contract(args.contract_id)
    emit(args, data, lambda: json.dumps(data, indent=2))
    return 0


def _variation_text(result: Mapping[str, Any]) -> str:
    if not result["recorded"]:
        return (
            f"variation {result['variation_id']} of {result['contract_id']} is already recorded with this "
            f"content; nothing changed"
        )
    lines = [
        f"recorded variation {result['variation_id']} of {result['contract_id']}, effective from year "
        f"{result['effective_from_year']}: {result['reason']}"
    ]
    lines += [f"  - {c}" for c in result["changes"]]
    for r in result["restated"]:
        lines.append(f"  year {r['year']} restated: true-up {Decimal(r['amount']):,.2f} ({r['reason']})")
    return "\n".join(lines)


def cmd_budget(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.ledger
    if args.budget_command == "adjust":
        amount = ctx.services.registration.adjust_budget(
            args.contract_id, args.year, args.amount, args.reason, args.note, actor=ctx.actor
        )
        emit(
            args,
            {"contract_id": args.contract_id, "year": args.year, "budget": format(amount, "f")},
            lambda: f"budget for {args.contract_id} year {args.year} is now {amount:,.2f} ({args.reason})",
        )
        return 0
    contract, _ = app.load_contract(args.contract_id)
    rows = [
        {"year": h["year"], "amount": format(h["amount"], "f"), "reason": h["reason"], "note": h["note"]}
        for h in contract.budget_history
    ]
    emit(
        args,
        rows,
        lambda: table(
            [("year", "year"), ("amount", "budget"), ("reason", "reason"), ("note", "note")],
            rows,
            money_columns=["amount"],
        ),
    )
    return 0


def cmd_baseline(args: argparse.Namespace, ctx: Context) -> int:
    ctx.services.registration.record_baseline(
        args.contract_id, args.key, args.value, args.note, actor=ctx.actor
    )
    emit(
        args,
        {"contract_id": args.contract_id, "key": args.key, "value": args.value},
        lambda: f"baseline {args.key} = {args.value} recorded for {args.contract_id}",
    )
    return 0
