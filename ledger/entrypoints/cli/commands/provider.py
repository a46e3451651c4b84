"""``obc-ledger provider …``: provider keys, signed records, and the auditor's proof of them.

    provider key add CONTRACT PARTY PUBLIC.pem      the commissioner registers a party's Ed25519 key
    provider key list CONTRACT                      keys, parties, when added and revoked
    provider key revoke CONTRACT KEY_ID [--reason]  a revoked key signs nothing more
    provider require-signatures CONTRACT [--off]    refuse unsigned records from now on (or stop)
    provider sign FILE --sign-key KEY [--out OUT]   add each JSON line's ``signature`` field
    provider signatures CONTRACT [--year Y] [--record ID]   re-verify every signed record (exit 1 if not)

Thin: each parses, calls :mod:`ledger.usecases.signatures`, prints.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ledger.adapters.signing import load_signer, signature_text
from ledger.adapters.tabular import row_record
from ledger.domain.errors import LedgerError
from ledger.domain.records import RecordRefused, parse_json_line
from ledger.domain.signatures import SIGNATURE_FIELD, canonical_bytes_of, signature_value
from ledger.entrypoints.cli.common import emit, output_file
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.errors import EXIT_ERROR, EXIT_REFUSED
from ledger.usecases.signatures import ProviderKeys


def provider(parser: argparse.ArgumentParser, command: Callable[..., argparse.ArgumentParser]) -> Handler:
    """The ``provider`` command group (``command`` adds an action with the global options)."""
    psub = parser.add_subparsers(dest="provider_command", metavar="ACTION")
    psub.required = True
    key = psub.add_parser("key", help="register, list and revoke providers' Ed25519 public keys")
    ksub = key.add_subparsers(dest="key_command", metavar="ACTION")
    ksub.required = True
    p = command(
        "add",
        "the commissioner registers a provider party's Ed25519 public key for the contract",
        ksub,
    )
    p.add_argument("contract_id")
    p.add_argument("party", help="the provider party the key signs for")
    p.add_argument("public_key", type=Path, metavar="PUBLIC.pem", help="made by `obc-ledger keys generate`")
    p = command("list", "the contract's provider keys and whether it requires signed records", ksub)
    p.add_argument("contract_id")
    p = command("revoke", "the commissioner revokes a provider key: records it signs are refused", ksub)
    p.add_argument("contract_id")
    p.add_argument("key_id")
    p.add_argument("--reason", help="recorded with the revocation (default 'revoked')")
    p = command(
        "require-signatures",
        "the commissioner requires records signed with a registered provider key (--off: no longer)",
        psub,
    )
    p.add_argument("contract_id")
    p.add_argument("--off", dest="signatures_off", action="store_true", help="accept unsigned records again")
    p = command(
        "sign",
        "sign each record of a JSON-lines or CSV file: adds its 'signature' field or column (key "
        "id and Ed25519 signature over the record's canonical bytes)",
        psub,
    )
    p.add_argument("file", help="JSON-lines file ('-' for stdin) or FILE.csv")
    p.add_argument(
        "--sign-key", dest="record_sign_key", required=True, metavar="KEY.pem", help="the private key"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write (default stdout)")
    p = command(
        "signatures",
        "an auditor's proof: every signed record re-verified from the stored events, with its key "
        "and party (exit 1 when one does not verify)",
        psub,
    )
    p.add_argument("contract_id")
    p.add_argument("--year", type=int)
    p.add_argument("--record", dest="record_id", metavar="ID", help="only this record id")
    return cmd_provider


def cmd_provider(args: argparse.Namespace, ctx: Context) -> int:
    action = args.provider_command
    if action == "sign":
        return _sign(args)
    app = ctx.ledger
    keys = ProviderKeys(app)
    actor = ctx.actor
    if action == "key":
        if args.key_command == "add":
            try:
                pem = args.public_key.read_bytes()[: 16 * 1024]
            except OSError as exc:
                raise LedgerError(
                    f"cannot read {args.public_key}: {exc.strerror}", code="key_unreadable"
                ) from None
            row = keys.add(args.contract_id, args.party, pem, actor=actor)
            emit(
                args,
                row,
                lambda: (
                    f"key {row['key_id']} registered for {row['party']} on {args.contract_id}"
                    if row["added"]
                    else f"key {row['key_id']} is already registered for {row['party']}"
                ),
            )
        elif args.key_command == "list":
            if actor != "system":
                ctx.services.access.authorize_read(actor, args.contract_id)
            data = keys.list(args.contract_id)
            emit(args, data, lambda: _render_keys(data))
        else:
            row = keys.revoke(args.contract_id, args.key_id, args.reason or "revoked", actor=actor)
            emit(args, row, lambda: f"key {row['key_id']} ({row['party']}) revoked at {row['revoked_at']}")
        return 0
    if action == "require-signatures":
        required = keys.require(args.contract_id, not args.signatures_off, actor=actor)
        emit(
            args,
            {"contract_id": args.contract_id, "require_signatures": required},
            lambda: (
                f"{args.contract_id}: "
                + (
                    "records must be signed with a registered provider key"
                    if required
                    else "unsigned records accepted"
                )
            ),
        )
        return 0
    if actor != "system":
        ctx.services.access.authorize_read(actor, args.contract_id)
    proof = keys.proofs(args.contract_id, year=args.year, record_id=args.record_id)
    emit(args, proof, lambda: _render_proof(proof))
    return EXIT_ERROR if proof["failed"] else 0


def _render_keys(data: dict[str, Any]) -> str:
    lines = [
        f"{data['contract_id']}: signed records "
        + ("required" if data["require_signatures"] else "optional (a signature present is verified)")
    ]
    if not data["keys"]:
        lines.append("  no provider keys registered")
    for k in data["keys"]:
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        lines.append(f"  {k['key_id']}  {k['party']:<16} added {k['added_at']}  {state}")
    return "\n".join(lines)


def _render_proof(proof: dict[str, Any]) -> str:
    lines = [
        f"{proof['contract_id']}: {proof['signed']} signed record(s), {proof['verified']} verified, "
        f"{proof['failed']} failed; {proof['unsigned_accepted']} accepted unsigned"
    ]
    for r in proof["records"]:
        mark = "verified" if r["verified"] else "FAILED: " + "; ".join(r["problems"])
        lines.append(
            f"  year {r['year']}  {r['record_type']} {r['record_id']}  signed by {r['party']} "
            f"(key {r['key_id']}) accepted {r['accepted_at']}  {mark}"
        )
    return "\n".join(lines)


def _sign(args: argparse.Namespace) -> int:
    """Add a ``signature`` field to every record line; a line that is not a record is copied unsigned."""

    signer = load_signer(args.record_sign_key)
    if str(args.file).lower().endswith(".csv"):
        return _sign_csv(args, signer)
    if args.file == "-":
        source: Any = sys.stdin
    else:
        try:
            source = open(args.file, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise LedgerError(f"cannot read {args.file}: {exc.strerror}", code="file_not_found") from None
    with ExitStack() as stack:
        stack.callback(lambda: source is sys.stdin or source.close())
        out = stack.enter_context(output_file(args.out, source=args.file)) if args.out else sys.stdout
        signed, unsigned = _sign_lines(source, out, signer)
    print(f"signed {signed} record(s) with key {signer.key_id}; {unsigned} not signed", file=sys.stderr)
    return EXIT_REFUSED if unsigned else 0


def _sign_lines(source: Any, out: Any, signer: Any) -> tuple[int, int]:
    signed = unsigned = 0
    for number, line in enumerate(source, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            out.write(line)
            continue
        problem: Any = None
        try:
            obj = parse_json_line(text)
            if isinstance(obj, dict) and SIGNATURE_FIELD in obj:
                problem = "already signed"
            else:
                data = canonical_bytes_of(obj)
        except RecordRefused as exc:
            problem = exc.refusal
        if problem is not None:
            unsigned += 1
            print(f"line {number}: not signed ({problem})", file=sys.stderr)
            out.write(text + "\n")
            continue
        value = signature_value(signer.key_id, signature_text(signer.sign(data)))
        body = text.rstrip()
        out.write(f"{body[:-1].rstrip()}, {json.dumps(SIGNATURE_FIELD)}: {json.dumps(value)}}}\n")
        signed += 1
    return signed, unsigned


def _sign_csv(args: argparse.Namespace, signer: Any) -> int:
    """The same for a CSV upload: a ``signature`` column (added, or filled in) on every record row."""

    try:
        with open(args.file, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise LedgerError(f"cannot read {args.file}: {exc.strerror}", code="file_not_found") from None
    if not rows:
        raise LedgerError(f"{args.file} is empty", code="empty_file")
    header = [h.strip() for h in rows[0]]
    if SIGNATURE_FIELD not in header:
        header.append(SIGNATURE_FIELD)
    column = header.index(SIGNATURE_FIELD)
    signed = unsigned = 0
    out_rows = [header]
    for number, cells in enumerate(rows[1:], 2):
        cells = cells + [""] * (len(header) - len(cells))
        cells[column] = ""
        try:
            obj = row_record(header, list(cells))
            data = canonical_bytes_of(obj) if obj is not None else None
        except RecordRefused as exc:
            unsigned += 1
            print(f"row {number}: not signed ({exc.refusal})", file=sys.stderr)
            data = None
        if data is not None:
            cells[column] = signature_value(signer.key_id, signature_text(signer.sign(data)))
            signed += 1
        out_rows.append(cells)
    if args.out:
        with output_file(args.out, source=args.file, newline="") as out:
            csv.writer(out, lineterminator="\n").writerows(out_rows)
    else:
        csv.writer(sys.stdout, lineterminator="\n").writerows(out_rows)
    print(f"signed {signed} row(s) with key {signer.key_id}; {unsigned} not signed", file=sys.stderr)
    return EXIT_REFUSED if unsigned else 0
