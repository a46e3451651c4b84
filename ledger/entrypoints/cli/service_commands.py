"""``obc-ledger serve`` and ``obc-ledger token issue|list|revoke``.

``add_parsers(sub, command)`` adds them to the CLI's parser; ``COMMANDS`` maps each to its function.
LEAD: re-wire into H-A's command table at merge.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any


def add_parsers(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("serve", "serve the HTTP API and web view (FastAPI on uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--oidc-issuer",
        dest="oidc_issuer",
        metavar="URL",
        help="accept ID tokens of this issuer (also $OBC_LEDGER_OIDC_ISSUER)",
    )
    p.add_argument("--oidc-audience", dest="oidc_audience", metavar="AUD", help="the audience they must name")
    p.add_argument("--oidc-jwks", dest="oidc_jwks", metavar="FILE|URL", help="the issuer's JSON Web Key Set")
    p.add_argument(
        "--oidc-actor-claim",
        dest="oidc_actor_claim",
        metavar="CLAIM",
        help="the claim naming the actor (default obc_actor)",
    )

    token = sub.add_parser("token", help="bearer tokens for the HTTP service")
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION", parser_class=type(token))
    tsub.required = True
    p = command("issue", "issue a token for an actor; the token is printed once, only its hash is kept", tsub)
    p.add_argument(
        "--actor",
        dest="token_actor",
        required=True,
        help="commissioner:ID, provider:ID, auditor[:NAME] or system",
    )
    p.add_argument("--name", required=True, help="who holds it, e.g. 'Finance manager'")
    p.add_argument("--expires", metavar="DURATION", help="e.g. 90d, 12h, 30m (default: never)")
    command("list", "list tokens (never the tokens themselves)", tsub)
    p = command("revoke", "revoke a token: its sessions end at once", tsub)
    p.add_argument("token_id")


def _store(args: argparse.Namespace) -> Any:
    from ledger.adapters.config import database_url
    from ledger.adapters.tokens import TokenStore

    return TokenStore(database_url(getattr(args, "db", None)))


def cmd_token(args: argparse.Namespace) -> int:
    from ledger.adapters.tokens import parse_duration
    from ledger.entrypoints.cli.main import _emit

    store = _store(args)
    if args.token_command == "issue":
        record, token = store.issue(
            args.token_actor, args.name, parse_duration(args.expires) if args.expires else None
        )
        data = {**record.to_dict(), "token": token}
        _emit(
            args,
            data,
            lambda: (
                f"token {record.token_id} for {record.actor} ({record.name})"
                + (f", expires {record.expires_at:%Y-%m-%d %H:%M} UTC" if record.expires_at else "")
                + f":\n{token}\n(shown once: only its hash is kept)"
            ),
        )
        return 0
    if args.token_command == "revoke":
        record = store.revoke(args.token_id)
        _emit(args, record.to_dict(), lambda: f"revoked {record.token_id} ({record.actor}, {record.name})")
        return 0
    rows = [r.to_dict() for r in store.list()]
    _emit(
        args,
        rows,
        lambda: (
            "\n".join(
                f"{r['token_id']:<22} {r['actor']:<28} {'revoked' if r['revoked_at'] else 'active':<8} "
                f"expires {r['expires_at'] or 'never':<26} {r['name']}"
                for r in rows
            )
            or "no tokens issued"
        ),
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ledger.adapters.config import database_url

    os.environ["OBC_LEDGER_DB"] = database_url(getattr(args, "db", None))
    if getattr(args, "projections_db", None):
        os.environ["OBC_LEDGER_PROJECTIONS_DB"] = args.projections_db
    for option, name in (
        ("oidc_issuer", "ISSUER"),
        ("oidc_audience", "AUDIENCE"),
        ("oidc_jwks", "JWKS"),
        ("oidc_actor_claim", "ACTOR_CLAIM"),
    ):
        if getattr(args, option, None):
            os.environ[f"OBC_LEDGER_OIDC_{name}"] = getattr(args, option)
    from ledger.entrypoints.web.app import app_from_env

    app_from_env()  # open once here: a bad database URL or OIDC configuration fails before listening
    uvicorn.run(
        "ledger.entrypoints.web.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
    )
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"serve": cmd_serve, "token": cmd_token}
