"""The service on PostgreSQL: tokens, idempotency and the principal on events in its database."""

from __future__ import annotations

from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service


def test_the_service_runs_on_postgresql(postgres_url, tmp_path):
    cli = Cli(postgres_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    service = start_service(postgres_url, tmp_path / "service.log", workers=2)
    try:
        commissioner = service.token("commissioner:bccg", "Finance manager")
        with service.client(commissioner) as c:
            first = c.post("/api/v1/contracts/beds-msk/years/1/close", headers={"Idempotency-Key": "c1"})
            assert first.status_code == 200, first.text
            again = c.post("/api/v1/contracts/beds-msk/years/1/close", headers={"Idempotency-Key": "c1"})
            assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
            api = c.get("/api/v1/contracts/beds-msk/years/1/statement").json()
        assert api == cli.ok("statement", "beds-msk", "--year", "1", "--json").json()
        with service.client(service.token("provider:stranger")) as c:
            assert c.get("/api/v1/contracts/beds-msk").status_code == 404  # refused as if unregistered
        with service.client("obc_wrong") as c:
            assert c.get("/api/v1/contracts").status_code == 401
    finally:
        service.stop()
    verify = cli.ok("verify", "--json").json()
    assert verify["ok"] is True
