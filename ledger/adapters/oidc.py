"""OpenID Connect bearer tokens: a JWT verified against a configured issuer's keys.

Configured by environment (or ``obc-ledger serve`` options):

* ``OBC_LEDGER_OIDC_ISSUER`` — the issuer (``iss``) every token must name;
* ``OBC_LEDGER_OIDC_AUDIENCE`` — the audience (``aud``) it must be for;
* ``OBC_LEDGER_OIDC_JWKS`` — the issuer's JSON Web Key Set: a file path or an https URL;
* ``OBC_LEDGER_OIDC_ACTOR_CLAIM`` — the claim holding the actor (default ``obc_actor``), and
  optionally ``OBC_LEDGER_OIDC_ACTOR_MAP`` — a JSON file mapping that claim's values to actors
  (``{"finance-team": "commissioner:bccg"}``); without it the claim's value must be an actor.

A token is accepted only when its signature verifies with a key of the set (RS256/ES256/EdDSA,
never ``none`` or a shared secret), and its issuer, audience and expiry (``exp`` required) hold.
The principal recorded on events is ``oidc:<subject>``. ``system`` is never granted by a token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ledger.domain.access import Actor
from ledger.domain.errors import ConfigurationError, LedgerError

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class InvalidToken(LedgerError):
    code = "invalid_token"


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    actor: str
    name: str
    expires: int


@dataclass
class OidcConfig:
    issuer: str
    audience: str
    jwks: str  # a file path or an http(s) URL
    actor_claim: str = "obc_actor"
    actor_map: dict[str, str] | None = None

    @classmethod
    def from_env(cls, environ: Any = None) -> OidcConfig | None:
        env = os.environ if environ is None else environ
        issuer = env.get("OBC_LEDGER_OIDC_ISSUER")
        if not issuer:
            return None
        audience, jwks = env.get("OBC_LEDGER_OIDC_AUDIENCE"), env.get("OBC_LEDGER_OIDC_JWKS")
        if not audience or not jwks:
            raise ConfigurationError(
                "OIDC: OBC_LEDGER_OIDC_ISSUER needs OBC_LEDGER_OIDC_AUDIENCE and OBC_LEDGER_OIDC_JWKS too",
                code="invalid_oidc",
            )
        mapping = None
        if env.get("OBC_LEDGER_OIDC_ACTOR_MAP"):
            mapping = json.loads(Path(env["OBC_LEDGER_OIDC_ACTOR_MAP"]).read_text())
        return cls(issuer, audience, jwks, env.get("OBC_LEDGER_OIDC_ACTOR_CLAIM") or "obc_actor", mapping)


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if config.jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(config.jwks, cache_keys=True, lifespan=300)
        else:
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

    def verify(self, token: str) -> OidcIdentity:
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
            raise InvalidToken("an OIDC token may not act as system")
        subject = str(claims["sub"])[:200]
        return OidcIdentity(subject, str(actor), str(claims.get("name") or subject)[:200], int(claims["exp"]))
