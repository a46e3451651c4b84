"""Behind a TLS-terminating proxy: `serve --forwarded-allow-ips` names the proxy, whose
X-Forwarded-Proto makes the session cookie Secure; the same header from any other address is
ignored (a client cannot claim HTTPS, nor another address)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service

PROXY, OTHER = "127.0.0.5", "127.0.0.6"


@pytest.fixture(scope="module")
def proxied_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxied")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    Cli(db_url).ok("contract", "register", EXAMPLES / "worked-example.yaml")
    service = start_service(db_url, tmp / "service.log", env={"OBC_LEDGER_FORWARDED_ALLOW_IPS": PROXY})
    yield service
    service.stop()


def _session_cookie(service, source_address):
    """Sign in with a token from ``source_address``, as a proxy forwarding an HTTPS request would."""
    token = service.token("auditor:nao", "Auditor")
    transport = httpx.HTTPTransport(local_address=source_address)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=service.url, transport=transport, headers=headers) as browser:
        browser.get("/signin")
        signed_in = browser.post("/signin", data={"token": token, "csrf": browser.cookies.get("obc_csrf")})
        assert signed_in.status_code == 303, signed_in.text
        return next(v for v in signed_in.headers.get_list("set-cookie") if v.startswith("obc_session="))


def test_the_named_proxys_https_makes_the_session_cookie_secure(proxied_service):
    assert "secure" in _session_cookie(proxied_service, PROXY).lower().split("; ")


def test_the_same_header_from_another_address_is_ignored(proxied_service):
    assert "secure" not in _session_cookie(proxied_service, OTHER).lower().split("; ")
