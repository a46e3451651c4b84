"""Batch ingest: records applied to the ledger many at a time, one transaction per batch.

The naive get → command → save path runs at a few hundred commands/s; here a
batch of records is applied to aggregates held in memory for the whole run and
saved together, so a 2-core machine ingests tens of thousands of records a second.
A batch is all-or-nothing: a crash loses at most the batch in flight, and
re-running the same input acknowledges what was already applied as duplicates.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Tracking

from .domain import SNAPSHOT_EVERY, Contract, Rejection, Settlement, YearData, rejection_uuid, settlement_uuid, \
    year_data_uuid
from .definition import ContractDefinition
from .errors import NotFound
from .periods import Calendar
from .records import (ID_FIELDS, CostReport, Envelope, PopulationCount, Record, RecordRefused, Refusal, Submission,
                      check_record, envelope, parse_json_line)

if TYPE_CHECKING:
    from .application import Ledger

BATCH_SIZE = 2000
MAX_CACHED_CONTRACTS = 64


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    corrections: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    late: Counter[tuple[str, int]] = field(default_factory=Counter)  # (contract, closed year) -> records
    budget_changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: "IngestReport") -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.corrections += other.corrections
        self.by_code.update(other.by_code)
        self.late.update(other.late)
        self.budget_changes.extend(other.budget_changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
            "corrections": self.corrections, "rejected_by_reason": dict(sorted(self.by_code.items())),
            "late_for_closed_years": [{"contract_id": c, "year": y, "records": n}
                                      for (c, y), n in sorted(self.late.items())],
            "budget_changes": self.budget_changes,
        }


@dataclass
class _ContractState:
    contract: Contract
    definition: ContractDefinition
    calendar: Calendar
    years: dict[int, YearData | None]
    index: dict[str, tuple[int, str]]  # "type:id" -> (year, digest)
    closed: dict[int, bool] = field(default_factory=dict)


@dataclass
class Rejected:
    line: int | None
    raw: str
    refusal: Refusal
    contract_id: str | None = None
    record_type: str | None = None
    record_id: str | None = None


class IngestSession:
    """Applies records to cached aggregates; :meth:`flush` saves a batch atomically."""

    def __init__(self, app: "Ledger", source: str, actor: str) -> None:
        self.app = app
        self.source = source
        self.actor = actor
        self._contracts: OrderedDict[str, _ContractState | None] = OrderedDict()
        self._touched: dict[Any, Any] = {}
        self._loaded_versions: dict[Any, int] = {}
        self._rejections: list[Rejected] = []
        self.report = IngestReport()

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
            calendar = definition.calendar(contract.extended)
            years: dict[int, YearData | None] = {}
            index: dict[str, tuple[int, str]] = {}
            for year in range(1, calendar.years + 1):
                data = self._get(YearData, year_data_uuid(contract_id, year))
                years[year] = data
                if data is not None:
                    for key, dig in data.digests.items():
                        index[key] = (year, dig)
            state = _ContractState(contract, definition, calendar, years, index)
        self._contracts[contract_id] = state
        if len(self._contracts) > MAX_CACHED_CONTRACTS and not self._touched:
            self._contracts.popitem(last=False)
        return state

    def _get(self, cls: type, aggregate_id: Any) -> Any:
        try:
            agg = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._loaded_versions[agg.id] = agg.version
        return agg

    def _year_data(self, state: _ContractState, year: int) -> YearData:
        data = state.years.get(year)
        if data is None:
            data = YearData(contract_id=state.definition.id, year=year)
            self._loaded_versions[data.id] = 0
            state.years[year] = data
        self._touched[data.id] = data
        return data

    def _is_closed(self, state: _ContractState, year: int) -> bool:
        if year not in state.closed:
            settlement = self._get(Settlement, settlement_uuid(state.definition.id, year))
            state.closed[year] = bool(settlement and settlement.closed)
        return state.closed[year]

    # -- applying ----------------------------------------------------------------

    def apply_text(self, text: str, line: int | None = None) -> str:
        """Apply one JSON-lines record; returns 'accepted', 'duplicate' or 'rejected'."""
        try:
            obj = parse_json_line(text)
            env = envelope(obj)
        except RecordRefused as exc:
            return self._reject(Rejected(line, text, exc.refusal))
        return self.apply_envelope(env, text, line)

    def apply_object(self, obj: Any, raw: str, line: int | None = None) -> str:
        """Apply one record already decoded to a dict (e.g. from Avro)."""
        try:
            env = envelope(obj)
        except RecordRefused as exc:
            return self._reject(Rejected(line, raw, exc.refusal))
        return self.apply_envelope(env, raw, line)

    def apply_envelope(self, env: Envelope, raw: str, line: int | None = None) -> str:
        state = self._state(env.contract_id)
        if state is None:
            return self._reject(Rejected(line, raw, Refusal("unknown_contract", "contract_id",
                                                            f"no contract {env.contract_id!r} is registered"),
                                         env.contract_id, env.type, env.record_id))
        try:
            record = check_record(env, state.definition, state.calendar)
        except RecordRefused as exc:
            return self._reject(Rejected(line, raw, exc.refusal, env.contract_id, env.type, env.record_id))
        return self.apply_record(state, record, raw, line)

    def apply_record(self, state: _ContractState, record: Record, raw: str, line: int | None) -> str:
        key = f"{record.type}:{record.record_id}"
        seen = state.index.get(key)
        if seen is not None:
            if seen[1] == record.digest:
                self.report.duplicates += 1
                return "duplicate"
            return self._reject(Rejected(line, raw, Refusal(
                "conflicting_duplicate", ID_FIELDS[record.type],
                f"{record.record_id!r} was already accepted with different content; "
                f"send a correction under a new id"), record.contract_id, record.type, record.record_id))
        data = self._year_data(state, record.year)
        if isinstance(record, Submission):
            superseded = data.accept_submission(record, self.actor)
        elif isinstance(record, CostReport):
            superseded = data.accept_cost_report(record, self.actor)
        else:
            before = data.population_counts()
            superseded = data.accept_population(record, self.actor)
            self._population_changed(state, record, before, data.population_counts())
        state.index[key] = (record.year, record.digest)
        self.report.accepted += 1
        if superseded is not None:
            self.report.corrections += 1
        if self._is_closed(state, record.year):
            self.report.late[(record.contract_id, record.year)] += 1
        return "accepted"

    def _population_changed(self, state: _ContractState, record: PopulationCount,
                            before: dict[str, int], after: dict[str, int]) -> None:
        change = self.app.population_budget_change(state.definition, record.year, before, after)
        if change is None:
            return
        amount, trace = change
        state.contract.set_budget(year=record.year, amount=amount, reason="population",
                                  note=f"population count {record.record_id} ({record.segment_id}: {record.count})",
                                  trace=trace, actor=self.actor)
        self._touched[state.contract.id] = state.contract
        self.report.budget_changes.append({"contract_id": record.contract_id, "year": record.year,
                                           "budget": format(amount, "f"), "record_id": record.record_id})

    def _reject(self, rejected: Rejected) -> str:
        self._rejections.append(rejected)
        self.report.rejected += 1
        self.report.by_code[rejected.refusal.code] += 1
        return "rejected"

    # -- saving ------------------------------------------------------------------

    def flush(self, trackings: Sequence[Tracking] = ()) -> IngestReport:
        """Save everything applied since the last flush in one transaction; return its counts.

        ``trackings`` (e.g. Kafka offsets as ``Tracking("kafka:topic:partition", offset)``)
        are recorded in the same transaction, even when the batch produced no events.
        """
        aggregates = list(self._touched.values())
        seen_keys: set[str] = set()
        for r in self._rejections:
            key = hashlib.sha256(f"{r.refusal.code}\n{r.raw}".encode()).hexdigest()
            if key in seen_keys or self.app.recorder.select_events(rejection_uuid(key), limit=1):
                continue
            seen_keys.add(key)
            aggregates.append(Rejection(
                key=key, source=self.source, line=r.line, raw=r.raw, code=r.refusal.code,
                field=r.refusal.field, message=r.refusal.message, contract_id=r.contract_id,
                record_type=r.record_type, record_id=r.record_id, actor=self.actor))
        if aggregates or trackings:
            self.app.save(*aggregates, trackings=list(trackings))
        for agg in self._touched.values():
            if isinstance(agg, YearData):
                before = self._loaded_versions.get(agg.id, 0)
                if agg.version // SNAPSHOT_EVERY > before // SNAPSHOT_EVERY:
                    self.app.snapshot(agg)
                self._loaded_versions[agg.id] = agg.version
        report, self.report = self.report, IngestReport()
        self._touched.clear()
        self._rejections.clear()
        while len(self._contracts) > MAX_CACHED_CONTRACTS:
            self._contracts.popitem(last=False)
        return report

    def reset(self) -> None:
        """Forget all cached state (after a concurrent write made it stale)."""
        self._contracts.clear()
        self._touched.clear()
        self._loaded_versions.clear()
        self._rejections.clear()
        self.report = IngestReport()


def numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line."""
    for number, text in enumerate(lines, start=1):
        text = text.rstrip("\r\n")
        if text.strip():
            yield number, text
