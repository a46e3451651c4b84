"""OpenID Connect bearer tokens: a JWT verified against a configured issuer's keys.

Configured by environment (or ``obc-ledger serve`` options):

* ``OBC_LEDGER_OIDC_ISSUER`` — the issuer (``iss``) every token must name;
* ``OBC_LEDGER_OIDC_AUDIENCE`` — the audience (``aud``) it must be for;
* ``OBC_LEDGER_OIDC_JWKS`` — the issuer's JSON Web Key Set: a file path or an https URL;
* ``OBC_LEDGER_OIDC_ACTOR_CLAIM`` — the claim holding the actor (default ``obc_actor``), and
  optionally ``OBC_LEDGER_OIDC_ACTOR_MAP`` — a JSON file mapping that claim's values to actors
  (``{"finance-team": "commissioner:bccg"}``); without it the claim's value must be an actor.

Sign-in through the issuer (the authorization-code flow with PKCE, :class:`OidcClient`) also needs
``OBC_LEDGER_OIDC_CLIENT_ID`` (the audience defaults to it: an ID token is for its client),
``OBC_LEDGER_OIDC_CLIENT_SECRET`` for a confidential client (environment only: never on a command
line) and optionally ``OBC_LEDGER_OIDC_REDIRECT_URL`` (default: the service's own
``/signin/oidc/callback``). The authorization and token endpoints come from the issuer's discovery
document (``ISSUER/.well-known/openid-configuration``, whose ``issuer`` must be ISSUER), or from
``OBC_LEDGER_OIDC_AUTHORIZATION_URL`` and ``OBC_LEDGER_OIDC_TOKEN_URL``. The issuer is reached over
https only (http for a loopback address, for tests).

A token is accepted only when its signature verifies with a key of the set (RS256/ES256/EdDSA,
never ``none`` or a shared secret), and its issuer, audience and expiry (``exp`` required) hold.
The principal recorded on events is ``oidc:<subject>``. ``system`` is never granted by a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from ledger.domain.access import Actor
from ledger.domain.errors import ConfigurationError, LedgerError

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class InvalidToken(LedgerError):
    code = "invalid_token"


class ActsAsSystem(InvalidToken):
    """A correctly signed token whose actor claim is ``system``: refused, and the refusal recorded
    with its subject (the issuer vouched for who asked)."""

    def __init__(self, subject: str) -> None:
        super().__init__("an OIDC token may not act as system")
        self.subject = subject


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    actor: str
    name: str
    expires: int


class NonceMismatch(InvalidToken):
    """A valid ID token, but not issued for this sign-in (a replayed or injected token)."""

    def __init__(self, identity: OidcIdentity) -> None:
        super().__init__("the ID token's nonce is not this sign-in's", code="nonce_mismatch")
        self.identity = identity


@dataclass
class OidcConfig:
    issuer: str
    audience: str
    jwks: str | None = None  # a file path or an http(s) URL; default: the discovery document's jwks_uri
    actor_claim: str = "obc_actor"
    actor_map: dict[str, str] | None = None
    client_id: str | None = None  # sign-in through the issuer (authorization code + PKCE)
    client_secret: str | None = None
    redirect_url: str | None = None
    authorization_url: str | None = None  # default: the discovery document's
    token_url: str | None = None

    @property
    def signin(self) -> bool:
        """Whether users may sign in through the issuer (a client id is configured)."""
        return bool(self.client_id)

    def __repr__(self) -> str:  # never print the client secret
        return f"OidcConfig(issuer={self.issuer!r}, audience={self.audience!r}, client_id={self.client_id!r})"

    @classmethod
    def from_env(cls, environ: Any = None) -> OidcConfig | None:
        env = os.environ if environ is None else environ
        issuer = env.get("OBC_LEDGER_OIDC_ISSUER")
        if not issuer:
            return None
        client_id = env.get("OBC_LEDGER_OIDC_CLIENT_ID") or None
        audience = env.get("OBC_LEDGER_OIDC_AUDIENCE") or client_id
        jwks = env.get("OBC_LEDGER_OIDC_JWKS") or None
        if not audience:
            raise ConfigurationError(
                "OIDC: OBC_LEDGER_OIDC_ISSUER needs OBC_LEDGER_OIDC_AUDIENCE (or OBC_LEDGER_OIDC_CLIENT_ID) too",
                code="invalid_oidc",
            )
        mapping = None
        if env.get("OBC_LEDGER_OIDC_ACTOR_MAP"):
            mapping = json.loads(Path(env["OBC_LEDGER_OIDC_ACTOR_MAP"]).read_text())
        return cls(
            issuer,
            audience,
            jwks,
            env.get("OBC_LEDGER_OIDC_ACTOR_CLAIM") or "obc_actor",
            mapping,
            client_id=client_id,
            client_secret=env.get("OBC_LEDGER_OIDC_CLIENT_SECRET") or None,
            redirect_url=env.get("OBC_LEDGER_OIDC_REDIRECT_URL") or None,
            authorization_url=env.get("OBC_LEDGER_OIDC_AUTHORIZATION_URL") or None,
            token_url=env.get("OBC_LEDGER_OIDC_TOKEN_URL") or None,
        )


class Discovery:
    """The issuer's discovery document (OpenID Connect Discovery 1.0 §4), fetched once when first
    needed and held to name the configured issuer exactly."""

    def __init__(self, issuer: str, timeout: float = 10.0) -> None:  # float-ok: seconds
        self.issuer, self.timeout = issuer, timeout
        self._document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        with self._lock:
            if self._document is None:
                url = _checked_url(self.issuer.rstrip("/") + "/.well-known/openid-configuration", "issuer")
                try:
                    response = httpx.get(url, timeout=self.timeout, follow_redirects=False)
                    response.raise_for_status()
                    doc = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise InvalidToken(
                        f"the issuer's discovery document could not be read: {type(exc).__name__}",
                        code="oidc_unavailable",
                    ) from None
                if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
                    raise InvalidToken("the discovery document names another issuer", code="oidc_unavailable")
                self._document = doc
            return self._document

    def url(self, name: str, what: str) -> str:
        """An endpoint the document names (``jwks_uri``, ``token_endpoint``…), https unless loopback."""
        return _checked_url(str(self.document().get(name) or ""), what)


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self.discovery = Discovery(config.issuer)
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        self._lock = threading.Lock()
        # without --oidc-jwks the keys come from the discovery document's jwks_uri, at the first token
        if config.jwks is not None and config.jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(config.jwks, cache_keys=True, lifespan=300)
        elif config.jwks is not None:
            try:
                self._keys = jwt.PyJWKSet.from_dict(json.loads(Path(config.jwks).read_text()))
            except (OSError, ValueError, jwt.PyJWKSetError) as exc:
                raise ConfigurationError(f"OIDC JWKS {config.jwks}: {exc}", code="invalid_oidc") from None

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and not token.startswith("obc_")

    def _key(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"not a JWT: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        if self._client is None and self._keys is None:
            jwks_uri = self.discovery.url("jwks_uri", "jwks_uri")
            with self._lock:
                if self._client is None:
                    self._client = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=300)
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"no key for this token: {exc}") from None
        assert self._keys is not None
        kid = header.get("kid")
        keys = [k for k in self._keys.keys if kid is None or k.key_id == kid]
        if not keys:
            raise InvalidToken(f"no key {kid!r} in the issuer's key set")
        return keys[0].key

    def verify(self, token: str, nonce: str | None = None) -> OidcIdentity:
        """The identity of a valid token; with ``nonce``, the token must carry that nonce (a sign-in)."""
        cfg = self.config
        try:
            claims = jwt.decode(
                token,
                key=self._key(token),
                algorithms=ALGORITHMS,
                audience=cfg.audience,
                issuer=cfg.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token refused: {exc}") from None
        value = claims.get(cfg.actor_claim)
        if cfg.actor_map is not None:
            value = cfg.actor_map.get(str(value)) if value is not None else None
        if not isinstance(value, str):
            raise InvalidToken(f"the token carries no usable {cfg.actor_claim!r} claim")
        try:
            actor = Actor.parse(value)
        except LedgerError:
            raise InvalidToken(f"claim {cfg.actor_claim!r} is not an actor") from None
        if actor.role == "system":
            raise ActsAsSystem(str(claims["sub"])[:200])
        subject = str(claims["sub"])[:200]
        ident = OidcIdentity(
            subject, str(actor), str(claims.get("name") or subject)[:200], int(claims["exp"])
        )
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise NonceMismatch(ident)
        return ident


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _checked_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigurationError(f"OIDC {what} must be https: {url[:80]!r}", code="invalid_oidc")
    return url


@dataclass(frozen=True)
class SigninRequest:
    """One sign-in's secrets, kept (signed) in the browser until the issuer sends it back."""

    state: str
    nonce: str
    verifier: str  # PKCE code_verifier; the issuer sees only its S256 challenge
    redirect_url: str
    url: str  # where to send the browser: the issuer's authorization endpoint


