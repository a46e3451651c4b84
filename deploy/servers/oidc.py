"""A loopback OpenID Connect issuer: discovery, authorize, token and JWKS, for the sign-in tests.

Speaks what a relying party using the authorization-code flow with PKCE needs (OpenID Connect
Core 1.0 §3.1, Discovery 1.0, RFC 6749 §4.1, RFC 7636), as a real issuer (Keycloak, Entra ID)
answers it:

* ``GET /.well-known/openid-configuration`` — the discovery document (``issuer`` is this server's
  URL; authorization, token and JWKS endpoints; S256 only);
* ``GET /authorize`` — checks the client id, the registered redirect URI, ``response_type=code``,
  ``scope`` holding ``openid`` and an S256 ``code_challenge``, then approves at once as
  ``server.user`` (the test's signed-in user: its ``sub`` and claims) and redirects to the redirect
  URI with a one-time ``code`` and the ``state`` as given; a bad request is a 400 page when the
  redirect URI cannot be trusted, else an ``error=`` redirect;
* ``POST /token`` — ``grant_type=authorization_code``: the client authenticated (HTTP basic or
  ``client_secret`` in the form), the code unused, unexpired and issued to this client and
  redirect URI, and ``SHA256(code_verifier)`` equal to its challenge; answers an RS256 ID token
  (``iss``, ``aud`` = the client id, ``sub``, ``iat``, ``exp``, ``nonce``, the user's claims) and
  an access token; errors as RFC 6749 §5.2 (``invalid_grant``, ``invalid_client``);
* ``GET /jwks`` — the public key set;
* ``GET /logout`` — RP-initiated logout (the discovery document's ``end_session_endpoint``): the
  client id and a ``post_logout_redirect_uri`` registered in ``post_logout_uris``, then back there.

Test hooks: ``user`` (who is approved), ``nonce_override`` (sign ID tokens with another nonce:
a replayed or injected token), ``requests`` (method, path) as received, ``logouts`` (the logout
requests' parameters). Plain classes, no pytest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class OidcIssuer:
    def __init__(
        self,
        client_id: str = "obc-ledger",
        client_secret: str | None = "issuer-test-secret",
        redirect_uris: list[str] | None = None,
        user: dict[str, Any] | None = None,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris: list[str] = list(redirect_uris or [])
        self.user: dict[str, Any] = dict(user or {"sub": "u-1", "name": "Test user"})
        self.nonce_override: str | None = None
        self.post_logout_uris: list[str] = []  # where /logout may send a browser back
        self.logouts: list[dict[str, str]] = []  # the RP-initiated logouts received
        self.requests: list[tuple[str, str]] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "issuer-" + secrets.token_hex(4)
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(body).encode(), "application/json", headers)

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                issuer.requests.append(("GET", split.path))
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                if split.path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery())
                elif split.path == "/jwks":
                    self._json(200, issuer.jwks())
                elif split.path == "/logout":  # RP-initiated logout: back to a registered URI
                    back = query.get("post_logout_redirect_uri", "")
                    if query.get("client_id") == issuer.client_id and back in issuer.post_logout_uris:
                        issuer.logouts.append(query)
                        self._send(302, b"", "text/plain", {"Location": back})
                    else:
                        self._json(400, {"error": "invalid_request"})
                elif split.path == "/authorize":
                    status, location, page = issuer.authorize(query)
                    if location:
                        self._send(302, b"", "text/plain", {"Location": location})
                    else:
                        self._send(status, page.encode(), "text/html; charset=utf-8")
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                split = urlsplit(self.path)
                issuer.requests.append(("POST", split.path))
                length = int(self.headers.get("Content-Length", 0) or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if split.path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                status, body = issuer.token(form, self.headers.get("Authorization"))
                self._json(status, body, {"Pragma": "no-cache"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "end_session_endpoint": self.url + "/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [dict(jwk, kid=self.kid, use="sig", alg="RS256")]}

    def authorize(self, q: dict[str, str]) -> tuple[int, str | None, str]:
        """(status, redirect location or None, page)."""
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or redirect not in self.redirect_uris:
            return 400, None, "<h1>unknown client or redirect URI</h1>"

        def back(**params: str) -> tuple[int, str | None, str]:
            if "state" in q:
                params["state"] = q["state"]
            return 302, f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}", ""

        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return back(error="unsupported_response_type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 required")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "client_id": self.client_id,
                "redirect_uri": redirect,
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "user": dict(self.user),
                "until": time.time() + 60,
            }
        return back(code=code)

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != self.client_id or (self.client_secret is not None and secret != self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # one use only
        if (
            grant is None
            or grant["until"] < time.time()
            or grant["redirect_uri"] != form.get("redirect_uri")
            or _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) != grant["challenge"]
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            **grant["user"],
        }
        nonce = self.nonce_override if self.nonce_override is not None else grant["nonce"]
        if nonce is not None:
            claims["nonce"] = nonce
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def __enter__(self) -> OidcIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
