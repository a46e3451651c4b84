"""``obc-ledger serve`` and ``obc-ledger token issue | list | revoke``: the HTTP service and its credentials.

Tokens are issued by the local operator (whoever can run this command against the ledger's
database); the token is printed once and only its hash is kept (:mod:`ledger.adapters.tokens`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ledger.adapters.tables import table
from ledger.adapters.tokens import TokenStore, parse_duration
from ledger.entrypoints.cli.common import emit, utc
from ledger.entrypoints.cli.context import Context, Handler


def serve(p: argparse.ArgumentParser, command: Any) -> Handler:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--forwarded-allow-ips",
        dest="forwarded_allow_ips",
        metavar="IPS",
        help="the TLS-terminating proxies whose X-Forwarded-For/-Proto are believed, comma-separated "
        "addresses or networks (default 127.0.0.1): behind one, cookies are Secure and the client's "
        "address is logged, not the proxy's",
    )
    p.add_argument(
        "--oidc-issuer",
        dest="oidc_issuer",
        metavar="URL",
        help="accept ID tokens of this issuer (also $OBC_LEDGER_OIDC_ISSUER)",
    )
    p.add_argument("--oidc-audience", dest="oidc_audience", metavar="AUD", help="the audience they must name")
    p.add_argument(
        "--oidc-jwks",
        dest="oidc_jwks",
        metavar="FILE|URL",
        help="the issuer's JSON Web Key Set (default: the jwks_uri of its discovery document)",
    )
    p.add_argument(
        "--oidc-actor-claim",
        dest="oidc_actor_claim",
        metavar="CLAIM",
        help="the claim naming the actor (default obc_actor)",
    )
    p.add_argument(
        "--oidc-client-id",
        dest="oidc_client_id",
        metavar="ID",
        help="sign in through the issuer as this client (the audience defaults to it); "
        "a confidential client's secret in $OBC_LEDGER_OIDC_CLIENT_SECRET, never on the command line",
    )
    p.add_argument(
        "--oidc-redirect-url",
        dest="oidc_redirect_url",
        metavar="URL",
        help="the callback registered with the issuer (default: this service's /signin/oidc/callback)",
    )
    return cmd_serve


def token(parser: argparse.ArgumentParser, command: Any) -> Handler:
    tsub = parser.add_subparsers(dest="token_command", metavar="ACTION")
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
    p.add_argument("token_id", help="the token's id (tok_…), as `token issue` or `token list` printed it")
    return cmd_token


def _row(record: Any) -> dict[str, Any]:
    return {k: utc(v) if k.endswith("_at") else v for k, v in record.to_dict().items()}


def cmd_token(args: argparse.Namespace, ctx: Context) -> int:
    store = TokenStore(ctx.app.db_url)
    if args.token_command == "issue":
        record, secret = store.issue(
            args.token_actor, args.name, parse_duration(args.expires) if args.expires else None
        )
        data = {**_row(record), "token": secret}
        emit(
            args,
            data,
            lambda: (
                f"token {record.token_id} for {record.actor} ({record.name})"
                + (f", expires {data['expires_at']}" if record.expires_at else "")
                + f":\n{secret}\n(shown once: only its hash is kept)"
            ),
        )
        return 0
    if args.token_command == "revoke":
        record = store.revoke(args.token_id)
        emit(args, _row(record), lambda: f"revoked {record.token_id} ({record.actor}, {record.name})")
        return 0
    rows = [{**_row(r), "status": "revoked" if r.revoked_at else "active"} for r in store.list()]
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("token_id", "token"),
                    ("actor", "actor"),
                    ("status", "status"),
                    ("expires_at", "expires"),
                    ("name", "name"),
                ],
                [{**r, "expires_at": r["expires_at"] or "never"} for r in rows],
            )
            if rows
            else "no tokens issued"
        ),
    )
    return 0


def cmd_serve(args: argparse.Namespace, ctx: Context) -> int:
    import uvicorn  # the server, loaded only by this command

    from ledger.entrypoints.web.app import app_from_env

    os.environ["OBC_LEDGER_DB"] = ctx.app.db_url  # every worker process builds its own world from these
    if getattr(args, "projections_db", None):
        os.environ["OBC_LEDGER_PROJECTIONS_DB"] = args.projections_db
    for option, name in (
        ("oidc_issuer", "ISSUER"),
        ("oidc_audience", "AUDIENCE"),
        ("oidc_jwks", "JWKS"),
        ("oidc_actor_claim", "ACTOR_CLAIM"),
        ("oidc_client_id", "CLIENT_ID"),
        ("oidc_redirect_url", "REDIRECT_URL"),
    ):
        if getattr(args, option, None):
            os.environ[f"OBC_LEDGER_OIDC_{name}"] = getattr(args, option)
    app_from_env()  # open once here: a bad database URL or OIDC configuration fails before listening
    uvicorn.run(
        "ledger.entrypoints.web.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=getattr(args, "forwarded_allow_ips", None) or "127.0.0.1",
    )
    return 0
