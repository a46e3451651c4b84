"""Administration: ``db init``, ``keys generate``, ``projections run | rebuild | status``, ``demo``."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from ledger.adapters.roles import ROLES
from ledger.adapters.signing import generate, key_id, load_public_key
from ledger.adapters.tables import meter, table
from ledger.entrypoints.cli.common import emit
from ledger.entrypoints.cli.context import Context, Handler
from ledger.entrypoints.cli.demo import run_demo


def db(parser: argparse.ArgumentParser, command: Any) -> Handler:
    dbsub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    p = command(
        "init",
        "create the tables; with --roles (PostgreSQL) the least-privilege roles, grants, "
        "append-only trigger and row-level security",
        dbsub,
    )
    p.add_argument(
        "--roles", action="store_true", help="owner, writer, projector, reader and service roles (PostgreSQL)"
    )
    p.add_argument(
        "--print-sql",
        dest="print_sql",
        action="store_true",
        help="print the SQL --roles runs (for a DBA to review or run) instead of running it",
    )
    return cmd_db


def keys(parser: argparse.ArgumentParser, command: Any) -> Handler:
    ksub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    ksub.required = True
    p = command("generate", "a new key pair: the private key (mode 0600) and the public key beside it", ksub)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    return cmd_keys


def projections(parser: argparse.ArgumentParser, command: Any) -> Handler:
    psub = parser.add_subparsers(dest="projections_command", metavar="ACTION")
    psub.required = True
    p = command("run", "catch the read models up with the event log", psub)
    p.add_argument("--follow", action="store_true", help="keep following new events until interrupted")
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS")
    command("rebuild", "drop every read model and rebuild it from position zero", psub)
    command("status", "the read models' position in the event log and their lag", psub)
    return cmd_projections


def demo(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="directory for the demo's generated files (default ./demo-output)",
    )
    return cmd_demo


def cmd_db(args: argparse.Namespace, ctx: Context) -> int:
    if not args.roles:
        ctx.projections()  # opening the ledger creates the event tables.projector.create_tables()
        emit(args, {"initialised": True}, lambda: "created the event tables and read models")
        return 0
    sql = ctx.app.init_roles(execute=not args.print_sql)
    if args.print_sql:
        print(";\n".join(sql) + ";")
        return 0
    emit(
        args,
        {"roles": list(ROLES), "statements": len(sql)},
        lambda: (
            f"roles {', '.join(ROLES)} set up ({len(sql)} statements); "
            f"make each worker's login user a member of one (see deploy/README.md)"
        ),
    )
    return 0


def cmd_keys(args: argparse.Namespace, ctx: Context) -> int:
    private, public = generate(args.out)
    kid = key_id(load_public_key(public))
    emit(
        args,
        {"private_key": str(private), "public_key": str(public), "key_id": kid},
        lambda: (
            f"private key {private} (mode 0600: keep it off the ledger's machines)\n"
            f"public key  {public} (key id {kid})"
        ),
    )
    return 0


def cmd_projections(args: argparse.Namespace, ctx: Context) -> int:
    proj = ctx.projections()
    action = args.projections_command
    if action == "status":
        status = proj.projector.status()
        if status.get("alarm") == "log_truncated":
            emit(
                args,
                status,
                lambda: (
                    f"ALARM log_truncated: position {status['position']} of {status['head']}: "
                    f"{status['message']}"
                ),
            )
            return 1

        def text() -> str:
            lines = [f"position {status['position']} of {status['head']} (lag {status['lag']})"]
            skipped = status["quarantined"]
            if skipped:
                lines.append(
                    f"quarantined {len(skipped)} event(s) the read models could not hold "
                    f"(`projections rebuild` tries them again):"
                )
                lines.append(
                    table(
                        [
                            ("notification_id", "event #"),
                            ("event_type", "event"),
                            ("contract_id", "contract"),
                            ("year", "year"),
                            ("error", "error"),
                            ("reason", "reason"),
                        ],
                        skipped,
                    )
                )
            return "\n".join(lines)

        emit(args, status, text)
        return 0
    if action == "rebuild":
        with meter("rebuilding the read models", proj.projector.head()) as advance:
            n = proj.projector.rebuild(progress=advance)
        emit(args, {"rebuilt": n}, lambda: f"rebuilt the read models from {n} event(s)")
        return 0
    if args.follow:
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            n = proj.projector.follow(poll_seconds=args.poll, stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            n = 0
        emit(args, {"projected": n}, lambda: f"stopped following after {n} event(s)")
        return 0
    n = proj.projector.run()
    emit(args, {"projected": n, **proj.projector.status()}, lambda: f"projected {n} event(s); up to date")
    return 0


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    return run_demo(db=getattr(args, "db", None), out=args.out, as_json=args.json)
