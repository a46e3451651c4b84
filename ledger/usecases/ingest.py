"""Batch ingest: records applied to the ledger many at a time, one transaction per batch.

The naive get → command → save path runs at a few hundred commands/s; here a
batch of records is validated, its ids are looked up in the event store's record
index with a few queries, and the records are applied to year streams held in a
bounded cache and saved together. A batch is all-or-nothing: a crash loses at
most the batch in flight, and re-running the same input acknowledges what was
already applied as duplicates. Memory is bounded by the batch and the cache, not
by the number of records ingested.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Tracking

from ledger.adapters.framing import Line, read_lines, text_lines
from ledger.adapters.gcpace import bulk_pace
from ledger.adapters.principal import current_principal
from ledger.domain.access import Actor
from ledger.domain.aggregates import (
    SNAPSHOT_EVERY,
    ClaimState,
    Contract,
    EpisodeState,
    Rejection,
    Settlement,
    YearData,
    rejection_uuid,
    settlement_uuid,
    year_data_uuid,
)
from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import NotFound, infrastructure_fault
from ledger.domain.periods import Calendar
from ledger.domain.records import (
    ID_FIELDS,
    CostReport,
    OutcomeClaim,
    PopulationCount,
    PromEpisode,
    Record,
    RecordRefused,
    Refusal,
    Submission,
    check_record,
    envelope,
    parse_json_line,
    unknown_contract_refusal,
)
from ledger.domain.signatures import Signed
from ledger.usecases.access import Access
from ledger.usecases.common import RETRIES, batched, iso
from ledger.usecases.registration import population_budget_change
from ledger.usecases.results import RejectedRecord
from ledger.usecases.signatures import SignatureCheck

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger

BATCH_SIZE = 2000
MAX_CACHED_CONTRACTS = 256
MAX_CACHED_YEARS = 64
# A cached year stream no record of the last IDLE_RECORDS has used — nor of the last as many records as the
# stream has events, since reloading it costs about that much (a rate-card year's claims) — is let go at
# the next flush: memory is bounded by the streams in use, not by every stream the cache has room for,
# and a reload's cost is at most one event per record ingested since. Using it again reloads it.
IDLE_RECORDS = 50_000

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    corrections: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    late: Counter[tuple[str, int]] = field(default_factory=Counter)  # (contract, closed year) -> records
    budget_changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.corrections += other.corrections
        self.by_code.update(other.by_code)
        self.late.update(other.late)
        self.budget_changes.extend(other.budget_changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "corrections": self.corrections,
            "rejected_by_reason": dict(sorted(self.by_code.items())),
            "late_for_closed_years": [
                {"contract_id": c, "year": y, "records": n} for (c, y), n in sorted(self.late.items())
            ],
            "budget_changes": self.budget_changes,
        }


@dataclass
class _ContractState:
    contract: Contract
    definition: ContractDefinition
    calendar: Calendar
    closed: dict[int, bool] = field(default_factory=dict)


@dataclass
class Rejected:
    line: int | None
    raw: str
    refusal: Refusal
    contract_id: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    source: str | None = None  # overrides the session's source (e.g. kafka:topic:partition)


@dataclass
class Outcome:
    """What became of one record: accepted, duplicate or rejected (with the refusal)."""

    status: str
    refusal: Refusal | None = None
    record: Record | None = None
    rejected: Rejected | None = None  # what will be stored as the Rejection (its raw/source may be set)


class IngestSession:
    """Applies batches of records to cached aggregates; :meth:`flush` saves a batch atomically."""

    def __init__(self, app: Ledger, source: str, actor: str) -> None:
        self.app = app
        self.source = source
        self.actor = actor
        self._provider = actor.split(":", 1)[1] if actor.startswith("provider:") else None
        self._contracts: OrderedDict[str, _ContractState | None] = OrderedDict()
        self._years: OrderedDict[tuple[str, int], YearData] = OrderedDict()
        self._used: dict[tuple[str, int], int] = {}  # a cached year stream -> self._records when last used
        self._records = 0  # records applied by this session
        self._touched: dict[Any, Any] = {}
        self._loaded_versions: dict[Any, int] = {}
        self._rejections: list[Rejected] = []
        self.refused: list[Rejected] | None = None  # when a list: every refusal of a saved batch, kept here
        self._index_rows: list[tuple[str, str, str]] = []
        self._batch_index: dict[tuple[str, str], str] = {}
        self._accepted_years: Counter[tuple[str, int]] = Counter()
        self.report = IngestReport()
        self.signatures = SignatureCheck(app)  # provider signatures (ledger.usecases.signatures)
        self._signed: dict[int, Signed] = {}  # id(record) -> its verified signature, within apply_many

    # -- loading -----------------------------------------------------------------

    def _state(self, contract_id: str) -> _ContractState | None:
        if contract_id in self._contracts:
            self._contracts.move_to_end(contract_id)
            return self._contracts[contract_id]
        try:
            contract, definition = self.app.load_contract(contract_id)
        except NotFound:
            state = None
        else:
            state = _ContractState(contract, definition, definition.calendar(contract.extended))
        self._contracts[contract_id] = state
        return state

    def _year_data(self, state: _ContractState, year: int) -> YearData:
        """A year's data stream (cached, loaded or new), marked for saving."""
        data = self._peek_year(state, year)
        if data is None:
            key = (state.definition.id, year)
            data = YearData(contract_id=state.definition.id, year=year)
            self._loaded_versions[data.id] = 0
            self._years[key] = data
            self._used[key] = self._records
        self._touched[data.id] = data
        return data

    def _is_closed(self, state: _ContractState, year: int) -> bool:
        if year not in state.closed:
            try:
                settlement: Settlement = self.app.repository.get(settlement_uuid(state.definition.id, year))
            except AggregateNotFoundError:
                state.closed[year] = False
            else:
                state.closed[year] = settlement.closed is not None
        return state.closed[year]

    # -- applying ----------------------------------------------------------------

    def apply_text(self, text: str, line: int | None = None) -> Outcome:
        """Apply one JSON-lines record (prefer :meth:`apply_many` for throughput)."""
        return self.apply_many([(text, None, line)])[0]

    def apply_object(self, obj: Any, raw: str, line: int | None = None) -> Outcome:
        """Apply one record already decoded to a dict (e.g. from Avro)."""
        return self.apply_many([(None, obj, line)], raws=[raw])[0]

    def apply_many(
        self, items: Sequence[tuple[str | None, Any, int | None]], raws: Sequence[str] | None = None
    ) -> list[Outcome]:
        """Apply records in order. Each item is (json_text, None, line) or (None, decoded_dict, line);
        ``raws`` gives the text kept with a rejected decoded record. Nothing is saved until :meth:`flush`.
        """
        texts = [
            text if text is not None else (raws[i] if raws else repr(obj))
            for i, (text, obj, _) in enumerate(items)
        ]
        prepared: list[tuple[Record | None, Rejected | None]] = []
        wanted: dict[str, set[str]] = {}
        self._records += len(items)
        self.signatures.new_batch()
        for (text, obj, line), raw in zip(items, texts, strict=True):
            try:
                record, rejected = self._check(text, obj, raw, line)
            except Exception as exc:
                record, rejected = None, Rejected(line, raw, unprocessable(exc))
            prepared.append((record, rejected))
            if record is not None:
                wanted.setdefault(record.contract_id, set()).add(f"{record.type}:{record.record_id}")
        known: dict[str, dict[str, str]] = {}
        for contract_id, keys in wanted.items():
            missing = [k for k in keys if (contract_id, k) not in self._batch_index]
            known[contract_id] = self.app.record_index.lookup_records(contract_id, missing) if missing else {}
        outcomes = []
        for (record, rejected), (_, _, line), raw in zip(prepared, items, texts, strict=True):
            if rejected is not None:
                outcomes.append(self._reject(rejected))
            else:
                assert record is not None
                outcomes.append(self._apply(record, known[record.contract_id], raw, line))
        self._signed.clear()
        return outcomes

    def _check(
        self, text: str | None, obj: Any, raw: str, line: int | None
    ) -> tuple[Record | None, Rejected | None]:
        try:
            env = envelope(parse_json_line(text) if text is not None else obj)
        except RecordRefused as exc:
            return None, Rejected(line, raw, exc.refusal)
        state = self._state(env.contract_id)
        if state is None:
            return None, Rejected(
                line,
                raw,
                unknown_contract_refusal(env.contract_id),
                env.contract_id,
                env.type,
                env.record_id,
            )
        # a provider not party to the contract is refused before its record is checked against the
        # terms: what those checks say (an indicator unknown, a quarter outside the term) is the terms'
        if self._provider is not None and self._provider not in state.definition.providers_ever:
            return None, Rejected(
                line,
                raw,
                Refusal(
                    "not_authorized",
                    "contract_id",
                    f"provider:{self._provider} is not a provider party to {state.definition.id}",
                    conceals=state.definition.id,
                ),
                env.contract_id,
                env.type,
                env.record_id,
            )
        try:
            record = check_record(env, state.definition, state.calendar)
        except RecordRefused as exc:
            return None, Rejected(line, raw, exc.refusal, env.contract_id, env.type, env.record_id)
        if self._provider is not None:
            own = getattr(record, "provider_id", self._provider)
            if own != self._provider:
                return None, Rejected(
                    line,
                    raw,
                    Refusal(
                        "not_authorized",
                        "provider_id",
                        f"provider:{self._provider} may submit only its own records, not {own}'s",
                    ),
                    env.contract_id,
                    env.type,
                    env.record_id,
                )
        try:
            signed = self.signatures.check(record, env.fields, state.contract)
        except RecordRefused as exc:
            return None, Rejected(line, raw, exc.refusal, env.contract_id, env.type, env.record_id)
        if signed is not None:
            self._signed[id(record)] = signed
        return record, None

    def _apply(self, record: Record, known: dict[str, str], raw: str, line: int | None) -> Outcome:
        key = f"{record.type}:{record.record_id}"
        seen = self._batch_index.get((record.contract_id, key)) or known.get(key)
        if seen is not None:
            if seen == record.digest:
                self.report.duplicates += 1
                return Outcome(DUPLICATE, record=record)
            return self._reject(
                Rejected(
                    line,
                    raw,
                    Refusal(
                        "conflicting_duplicate",
                        ID_FIELDS[record.type],
                        f"{record.record_id!r} was already accepted with different content; "
                        f"send a correction under a new id",
                    ),
                    record.contract_id,
                    record.type,
                    record.record_id,
                )
            )
        state = self._state(record.contract_id)
        assert state is not None
        data = self._year_data(state, record.year)
        affected = {record.year}
        found: tuple[int, ClaimState | EpisodeState] | None = None
        if isinstance(record, (OutcomeClaim, PromEpisode)):
            corrected = self._superseded(state, record, raw, line)
            if isinstance(corrected, Rejected):
                return self._reject(corrected)
            found = corrected
        if isinstance(record, OutcomeClaim):
            # the claim's place in arrival order; a correction keeps the first claim's (payment rules §8)
            arrival = (
                found[1].arrival
                if isinstance(found, tuple) and isinstance(found[1], ClaimState)
                else [datetime.now(UTC).isoformat(), record.year, data.version + 1]
            )
            data.accept_claim(record, list(arrival), self.actor)
            superseded = record.supersedes
            # a claim moves the caps of every later year: each closed one is flagged for restatement
            first = min(record.year, found[0]) if found is not None else record.year
            affected = set(range(first, state.calendar.years + 1))
        elif isinstance(record, PromEpisode):
            data.accept_episode(record, self.actor)
            superseded = record.supersedes
            if found is not None:
                affected.add(found[0])
        elif isinstance(record, Submission):
            superseded = data.accept_submission(record, self.actor)
        elif isinstance(record, CostReport):
            superseded = data.accept_cost_report(record, self.actor)
        else:
            before = data.population_counts()
            superseded = data.accept_population(record, self.actor)
            self._population_changed(state, record, before, data.population_counts())
        self._batch_index[(record.contract_id, key)] = record.digest
        self._index_rows.append((record.contract_id, key, record.digest))
        self.report.accepted += 1
        signed = self._signed.get(id(record))
        if signed is not None:
            data.keep_signature(record, signed, self.actor)
        if superseded is not None:
            self.report.corrections += 1
        for year in affected:
            self._accepted_years[(record.contract_id, year)] += 1
        return Outcome(ACCEPTED, record=record)

    def _peek_year(self, state: _ContractState, year: int) -> YearData | None:
        """A year's data stream if it exists (cached, not marked for saving)."""
        key = (state.definition.id, year)
        data = self._years.get(key)
        if data is not None:
            self._years.move_to_end(key)
            self._used[key] = self._records
            return data
        try:
            data = self.app.repository.get(year_data_uuid(*key))
        except AggregateNotFoundError:
            return None
        self._loaded_versions[data.id] = data.version
        self._years[key] = data
        self._used[key] = self._records
        return data

    def _superseded(
        self, state: _ContractState, record: OutcomeClaim | PromEpisode, raw: str, line: int | None
    ) -> tuple[int, ClaimState | EpisodeState] | Rejected | None:
        """The (year, entry) of the accepted claim or episode a correction names, or its refusal."""
        if record.supersedes is None:
            return None
        kind = "claim" if isinstance(record, OutcomeClaim) else "episode"
        for year in range(1, state.calendar.years + 1):
            data = self._peek_year(state, year)
            if data is None:
                continue
            held: Mapping[str, ClaimState | EpisodeState] = data.claims if kind == "claim" else data.episodes
            entry = held.get(record.supersedes)
            if entry is None:
                continue
            if entry.provider_id != record.provider_id:
                return Rejected(
                    line,
                    raw,
                    Refusal(
                        "invalid_supersedes",
                        "supersedes",
                        f"{kind} {record.supersedes!r} is {entry.provider_id}'s, not {record.provider_id}'s",
                    ),
                    record.contract_id,
                    record.type,
                    record.record_id,
                )
            later = next(
                (
                    d.superseded.get(record.supersedes)
                    for y in range(1, state.calendar.years + 1)
                    if (d := self._peek_year(state, y)) is not None and record.supersedes in d.superseded
                ),
                None,
            )
            if later is not None:
                return Rejected(
                    line,
                    raw,
                    Refusal(
                        "already_superseded",
                        "supersedes",
                        f"{kind} {record.supersedes!r} was already corrected by "
                        f"{later!r}; correct that one instead",
                    ),
                    record.contract_id,
                    record.type,
                    record.record_id,
                )
            return year, entry
        return Rejected(
            line,
            raw,
            Refusal(
                "unknown_supersedes",
                "supersedes",
                f"no accepted {kind} {record.supersedes!r} of contract {record.contract_id!r}",
            ),
            record.contract_id,
            record.type,
            record.record_id,
        )

    def _population_changed(
        self, state: _ContractState, record: PopulationCount, before: dict[str, int], after: dict[str, int]
    ) -> None:
        change = population_budget_change(state.definition, record.year, before, after)
        if change is None:
            return
        amount, trace = change
        state.contract.set_budget(
            year=record.year,
            amount=amount,
            reason="population",
            note=f"population count {record.record_id} ({record.segment_id}: {record.count})",
            trace=trace,
            actor=self.actor,
        )
        self._touched[state.contract.id] = state.contract
        self.report.budget_changes.append(
            {
                "contract_id": record.contract_id,
                "year": record.year,
                "budget": format(amount, "f"),
                "record_id": record.record_id,
            }
        )

    def reject(
        self, refusal: Refusal, raw: str, line: int | None = None, source: str | None = None
    ) -> Outcome:
        """Record a refusal decided before the ledger could read the record (e.g. undecodable bytes)."""
        return self._reject(Rejected(line, raw, refusal, source=source))

    def _reject(self, rejected: Rejected) -> Outcome:
        self._rejections.append(rejected)
        self.report.rejected += 1
        self.report.by_code[rejected.refusal.code] += 1
        return Outcome(REJECTED, refusal=rejected.refusal, rejected=rejected)

    # -- saving ------------------------------------------------------------------

    def flush(self, trackings: Sequence[Tracking] = ()) -> IngestReport:
        """Save everything applied since the last flush in one transaction; return its counts.

        ``trackings`` (e.g. Kafka offsets as ``Tracking("kafka:topic:partition", offset)``)
        are recorded in the same transaction, even when the batch produced no events.
        """
        aggregates = list(self._touched.values())
        seen_keys: set[str] = set()
        # Who sent it is part of the key: the same line refused again from the same sender is
        # recorded once (a retry), from anyone else it is a refusal of its own. The system's own
        # feeds (CLI ingest, Kafka) with no principal keep their former key.
        principal = current_principal()
        sender = "" if principal is None and self.actor == "system" else f"{self.actor}\n{principal or ''}\n"
        for r in self._rejections:
            key = hashlib.sha256(f"{r.refusal.code}\n{sender}{r.raw}".encode()).hexdigest()
            if key in seen_keys or self.app.recorder.select_events(rejection_uuid(key), limit=1):
                continue
            seen_keys.add(key)
            aggregates.append(
                Rejection(
                    key=key,
                    source=r.source or self.source,
                    line=r.line,
                    raw=r.raw,
                    code=r.refusal.code,
                    field=r.refusal.field,
                    message=r.refusal.message,
                    contract_id=r.contract_id,
                    record_type=r.record_type,
                    record_id=r.record_id,
                    actor=self.actor,
                )
            )
        probe = {settlement_uuid(*key): key for key in self._accepted_years}
        closed: set[Any] = set()
        if aggregates or trackings:
            self.app.save(
                *aggregates,
                trackings=list(trackings),
                record_index=self._index_rows,
                probe_closed=list(probe),
                closed_found=closed,
            )
        for stream_id in closed:  # decided under the batch's write lock, not from a cache
            self.report.late[probe[stream_id]] += self._accepted_years[probe[stream_id]]
        for agg in self._touched.values():
            if isinstance(agg, YearData):
                before = self._loaded_versions.get(agg.id, 0)
                if _snapshot_due(agg, before):
                    self.app.snapshot(agg)
                self._loaded_versions[agg.id] = agg.version
        if self.refused is not None:
            self.refused.extend(self._rejections)
        report, self.report = self.report, IngestReport()
        self._touched.clear()
        self._rejections.clear()
        self._index_rows = []
        self._batch_index.clear()
        self._accepted_years.clear()
        idle = [
            year_key
            for year_key, data in self._years.items()
            if self._records - self._used[year_key] > max(IDLE_RECORDS, data.version)
        ]
        for year_key in idle:
            self._forget_year(year_key)
        while len(self._years) > MAX_CACHED_YEARS:
            self._forget_year(next(iter(self._years)))
        while len(self._contracts) > MAX_CACHED_CONTRACTS:
            self._contracts.popitem(last=False)
        return report

    def _forget_year(self, year_key: tuple[str, int]) -> None:
        data = self._years.pop(year_key)
        self._used.pop(year_key, None)
        self._loaded_versions.pop(data.id, None)

    def discard_pending(self) -> None:
        """Drop what :meth:`flush` would save, keeping the state it produced (a dry run's
        next batch still sees this one's records: duplicates within a file are found)."""
        for aggregate in self._touched.values():
            aggregate.collect_events()
        for (contract_id, year), n in self._accepted_years.items():
            state = self._state(contract_id)
            if state is not None and self._is_closed(state, year):
                self.report.late[(contract_id, year)] += n
        self._accepted_years.clear()
        self._touched.clear()
        self._rejections.clear()
        self._index_rows = []

    def reset(self) -> None:
        """Forget all cached state (after a concurrent write made it stale)."""
        self._contracts.clear()
        self._years.clear()
        self._used.clear()
        self._touched.clear()
        self._loaded_versions.clear()
        self._rejections.clear()
        self._index_rows = []
        self._batch_index.clear()
        self._accepted_years.clear()
        self.report = IngestReport()


