"""A 500 (an exception no handler answers) carries the security headers as every other response."""

from __future__ import annotations

from starlette.testclient import TestClient

from ledger.entrypoints.web.app import create_app


def test_an_unhandled_exception_is_a_500_with_the_security_headers(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'ledger.db'}", quiet=True)

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/v1/boom", boom)
    app.add_api_route("/boom-page", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/v1/boom", "/boom-page"):
            r = client.get(path)
            assert r.status_code == 500 and r.json()["error"] == "internal", r.text
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
            assert "boom" not in r.text
