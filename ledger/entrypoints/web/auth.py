"""Who is asking: a bearer token, an OIDC token, or a signed session cookie — never the request body.

* ``Authorization: Bearer obc_…`` — a token issued by ``obc-ledger token issue`` (looked up by hash);
* ``Authorization: Bearer <JWT>`` — an OIDC token from the configured issuer (ledger.adapters.oidc);
* the web view's session cookie ``obc_session``: HMAC-signed, HttpOnly, SameSite=Strict; it holds
  the token id (checked again on every request, so a revoked token ends its sessions) or, after an
  OIDC sign-in, the subject, actor and expiry the verified token gave.

Form posts carry a CSRF token derived from the session (HMAC of its value); sign-in forms a
double-submit cookie. Missing or bad credentials → 401 with ``WWW-Authenticate``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request, Response

from ledger.adapters.oidc import ActsAsSystem, InvalidToken
from ledger.domain.errors import LedgerError

SESSION_COOKIE = "obc_session"
CSRF_COOKIE = "obc_csrf"
SESSION_SECONDS = 8 * 3600
REALM = 'Bearer realm="obc-ledger"'
security_log = logging.getLogger("obc_ledger.security")


def log_refusal(request: Request | None, event: str, **fields: Any) -> None:
    """One JSON line on the security log (stderr): a refused sign-in or credential, and who
    (``client`` null when the refusal is decided away from the request: the access log has it)."""
    client = request.client.host if request is not None and request.client else None
    security_log.warning(
        json.dumps(
            {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": event,
                "client": client,
                **fields,
            }
        )
    )


def record_refusal(world: Any, principal: str, actor: str, action: str, reason: str) -> None:
    """An AccessRefused event of ``actor``, recorded with ``principal`` (who was refused)."""
    world.write(principal, lambda: world.services.access.record_refusal(actor, action, reason))


@dataclass(frozen=True)
class Principal:
    actor: str  # commissioner:bccg, provider:circle, auditor, system
    principal: str  # token:tok_… or oidc:<subject>: recorded beside the actor on every event
    name: str
    via: str  # bearer | oidc | session

    @property
    def role(self) -> str:
        return self.actor.partition(":")[0]


class Unauthenticated(HTTPException):
    def __init__(self, message: str, error: str | None = None) -> None:
        header = REALM + (f', error="{error}"' if error else "")
        super().__init__(status_code=401, detail=message, headers={"WWW-Authenticate": header})
        self.code = "unauthenticated" if error is None else error


def same(a: str, b: str) -> bool:
    """``a == b`` in constant time; any text (hmac.compare_digest refuses non-ASCII str, a 500)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())

    def encode(self, data: dict[str, Any]) -> str:
        payload = _b64(json.dumps({**data, "exp": int(time.time()) + SESSION_SECONDS}).encode())
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cookie: str) -> dict[str, Any] | None:
        payload, _, mac = cookie.partition(".")
        if not payload or not same(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(data, dict) or int(data.get("exp", 0)) < time.time():
            return None
        return data

    def csrf(self, cookie: str) -> str:
        return self._mac("csrf:" + cookie)

    def check_csrf(self, cookie: str, given: str | None) -> bool:
        return bool(given) and same(self.csrf(cookie), given or "")


def start_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    """Set the signed session cookie on ``response``: HttpOnly, SameSite=Strict, Secure over HTTPS,
    for :data:`SESSION_SECONDS` (a token sign-in and an OIDC sign-in alike)."""
    response.set_cookie(
        SESSION_COOKIE,
        request.app.state.sessions.encode({**data, "sid": secrets.token_urlsafe(18)}),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=SESSION_SECONDS,
    )


def end_session(request: Request, response: Response) -> dict[str, Any] | None:
    """Sign the request's session out: recorded on the server (every copy of its cookie is refused
    from now on, in every worker) and its cookie deleted. Returns what the session held."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    data = request.app.state.sessions.decode(cookie) if cookie else None
    if data is not None and isinstance(data.get("sid"), str):
        expires = datetime.fromtimestamp(int(data.get("exp", 0)), UTC)
        request.app.state.world.tokens.end_session(data["sid"], expires)
    response.delete_cookie(SESSION_COOKIE)
    return data


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def from_token(world: Any, token: str) -> Principal:
    """A principal from a bearer token (an issued token, or an OIDC JWT when OIDC is configured)."""
    if world.oidc is not None and world.oidc.looks_like_jwt(token):
        try:
            ident = world.oidc.verify(token)
        except ActsAsSystem as exc:  # signed by the issuer, so who asked is known: recorded
            record_refusal(world, f"oidc:{exc.subject}", "system", "authenticate", exc.message)
            security_log.warning(
                json.dumps(
                    {
                        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "event": "token_refused",
                        "reason": "acts_as_system",
                        "principal": f"oidc:{exc.subject}",
                    }
                )
            )
            raise Unauthenticated(exc.message, "invalid_token") from None
        except InvalidToken as exc:
            if exc.code == "oidc_unavailable":  # the issuer, not the token: 503, the client may retry
                raise LedgerError(exc.message, code="oidc_unavailable") from None
            raise Unauthenticated(exc.message, "invalid_token") from None
        return Principal(ident.actor, f"oidc:{ident.subject}", ident.name, "oidc")
    record = world.tokens.verify(token)
    if record is None:
        raise Unauthenticated("the token is unknown, revoked or expired", "invalid_token")
    return Principal(record.actor, f"token:{record.token_id}", record.name, "bearer")


def from_session(world: Any, sessions: Sessions, cookie: str) -> Principal | None:
    data = sessions.decode(cookie)
    if data is None:
        return None
    sid = data.get("sid")
    if not isinstance(sid, str) or not sid or world.tokens.session_ended(sid):
        return None  # signed out (on the server: a copy of the cookie is refused too), or no id
    if "token_id" in data:
        record = world.tokens.active(str(data["token_id"]))
        if record is None:
            return None
        return Principal(record.actor, f"token:{record.token_id}", record.name, "session")
    if "sub" in data and "actor" in data and int(data.get("oidc_exp", 0)) > time.time():
        return Principal(str(data["actor"]), f"oidc:{data['sub']}", str(data.get("name", "")), "session")
    return None


def authenticate(request: Request) -> Principal:
    """The request's principal: its bearer token, else its session cookie; 401 when neither holds."""
    world = request.app.state.world
    header = request.headers.get("authorization")
    principal: Principal | None = None
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("give 'Authorization: Bearer TOKEN'", "invalid_request")
        principal = from_token(world, token.strip())
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthenticated("authentication required: a bearer token or a signed-in session")
        principal = from_session(world, request.app.state.sessions, cookie)
        if principal is None:
            raise Unauthenticated("the session has ended; sign in again", "invalid_token")
    request.state.principal = principal.principal  # for the access log
    return principal
