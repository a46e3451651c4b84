"""Red-team findings on a live server: bodies bounded before authentication, bad input a 422 (never a
500), every response with the security headers, refusals recorded with who was refused."""

from __future__ import annotations

import socket

import pytest

from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service

CONTRACT = "beds-msk"
LIMIT = 100_000


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    service = start_service(db_url, tmp / "service.log", env={"OBC_LEDGER_MAX_UPLOAD_BYTES": str(LIMIT)})
    service.cli = cli  # type: ignore[attr-defined]
    yield service
    service.stop()


def _raw(service, request: bytes, body_chunks=()) -> bytes:
    """Send ``request`` (and chunks) on a raw socket; the status line and headers answered."""
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
        except OSError:  # the server answered and closed before the whole body was sent
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                break
            data += got
    return data


def test_an_oversized_unauthenticated_upload_is_refused_before_it_is_read(service):
    head = (
        f"POST /contracts/{CONTRACT}/upload HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=XB\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = _raw(service, head)  # nothing of the 50 MiB is sent: the answer comes without it
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"x-content-type-options: nosniff" in answer.lower()


def test_a_chunked_body_past_the_limit_is_cut_off(service):
    head = (
        f"POST /contracts/{CONTRACT}/upload HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=XB\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * 32768
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * ((3 * LIMIT) // len(chunk))
    answer = _raw(service, head, chunks)
    assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 401")), answer[:200]


def test_an_unauthenticated_upload_within_the_limit_is_401(service):
    with service.client() as c:
        r = c.post(f"/contracts/{CONTRACT}/upload", files={"file": ("a.csv", b"x" * 1000)})
    assert r.status_code == 401


def test_an_authenticated_upload_past_the_limit_is_413(service):
    with service.client(service.token("provider:circle")) as c:
        r = c.post(f"/contracts/{CONTRACT}/upload", files={"file": ("a.csv", b"x" * (LIMIT + 10))})
    assert r.status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/contracts/{CONTRACT}/report?as_of=9999-12-31T23:59:59-23:59",
        f"/api/v1/contracts/{CONTRACT}/years/1/statement?as_of=0001-01-01T00:00:00%2B23:59",
        f"/api/v1/contracts/{CONTRACT}/years/99999999999999999999/preview",
        f"/contracts/{CONTRACT}/years/99999999999999999999/statement",
        f"/api/v1/contracts/{CONTRACT}/template?year=99999999999999999999",
    ],
)
def test_out_of_range_instants_and_years_are_422_naming_the_field(service, path):
    with service.client(service.token("commissioner:bccg")) as c:
        r = c.get(path)
    assert r.status_code in (400, 422), r.text  # invalid_instant is a 400, as every invalid_command
    assert r.headers["x-content-type-options"] == "nosniff"
    if not path.startswith("/api/"):  # a page answers with a page, naming the field all the same
        assert r.headers["content-type"].startswith("text/html"), r.headers
        assert "<strong>invalid_request</strong>: year:" in r.text, r.text
        return
    body = r.json()
    assert body["error"] in ("invalid_instant", "invalid_request")
    assert "as-of" in body["message"] or body["message"].startswith("year:"), body


def test_a_page_that_does_not_exist_is_an_html_404_and_an_api_path_a_json_one(service):
    with service.client(service.token("commissioner:bccg")) as c:
        page, api = c.get("/contracts/beds-msk/nowhere"), c.get("/api/v1/nowhere")
        post = c.post("/contracts")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), page.text
    assert "<strong>not_found</strong>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert api.status_code == 404 and api.json()["error"] == "http_404"
    assert post.status_code == 405 and "<strong>method_not_allowed</strong>" in post.text
    assert "GET" in post.headers["allow"]


@pytest.mark.parametrize(
    "path", [f"/api/v1/contracts/{CONTRACT}/pay", f"/api/v1/contracts/{CONTRACT}/years/1/disputes"]
)
def test_json_nested_too_deep_is_invalid_json(service, path):
    with service.client(service.token("commissioner:bccg")) as c:
        r = c.post(path, content=b"[" * 4000)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json", r.text


def test_non_ascii_cookie_csrf_header_and_signin_field_are_refused_not_500(service):
    cookie = {"Cookie": b"obc_session=a.\xe9"}
    with service.client() as c:
        r = c.get(f"/api/v1/contracts/{CONTRACT}", headers=cookie)
        assert r.status_code == 401, r.text
        page = c.get(f"/contracts/{CONTRACT}", headers=cookie)
        assert page.status_code == 401
        assert "content-security-policy" in page.headers
    with service.client() as c:
        c.get("/signin")
        r = c.post("/signin", data={"token": "x", "csrf": "\xe9\xe9"})
        assert r.status_code == 400, r.text
    # a real session, a non-ASCII X-CSRF-Token
    token = service.token("commissioner:bccg")
    with service.client() as c:
        c.get("/signin")
        r = c.post("/signin", data={"token": token, "csrf": c.cookies.get("obc_csrf")})
        assert r.status_code == 303, r.text
        r = c.post(
            f"/api/v1/contracts/{CONTRACT}/pay",
            content=b'{"through": "2025-Q3"}',
            headers={"X-CSRF-Token": b"\xe9\xe9"},
        )
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed", r.text


