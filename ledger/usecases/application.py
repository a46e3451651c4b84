"""The event-store application: aggregates loaded and saved, contracts and their terms, the log.

The use cases (``ledger.usecases.access``, ``registration``, ``ingest``, ``settlement``,
``disputes``) decide; this class only stores: it constructs the event store from a URL,
loads and retries, keeps the definition cache and reads the log in order.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import Aggregate, CanMutateProtocol
from eventsourcing.persistence import (
    ConnectionNotFromPoolError,
    ConnectionPoolClosedError,
    IntegrityError,
    Notification,
    PersistenceError,
    Transcoder,
)
from eventsourcing.utils import get_topic

from ledger.adapters.config import persistence_env
from ledger.adapters.transcoder import LedgerTranscoder, SharedDecimalAsStr
from ledger.domain.aggregates import Contract, Settlement, contract_uuid, settlement_uuid
from ledger.domain.definition import ContractDefinition, from_document
from ledger.domain.errors import InvalidCommand, unknown_contract
from ledger.domain.periods import Calendar
from ledger.domain.variations import ContractTerms, attach, from_stored
from ledger.usecases.common import RETRIES, iso, utc_now

log = logging.getLogger("obc_ledger.application")

__all__ = ["RETRIES", "Ledger", "iso", "utc_now"]

T = TypeVar("T")


class RecordIndex(Protocol):
    """The record-id index the ledger's recorders keep beside the events (ledger.adapters.store)."""

    def lookup_records(self, contract_id: str, keys: Iterable[str]) -> dict[str, str]: ...

    def clear_record_index(self) -> None: ...


class StoredLog(Protocol):
    """The log as stored rows (id, stream id as text, version, topic, state): the recorders' plain read
    (ledger.adapters.store), for the walks over every event (verify, a rebuild)."""

    def select_log(self, after: int | None, limit: int) -> list[tuple[int, str, int, str, bytes]]: ...