def _snapshot_due(data: YearData, before: int) -> bool:
    """Every SNAPSHOT_EVERY events; a stream holding outcome claims or PROM episodes (state that grows with
    the records, payment rules §8, §9) only when its version doubles, so snapshots stay linear overall."""
    if data.version // SNAPSHOT_EVERY <= before // SNAPSHOT_EVERY:
        return False
    if not (getattr(data, "claims", None) or getattr(data, "episodes", None)):
        return True
    return (data.version // SNAPSHOT_EVERY).bit_length() > (before // SNAPSHOT_EVERY).bit_length()


def apply_lines(session: IngestSession, chunk: Sequence[Line]) -> list[Outcome]:
    """Apply framed lines or rows: refused frames are kept as refusals, the rest parsed and applied."""
    outcomes = []
    for line in chunk:
        if line.refusal is not None:
            outcomes.append(session.reject(line.refusal, line.raw, line.number, line.source))
    texts = [line for line in chunk if line.refusal is None and line.text is not None]
    outcomes += session.apply_many([(line.text, None, line.number) for line in texts])
    rows = [line for line in chunk if line.refusal is None and line.obj is not None]
    if rows:
        applied = session.apply_many(
            [(None, line.obj, line.number) for line in rows], raws=[r.raw for r in rows]
        )
        for line, outcome in zip(rows, applied, strict=True):
            if outcome.rejected is not None and line.source is not None:
                outcome.rejected.source = line.source
        outcomes += applied
    return outcomes


def unprocessable(exc: BaseException) -> Refusal:
    """The refusal of a record whose processing raised something unforeseen (kept, never fatal)."""
    text = " ".join(str(exc).split())
    return Refusal(
        "unprocessable",
        None,
        f"the record could not be processed ({type(exc).__name__}: "
        f"{text[:300]}{'…' if len(text) > 300 else ''})",
    )


def storage_failure(exc: BaseException) -> bool:
    """True for an outage or a full disk (the batch is retried later), False for a failure one
    record's data can cause (the batch is split to isolate that record)."""
    return infrastructure_fault(exc) or isinstance(exc, MemoryError)


class Ingest:
    """Providers' records into the ledger: batches of lines, a dry run, the record index, the refusals."""

    def __init__(self, store: Ledger, access: Access) -> None:
        self.store = store
        self.access = access

    def ingest_lines(
        self, lines: Iterable[str], source: str, actor: str = "system", batch_size: int = BATCH_SIZE
    ) -> IngestReport:
        """Ingest JSON-lines records; one transaction per batch; re-running is harmless."""
        return self.ingest_framed(text_lines(lines), source, actor, batch_size)

    def ingest_stream(
        self,
        stream: BinaryIO,
        source: str,
        actor: str = "system",
        batch_size: int = BATCH_SIZE,
        max_line_bytes: int | None = None,
    ) -> IngestReport:
        """Ingest a JSON-lines file read as bytes (encoding and line length judged per line)."""
        return self.ingest_framed(read_lines(stream, max_line_bytes), source, actor, batch_size)

    def ingest_framed(
        self,
        lines: Iterable[Line],
        source: str,
        actor: str = "system",
        batch_size: int = BATCH_SIZE,
        refused: list[Rejected] | None = None,
    ) -> IngestReport:
        """Ingest framed lines; with ``refused``, every refusal recorded is also appended to it
        (line, code, field and reason: what an upload answers with)."""
        session = self.ingest_session(source, actor)
        session.refused = refused
        total = IngestReport()
        with bulk_pace():
            for chunk in batched(lines, batch_size):
                total.add(self._apply_chunk(session, chunk))
        return total

    def check_lines(
        self, lines: Iterable[str], source: str, actor: str = "system", batch_size: int = BATCH_SIZE
    ) -> tuple[IngestReport, list[Rejected]]:
        """What ingesting these lines would do now — counts and every refusal — recording nothing."""
        return self.check_framed(text_lines(lines), source, actor, batch_size)

    def check_stream(
        self,
        stream: BinaryIO,
        source: str,
        actor: str = "system",
        batch_size: int = BATCH_SIZE,
        max_line_bytes: int | None = None,
    ) -> tuple[IngestReport, list[Rejected]]:
        return self.check_framed(read_lines(stream, max_line_bytes), source, actor, batch_size)

    def check_framed(
        self, lines: Iterable[Line], source: str, actor: str = "system", batch_size: int = BATCH_SIZE
    ) -> tuple[IngestReport, list[Rejected]]:
        session = self.ingest_session(source, actor)
        refused: list[Rejected] = []
        with bulk_pace():
            for chunk in batched(lines, batch_size):
                outcomes = apply_lines(session, chunk)
                refused += [o.rejected for o in outcomes if o.rejected is not None]
                session.discard_pending()
        return session.report, refused

    def ingest_session(self, source: str, actor: str = "system") -> IngestSession:
        """A session applying records as ``actor`` (the system, or a provider for its own records)."""
        who = Actor.parse(actor)
        if who.role not in ("system", "provider"):
            self.access.authorize(actor, "submit", None)
        return IngestSession(self.store, source, str(who))

    def _apply_chunk(self, session: IngestSession, chunk: Sequence[Line]) -> IngestReport:
        """Apply and save one batch. A batch failing for a reason its data may cause (not an
        outage, not a full disk) is split in halves until the one record at fault is found:
        that record is kept as refused (``unprocessable``) and the rest are applied."""
        for attempt in range(RETRIES):
            try:
                apply_lines(session, chunk)
                return session.flush()
            except IntegrityError:
                if attempt == RETRIES - 1:
                    raise
                session.reset()
            except Exception as exc:
                session.reset()
                if storage_failure(exc):
                    raise
                if len(chunk) == 1:
                    return self._keep_unprocessable(session, chunk[0], exc)
                half = len(chunk) // 2
                report = self._apply_chunk(session, chunk[:half])
                report.add(self._apply_chunk(session, chunk[half:]))
                return report
        raise AssertionError("unreachable")

    def _keep_unprocessable(self, session: IngestSession, line: Line, exc: BaseException) -> IngestReport:
        raw = line.raw if line.text is None else line.text
        session.reject(unprocessable(exc), raw, line.number)
        try:
            return session.flush()
        except Exception as again:
            session.reset()
            if storage_failure(again):
                raise
            digest = hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()
            session.reject(
                unprocessable(exc),
                f"(raw text not storable: {len(raw):,} characters, sha256 {digest})",
                line.number,
            )
            return session.flush()

    def rebuild_record_index(self) -> int:
        """Rebuild the record-id index from the events (it is derived data, written with them)."""
        id_fields = {
            YearData.SubmissionAccepted: ("submission", "submission_id"),
            YearData.CostReported: ("cost_report", "report_id"),
            YearData.PopulationCounted: ("population", "record_id"),
            YearData.OutcomeClaimed: ("outcome_claim", "claim_id"),
            YearData.PromEpisodeRecorded: ("prom_episode", "episode_id"),
        }
        contract_of: dict[Any, str] = {}
        self.store.record_index.clear_record_index()
        rows: list[tuple[str, str, str]] = []
        count = 0
        for n, e in self.store.recorded(YearData.Opened, *id_fields, page=5000):
            if isinstance(e, YearData.Opened):
                contract_of[n.originator_id] = e.contract_id
                continue
            kind, name = id_fields[type(e)]
            rows.append((contract_of[n.originator_id], f"{kind}:{getattr(e, name)}", e.digest))
            if len(rows) >= 5000:
                self.store.save(record_index=rows)
                count, rows = count + len(rows), []
        if rows:
            self.store.save(record_index=rows)
        return count + len(rows)

    def rejected(self) -> list[RejectedRecord]:
        return [
            RejectedRecord(
                source=e.source,
                line=e.line,
                code=e.code,
                field=e.field,
                message=e.message,
                contract_id=e.contract_id,
                record_type=e.record_type,
                record_id=e.record_id,
                recorded_at=iso(e.timestamp),
                raw=e.raw,
            )
            for _, e in self.store.recorded(Rejection.Recorded)
        ]
