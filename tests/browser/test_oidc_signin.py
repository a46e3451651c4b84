"""Sign-in through the OIDC issuer (authorization code + PKCE) in a real browser, against the
loopback issuer of deploy/servers/oidc.py: the button leads through the issuer back to the
signed-in user's contracts; a tampered state or a replayed nonce is refused and recorded."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import expect

from deploy.servers import OidcIssuer
from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service

CLIENT_ID, CLIENT_SECRET = "obc-ledger-web", "s3cret-of-the-client"
USER = {"sub": "u-circle-7", "name": "Chris Circle", "obc_actor": "provider:circle"}


@pytest.fixture(scope="module")
def issuer():
    with OidcIssuer(CLIENT_ID, CLIENT_SECRET, user=USER) as server:
        yield server


@pytest.fixture(scope="module")
def sso_service(issuer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sso-service")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    env = {
        "OBC_LEDGER_OIDC_ISSUER": issuer.url,
        "OBC_LEDGER_OIDC_JWKS": issuer.url + "/jwks",
        "OBC_LEDGER_OIDC_CLIENT_ID": CLIENT_ID,  # the audience defaults to it
        "OBC_LEDGER_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    service = start_service(db_url, tmp / "service.log", env)
    issuer.redirect_uris.append(service.url + "/signin/oidc/callback")
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def _fresh_issuer(issuer):
    issuer.user, issuer.nonce_override = dict(USER), None
    issuer.requests.clear()


def refusals(service) -> list[dict]:
    with sqlite3.connect(service.db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT topic, state FROM stored_events").fetchall()
    return [json.loads(state) for topic, state in rows if "AccessRefused" in topic]


def security_lines(service) -> list[dict]:
    lines = [line for line in service.log.read_text().splitlines() if '"signin_refused"' in line]
    return [json.loads(line) for line in lines]


def test_the_sign_in_button_leads_through_the_issuer_to_the_users_contracts(page, sso_service, issuer, shot):
    page.goto(sso_service.url + "/signin")
    shot(page, "signin-with-sso")
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.wait_for_url("**/contracts")
    expect(page.get_by_role("link", name="beds-msk")).to_be_visible()
    assert "Chris Circle" in page.content() or "provider:circle" in page.content()
    shot(page, "contracts-after-sso")
    assert ("GET", "/authorize") in issuer.requests and ("POST", "/token") in issuer.requests
    who = page.request.get(sso_service.url + "/api/v1/whoami").json()
    assert who["actor"] == "provider:circle" and who["principal"] == "oidc:u-circle-7"
    # the flow's cookie is gone, the session cookie is HttpOnly and SameSite=Strict
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "obc_oidc" not in cookies
    assert cookies["obc_session"]["httpOnly"] and cookies["obc_session"]["sameSite"] == "Strict"


def test_another_provider_signed_in_through_the_issuer_sees_no_contract(page, sso_service, issuer):
    issuer.user = {"sub": "u-stranger", "name": "Sam Stranger", "obc_actor": "provider:stranger"}
    page.goto(sso_service.url + "/signin")
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.wait_for_url("**/contracts")
    expect(page.get_by_role("link", name="beds-msk")).to_have_count(0)


def test_a_tampered_state_is_refused_and_recorded(page, sso_service, issuer, shot):
    page.goto(sso_service.url + "/signin")
    # the browser's own request (its cookies): the service's redirect to the issuer, not followed
    begin = page.request.get(sso_service.url + "/signin/oidc", max_redirects=0)
    assert begin.status == 303
    parts = urlsplit(begin.headers["location"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["code_challenge_method"] == "S256" and query["client_id"] == CLIENT_ID
    query["state"] = query["state"][:-2] + ("xx" if not query["state"].endswith("xx") else "yy")
    page.goto(urlunsplit(parts._replace(query=urlencode(query))))  # the issuer sends it back
    expect(page.get_by_role("alert")).to_contain_text("did not come back as it was sent")
    shot(page, "state-refused")
    assert ("POST", "/token") not in issuer.requests  # the code is never exchanged
    assert page.request.get(sso_service.url + "/api/v1/whoami").status == 401
    line = security_lines(sso_service)[-1]
    assert line["reason"] == "state_mismatch" and line["via"] == "oidc"
    log = sso_service.log.read_text()
    assert "code=" not in log and "state=" not in log


def test_a_replayed_nonce_is_refused_and_recorded_with_the_principal(page, sso_service, issuer, shot):
    issuer.nonce_override = "a-nonce-of-another-sign-in"
    page.goto(sso_service.url + "/signin")
    page.get_by_role("button", name="Sign in with single sign-on").click()
    expect(page.get_by_role("alert")).to_contain_text("not this sign-in's")
    shot(page, "nonce-refused")
    assert page.request.get(sso_service.url + "/api/v1/whoami").status == 401
    recorded = [r for r in refusals(sso_service) if r.get("principal") == "oidc:u-circle-7"]
    assert recorded and recorded[-1]["action"] == "signin" and recorded[-1]["actor"] == "provider:circle"
    line = security_lines(sso_service)[-1]
    assert line["reason"] == "nonce_mismatch" and line["principal"] == "oidc:u-circle-7"
    assert CLIENT_SECRET not in sso_service.log.read_text()


def test_a_callback_without_a_sign_in_in_progress_is_refused(page, sso_service):
    response = page.goto(sso_service.url + "/signin/oidc/callback?code=stolen&state=guess")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("expired or was not started here")
