"""The one place the ledger's world is wired: :func:`bootstrap` → :class:`App`.

Every entry point (the CLI, ``deploy/worker.py`` through the CLI, ``deploy/local_cluster.py``,
``bench/*``, next the web service) builds what it needs here: the event store (the
``Ledger``), the read models (``projections.bootstrap.Projections``, whose own factory stays
in ``projections/``), the Avro codec with its schema-id configuration (fixed ids, or a
registry's: an object, never a process-wide setting), and the witnesses digests are
published to. Nothing is opened until it is first used: ``obc-ledger keys generate`` never
touches a database, ``db init --roles --print-sql`` never connects.

Only this module and the entry points import ``projections`` and ``consumers`` from
``ledger`` (import-linter's contracts in pyproject.toml keep it so).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from consumers.codec import Codec
from ledger.adapters import roles, witness
from ledger.adapters.config import DB_ENV, DEFAULT_DB, persistence_env
from ledger.adapters.tokens import TokenStore
from ledger.usecases import Services, services_for
from ledger.usecases.application import Ledger
from projections import schema as read_schema
from projections.bootstrap import PROJECTIONS_DB_ENV, Projections

if TYPE_CHECKING:
    from consumers.consumer import LedgerConsumer
    from consumers.decisions import PublishReport
    from consumers.producer import ProduceReport
    from consumers.witness import KafkaWitness

__all__ = ["App", "bootstrap"]

# The Kafka client (kafka-python, ~0.15 s to import) is loaded only by the commands that talk to a
# broker: the four Kafka methods below import consumers.consumer/decisions/producer/witness when called.
# (Not a circle being dodged: consumers never import ledger.bootstrap; import-linter checks it.)


class App:
    """The wired ledger of one database: its store, read models, codec and witnesses.

    Build it with :func:`bootstrap`. ``app.ledger`` is the event-sourced application (opened on
    first use, once); ``app.projections()`` its read models; ``app.codec`` the Avro codec.
    """

    def __init__(
        self,
        db_url: str,
        *,
        projections_url: str | None,
        codec: Codec,
        clock: Callable[[], datetime] | None,
        env: Mapping[str, str],
    ) -> None:
        self.db_url = db_url
        self.projections_url = projections_url
        self.codec = codec
        self.clock = clock
        self.env = env
        self._ledger: Ledger | None = None
        self._services: Services | None = None

    @property
    def ledger(self) -> Ledger:
        """The event store and its application service (opened once, on first use)."""
        if self._ledger is None:
            env = persistence_env(self.db_url)
            self._ledger = Ledger(env=env) if self.clock is None else Ledger(env=env, clock=self.clock)
        return self._ledger

    @property
    def services(self) -> Services:
        """The use cases over the ledger (access, registration, ingest, settlement, disputes), built once."""
        if self._services is None:
            self._services = services_for(self.ledger)
        return self._services

    # ---------------------------------------------------------------- read models

    def projections(self) -> Projections:
        """The read models (default: in the event store's own database)."""
        return Projections(self.ledger, self.projections_url or self.db_url)

    def projections_as_of(self, instant: datetime, contracts: set[str] | None = None) -> Projections:
        """Read models rebuilt in a scratch database from the events recorded up to ``instant``."""
        return Projections.as_of(self.ledger, instant, contracts)

    # ---------------------------------------------------------------- Kafka

    def consumer(
        self, bootstrap_servers: str, topics: list[str] | None = None, **options: Any
    ) -> LedgerConsumer:
        """A consumer of providers' records applying them to this ledger (``obc-ledger consume``)."""
        from consumers.consumer import LedgerConsumer

        return LedgerConsumer(self.ledger, bootstrap_servers, topics, codec=self.codec, **options)

    def produce(self, bootstrap_servers: str, topic: str, open_lines: Any, **options: Any) -> ProduceReport:
        """Check a provider's JSON lines and send the good ones as Avro (``obc-ledger produce``)."""
        from consumers.producer import produce

        return produce(bootstrap_servers, topic, open_lines, codec=self.codec, **options)

    def publish_decisions(
        self,
        bootstrap_servers: str,
        topic: str,
        until_idle: float | None,  # float-ok: seconds
        **options: Any,
    ) -> PublishReport:
        """Publish payment decisions to a topic, exactly once in effect (``obc-ledger publish-decisions``)."""
        from consumers.decisions import publish_decisions

        return publish_decisions(
            self.ledger, bootstrap_servers, topic, until_idle, codec=self.codec, **options
        )

    # ---------------------------------------------------------------- witnesses

    @staticmethod
    def kafka_witness(bootstrap_servers: str | None) -> KafkaWitness | None:
        from consumers.witness import KafkaWitness

        return KafkaWitness(bootstrap_servers) if bootstrap_servers else None

    def publish_digest(
        self, digest: dict[str, Any], target: str, bootstrap_servers: str | None = None
    ) -> str:
        """Append a digest to a witness: a directory, or ``kafka:TOPIC``."""
        return witness.publish(digest, target, self.kafka_witness(bootstrap_servers))

    def read_witness(
        self, target: str, bootstrap_servers: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every digest a witness holds, with its name, in the order issued."""
        return witness.read(target, self.kafka_witness(bootstrap_servers))

    # ---------------------------------------------------------------- PostgreSQL roles

    def init_roles(self, *, execute: bool = True) -> list[str]:
        """``db init --roles``: tables, least-privilege roles, grants, append-only trigger, row-level security."""
        url = self.db_url

        def create_tables() -> None:  # as the connecting administrator, whatever CREATE_TABLE says
            app = Ledger(env=dict(persistence_env(url), CREATE_TABLE="yes"))
            try:
                projections = Projections(app, url.split("?", 1)[0])
                projections.projector.create_tables()
                projections.engine.dispose()
                TokenStore(url).engine.dispose()  # the service's tables (tokens, idempotency, secret)
            finally:
                app.close()

        return roles.init_roles(
            url,
            read_models=table_names(read_schema.metadata.sorted_tables),
            party_tables=table_names(read_schema.READ_MODELS),
            create_tables=create_tables,
            execute=execute,
        )

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def table_names(tables: Iterable[Any]) -> list[str]:
    return [table.name for table in tables]


def bootstrap(
    db_url: str | None = None,
    *,
    projections_url: str | None = None,
    registry_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
    env: Mapping[str, str] | None = None,
) -> App:
    """Wire the ledger of ``db_url`` (default ``$OBC_LEDGER_DB``, else ``sqlite:///obc-ledger.db``).

    ``projections_url``: where the read models live (default ``$OBC_LEDGER_PROJECTIONS_DB``, else the
    event store's database). ``registry_url``: a Confluent-compatible schema registry whose ids the
    codec frames with (default: the fixed ids of ``schemas/``). ``clock``: the ledger's clock (tests).
    ``env``: the environment the defaults are read from (default ``os.environ``).
    """
    environ = os.environ if env is None else env
    return App(
        db_url or environ.get(DB_ENV) or DEFAULT_DB,
        projections_url=projections_url or environ.get(PROJECTIONS_DB_ENV) or None,
        codec=Codec.for_registry(registry_url),
        clock=clock,
        env=environ,
    )
