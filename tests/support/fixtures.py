"""pytest fixtures for real loopback servers; load with ``pytest_plugins``.

Session-scoped servers (started once, stopped at the end of the session):
``postgres_server`` and ``kafka_broker``. Per-test resources: ``postgres_url``
(a fresh empty database, dropped afterwards), ``make_postgres_url`` (a factory
for several), ``postgres_env`` (eventsourcing settings for ``postgres_url``)
and ``kafka_topic`` (a fresh 3-partition topic).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.servers import (
    PostgresServer,
    TansuBroker,
    eventsourcing_env,
    start_postgres,
    start_tansu,
    unique_name,
)

KAFKA_TEST_PARTITIONS = 3


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    # The cluster lives in a plain temp dir, not under pytest's basetemp: that is
    # mode 0700, and as root PostgreSQL runs as an unprivileged account.
    data_dir = Path(tempfile.mkdtemp(prefix="obc-pg-"))
    log_path = tmp_path_factory.mktemp("postgres") / "postgres.log"
    try:
        server = start_postgres(data_dir, log_path=log_path)
        yield server
        server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    broker = start_tansu(log_dir=tmp_path_factory.mktemp("tansu"))
    yield broker
    broker.stop()


@pytest.fixture
def make_postgres_url(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Factory: each call creates another empty database and returns its URL."""
    created: list[str] = []

    def make() -> str:
        name = unique_name(request.node.name, max_length=63)
        created.append(name)
        return postgres_server.create_database(name)

    yield make
    for name in created:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(make_postgres_url: Callable[[], str]) -> str:
    """URL of a fresh, empty database used by this test only."""
    return make_postgres_url()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test run twice: on a fresh SQLite file, and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def postgres_env(postgres_url: str) -> dict[str, str]:
    """``eventsourcing.postgres`` settings for this test's database."""
    return eventsourcing_env(postgres_url)


@pytest.fixture
def kafka_topic(kafka_broker: TansuBroker, request: pytest.FixtureRequest) -> str:
    """Name of a fresh topic with 3 partitions, used by this test only."""
    name = unique_name(request.node.name, max_length=120)
    kafka_broker.create_topic(name, partitions=KAFKA_TEST_PARTITIONS)
    return name