class OidcClient:
    """The authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636, OpenID Connect Core §3.1)."""

    def __init__(self, config: OidcConfig, verifier: OidcVerifier, timeout: float = 10.0) -> None:  # float-ok
        if not config.client_id:
            raise ConfigurationError("OIDC sign-in needs OBC_LEDGER_OIDC_CLIENT_ID", code="invalid_oidc")
        self.config, self.verifier, self.timeout = config, verifier, timeout
        self._endpoints: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def endpoints(self) -> tuple[str, str]:
        """(authorization, token) endpoints: configured, else from the discovery document (fetched once)."""
        cfg = self.config
        if cfg.authorization_url and cfg.token_url:
            return _checked_url(cfg.authorization_url, "authorization URL"), _checked_url(
                cfg.token_url, "token URL"
            )
        with self._lock:
            if self._endpoints is None:
                discovery = self.verifier.discovery
                self._endpoints = (
                    _checked_url(cfg.authorization_url, "authorization endpoint")
                    if cfg.authorization_url
                    else discovery.url("authorization_endpoint", "authorization endpoint"),
                    _checked_url(cfg.token_url, "token endpoint")
                    if cfg.token_url
                    else discovery.url("token_endpoint", "token endpoint"),
                )
            return self._endpoints

    def end_session_url(self, post_logout_redirect_url: str) -> str | None:
        """Where to send a browser signing out, to end its session at the issuer too (OpenID
        Connect RP-Initiated Logout 1.0: ``client_id`` and ``post_logout_redirect_uri``; the ID
        token is not kept, so no ``id_token_hint``). None when the issuer publishes no
        ``end_session_endpoint`` or cannot be reached: signing out here never waits on it."""
        try:
            if not self.verifier.discovery.document().get("end_session_endpoint"):
                return None
            endpoint = self.verifier.discovery.url("end_session_endpoint", "end_session_endpoint")
        except LedgerError:
            return None
        query = urlencode(
            {"client_id": self.config.client_id, "post_logout_redirect_uri": post_logout_redirect_url}
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def begin(self, redirect_url: str) -> SigninRequest:
        """A fresh state, nonce and PKCE verifier, and the authorization URL carrying them."""
        authorize, _ = self.endpoints()
        state, nonce, verifier = (
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
        )
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_url,
                "scope": "openid profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return SigninRequest(
            state, nonce, verifier, redirect_url, f"{authorize}{'&' if '?' in authorize else '?'}{query}"
        )

    def finish(self, code: str, verifier: str, nonce: str, redirect_url: str) -> OidcIdentity:
        """Exchange the code at the token endpoint; the ID token verified (signature, issuer, audience,
        expiry, nonce). Raises InvalidToken."""
        _, token_url = self.endpoints()
        cfg = self.config
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_url,
            "code_verifier": verifier,
            "client_id": cfg.client_id or "",
        }
        auth = (cfg.client_id or "", cfg.client_secret) if cfg.client_secret else None
        try:
            response = httpx.post(
                token_url, data=data, auth=auth, timeout=self.timeout, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise InvalidToken(
                f"the issuer's token endpoint did not answer: {type(exc).__name__}", code="oidc_unavailable"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not isinstance(body.get("id_token"), str)
        ):
            error = body.get("error") if isinstance(body, dict) else None
            raise InvalidToken(
                f"the issuer refused the sign-in code ({response.status_code}, {str(error)[:60]})",
                code="oidc_code_refused",
            )
        return self.verifier.verify(body["id_token"], nonce=nonce)
