"""OIDC bearer tokens on a live server: signature, issuer, audience and expiry verified against a
JWKS file; the actor comes from a claim; the principal recorded is the subject."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.cli import EXAMPLES, Cli, stored_states
from tests.support.service import start_service

ISSUER, AUDIENCE = "https://sso.example.nhs.uk/realms/obc", "obc-ledger"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def oidc_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oidc")
    key = _key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [dict(jwk, kid="k1", use="sig", alg="RS256")]}))
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    env = {
        "OBC_LEDGER_OIDC_ISSUER": ISSUER,
        "OBC_LEDGER_OIDC_AUDIENCE": AUDIENCE,
        "OBC_LEDGER_OIDC_JWKS": str(jwks),
    }
    service = start_service(db_url, tmp / "service.log", env)
    service.key = key  # type: ignore[attr-defined]
    yield service
    service.stop()


def sign(key, alg: str = "RS256", kid: str = "k1", **claims) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-123",
        "exp": now + 300,
        "iat": now,
        "obc_actor": "auditor:nao",
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def test_a_valid_id_token_is_the_actor_its_claim_names(oidc_service):
    token = sign(oidc_service.key, name="Nia Auditor")
    with oidc_service.client(token) as c:
        me = c.get("/api/v1/whoami").json()
        assert me == {"actor": "auditor:nao", "principal": "oidc:u-123", "name": "Nia Auditor", "via": "oidc"}
        assert [r["contract_id"] for r in c.get("/api/v1/contracts").json()] == ["beds-msk"]


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},
        {"exp": None},
        {"obc_actor": "system"},
        {"obc_actor": "root"},
        {"obc_actor": None},
    ],
)
def test_a_token_failing_a_check_is_401(oidc_service, claims):
    with oidc_service.client(sign(oidc_service.key, **claims)) as c:
        r = c.get("/api/v1/contracts")
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert "WWW-Authenticate" in r.headers


def test_a_token_signed_by_another_key_or_none_is_401(oidc_service):
    forged = sign(_key())
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none"
    )
    hmac_forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60, "obc_actor": "auditor"},
        "a-shared-secret-of-some-length-xxxxxxxx",
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    for token in (forged, unsigned, hmac_forged):
        with oidc_service.client(token) as c:
            assert c.get("/api/v1/contracts").status_code == 401


def test_a_refusal_records_the_oidc_subject(oidc_service):
    token = sign(oidc_service.key, sub="u-stranger", obc_actor="provider:stranger")
    with oidc_service.client(token) as c:
        r = c.get("/api/v1/contracts/beds-msk/years/1/statement")
    assert (
        r.status_code == 404 and r.json()["error"] == "unknown_contract"
    )  # a stranger is not told it exists
    states = stored_states(oidc_service.db_url, "AccessRefused")
    assert any(s.get("principal") == "oidc:u-stranger" and s["actor"] == "provider:stranger" for s in states)


def test_the_web_view_signs_in_with_an_id_token(oidc_service):
    import httpx

    with httpx.Client(base_url=oidc_service.url, follow_redirects=False) as c:
        c.get("/signin")
        csrf = c.cookies.get("obc_csrf")
        r = c.post("/signin", data={"token": sign(oidc_service.key, sub="u-web"), "csrf": csrf})
        assert r.status_code == 303, r.text
        assert (
            "httponly" in r.headers["set-cookie"].lower()
            and "samesite=strict" in r.headers["set-cookie"].lower()
        )
        page = c.get("/contracts")
        assert page.status_code == 200 and "beds-msk" in page.text
        assert c.post("/signout", data={"csrf": "wrong"}).status_code == 403  # CSRF checked on posts
        # the API takes the session too, but writes only with the session's CSRF token
        r = c.post("/api/v1/contracts/beds-msk/years/1/disputes", json={"reason": "x"})
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"


def test_a_signed_token_acting_as_system_is_refused_and_the_refusal_recorded(oidc_service):
    token = sign(oidc_service.key, sub="u-would-be-system", obc_actor="system")
    with oidc_service.client(token) as c:
        r = c.get("/api/v1/contracts/beds-msk")
    assert r.status_code == 401
    states = stored_states(oidc_service.db_url, "AccessRefused")
    assert any(s.get("principal") == "oidc:u-would-be-system" and s["actor"] == "system" for s in states)
    assert '"token_refused"' in oidc_service.log.read_text()
