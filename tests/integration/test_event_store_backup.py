"""The backup procedure of deploy/README.md works: pg_dump of the event store tables only,
pg_restore into an empty database, read models rebuilt, `verify --against` the digest taken
before the backup, the same statements, and the restored ledger keeps recording."""

from __future__ import annotations

import json
import subprocess

from deploy.servers import postgres_bin_dir
from tests.support.cli import EXAMPLES, Cli

EVENT_STORE = ("ledger_events", "ledger_snapshots", "notification_tracking", "record_index", "event_hashes")


def test_a_dump_of_the_event_store_tables_restores_verifies_and_rebuilds_the_same_statements(
    postgres_server, make_postgres_url, tmp_path
):
    source = Cli(make_postgres_url())
    source.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    source.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    source.ok("close-year", "beds-msk", "1")
    source.ok("close-year", "beds-msk", "2")
    statements = [source.ok("statement", "beds-msk", "--year", y, "--json").json() for y in ("1", "2")]
    digest = tmp_path / "digest.json"
    digest.write_text(source.ok("digest").out)

    dump = tmp_path / "event-store.dump"
    tables = [arg for t in EVENT_STORE for arg in ("--table", t)]
    bin_dir = postgres_bin_dir()
    subprocess.run(
        [bin_dir / "pg_dump", "--dbname", source.db_url, "--format", "custom", "--file", dump, *tables],
        check=True,
        capture_output=True,
        timeout=60,
    )
    target = Cli(make_postgres_url())
    subprocess.run(
        [bin_dir / "pg_restore", "--dbname", target.db_url, "--no-owner", "--exit-on-error", dump],
        check=True,
        capture_output=True,
        timeout=60,
    )

    rebuilt = target.ok("projections", "rebuild", "--json").json()
    assert rebuilt["rebuilt"] > 0
    verified = target.ok("verify", "--against", digest, "--json").json()
    assert verified["ok"] is True
    assert [
        target.ok("statement", "beds-msk", "--year", y, "--json").json() for y in ("1", "2")
    ] == statements

    # the restored event store goes on: new events get fresh notification ids and seals
    late = tmp_path / "late.jsonl"
    late.write_text(
        json.dumps(
            {
                "type": "cost_report",
                "report_id": "c-late",
                "contract_id": "beds-msk",
                "provider_id": "circle",
                "period": "2026-Q2",
                "total_cost": "6900000.00",
            }
        )
        + "\n"
    )
    assert target.ok("ingest", late, "--json").json()["accepted"] == 1
    assert target.ok("restate", "beds-msk", "2", "--json").json()["true_up"] is not None
    assert target.ok("verify", "--against", digest, "--json").json()["ok"] is True
