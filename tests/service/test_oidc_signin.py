"""Sign-in through the issuer over plain HTTP (no browser): PKCE on the wire, the client's secret,
a refused code, an issuer that cannot be reached or names another issuer."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.servers import OidcIssuer
from tests.support.cli import EXAMPLES, Cli
from tests.support.service import free_port, start_service

CLIENT_ID, SECRET = "obc-ledger-api", "the-clients-secret"
USER = {"sub": "u-nao-1", "name": "Nia Auditor", "obc_actor": "auditor:nao"}


def _service(tmp_path, issuer_url: str, jwks: str | None, secret: str = SECRET):
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Cli(db_url).ok("contract", "register", EXAMPLES / "worked-example.yaml")
    env = {
        "OBC_LEDGER_OIDC_ISSUER": issuer_url,
        "OBC_LEDGER_OIDC_CLIENT_ID": CLIENT_ID,
        "OBC_LEDGER_OIDC_CLIENT_SECRET": secret,
    }
    if jwks is not None:
        env["OBC_LEDGER_OIDC_JWKS"] = jwks
    return start_service(db_url, tmp_path / "service.log", env)


def _id_token(issuer_url: str, key, kid: str) -> str:
    now = int(time.time())
    claims = dict(USER, iss=issuer_url, aud=CLIENT_ID, exp=now + 300, iat=now)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _sign_in(service, issuer) -> httpx.Response:
    """The browser's part, by hand: the service → the issuer → the callback."""
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        begin = browser.get(service.url + "/signin/oidc")
        assert begin.status_code == 303, begin.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(begin.headers["location"]).query).items()}
        approved = browser.get(begin.headers["location"])
        assert approved.status_code == 302, approved.text
        done = browser.get(approved.headers["location"])
        done.query = query  # type: ignore[attr-defined]
        done.session = browser.cookies.get("obc_session")  # type: ignore[attr-defined]
        return done


@pytest.fixture
def issuer():
    with OidcIssuer(CLIENT_ID, SECRET, user=USER) as server:
        yield server


def test_the_code_flow_uses_pkce_and_the_clients_secret(tmp_path, issuer):
    service = _service(tmp_path, issuer.url, issuer.url + "/jwks")
    issuer.redirect_uris.append(service.url + "/signin/oidc/callback")
    try:
        done = _sign_in(service, issuer)
        assert done.status_code == 200 and "Signed in as Nia Auditor" in done.text, done.text
        q = done.query
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
        assert q["nonce"] and q["state"] and q["nonce"] != q["state"]
        assert "openid" in q["scope"].split() and q["redirect_uri"] == service.url + "/signin/oidc/callback"
        with httpx.Client(base_url=service.url, cookies={"obc_session": done.session}) as c:
            assert c.get("/api/v1/whoami").json()["principal"] == "oidc:u-nao-1"
    finally:
        service.stop()
    assert SECRET not in service.log.read_text()