_MUTABLE_TYPES: set[type] = set()  # event classes already checked to have ``mutate``


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate``, with its check of each event made once per event class.

    The library asserts ``isinstance(event, CanMutateProtocol)`` for every event; against a runtime
    protocol that costs about 20 microseconds on Python 3.11 (the protocol's members are worked out
    again at each call), as much as decoding and applying the event together: half of a year
    close's replay. The check is the same, made the first time a class is seen; each event is then
    applied by its own ``mutate``, as the library does."""
    for event in events:
        kind = type(event)
        if kind not in _MUTABLE_TYPES:
            if not isinstance(event, CanMutateProtocol):
                raise TypeError(f"{kind.__name__} cannot mutate an aggregate (it has no mutate())")
            _MUTABLE_TYPES.add(kind)
        aggregate = event.mutate(aggregate)
    return aggregate


class NamedStateRepository(Repository[Any]):
    """A repository that gives an aggregate loaded from a snapshot its named state back (a snapshot
    stores named tuples as JSON arrays; see ``YearData.restore_named_state``), and projects events
    with :func:`project_events`."""

    def get(self, aggregate_id: Any, *, projector_func: Any = None, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func or project_events, **kwargs)

    def _reconstruct_aggregate(self, aggregate_id: Any, version: Any, projector_func: Any) -> Any:
        try:
            return _restored(super()._reconstruct_aggregate(aggregate_id, version, projector_func))
        except (AggregateNotFoundError, *_NOT_THE_SNAPSHOT):
            raise
        except Exception as exc:
            if self.snapshot_store is None:
                raise
            # A snapshot is a cache of a replay: one that cannot be restored (corrupt, or forged by
            # someone with the database's rights) must not stop every load of its stream. The events
            # are read instead; anything wrong with them raises again. `verify` reports the snapshot.
            log.warning(
                "the snapshot of stream %s could not be restored (%s: %s); its events were used instead",
                aggregate_id,
                type(exc).__name__,
                str(exc)[:200],
            )
        aggregate = projector_func(None, self.event_store.get(originator_id=aggregate_id, lte=version))
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} not found.")
        return _restored(aggregate)


# failures of the store itself, not of what a snapshot holds: raised as they are
_NOT_THE_SNAPSHOT = (
    PersistenceError,
    ConnectionPoolClosedError,
    ConnectionNotFromPoolError,
    MemoryError,
    OSError,
)


def _restored(aggregate: Any) -> Any:
    restore = getattr(aggregate, "restore_named_state", None)
    if restore is not None:
        restore()
    return aggregate


class Ledger(Application):
    """Contracts, data, payment decisions and statements, as stored events."""

    name = "ledger"
    is_snapshotting_enabled = True

    def __init__(self, env: Mapping[str, str] | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        for attempt in range(5):
            try:
                super().__init__(env)
                break
            except Exception as exc:  # several workers creating the same tables at once (PostgreSQL)
                concurrent = "concurrently" in str(exc) or "pg_type_typname_nsp_index" in str(exc)
                if not concurrent or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self.clock = clock
        self._definitions: dict[tuple[str, str, tuple[str, ...]], ContractDefinition] = {}

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Ledger:
        return cls(env=persistence_env(url), **kwargs)

    # ----------------------------------------------------------------- repository

    def construct_transcoder(self) -> Transcoder:
        # the library's JSON, its encoder made once (ledger.adapters.transcoder)
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        transcoder.register(SharedDecimalAsStr())  # replaces the library's decimal_str: small ones shared
        return transcoder

    def construct_repository(self) -> Repository[Any]:
        repository = super().construct_repository()
        repository.__class__ = NamedStateRepository  # the same repository, with the snapshot hook
        return repository

    @property
    def record_index(self) -> RecordIndex:
        return cast(RecordIndex, self.recorder)

    @property
    def stored_log(self) -> StoredLog:
        return cast(StoredLog, self.recorder)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(RETRIES - 1):
            try:
                return attempt()
            except IntegrityError:
                continue  # another writer got there first: reload and decide again
        return attempt()

    def _maybe(self, aggregate_id: Any) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def snapshot(self, aggregate: Aggregate) -> None:
        if self.snapshots is None:
            raise InvalidCommand("snapshotting is not enabled for this ledger", code="no_snapshots")
        self.snapshots.put([type(aggregate).Snapshot.take(aggregate)])

    def recorded(self, *event_classes: type, page: int = 1000) -> Iterator[tuple[Notification, Any]]:
        """(notification, domain event) for every recorded event of these classes, in log order."""
        topics = [get_topic(cls) for cls in event_classes]
        start = None
        while notifications := self.recorder.select_notifications(
            start=start, limit=page, topics=topics, inclusive_of_start=False
        ):
            for n in notifications:
                yield n, self.mapper.to_domain_event(n)
            start = notifications[-1].id

    def settlement_state(self, contract_id: str, year: int) -> Settlement | None:
        """The year's settlement as stored (None before its first decision)."""
        settlement: Settlement | None = self._maybe(settlement_uuid(contract_id, year))
        return settlement

    def _settlement(self, contract_id: str, year: int) -> Settlement:
        """The year's settlement, or a new one (unsaved) when nothing is decided yet."""
        settlement = self.settlement_state(contract_id, year)
        return settlement if settlement is not None else Settlement(contract_id=contract_id, year=year)

    # ------------------------------------------------------------------ contracts

    def load_contract(self, contract_id: str) -> tuple[Contract, ContractDefinition]:
        contract = self._maybe(contract_uuid(contract_id))
        if contract is None:
            raise unknown_contract(contract_id)
        return contract, self._definition(contract)

    def _definition(self, contract: Contract) -> ContractDefinition:
        """The registered definition, with the terms of every year (its variations) attached."""
        # keyed by the variations' content: an unsaved variation (a save that lost a race) never passes for
        # another writer's under the same id
        key = (
            contract.contract_id,
            contract.source_sha256,
            tuple(json.dumps(v, sort_keys=True) for v in contract.variations),
        )
        definition = self._definitions.get(key)
        if definition is None:
            definition = from_document(contract.definition)
            attach(definition, ContractTerms(definition, [from_stored(v) for v in contract.variations]))
            self._definitions[key] = definition
        return definition

    def terms(self, contract: Contract) -> ContractTerms:
        terms = self._definition(contract).__dict__["_terms"]
        if not isinstance(terms, ContractTerms):
            raise TypeError(f"the terms of {contract.contract_id!r} are not attached")
        return terms

    def _baselines(self, contract: Contract, year: int) -> dict[str, Decimal]:
        recorded = [(k, v, contract.baseline_after.get(k, 0)) for k, v in contract.baselines.items()]
        return self.terms(contract).baselines(year, recorded)

    @staticmethod
    def check_year(calendar: Calendar, year: int) -> None:
        if not 1 <= year <= calendar.years:
            raise InvalidCommand(
                f"year {year} is outside the contract term (1..{calendar.years})", code="year_outside_term"
            )
