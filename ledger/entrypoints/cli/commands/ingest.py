"""``ingest``, ``rejected`` and ``template``: providers' records in, refusals out, upload templates."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from ledger.adapters.framing import read_lines, text_lines
from ledger.adapters.render import render_rejections
from ledger.adapters.tables import reading
from ledger.adapters.tabular import (
    format_of,
    read_csv,
    read_xlsx,
    template_reference,
    template_rows,
    write_csv,
    write_template_xlsx,
)
from ledger.domain.errors import LedgerError
from ledger.domain.variations import year_terms
from ledger.entrypoints.cli.common import _positive_int, emit, output_file
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.errors import EXIT_REFUSED, UsageError


def ingest(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("file")
    p.add_argument("--source", help="source name kept with rejected records (default: the file name)")
    p.add_argument(
        "--check",
        action="store_true",
        help="a dry run: report what would be accepted, duplicate or rejected (each refusal with its "
        "line and reason) against the ledger as it stands; record nothing",
    )
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "xlsx"),
        default=None,
        help="the file's format (default: from its name: .csv, .xlsx, else JSON lines)",
    )
    p.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        default=None,
        metavar="N",
        help="refuse (and keep) any line longer than N bytes (default 1048576; "
        "also OBC_LEDGER_MAX_LINE_BYTES)",
    )
    return cmd_ingest


def rejected(parser: argparse.ArgumentParser, command: Any) -> Handler:
    rsub = parser.add_subparsers(dest="rejected_command", metavar="ACTION")
    rsub.required = True
    p = command("list", "list rejected records", rsub)
    p.add_argument("--contract")
    p.add_argument("--code", help="only this reason code")
    return cmd_rejected


def template(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("contract_id")
    p.add_argument(
        "--year", type=int, required=True, help="the contract year whose periods the template lists"
    )
    p.add_argument(
        "--format",
        choices=("csv", "xlsx"),
        default="csv",
        help="csv (one kind, to stdout or --out) "
        "or xlsx (every kind on its own sheet, and a reference sheet; needs --out)",
    )
    p.add_argument(
        "--kind",
        choices=("submissions", "cost_reports", "population", "outcome_claims", "prom_episodes"),
        default="submissions",
        help="with csv: which records (default submissions)",
    )
    p.add_argument("--out", type=Path, help="write the template to this file")
    return cmd_template


def cmd_ingest(args: argparse.Namespace, ctx: Context) -> int:
    source = args.source or ("stdin" if args.file == "-" else Path(args.file).name)
    refused: list[Any] = []

    kind = format_of(args.file, args.format)
    if kind == "xlsx" and args.file == "-":
        raise UsageError("obc-ledger: an xlsx workbook is read from a file, not standard input")

    def run(stream: Any) -> Any:  # bytes: encoding and line length are judged line by line (or row by row)
        if kind == "xlsx":
            framed = read_xlsx(Path(args.file), args.max_line_bytes)
        elif isinstance(stream, io.TextIOBase) or not hasattr(stream, "readline"):
            framed = text_lines(stream, args.max_line_bytes)
        elif kind == "csv":
            framed = read_csv(stream, args.max_line_bytes)
        else:
            framed = read_lines(stream, args.max_line_bytes)
        framed = reading(framed, stream, f"{'checking' if args.check else 'ingesting'} {source}")
        if args.check:
            report, refused[:] = ctx.services.ingest.check_framed(framed, source, actor=ctx.actor)
            return report
        return ctx.services.ingest.ingest_framed(framed, source, actor=ctx.actor)

    if args.file == "-":
        report = run(getattr(sys.stdin, "buffer", sys.stdin))
    else:
        try:
            handle = open(args.file, "rb")  # noqa: SIM115  (only the open itself is file_not_found)
        except OSError as exc:
            raise LedgerError(f"cannot read {args.file}: {exc.strerror}", code="file_not_found") from None
        with handle:
            report = run(handle)
    data = report.to_dict()
    if args.check:
        data["checked_only"] = True
        data["refused"] = [
            {"line": r.line, "code": r.refusal.code, "field": r.refusal.field, "message": r.refusal.message}
            for r in refused
        ]

    def text() -> str:
        if args.check:
            head = [
                f"would accept {report.accepted}, duplicates {report.duplicates}, reject {report.rejected}"
                + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
                + "; nothing was recorded (--check)"
            ]
            return "\n".join(head + [f"  line {r.line}: {r.refusal}" for r in refused])
        lines = [
            f"accepted {report.accepted}, duplicates {report.duplicates}, rejected {report.rejected}"
            + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
        ]
        for code, n in sorted(report.by_code.items()):
            lines.append(f"  rejected {n:>6}  {code}")
        for (cid, year), n in sorted(report.late.items()):
            lines.append(
                f"  {n} record(s) for closed year {year} of {cid}: run `obc-ledger restate {cid} {year}`"
            )
        for change in report.budget_changes:
            lines.append(
                f"  budget for {change['contract_id']} year {change['year']} now {change['budget']} "
                f"(population count {change['record_id']})"
            )
        if report.rejected:
            lines.append("  see `obc-ledger rejected list` for each rejected record and its reason")
        return "\n".join(lines)

    emit(args, data, text)
    return EXIT_REFUSED if report.rejected else 0  # the good records are kept either way


def cmd_rejected(args: argparse.Namespace, ctx: Context) -> int:
    may = ctx.readable()
    rows = [
        r
        for r in ctx.read().rejected()
        if (not args.contract or r["contract_id"] == args.contract)
        and (not args.code or r["code"] == args.code)
        and may(r["contract_id"])
    ]
    emit(args, rows, lambda: render_rejections(rows))
    return 0


def cmd_template(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.ledger
    contract, definition = app.load_contract(args.contract_id)
    calendar = definition.calendar(contract.extended)
    app.check_year(calendar, args.year)

    definition = year_terms(definition, args.year)  # the indicators and parties in force that year
    sheets = template_rows(definition, calendar, args.year)
    if args.format == "xlsx":
        if args.out is None:
            raise UsageError("obc-ledger: template --format xlsx needs --out FILE")
        write_template_xlsx(
            args.out,
            sheets,
            template_reference(definition, calendar, args.year),
            list(definition.providers),
            [m.id for i in definition.indicators for m in i.measures],
        )
        emit(
            args,
            {"out": str(args.out), "sheets": {k: len(v[1]) for k, v in sheets.items()}},
            lambda: f"wrote {args.out}: " + ", ".join(f"{k} ({len(v[1])} rows)" for k, v in sheets.items()),
        )
        return 0
    if args.kind not in sheets:
        raise LedgerError(f"contract {definition.id!r} takes no {args.kind} records", code="invalid_command")
    header, rows = sheets[args.kind]
    text = write_csv(header, rows)
    if args.out is None:
        sys.stdout.write(text)
    else:
        with output_file(args.out) as out:
            out.write(text)
        emit(args, {"out": str(args.out), "rows": len(rows)}, lambda: f"wrote {args.out}: {len(rows)} rows")
    return 0
