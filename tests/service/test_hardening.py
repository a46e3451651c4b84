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
