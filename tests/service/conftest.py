"""One live service on the worked example per module (years open: tests close them as needed)."""

from __future__ import annotations

import pytest

from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service


@pytest.fixture(scope="module")
def example_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    service = start_service(db_url, tmp / "service.log")
    service.cli = cli  # type: ignore[attr-defined]
    yield service
    service.stop()
