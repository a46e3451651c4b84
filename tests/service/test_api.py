"""The HTTP API on a live server: authentication (every 401), authorisation (every 403, recorded
with the authenticated principal), idempotent retries, uploads through the ingest path, and the
statement equal to the CLI's to the penny."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import httpx
import openpyxl
import pytest

from ledger.adapters.tokens import TokenStore
from tests.support.cli import EXAMPLES, stored_states

CONTRACT = "beds-msk"
READS = [
    f"/api/v1/contracts/{CONTRACT}",
    f"/api/v1/contracts/{CONTRACT}/years/1/statement",
    f"/api/v1/contracts/{CONTRACT}/years/1/history",
    f"/api/v1/contracts/{CONTRACT}/years/1/explain",
    f"/api/v1/contracts/{CONTRACT}/years/1/costs",
    f"/api/v1/contracts/{CONTRACT}/submissions",
    f"/api/v1/contracts/{CONTRACT}/decisions",
    f"/api/v1/contracts/{CONTRACT}/payments",
    f"/api/v1/contracts/{CONTRACT}/disputes",
    f"/api/v1/contracts/{CONTRACT}/template?year=1",
    f"/api/v1/contracts/{CONTRACT}/years/1/preview",
]
WRITES = [
    ("/api/v1/contracts", b"contract: {}"),
    ("/api/v1/records", b"{}\n"),
    (f"/api/v1/contracts/{CONTRACT}/pay", b'{"through": "2025-Q3"}'),
    (f"/api/v1/contracts/{CONTRACT}/years/1/close", b""),
    (f"/api/v1/contracts/{CONTRACT}/years/1/restate", b""),
    (f"/api/v1/contracts/{CONTRACT}/years/1/disputes", b'{"reason": "x"}'),
]


def events(service, topic_part: str) -> list[dict]:
    return stored_states(service.db_url, topic_part)


def test_health_and_openapi_need_no_credentials(example_service):
    with example_service.client() as c:
        assert c.get("/healthz").json()["ok"] is True
        doc = c.get("/api/v1/openapi.json").json()
    assert "/api/v1/contracts/{contract_id}/years/{year}/statement" in doc["paths"]


@pytest.mark.parametrize(
    "credentials",
    ["none", "garbage", "basic", "revoked", "expired", "forged-session"],
)
def test_missing_or_bad_credentials_are_401_everywhere(example_service, credentials):
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    store = TokenStore(example_service.db_url)
    if credentials == "garbage":
        headers["Authorization"] = "Bearer obc_not-a-token"
    elif credentials == "basic":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    elif credentials == "revoked":
        record, token = store.issue("commissioner:bccg", "revoked")
        store.revoke(record.token_id)
        headers["Authorization"] = f"Bearer {token}"
    elif credentials == "expired":
        _, token = store.issue("commissioner:bccg", "expired", timedelta(seconds=-1))
        headers["Authorization"] = f"Bearer {token}"
    elif credentials == "forged-session":
        cookies["obc_session"] = "eyJ0b2tlbl9pZCI6InRva18xIn0.forged"
    with example_service.client(cookies=cookies) as c:
        for path in [*READS, "/api/v1/contracts", "/api/v1/whoami", "/api/v1/verify", "/api/v1/digest"]:
            r = c.get(path, headers=headers)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["WWW-Authenticate"].startswith('Bearer realm="obc-ledger"')
            assert r.json()["error"] in ("unauthenticated", "invalid_token", "invalid_request")
        for path, body in WRITES:
            r = c.post(path, content=body, headers=headers)
            assert r.status_code == 401, (path, r.text)
        page = c.get(f"/contracts/{CONTRACT}", headers=headers)
        assert page.status_code == 401 and "Sign in" in page.text


def test_a_stranger_is_refused_every_read_and_the_refusal_names_its_principal(example_service):
    token = example_service.token("provider:stranger", "Another provider")
    with example_service.client(token) as c:
        me = c.get("/api/v1/whoami").json()
        assert c.get("/api/v1/contracts").json() == []  # the list hides what it may not read
        for path in READS:
            r = c.get(path)
            assert r.status_code == 404, (path, r.text)
            assert r.json() == {
                "error": "unknown_contract",
                "message": f"no contract {CONTRACT!r} is registered",
            }
        assert c.get(f"/contracts/{CONTRACT}").status_code == 404  # the page too
    refusals = [e for e in events(example_service, "AccessRefused") if e.get("principal") == me["principal"]]
    assert len(refusals) >= len(READS)
    assert {e["actor"] for e in refusals} == {"provider:stranger"}
    assert {e["contract_id"] for e in refusals} == {CONTRACT}
    assert all("is not a party to beds-msk" in e["reason"] for e in refusals)  # the ledger keeps why


GHOST = "no-such-contract"


def _probe(c: httpx.Client, method: str, path: str, body: bytes) -> tuple[int, str, str]:
    """A response with the contract id taken out: what a caller can tell apart."""
    r = c.request(method, path, content=body)
    ctype = r.headers.get("content-type", "")
    return r.status_code, ctype, r.text.replace(CONTRACT, "ID").replace(GHOST, "ID")


@pytest.mark.parametrize("actor", ["provider:stranger", "commissioner:other"])
def test_a_stranger_cannot_tell_a_contract_it_may_not_read_from_one_that_does_not_exist(
    example_service, actor
):
    """Every contract path, read or write, API or page, answers a non-party exactly as it answers
    for an unregistered id; both are recorded as refusals naming the principal, with the reason."""
    token = example_service.token(actor, "Probing")
    paths = [("GET", path, b"") for path in READS]
    paths += [("POST", path, body) for path, body in WRITES if CONTRACT in path]
    paths += [
        (
            "POST",
            f"/api/v1/contracts/{CONTRACT}/years/1/disputes/D1-1/resolve",
            b'{"upheld": true, "note": "x"}',
        ),
        ("GET", f"/contracts/{CONTRACT}", b""),
        ("GET", f"/contracts/{CONTRACT}/years/1/statement", b""),
        ("GET", f"/contracts/{CONTRACT}/upload", b""),
        ("GET", f"/api/v1/rejected?contract={CONTRACT}", b""),
    ]
    with example_service.client(token) as c:
        principal = c.get("/api/v1/whoami").json()["principal"]
        before = len(events(example_service, "AccessRefused"))
        for method, path, body in paths:
            real = _probe(c, method, path, body)
            ghost = _probe(c, method, path.replace(CONTRACT, GHOST), body)
            assert real == ghost, (method, path)
            assert real[0] == 404, (method, path, real)
            if path.startswith("/api/"):
                assert json.loads(real[2]) == {
                    "error": "unknown_contract",
                    "message": "no contract 'ID' is registered",
                }
            else:
                assert "text/html" in real[1] and "no contract &#39;ID&#39; is registered" in real[2], real
    refused = events(example_service, "AccessRefused")[before:]
    mine = [e for e in refused if e.get("principal") == principal]
    assert len(mine) == 2 * len(paths)  # each guess, real or not, is one recorded refusal
    assert {e["actor"] for e in mine} == {actor}
    assert {e["contract_id"] for e in mine} == {CONTRACT, GHOST}
    real_reasons = {e["reason"] for e in mine if e["contract_id"] == CONTRACT}
    assert all("beds-msk" in reason and "registered" not in reason for reason in real_reasons)


def test_a_strangers_records_are_refused_as_for_an_unregistered_contract_and_kept_with_the_reason(
    example_service,
):
    """A record naming a contract its sender is not party to is refused before the terms judge it
    (an unknown indicator would otherwise tell the stranger what the contract measures), and is
    answered as a record for an unregistered contract would be; the ledger keeps the real reason."""
    token = example_service.token("provider:stranger", "Another provider")
    record = {
        "type": "submission",
        "submission_id": "probe-1",
        "contract_id": CONTRACT,
        "provider_id": "stranger",
        "indicator_id": "no-such-indicator",
        "period": "2099-Q9",
        "numerator": "1",
        "denominator": "2",
    }
    with example_service.client(token) as c:
        answers = []
        for contract in (CONTRACT, GHOST):
            line = json.dumps(dict(record, contract_id=contract)).encode() + b"\n"
            for query in ("", "?check=true"):
                r = c.post(
                    "/api/v1/records" + query, content=line, headers={"Content-Type": "application/x-ndjson"}
                )
                assert r.status_code == 200, r.text
                answers.append(r.text.replace(contract, "ID"))
    assert answers[0] == answers[2] and answers[1] == answers[3]
    report = json.loads(answers[0])
    assert report["refused"] == [
        {
            "line": 1,
            "code": "unknown_contract",
            "field": "contract_id",
            "message": "no contract 'ID' is registered",
        }
    ]
    assert report["rejected_by_reason"] == {"unknown_contract": 1}
    kept = [e for e in events(example_service, "Rejection.Recorded") if e.get("contract_id") == CONTRACT]
    assert [(e["code"], e["actor"]) for e in kept] == [("not_authorized", "provider:stranger")], kept
    assert "not a provider party to beds-msk" in kept[0]["message"]


@pytest.mark.parametrize(
    ("actor", "path", "body"),
    [
        ("provider:circle", f"/api/v1/contracts/{CONTRACT}/years/1/close", b""),
        ("provider:circle", f"/api/v1/contracts/{CONTRACT}/pay", b'{"through": "2025-Q3"}'),
        ("provider:circle", f"/api/v1/contracts/{CONTRACT}/years/1/restate", b""),
        ("auditor", f"/api/v1/contracts/{CONTRACT}/years/1/close", b""),
        ("auditor", "/api/v1/records", b"{}\n"),
        ("commissioner:bccg", f"/api/v1/contracts/{CONTRACT}/years/1/disputes", b'{"reason": "no"}'),
        (
            "provider:circle",
            f"/api/v1/contracts/{CONTRACT}/years/1/disputes/D1-1/resolve",
            b'{"upheld": true, "note": "x"}',
        ),
    ],
)
def test_a_party_without_the_right_is_403_and_recorded(example_service, actor, path, body):
    token = example_service.token(actor)
    with example_service.client(token) as c:
        principal = c.get("/api/v1/whoami").json()["principal"]
        r = c.post(path, content=body)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "not_authorized"
    recorded = [e for e in events(example_service, "AccessRefused") if e.get("principal") == principal]
    assert recorded and recorded[-1]["actor"] == actor


def test_a_retry_with_the_same_idempotency_key_returns_the_first_response(example_service):
    token = example_service.token("commissioner:bccg", "Finance manager")
    with example_service.client(token) as c:
        first = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            json={"through": "2025-Q3"},
            headers={"Idempotency-Key": "pay-1"},
        )
        assert first.status_code == 200 and len(first.json()) >= 1
        again = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            json={"through": "2025-Q3"},
            headers={"Idempotency-Key": "pay-1"},
        )
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        other = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            json={"through": "2025-Q4"},
            headers={"Idempotency-Key": "pay-1"},
        )
        assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
        fresh = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            json={"through": "2025-Q3"},
            headers={"Idempotency-Key": "pay-2"},
        )
        assert fresh.json() == []  # decided once: a new request finds nothing more due
    decided = events(example_service, "InstalmentDecided")
    assert decided and all(e.get("principal", "").startswith("token:") for e in decided)
    # another principal's key is its own: the same key text does not replay someone else's response
    with example_service.client(example_service.token("commissioner:bccg")) as c:
        r = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            json={"through": "2025-Q3"},
            headers={"Idempotency-Key": "pay-1"},
        )
        assert "Idempotent-Replayed" not in r.headers and r.json() == []


def test_uploads_go_through_the_ingest_path_with_line_numbers(example_service):
    token = example_service.token("provider:circle", "Circle data team")
    good = {
        "type": "submission",
        "submission_id": "api-s-1",
        "contract_id": CONTRACT,
        "provider_id": "circle",
        "indicator_id": "proms-improved",
        "period": "2027-Q2",
        "numerator": "300",
        "denominator": "480",
    }
    jsonl = (json.dumps(good) + "\n" + '{"type": "submission", "contract_id": "beds-msk"}\n').encode()
    with example_service.client(token) as c:
        r = c.post("/api/v1/records", content=jsonl, headers={"Content-Type": "application/x-ndjson"})
        report = r.json()
        assert r.status_code == 200, r.text
        assert (report["accepted"], report["rejected"]) == (1, 1)
        assert report["refused"] == [
            {"line": 2, "code": "missing_field", "field": "submission_id", "message": "is required"}
        ]
        assert set(report) >= {"accepted", "duplicates", "rejected", "rejected_by_reason", "budget_changes"}
        # a provider cannot submit another party's records: refused per record, like the CLI
        theirs = dict(good, submission_id="api-s-2", provider_id="physio")
        r = c.post(
            "/api/v1/records",
            content=json.dumps(theirs).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert r.json()["rejected"] == 1 and r.json()["refused"][0]["line"] == 1

        template = c.get(f"/api/v1/contracts/{CONTRACT}/template", params={"year": 3}).text.splitlines()
        header, first = template[0], template[1].split(",")
        first[1], first[6], first[7] = "api-s-3", "310", "470"
        bad = template[2].split(",")
        bad[1], bad[6], bad[7] = "api-s-4", "many", "470"
        csv = "\n".join([header, ",".join(first), ",".join(bad)]) + "\n"
        r = c.post("/api/v1/records", content=csv.encode(), headers={"Content-Type": "text/csv"})
        report = r.json()
        assert (report["accepted"], report["rejected"]) == (1, 1), report
        assert report["refused"][0]["line"] == 3 and report["refused"][0]["field"] == "numerator"

        xlsx = c.get(f"/api/v1/contracts/{CONTRACT}/template", params={"year": 3, "format": "xlsx"}).content
        book = openpyxl.load_workbook(io.BytesIO(xlsx))
        sheet = book["submissions"]
        for row, (sid, num) in zip((4, 5), (("api-s-5", "300"), ("api-s-6", "-1")), strict=True):
            sheet.cell(row, 2, sid)
            sheet.cell(row, 7, num)
            sheet.cell(row, 8, "480")
        out = io.BytesIO()
        book.save(out)
        r = c.post(
            "/api/v1/records",
            content=out.getvalue(),
            headers={"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        )
        report = r.json()
        assert (report["accepted"], report["rejected"]) == (1, 1), report
        assert report["refused"][0]["line"] == 5

        check = c.post(
            "/api/v1/records?check=true", content=jsonl, headers={"Content-Type": "application/x-ndjson"}
        )
        assert check.json()["checked_only"] is True and check.json()["duplicates"] == 1

        big = c.post("/api/v1/contracts", content=b"x" * (2 * 1024 * 1024))
        assert big.status_code == 413 and big.json()["error"] == "body_too_large"
    accepted = [e for e in events(example_service, "SubmissionAccepted") if e.get("principal")]
    assert {e["actor"] for e in accepted} == {"provider:circle"}


def test_the_api_statement_equals_the_cli_statement_to_the_penny(example_service):
    commissioner = example_service.token("commissioner:bccg", "Finance manager")
    auditor = example_service.token("auditor:kpmg", "External auditor")
    with example_service.client(commissioner) as c:
        for year in (1, 2):
            # read (and cached) before the close: the closed statement must replace it
            before = c.get(f"/api/v1/contracts/{CONTRACT}/years/{year}/statement")
            assert before.status_code == 200
            r = c.post(
                f"/api/v1/contracts/{CONTRACT}/years/{year}/close",
                headers={"Idempotency-Key": f"close-{year}"},
            )
            assert r.status_code in (200, 409), r.text
    expected = json.loads((EXAMPLES / "worked-example-expected.json").read_text())
    with example_service.client(auditor) as c:
        for year in (1, 2):
            api = c.get(f"/api/v1/contracts/{CONTRACT}/years/{year}/statement").json()
            cli = example_service.cli.ok("statement", CONTRACT, "--year", str(year), "--json").json()
            assert api == cli
            assert Decimal(api["total"]) == Decimal(expected[year - 1]["total"])
        assert c.get("/api/v1/verify").json()["ok"] is True


def test_signing_out_ends_the_session_on_the_server_so_a_copy_of_its_cookie_is_refused(example_service):
    token = example_service.token("auditor:nao", "Auditor")
    with httpx.Client(base_url=example_service.url, follow_redirects=False) as browser:
        browser.get("/signin")
        signed_in = browser.post("/signin", data={"token": token, "csrf": browser.cookies.get("obc_csrf")})
        assert signed_in.status_code == 303, signed_in.text
        stolen = browser.cookies.get("obc_session")  # e.g. left on a shared workstation, or copied
        page = browser.get("/contracts")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        out = browser.post("/signout", data={"csrf": csrf.group(1)})
        assert out.status_code == 303 and out.headers["location"] == "/signin"
    with httpx.Client(base_url=example_service.url, cookies={"obc_session": stolen}) as replay:
        assert replay.get("/api/v1/whoami").status_code == 401
        assert replay.get("/contracts", follow_redirects=False).status_code in (303, 401)
    with httpx.Client(
        base_url=example_service.url, follow_redirects=False
    ) as again:  # the token still signs in
        again.get("/signin")
        assert (
            again.post("/signin", data={"token": token, "csrf": again.cookies.get("obc_csrf")}).status_code
            == 303
        )
        assert again.get("/api/v1/whoami").json()["principal"].startswith("token:")


def test_pages_carry_a_policy_that_runs_no_script_and_refuses_frames(example_service):
    page = httpx.get(example_service.url + "/signin")
    policy = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
    )
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    api = httpx.get(example_service.url + "/healthz")
    # JSON, not a page: the strictest policy (nothing at all runs or loads), and never cached
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["cache-control"] == "no-store"
