"""Real servers on loopback for integration tests: PostgreSQL and Tansu (Kafka protocol).

The implementation lives in ``deploy/loopback.py``, because the local cluster
(``python -m deploy.local_cluster``) starts the same servers and production code must
not import test code. Re-exported here so tests and benchmarks keep their imports.
"""

from deploy.loopback import (  # noqa: F401 - re-exported
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
