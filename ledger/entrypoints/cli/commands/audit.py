"""The auditor's integrity commands: ``verify`` (seals, snapshots, index, witnesses, read models), ``digest``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from uuid import UUID

from sqlalchemy import select

from ledger.adapters import audit, witness
from ledger.adapters.signing import load_public_key, load_signer
from ledger.adapters.tables import meter
from ledger.domain.errors import LedgerError
from ledger.entrypoints.cli.common import emit
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.parser import from_environment
from ledger.usecases.checks import check_derived
from projections import schema as t
from projections.verify import verify_read_models

BOOTSTRAP_ENV = "OBC_LEDGER_BOOTSTRAP"


def verify(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument(
        "--against", metavar="DIGEST", help="a digest (JSON text or a file) the log must still extend"
    )
    p.add_argument(
        "--public-key",
        dest="public_key",
        metavar="FILE",
        help="the Ed25519 public key every digest checked must be signed with",
    )
    p.add_argument(
        "--witness",
        metavar="DIR|kafka:TOPIC",
        help="a witness (directory, or kafka:ledger.digests): the log must extend every digest in it",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(BOOTSTRAP_ENV),
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server(s) for --witness kafka:TOPIC (or ${BOOTSTRAP_ENV})",
    )
    p.add_argument(
        "--read-models",
        dest="read_models",
        action="store_true",
        help="also rebuild the read models in a scratch database and compare them row by row",
    )
    p.add_argument(
        "--seals-only",
        dest="seals_only",
        action="store_true",
        help="check the seals only: skip replaying snapshots and rebuilding the record index",
    )
    return cmd_verify


def digest(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument(
        "--sign-key", dest="sign_key", metavar="FILE", help="the private key (obc-ledger keys generate)"
    )
    p.add_argument(
        "--publish",
        action="append",
        metavar="DIR|kafka:TOPIC",
        default=None,
        help="also append the digest to a witness: a directory, or kafka:ledger.digests (repeatable)",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(BOOTSTRAP_ENV),
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server(s) for --publish kafka:TOPIC (or ${BOOTSTRAP_ENV})",
    )
    return cmd_digest


# verify's options that decide what is checked: taken from the environment, each is announced
CHECK_OPTIONS = {
    "against": "--against",
    "public_key": "--public-key",
    "witness": "--witness",
    "seals_only": "--seals-only",
    "read_models": "--read-models",
}


def environment_notes(args: argparse.Namespace) -> list[str]:
    """The OBC_LEDGER_* variables that set what verify checks (never silently: noted on stderr)."""
    taken = from_environment(args)
    found = [(option, taken[dest]) for dest, option in CHECK_OPTIONS.items() if dest in taken]
    if "bootstrap" in taken and str(args.witness or "").startswith("kafka:"):  # whose topic is read
        found.append(("--bootstrap", taken["bootstrap"]))
    for option, variable in found:
        print(
            f"note: {option} from ${variable} (the environment, not the command line): it changes what is checked",
            file=sys.stderr,
        )
    return [variable for _, variable in found]


def cmd_verify(args: argparse.Namespace, ctx: Context) -> int:
    from_env = environment_notes(args)
    against = audit.load_digest(args.against) if args.against else None
    engine: list[Any] = []

    def recorded(oid: str) -> tuple[str, str, int | None] | None:
        """What the read models recorded of a stream: they name it even when its first event was altered."""

        if not engine:
            engine.append(ctx.projections().engine)
        with engine[0].connect() as conn:
            row = conn.execute(
                select(t.streams).where(t.streams.c.originator_id == str(UUID(hex=oid)))
            ).first()
        return (row.stream, row.contract_id, row.year) if row else None

    public = None
    if args.public_key:
        public = load_public_key(args.public_key)
    witnessed = ctx.app.read_witness(args.witness, args.bootstrap) if args.witness else []
    if public is not None:
        for name, one in witnessed:  # a refusal names the witness file
            try:
                audit.check_signature(one, public)
            except LedgerError as exc:
                raise LedgerError(f"witness {name}: {exc.message}", code=exc.code) from None
    app = ctx.ledger
    with meter("verifying the seals", app.recorder.max_notification_id()) as advance:
        result = audit.verify(
            app,
            against,
            public_key=public,
            witnessed=[d for _, d in witnessed],
            names=audit.StreamNames(recorded),
            progress=advance,
        )
    out = result.to_dict()
    out["from_environment"] = from_env
    if result.witness is not None:
        for (name, _), check in zip(witnessed, result.witness, strict=False):  # an order problem may follow
            check["file"] = name
        order = witness.order_problem(witnessed)
        if order is not None:
            result.witness.append(order)
            result.ok = out["ok"] = False
        failing = [c for c in result.witness if not c["ok"]]
        out["witness_first_not_extended"] = failing[0] if failing else None
    lines = []
    if result.problem:
        lines.append(f"BROKEN after {result.checked} good event(s): {result.problem['message']}")
    else:
        lines.append(f"ok: {result.checked} event(s) verified; head #{result.position} {result.head_hash}")
    if result.digest_checked:
        lines.append(
            ("ok: " if result.digest_checked["ok"] else "BROKEN: ") + result.digest_checked["message"]
        )
    if (against is not None or witnessed) and public is None:
        lines.append("note: digest signatures not checked (give --public-key to require them)")
    if result.witness is not None:
        failing = [c for c in result.witness if not c["ok"]]
        lines.append(
            f"BROKEN: witness digest {failing[0].get('file')}: {failing[0]['message']}"
            if failing
            else f"ok: the log extends all {len(witnessed)} witnessed digest(s)"
        )
    if not result.problem and not args.seals_only:
        derived = check_derived(app)
        out["derived_state"] = derived
        result.ok = out["ok"] = result.ok and not derived["problems"]
        problems = derived["problems"]
        lines.append(
            f"ok: {derived['snapshots_checked']} snapshot(s) replayed and {derived['index_rows']} record "
            f"index row(s) matched the events"
            if not problems
            else "\n".join(f"BROKEN: {p['message']}" for p in problems[:50])
            + (f"\n… {len(problems) - 50} more (--json lists every one)" if len(problems) > 50 else "")
        )
    if args.read_models and not result.problem:
        models = verify_read_models(ctx.projections())
        out["read_models"] = models
        result.ok = out["ok"] = result.ok and models["ok"]
        lines.append(models_text(models))
    emit(args, out, lambda: "\n".join(lines))
    return 0 if result.ok else 1


def models_text(models: dict[str, Any]) -> str:
    if models["ok"]:
        return (
            f"ok: the read models match a rebuild from the events ({models['rows_compared']} row(s) in "
            f"{len(models['tables'])} table(s), position #{models['position']})"
        )
    if models.get("unsettled"):
        return f"INCONCLUSIVE: {models['unsettled']}"
    lines = [
        f"BROKEN: the read models differ from a rebuild from the events ({len(models['differences'])} "
        f"difference(s)):"
    ]
    for d in models["differences"][:200]:
        key = ", ".join(f"{k}={v}" for k, v in d["key"].items())
        lines.append(
            f"  {d['table']} ({key}) {d['column'] or 'row'}: live {d['live']} / from events {d['from_events']}"
        )
    if len(models["differences"]) > 200:
        lines.append(f"  … {len(models['differences']) - 200} more (--json lists every one)")
    return "\n".join(lines)


def cmd_digest(args: argparse.Namespace, ctx: Context) -> int:
    signer = None
    if args.sign_key:
        signer = load_signer(args.sign_key)
    verified = checked_chain(args, ctx)
    value = audit.digest(ctx.ledger, signer, verified)
    for target in args.publish or ():
        ctx.app.publish_digest(value, target, args.bootstrap)
    print(json.dumps(value, indent=2 if getattr(args, "json", False) else None))
    return 0


def checked_chain(args: argparse.Namespace, ctx: Context) -> audit.Verification:
    """Refuse (``log_broken``) to issue a digest of a log whose seal chain does not verify, or that no
    longer extends the latest digest of a witness it is published to, a directory or a Kafka topic
    (:func:`audit.check_head`)."""
    app = ctx.ledger
    latest = []
    for target in args.publish or ():
        if target.startswith("kafka:"):
            try:
                held = ctx.app.read_witness(target, args.bootstrap)
            except LedgerError as exc:  # a topic not created yet holds no digest: the first publish makes it
                if exc.code != "topic_not_found":
                    raise
                held = []
        else:
            held = ctx.app.read_witness(target, args.bootstrap) if os.path.isdir(target) else []
        if held:
            latest.append(held[-1])
    with meter("verifying the seals", app.recorder.max_notification_id()) as advance:
        return audit.check_head(app, latest, progress=advance)
