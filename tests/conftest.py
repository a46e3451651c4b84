# Shared pytest configuration. Real loopback servers (PostgreSQL via pgserver's
# binaries, the Tansu Kafka-protocol broker) come from tests/support/fixtures.py.
import pytest

from tests.support.cli import Cli

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def cli(sqlite_url):
    """The CLI against a fresh SQLite ledger."""
    return Cli(sqlite_url)


@pytest.fixture(params=["sqlite", "postgres"])
def any_cli(request, tmp_path):
    """The CLI against a fresh ledger on SQLite, then on a real PostgreSQL server."""
    if request.param == "sqlite":
        return Cli(f"sqlite:///{tmp_path / 'ledger.db'}")
    return Cli(request.getfixturevalue("postgres_url"))