def test_signing_out_of_a_single_sign_on_session_signs_out_at_the_issuer_too(tmp_path, issuer):
    service = _service(tmp_path, issuer.url, None)
    issuer.redirect_uris.append(service.url + "/signin/oidc/callback")
    issuer.post_logout_uris.append(service.url + "/signin")
    try:
        done = _sign_in(service, issuer)
        assert done.status_code == 200, done.text
        with httpx.Client(base_url=service.url, cookies={"obc_session": done.session}) as browser:
            page = browser.get("/contracts")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None, page.text
            out = browser.post("/signout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        target = urlsplit(out.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == issuer.url + "/logout"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query == {"client_id": CLIENT_ID, "post_logout_redirect_uri": service.url + "/signin"}
        back = httpx.get(out.headers["location"], follow_redirects=False)  # the browser goes there
        assert back.status_code == 302 and back.headers["location"] == service.url + "/signin"
        assert issuer.logouts == [query]
        with httpx.Client(base_url=service.url, cookies={"obc_session": done.session}) as replay:
            assert replay.get("/api/v1/whoami").status_code == 401  # and it ended here, on the server
    finally:
        service.stop()


def test_a_code_the_issuer_refuses_is_refused(tmp_path, issuer):
    service = _service(tmp_path, issuer.url, issuer.url + "/jwks", secret="not-the-secret")
    issuer.redirect_uris.append(service.url + "/signin/oidc/callback")
    try:
        done = _sign_in(service, issuer)
        assert done.status_code == 400 and "refused the sign-in code" in done.text
        assert done.session is None
    finally:
        service.stop()
    lines = [json.loads(x) for x in service.log.read_text().splitlines() if "signin_refused" in x]
    assert lines[-1]["reason"] == "oidc_code_refused"
    assert "not-the-secret" not in service.log.read_text()


def test_an_issuer_that_cannot_be_reached_or_names_another_is_refused(tmp_path, issuer):
    gone = f"http://127.0.0.1:{free_port()}"
    service = _service(tmp_path, gone, issuer.url + "/jwks")
    try:
        r = httpx.get(service.url + "/signin/oidc", follow_redirects=False)
        assert r.status_code == 502 and "cannot be reached" in r.text
    finally:
        service.stop()
    other = tmp_path / "other"
    other.mkdir()
    issuer_elsewhere = issuer.url + "/"  # the discovery document names issuer.url, not this
    service = _service(other, issuer_elsewhere, issuer.url + "/jwks")
    try:
        r = httpx.get(service.url + "/signin/oidc", follow_redirects=False)
        assert r.status_code == 502 and "oidc_unavailable" in r.text
    finally:
        service.stop()


def test_without_a_jwks_setting_bearer_tokens_are_checked_with_the_keys_the_discovery_document_names(
    tmp_path, issuer
):
    service = _service(tmp_path, issuer.url, None)
    try:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            good = _id_token(issuer.url, issuer.key, issuer.kid)
            r = c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {good}"})
            assert r.status_code == 200 and r.json()["principal"] == "oidc:u-nao-1", r.text
            forged = _id_token(
                issuer.url, rsa.generate_private_key(public_exponent=65537, key_size=2048), issuer.kid
            )
            r = c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
            assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        assert ("GET", "/.well-known/openid-configuration") in issuer.requests
        assert ("GET", "/jwks") in issuer.requests
    finally:
        service.stop()
    gone = f"http://127.0.0.1:{free_port()}"  # no issuer answers here: 503, not a refused token
    elsewhere = tmp_path / "gone"
    elsewhere.mkdir()
    service = _service(elsewhere, gone, None)
    try:
        token = _id_token(gone, issuer.key, issuer.kid)
        r = httpx.get(service.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and r.json()["error"] == "oidc_unavailable", r.text
    finally:
        service.stop()


def test_the_pkce_challenge_is_the_s256_of_a_verifier_only_the_service_holds(issuer):
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    issuer.redirect_uris.append("http://127.0.0.1:1/cb")
    _, location, _ = issuer.authorize(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1:1/cb",
            "response_type": "code",
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s",
        }
    )
    code = parse_qs(urlsplit(location or "").query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:1/cb"}
    status, body = issuer.token({**form, "code_verifier": "w" * 43}, None)
    assert status == 401  # no client authentication
    status, body = issuer.token(
        {**form, "code_verifier": "w" * 43, "client_id": CLIENT_ID, "client_secret": SECRET}, None
    )
    assert (status, body["error"]) == (400, "invalid_grant")  # the wrong verifier spends the code


def test_an_issuers_error_is_shown_by_its_code_only(tmp_path, issuer):
    service = _service(tmp_path, issuer.url, issuer.url + "/jwks")
    try:
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            begin = browser.get(service.url + "/signin/oidc")
            state = parse_qs(urlsplit(begin.headers["location"]).query)["state"][0]
            denied = browser.get(
                service.url + "/signin/oidc/callback",
                params={"state": state, "error": "access_denied", "error_description": "<b>call 0800</b>"},
            )
            odd = browser.get(
                service.url + "/signin/oidc/callback", params={"state": state, "error": "Call 0800 now"}
            )
        assert denied.status_code == 400 and "refused: access_denied" in denied.text
        assert "0800" not in denied.text
        assert (
            odd.status_code == 400 and "0800" not in odd.text
        )  # the flow cookie was spent, or the text dropped
    finally:
        service.stop()