def test_a_non_party_is_not_told_the_contracts_parties(service):
    line = (
        '{"type": "submission", "submission_id": "r-1", "contract_id": "beds-msk", "provider_id": "rival",'
        ' "indicator_id": "proms-improved", "period": "2025-Q2", "numerator": "1", "denominator": "2"}\n'
    )
    with service.client(service.token("provider:rival")) as c:
        r = c.post(
            "/api/v1/records?check=true", content=line, headers={"Content-Type": "application/x-ndjson"}
        )
    text = r.text
    assert "circle" not in text and "physio" not in text, text


def _rejections(service, marker: str) -> list[dict]:
    import json
    import sqlite3

    with sqlite3.connect(service.db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT topic, state FROM stored_events").fetchall()
    return [json.loads(s) for t, s in rows if "Rejection" in t and marker in s.decode(errors="replace")]


def test_the_same_refused_line_from_another_sender_is_recorded_again(service):
    line = (
        '{"type": "submission", "submission_id": "x-dup-1", "contract_id": "beds-msk", "provider_id": "circle",'
        ' "indicator_id": "proms-improved", "period": "2025-Q2", "numerator": "1", "denominator": "2"}\n'
    )
    headers = {"Content-Type": "application/x-ndjson"}
    physio, rival = service.token("provider:physio"), service.token("provider:rival")
    for token in (physio, physio, rival):  # physio's retry is the same refusal; rival's is its own
        with service.client(token) as c:
            r = c.post("/api/v1/records", content=line, headers=headers)
            assert r.json()["rejected"] == 1, r.text
    recorded = _rejections(service, "x-dup-1")
    assert sorted(e.get("actor") for e in recorded) == ["provider:physio", "provider:rival"], recorded


def test_no_docs_page_and_api_answers_are_not_cached(service):
    with service.client() as c:
        assert c.get("/api/v1/docs").status_code in (401, 404)
        doc = c.get("/api/v1/openapi.json")
        assert doc.status_code == 200
        assert doc.headers["cache-control"] == "no-store"
        assert doc.headers["content-security-policy"].startswith("default-src 'none'")
    with service.client(service.token("auditor:kpmg")) as c:
        r = c.get(f"/api/v1/contracts/{CONTRACT}/report")
    assert (
        r.headers["cache-control"] == "no-store"
        and "default-src 'none'" in r.headers["content-security-policy"]
    )


def _refusals(service) -> list[dict]:
    import json
    import sqlite3

    with sqlite3.connect(service.db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT topic, state FROM stored_events").fetchall()
    return [json.loads(s) for t, s in rows if "AccessRefused" in t]


def test_a_session_write_without_its_csrf_token_is_refused_and_recorded(service):
    token = service.token("commissioner:bccg", "csrf-less")
    with service.client() as c:
        c.get("/signin")
        assert c.post("/signin", data={"token": token, "csrf": c.cookies.get("obc_csrf")}).status_code == 303
        principal = c.get("/api/v1/whoami").json()["principal"]
        r = c.post(f"/api/v1/contracts/{CONTRACT}/pay", content=b'{"through": "2025-Q3"}')
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
        page = c.post(f"/contracts/{CONTRACT}/years/1/close", data={"csrf": "wrong"})
        assert page.status_code == 403
    mine = [s for s in _refusals(service) if s.get("principal") == principal]
    assert len(mine) == 2 and all("csrf" in s["reason"] for s in mine), mine


def test_a_bad_token_at_signin_is_on_the_security_log(service):
    with service.client() as c:
        c.get("/signin")
        r = c.post("/signin", data={"token": "obc_not-a-token", "csrf": c.cookies.get("obc_csrf")})
    assert r.status_code == 401
    assert '"signin_refused"' in service.log.read_text()


@pytest.mark.parametrize("source", ["<b>hi</b>", "two words", "a\u202eb", "x" * 201])
def test_a_records_source_is_a_plain_name_or_422_naming_source(service, source):
    with service.client(service.token("provider:circle")) as c:
        r = c.post("/api/v1/records", params={"source": source, "check": "true"}, content=b"{}\n")
    assert r.status_code == 422 and r.json()["message"].startswith("source:"), r.text


def test_a_plain_source_is_kept(service):
    with service.client(service.token("provider:circle")) as c:
        r = c.post(
            "/api/v1/records", params={"source": "lims/export-2025.Q2", "check": "true"}, content=b"{}\n"
        )
    assert r.status_code == 200 and r.json()["source"] == "lims/export-2025.Q2", r.text


def test_an_authenticated_chunked_body_past_the_limit_is_413(service):
    token = service.token("provider:circle")
    for path in (f"/contracts/{CONTRACT}/upload", "/api/v1/records"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: multipart/form-data; boundary=XB\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        first = b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        chunk = b"a" * 32768
        chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in [first] + [chunk] * ((3 * LIMIT) // len(chunk))]
        answer = _raw(service, head, chunks)
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:300])


def test_a_malformed_upload_form_is_a_one_line_error_naming_the_file(service):
    with service.client(service.token("provider:circle")) as c:
        r = c.post(
            f"/contracts/{CONTRACT}/upload",
            content=b"--XB\r\nnonsense",
            headers={"Content-Type": "multipart/form-data; boundary=XB"},
        )
    assert r.status_code == 400 and "file:" in r.text, r.text
