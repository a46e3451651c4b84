"""Sign-in through the OIDC issuer: the authorization-code flow with PKCE.

``GET /signin/oidc`` makes a fresh state, nonce and PKCE verifier, keeps them in a short-lived
signed cookie (``obc_oidc``: HttpOnly, ``SameSite=Lax`` so that it returns with the issuer's
redirect, path ``/signin/oidc``, ten minutes) and sends the browser to the issuer's authorization
endpoint. ``GET /signin/oidc/callback`` checks the state against the cookie, exchanges the code at
the token endpoint (with the verifier, and the client secret of a confidential client), verifies the
ID token (signature, issuer, audience, expiry, nonce: :class:`ledger.adapters.oidc.OidcVerifier`)
and starts the same signed session as a token sign-in.

Refusals are recorded: each on the security log (one JSON line: the reason and the client, never a
code, state, nonce or token); a valid ID token with the wrong nonce (a replayed or injected token:
its subject is known) also as an ``AccessRefused`` event of its actor with principal ``oidc:<sub>``.
A state that does not match names nobody, so it is not written to the event log, where anyone could
otherwise add events without credentials.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ledger.adapters.oidc import InvalidToken, NonceMismatch, OidcIdentity
from ledger.domain.errors import LedgerError
from ledger.entrypoints.web.auth import same, start_session
from ledger.entrypoints.web.pages import render, signin_page

router = APIRouter(include_in_schema=False)
security_log = logging.getLogger("obc_ledger.security")

FLOW_COOKIE = "obc_oidc"
FLOW_PATH = "/signin/oidc"
FLOW_SECONDS = 600
ERROR_CODE = re.compile(r"[a-z_]{1,40}")


def _refused(request: Request, reason: str, message: str, **extra: Any) -> Response:
    client = request.client.host if request.client else None
    security_log.warning(
        json.dumps(
            {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": "signin_refused",
                "via": "oidc",
                "reason": reason,
                "client": client,
                **extra,
            }
        )
    )
    response = signin_page(request, status=400 if reason != "unavailable" else 502, message=message)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


def _redirect_url(request: Request, configured: str | None) -> str:
    return configured or str(request.url_for("oidc_callback"))


@router.get("/signin/oidc")
def oidc_begin(request: Request) -> Response:
    world = request.app.state.world
    if world.signin is None:
        return signin_page(request, status=404, message="single sign-on is not configured here")
    try:
        flow = world.signin.begin(_redirect_url(request, world.signin.config.redirect_url))
    except LedgerError as exc:
        return _refused(request, "unavailable", f"the sign-on service cannot be reached ({exc.code})")
    cookie = request.app.state.sessions.encode(
        {
            "state": flow.state,
            "nonce": flow.nonce,
            "verifier": flow.verifier,
            "redirect": flow.redirect_url,
            "until": int(time.time()) + FLOW_SECONDS,
        }
    )
    response = RedirectResponse(flow.url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=FLOW_SECONDS,
        path=FLOW_PATH,
    )
    return response


@router.get("/signin/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    world = request.app.state.world
    if world.signin is None:
        return signin_page(request, status=404, message="single sign-on is not configured here")
    flow = request.app.state.sessions.decode(request.cookies.get(FLOW_COOKIE, ""))
    if flow is None or int(flow.get("until", 0)) < time.time():
        return _refused(
            request, "no_signin_in_progress", "the sign-in expired or was not started here; try again"
        )
    if not state or not same(str(flow.get("state", "")), state):
        return _refused(request, "state_mismatch", "the sign-in did not come back as it was sent; try again")
    if error:  # the issuer's error code only (RFC 6749 §4.1.2.1); its free text is not shown
        shown = error if ERROR_CODE.fullmatch(error) else "an error"
        return _refused(request, "issuer_refused", f"the sign-on service refused: {shown}")
    if not code:
        return _refused(request, "no_code", "the sign-on service sent no code; try again")
    try:
        ident = world.signin.finish(code, str(flow["verifier"]), str(flow["nonce"]), str(flow["redirect"]))
    except NonceMismatch as exc:
        who = exc.identity
        principal = f"oidc:{who.subject}"
        world.write(
            principal,
            lambda: world.services.access.record_refusal(
                who.actor, "signin", "the ID token's nonce is not this sign-in's (replayed or injected)"
            ),
        )
        return _refused(
            request,
            "nonce_mismatch",
            "the sign-in was refused: the token is not this sign-in's",
            principal=principal,
        )
    except InvalidToken as exc:
        reason = "unavailable" if exc.code == "oidc_unavailable" else exc.code
        return _refused(request, reason, f"the sign-in was refused: {exc.message}")
    return _start_session(request, ident)


def _start_session(request: Request, ident: OidcIdentity) -> Response:
    data = {"sub": ident.subject, "actor": ident.actor, "name": ident.name, "oidc_exp": ident.expires}
    request.state.principal = f"oidc:{ident.subject}"
    # A page of our own, not a redirect: the session cookie is SameSite=Strict, and a browser would
    # not send it on a redirect chain that began at the issuer's site.
    response = render(request, "signed_in.html.j2", holder=ident.name, actor=ident.actor)
    start_session(request, response, data)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response
