"""The ledger application: use cases over the event-sourced aggregates.

Each public method reads like a use case, saves its events in one transaction,
retries on an optimistic-concurrency conflict, and returns plain values.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger.adapters.config import persistence_env
from ledger.adapters.framing import Line, read_lines, text_lines
from ledger.adapters.yamlio import YamlRefused, load_yaml
from ledger.domain.access import Actor, NotAuthorized, may_read, refusal
from ledger.domain.aggregates import (
    AccessRefused,
    Contract,
    Rejection,
    Settlement,
    YearData,
    contract_uuid,
    settlement_uuid,
    year_data_uuid,
)
from ledger.domain.definition import (
    ContractDefinition,
    degenerate_sliding_scales,
    from_document,
    parse_definition,
)
from ledger.domain.errors import (
    AlreadyExists,
    InvalidCommand,
    LedgerError,
    NotFound,
    ValidationFailed,
    YearClosed,
    YearNotClosed,
)
from ledger.domain.ids import check_note
from ledger.domain.numbers import (
    MONEY_DIGITS,
    MONEY_PLACES,
    ZERO,
    NotANumber,
    check_bounds,
    fmt,
    fmt_money,
    split,
    to_measure,
    to_money,
)
from ledger.domain.periods import Calendar, PeriodError
from ledger.domain.rules.budget import budget_for_year, core_for_year, instalment
from ledger.domain.rules.completeness import Gaps, year_gaps
from ledger.domain.rules.healthgain import Episode
from ledger.domain.rules.outcomes import Observation
from ledger.domain.rules.ratecard import Claim
from ledger.domain.rules.riskshare import CostFact
from ledger.domain.rules.settlement import YearSettlement, settle_year
from ledger.domain.statement import closed_statement, open_statement
from ledger.domain.variations import (
    ContractTerms,
    InvalidVariation,
    Variation,
    attach,
    from_stored,
    parse_variation,
    year_terms,
)
from ledger.usecases.checks import replayed
from ledger.usecases.ingest import (
    BATCH_SIZE,
    IngestReport,
    IngestSession,
    Rejected,
    apply_lines,
    storage_failure,
    unprocessable,
)

T = TypeVar("T")
RETRIES = 8
BUDGET_REASONS = ("initial", "efficiency", "uplift", "population", "extension", "variation", "correction")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document(text: str, what: str) -> Any:
    """A YAML document (contract or variation), bounded (ledger.adapters.yamlio); one-line errors, never a traceback."""
    try:
        return load_yaml(text)
    except YamlRefused as exc:
        raise LedgerError(f"the {what} file is refused: {exc}", code=exc.code) from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise LedgerError(
            f"the {what} file is not valid YAML: {exc}".replace("\n", " "), code="invalid_yaml"
        ) from None


def _variation_of(text: str, contract_id: str) -> Variation:
    """A variation document parsed and checked to be for ``contract_id``."""
    variation = parse_variation(_document(text, "variation"))
    if variation.contract_id != contract_id:
        raise InvalidVariation(
            [
                (
                    "variation.contract_id",
                    f"{variation.contract_id!r} is not the contract being varied ({contract_id!r})",
                )
            ]
        )
    return variation


def _bounded_budgets(definition: ContractDefinition) -> dict[int, Any]:
    """Every year's budget from the terms (extension years included), refused as a whole when
    one does not fit an amount's 13 integer digits (weights × counts × rates can)."""
    figures, problems = {}, []
    for year in range(1, definition.term_years(True) + 1):
        try:
            figure = budget_for_year(definition, year)
            check_bounds(figure.amount, figure.amount, digits=MONEY_DIGITS, places=MONEY_PLACES)
        except (ArithmeticError, NotANumber):
            problems.append(("budget", f"year {year}'s budget from these terms is beyond 13 integer digits"))
            continue
        figures[year] = figure
    if problems:
        raise ValidationFailed(problems)
    return figures


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Ledger(Application):
    """Contracts, data, payment decisions and statements."""

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

    # ------------------------------------------------------------------ helpers

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

    def authorize(
        self, actor: str, action: str, definition: ContractDefinition | None, contract_id: str | None = None
    ) -> Actor:
        """Parse the actor and check it may do ``action``; a refusal is recorded, then raised."""
        who = Actor.parse(actor)
        reason = refusal(who, action, definition)
        if reason is not None:
            cid = definition.id if definition is not None else contract_id
            self.save(AccessRefused(actor=str(who), action=action, contract_id=cid, reason=reason))
            raise NotAuthorized(reason)
        return who

    def authorize_read(self, actor: str, contract_id: str) -> None:
        """Refuse (recorded, raised) an actor that may not read this contract; an unknown one passes
        (the read itself reports ``unknown_contract``)."""
        try:
            _, definition = self.load_contract(contract_id)
        except NotFound:
            return
        self.authorize(actor, "read", definition)

    def readable(self, actor: str) -> Callable[[str | None], bool]:
        """Which contracts a list may show ``actor`` (see ledger.domain.access)."""
        who = Actor.parse(actor)
        known: dict[str, bool] = {}

        def may(contract_id: str | None) -> bool:
            if contract_id is None:
                return may_read(who, None)
            if contract_id not in known:
                try:
                    definition: ContractDefinition | None = self.load_contract(contract_id)[1]
                except NotFound:
                    definition = None
                known[contract_id] = may_read(who, definition)
            return known[contract_id]

        return may

    def snapshot(self, aggregate: Any) -> None:
        assert self.snapshots is not None
        self.snapshots.put([type(aggregate).Snapshot.take(aggregate)])

    # ---------------------------------------------------------------- contracts

    def register_contract(self, text: str, actor: str = "system") -> tuple[ContractDefinition, bool]:
        """Register a contract from its YAML text. Returns (definition, newly registered)."""
        document = _document(text, "contract")
        definition = parse_definition(document)
        self.authorize(actor, "register", definition)
        sha = hashlib.sha256(text.encode()).hexdigest()
        existing = self._maybe(contract_uuid(definition.id))
        if existing is not None:
            if existing.definition == dict(definition.document):
                return definition, False
            raise AlreadyExists(
                f"contract {definition.id!r} is already registered with a different definition; "
                f"a registered contract is never edited (record budget adjustments, baselines "
                f"or an extension instead)"
            )
        contract = Contract(
            contract_id=definition.id, definition=dict(definition.document), source_sha256=sha, actor=actor
        )
        figures = _bounded_budgets(definition)
        for year in range(1, definition.years + 1):
            figure = figures[year]
            contract.set_budget(
                year=year,
                amount=figure.amount,
                reason="initial",
                note="budget from the contract terms",
                trace=dict(figure.trace),
                actor=actor,
            )
        try:
            self.save(contract)
        except IntegrityError:
            raise AlreadyExists(f"contract {definition.id!r} was registered concurrently") from None
        return definition, True

    def load_contract(self, contract_id: str) -> tuple[Contract, ContractDefinition]:
        contract = self._maybe(contract_uuid(contract_id))
        if contract is None:
            raise NotFound(f"no contract {contract_id!r} is registered", code="unknown_contract")
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
        assert isinstance(terms, ContractTerms)
        return terms

    def _baselines(self, contract: Contract, year: int) -> dict[str, Decimal]:
        recorded = [(k, v, contract.baseline_after.get(k, 0)) for k, v in contract.baselines.items()]
        return self.terms(contract).baselines(year, recorded)

    # --------------------------------------------------------------- variations

    def vary_contract(
        self, contract_id: str, text: str, restate: bool = False, actor: str = "system"
    ) -> dict[str, Any]:
        """Record a contract variation (payment rules §7), validated against every year it affects.

        Returns what was recorded (``recorded`` False for an identical re-submission)."""
        variation = _variation_of(text, contract_id)

        def attempt() -> dict[str, Any]:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "vary", definition)
            terms = self.terms(contract)
            for held in terms.variations:
                if held.id == variation.id:
                    if dict(held.document) == dict(variation.document):
                        return self._variation_result(contract, variation, recorded=False, restated=[])
                    raise AlreadyExists(
                        f"variation {variation.id!r} of {contract_id!r} is already recorded with "
                        f"different content; a variation is never edited (record a new one)",
                        code="conflicting_variation",
                    )
            calendar = definition.calendar(contract.extended)
            terms.validate(variation, definition.years + definition.extension_years)
            e = variation.effective_from_year
            closed = [
                y
                for y in range(e, calendar.years + 1)
                if (s := self._maybe(settlement_uuid(contract_id, y))) is not None and s.closed
            ]
            if closed and not restate:
                raise YearClosed(
                    f"variation {variation.id} is effective from year {e} but year(s) "
                    f"{', '.join(map(str, closed))} of {contract_id!r} are closed; use --restate to "
                    f"restate them on the new terms"
                )
            contract.record_variation(
                variation_id=variation.id,
                effective_from_year=e,
                reason=variation.reason,
                document=dict(variation.document),
                source_sha256=hashlib.sha256(text.encode()).hexdigest(),
                restated_years=closed,
                actor=actor,
            )
            if variation.changes_budget_factor():
                new_terms = self.terms(contract)
                for year in range(e, calendar.years + 1):
                    data = self._maybe(year_data_uuid(contract_id, year))
                    counts = data.population_counts() if data is not None else None
                    try:
                        figure = budget_for_year(new_terms.for_year(year), year, counts or None)
                        check_bounds(figure.amount, figure.amount, digits=MONEY_DIGITS, places=MONEY_PLACES)
                    except (ArithmeticError, NotANumber):
                        raise InvalidVariation(
                            [
                                (
                                    "changes.budget",
                                    f"year {year}'s budget on these terms is beyond 13 integer digits",
                                )
                            ]
                        ) from None
                    if figure.amount != contract.budget(year):
                        contract.set_budget(
                            year=year,
                            amount=figure.amount,
                            reason="variation",
                            note=f"variation {variation.id}: {variation.reason}",
                            trace=dict(figure.trace, variation=variation.id),
                            actor=actor,
                        )
            settlements = []
            restated = []
            for year in closed:
                settlement = self._settlement(contract_id, year)
                true_up = self._true_up(
                    contract,
                    settlement,
                    year,
                    actor,
                    f"restated after variation {variation.id} ({variation.reason})",
                )
                if true_up is not None:
                    settlements.append(settlement)
                    restated.append({"year": year, **true_up})
            self.save(contract, *settlements)
            return self._variation_result(contract, variation, recorded=True, restated=restated)

        return self._retrying(attempt)

    # ------------------------------------------------------------ what-if

    def whatif(
        self,
        contract_id: str,
        text: str | None = None,
        years: tuple[int, int] | None = None,
        schedule_of_year: int | None = None,
        actor: str = "system",
    ) -> dict[str, Any]:
        """Settle years as if a variation had been recorded (``text``), or with the schedule entry and
        risk-share terms of year ``schedule_of_year`` (shadow settlement); nothing is recorded.

        Each year gives ``in_force`` (the statement as it stands, true-ups included; for an open year
        the close it would get now on the terms in force), ``whatif`` (a fresh close on the new terms,
        exactly what ``contract vary … --restate`` then ``close-year`` would decide) and the
        ``difference`` (whatif total − in-force net total, and by party)."""
        contract, definition = self.load_contract(contract_id)
        self.authorize(actor, "read", definition)
        calendar = definition.calendar(contract.extended)
        if schedule_of_year is not None:
            self._check_year(calendar, schedule_of_year)
            if years is None:
                raise InvalidCommand("--schedule-of-year needs --years A-B (the years to settle)")
            variation = self._schedule_variation(contract, years[0], schedule_of_year)
        else:
            if text is None:
                raise InvalidCommand("whatif needs a variation FILE or --schedule-of-year Z")
            variation = _variation_of(text, contract_id)
        e = variation.effective_from_year
        if years is None:
            closed = [
                y
                for y in range(1, calendar.years + 1)
                if (st := self._maybe(settlement_uuid(contract_id, y))) is not None and st.closed
            ]
            years = (e, max([e, *closed]))
        first, last = years
        for y in (first, last):
            self._check_year(calendar, y)
        if last < first:
            raise InvalidCommand(f"--years {first}-{last}: the first year comes after the last")
        in_force = {y: self._shadow_statement(contract_id, y) for y in range(first, last + 1)}
        # the variation applied in memory only: the same steps as vary_contract, never saved
        terms = self.terms(contract)
        held = next((v for v in terms.variations if v.id == variation.id), None)
        if held is not None and dict(held.document) != dict(variation.document):
            raise AlreadyExists(
                f"variation {variation.id!r} of {contract_id!r} is already recorded with different content",
                code="conflicting_variation",
            )
        if held is None:
            terms.validate(variation, definition.years + definition.extension_years)
            contract.record_variation(
                variation_id=variation.id,
                effective_from_year=e,
                reason=variation.reason,
                document=dict(variation.document),
                source_sha256="whatif",
                restated_years=[],
                actor=actor,
            )
            if variation.changes_budget_factor():
                new_terms = self.terms(contract)
                for year in range(e, calendar.years + 1):
                    data = self._maybe(year_data_uuid(contract_id, year))
                    counts = data.population_counts() if data is not None else None
                    figure = budget_for_year(new_terms.for_year(year), year, counts or None)
                    if figure.amount != contract.budget(year):
                        contract.set_budget(
                            year=year,
                            amount=figure.amount,
                            reason="variation",
                            note=f"variation {variation.id}",
                            trace=dict(figure.trace),
                            actor=actor,
                        )
        out = []
        for year in range(first, last + 1):
            fresh = self._fresh_close(contract, year)
            now = in_force[year]
            net_total = Decimal(now["total"]) + sum((Decimal(t["amount"]) for t in now["true_ups"]), ZERO)
            net_party: dict[str, Decimal] = {p: Decimal(v) for p, v in now["by_party"].items()}
            for t in now["true_ups"]:
                for p, v in t["by_party"].items():
                    net_party[p] = net_party.get(p, ZERO) + Decimal(v)
            parties = list(dict.fromkeys([*net_party, *fresh["by_party"]]))
            out.append(
                {
                    "year": year,
                    "in_force": now,
                    "whatif": fresh,
                    "difference": {
                        "total": fmt_money(Decimal(fresh["total"]) - net_total),
                        "by_party": {
                            p: fmt_money(Decimal(fresh["by_party"].get(p, "0")) - net_party.get(p, ZERO))
                            for p in parties
                        },
                    },
                }
            )
        return {
            "contract_id": contract_id,
            "variation_id": variation.id,
            "effective_from_year": e,
            "years": out,
        }

    def _shadow_statement(self, contract_id: str, year: int) -> dict[str, Any]:
        """The statement in force; for an open year, the close it would get now (nothing recorded)."""
        settlement = self._maybe(settlement_uuid(contract_id, year))
        if settlement is not None and settlement.closed:
            return self.statement(contract_id, year)
        contract, _ = self.load_contract(contract_id)
        return self._fresh_close(contract, year)

    def _fresh_close(self, contract: Contract, year: int) -> dict[str, Any]:
        """The statement a close of ``year`` would give now on ``contract``'s terms (held in memory),
        as close_year decides it: outstanding instalments, then the year's figures. Nothing is saved."""
        definition = self._definition(contract)
        calendar = definition.calendar(contract.extended)
        # a closed year's instalments stand as decided (a restatement recomputes the rest, as here)
        settlement = self._settlement(contract.contract_id, year)
        periods = calendar.periods(year)
        self._decide_instalments(contract, definition, settlement, periods, periods[-1], "whatif")
        figures, _ = self._decision(contract, definition, settlement, year)
        instalments = [(i["period"], i["amount"]) for i in settlement.instalments]
        return closed_statement(
            contract.contract_id, year, figures, instalments, [], self.terms(contract).variation_ids(year)
        )

    def _schedule_variation(self, contract: Contract, first: int, z: int) -> Variation:
        """A variation putting year ``z``'s schedule entry and risk-share terms in force from ``first``."""
        doc = self.terms(contract).document_for(z)
        entries = [dict(x) for x in (doc.get("payment") or {}).get("schedule") or []]
        entry = dict(
            next(x for x in reversed(entries) if int(x.get("from_year", 1)) <= z)
            if any(int(x.get("from_year", 1)) <= z for x in entries)
            else entries[0]
        )
        entry["from_year"] = first
        payment: dict[str, Any] = {"schedule": [entry]}
        name = entry.get("risk_share")
        if name:
            payment["risk_share"] = {name: (doc["payment"].get("risk_share") or {})[name]}
        return parse_variation(
            {
                "variation": {
                    "id": f"whatif-schedule-of-year-{z}",
                    "contract_id": contract.contract_id,
                    "effective_from_year": first,
                    "reason": f"shadow settlement on the schedule of year {z}",
                },
                "changes": {"payment": payment},
            }
        )

    def _variation_result(
        self, contract: Contract, variation: Variation, recorded: bool, restated: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "contract_id": contract.contract_id,
            "variation_id": variation.id,
            "effective_from_year": variation.effective_from_year,
            "reason": variation.reason,
            "agreed": variation.agreed,
            "recorded": recorded,
            "changes": variation.summary(),
            "restated": restated,
        }

    def variations(self, contract_id: str) -> list[dict[str, Any]]:
        contract, _ = self.load_contract(contract_id)
        return [
            {
                "variation_id": v.id,
                "effective_from_year": v.effective_from_year,
                "reason": v.reason,
                "agreed": v.agreed,
                "changes": v.summary(),
            }
            for v in self.terms(contract).variations
        ]

    def contract_terms(self, contract_id: str, year: int) -> dict[str, Any]:
        """The terms in force for ``year``, in the contract definition's own shape."""
        contract, definition = self.load_contract(contract_id)
        self._check_year(definition.calendar(contract.extended), year)
        return self.terms(contract).document_for(year)

    def log(self, *event_classes: type, page: int = 1000) -> Iterator[tuple[Any, Any]]:
        """(notification, domain event) for every recorded event of these classes, in log order."""
        topics = [get_topic(cls) for cls in event_classes]
        start = None
        while notifications := self.recorder.select_notifications(
            start=start, limit=page, topics=topics, inclusive_of_start=False
        ):
            for n in notifications:
                yield n, self.mapper.to_domain_event(n)
            start = notifications[-1].id

    def contract_ids(self) -> list[str]:
        return [e.contract_id for _, e in self.log(Contract.Registered)]

    def record_extension(self, contract_id: str, actor: str = "system") -> list[int]:
        def attempt() -> list[int]:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "extend", definition)
            if contract.extended:
                raise InvalidCommand(f"contract {contract_id!r} is already extended")
            if definition.extension_years == 0:
                raise InvalidCommand(f"contract {contract_id!r} has no extension_years in its terms")
            contract.record_extension(years=definition.extension_years, actor=actor)
            years = list(range(definition.years + 1, definition.term_years(True) + 1))
            for year in years:
                figure = budget_for_year(year_terms(definition, year), year)
                contract.set_budget(
                    year=year,
                    amount=figure.amount,
                    reason="extension",
                    note="extension year budget from the contract terms",
                    trace=dict(figure.trace),
                    actor=actor,
                )
            self.save(contract)
            return years

        return self._retrying(attempt)

    def adjust_budget(
        self, contract_id: str, year: int, amount: str, reason: str, note: str, actor: str = "system"
    ) -> Decimal:
        if reason not in BUDGET_REASONS:
            raise InvalidCommand(f"reason {reason!r} must be one of: {', '.join(BUDGET_REASONS)}")
        check_note(note, "note")
        try:
            value = to_money(amount)
        except NotANumber as exc:
            raise InvalidCommand(f"amount: {exc}", code=exc.code) from None
        if value < ZERO:
            raise InvalidCommand(
                f"amount: {amount} must be a non-negative amount with at most 2 decimal places"
            )

        def attempt() -> Decimal:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "adjust_budget", definition)
            self._check_year(definition.calendar(contract.extended), year)
            contract.set_budget(
                year=year,
                amount=value,
                reason=reason,
                note=note,
                trace={"previous": fmt(contract.budget(year))},
                actor=actor,
            )
            self.save(contract)
            return value

        return self._retrying(attempt)

    def record_baseline(
        self, contract_id: str, key: str, value: str, note: str, actor: str = "system"
    ) -> None:
        check_note(note, "note")
        try:
            number = to_measure(value)
        except NotANumber as exc:
            raise InvalidCommand(f"value: {exc}", code=exc.code) from None

        def attempt() -> None:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "record_baseline", definition)
            every_year = [year_terms(definition, y) for y in range(1, definition.term_years(True) + 1)]
            if all(
                d.measure(key) is None
                and d.indicator(key) is None
                and key not in {m.id.rsplit(".", 1)[-1] for i in d.indicators for m in i.subcomponents}
                for d in every_year
            ):
                raise NotFound(
                    f"{key!r} is not an indicator of contract {contract_id!r}", code="unknown_indicator"
                )
            baselines = {**dict(definition.baselines), **contract.baselines, key: number}
            broken = degenerate_sliding_scales(definition, baselines)
            if broken:
                raise InvalidCommand(
                    f"a baseline of {value} for {key} would make the sliding scale of "
                    f"{', '.join(broken)} start and end at the same value",
                    code="degenerate_scale",
                )
            contract.record_baseline(key=key, value=number, note=note, actor=actor)
            self.save(contract)

        self._retrying(attempt)

    @staticmethod
    def check_year(calendar: Calendar, year: int) -> None:
        Ledger._check_year(calendar, year)

    @staticmethod
    def _check_year(calendar: Calendar, year: int) -> None:
        if not 1 <= year <= calendar.years:
            raise InvalidCommand(
                f"year {year} is outside the contract term (1..{calendar.years})", code="year_outside_term"
            )

    # --------------------------------------------------------------------- data

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
        self, lines: Iterable[Line], source: str, actor: str = "system", batch_size: int = BATCH_SIZE
    ) -> IngestReport:
        session = self.ingest_session(source, actor)
        total = IngestReport()
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
        for chunk in batched(lines, batch_size):
            outcomes = apply_lines(session, chunk)
            refused += [o.rejected for o in outcomes if o.rejected is not None]
            session.discard_pending()
        return session.report, refused

    def ingest_session(self, source: str, actor: str = "system") -> IngestSession:
        """A session applying records as ``actor`` (the system, or a provider for its own records)."""
        who = Actor.parse(actor)
        if who.role not in ("system", "provider"):
            self.authorize(actor, "submit", None)
        return IngestSession(self, source, str(who))

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
        self.recorder.clear_record_index()
        rows: list[tuple[str, str, str]] = []
        count = 0
        for n, e in self.log(YearData.Opened, *id_fields, page=5000):
            if isinstance(e, YearData.Opened):
                contract_of[n.originator_id] = e.contract_id  # type: ignore[attr-defined]
                continue
            kind, field = id_fields[type(e)]
            rows.append((contract_of[n.originator_id], f"{kind}:{getattr(e, field)}", e.digest))
            if len(rows) >= 5000:
                self.save(record_index=rows)
                count, rows = count + len(rows), []
        if rows:
            self.save(record_index=rows)
        return count + len(rows)

    def population_budget_change(
        self, definition: ContractDefinition, year: int, before: Mapping[str, int], after: Mapping[str, int]
    ) -> tuple[Decimal, dict[str, Any]] | None:
        definition = year_terms(definition, year)
        old = budget_for_year(definition, year, before)
        new = budget_for_year(definition, year, after)
        if new.amount == old.amount:
            return None
        return new.amount, dict(new.trace)

    def rejected(self) -> list[dict[str, Any]]:
        return [
            {
                "source": e.source,
                "line": e.line,
                "code": e.code,
                "field": e.field,
                "message": e.message,
                "contract_id": e.contract_id,
                "record_type": e.record_type,
                "record_id": e.record_id,
                "recorded_at": iso(e.timestamp),
                "raw": e.raw,
            }
            for _, e in self.log(Rejection.Recorded)
        ]

    # ----------------------------------------------------------------- payments

    def _settlement(self, contract_id: str, year: int) -> Settlement:
        settlement = self._maybe(settlement_uuid(contract_id, year))
        return settlement if settlement is not None else Settlement(contract_id=contract_id, year=year)

    def _year_budget(self, contract: Contract, definition: ContractDefinition, year: int) -> Decimal:
        amount = contract.budget(year)
        return amount if amount is not None else budget_for_year(year_terms(definition, year), year).amount

    def _decide_instalments(
        self,
        contract: Contract,
        definition: ContractDefinition,
        settlement: Settlement,
        periods: Sequence[Any],
        until: Any,
        actor: str,
    ) -> list[dict[str, Any]]:
        year = settlement.year
        budget = self._year_budget(contract, definition, year)
        terms = year_terms(definition, year)
        core = core_for_year(budget, terms.schedule_for(year).core)
        decided = settlement.decided_periods()
        core_split = dict(terms.core_split)
        lead = definition.lead_provider.id
        out = []
        now = iso(self.clock())
        for index, period in enumerate(periods, start=1):
            if period > until or period.label in decided:
                continue
            paid = settlement.paid
            amount = instalment(core, paid, index, len(periods))
            before = split(paid, core_split, lead)
            after = split(paid + amount, core_split, lead)
            by_party = {p: after.get(p, ZERO) - before.get(p, ZERO) for p in after}
            settlement.decide_instalment(
                period=period.label,
                index=index,
                count=len(periods),
                amount=amount,
                budget=budget,
                core_annual=core,
                paid_before=paid,
                by_party=by_party,
                decided_at=now,
                actor=actor,
            )
            out.append(
                {
                    "contract_id": contract.contract_id,
                    "year": year,
                    "period": period.label,
                    "amount": fmt_money(amount),
                }
            )
        return out

    def pay(self, contract_id: str, through: str, actor: str = "system") -> list[dict[str, Any]]:
        """Decide every core instalment due up to and including period ``through``."""

        def attempt() -> list[dict[str, Any]]:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "pay", definition)
            calendar = definition.calendar(contract.extended)
            try:
                until = calendar.period(through)
            except PeriodError as exc:
                raise InvalidCommand(f"--through: {exc}", code="invalid_period") from None
            last_year = calendar.year_of(until)
            if last_year is None:
                raise InvalidCommand(
                    f"--through: {through} is outside the contract term", code="period_outside_term"
                )
            decided: list[dict[str, Any]] = []
            touched = []
            for year in range(1, last_year + 1):
                settlement = self._settlement(contract_id, year)
                if settlement.closed:
                    continue
                new = self._decide_instalments(
                    contract, definition, settlement, calendar.periods(year), until, actor
                )
                if new:
                    decided.extend(new)
                    touched.append(settlement)
            if touched:
                self.save(*touched)
            return decided

        return self._retrying(attempt)

    def compute_year(
        self, contract: Contract, definition: ContractDefinition, year: int
    ) -> tuple[YearSettlement, int]:
        """Settle ``year`` from the data held now. Returns the settlement and the data stream version."""
        calendar = definition.calendar(contract.extended)
        # replayed from the sealed events: a stored snapshot is checked against the replay, never trusted
        data, _ = replayed(self, year_data_uuid(contract.contract_id, year))
        observations: list[Observation] = []
        costs: list[CostFact] = []
        if data is not None:
            for sid, provider, measure, period, num, den, value, _ in data.latest_submission.values():
                observations.append(
                    Observation(sid, measure, provider, calendar.period(period), num, den, value)
                )
            for rid, provider, period, total, cases, _ in data.latest_cost.values():
                costs.append(
                    CostFact(
                        rid,
                        provider,
                        calendar.period(period),
                        Decimal(total),
                        tuple((ref, Decimal(cost)) for ref, cost in cases),
                    )
                )
        baselines = self._baselines(contract, year)
        budget = self._year_budget(contract, definition, year)
        claims, episodes = self._claims_and_episodes(contract, definition, year, data)
        result = settle_year(
            year_terms(definition, year), year, budget, observations, costs, baselines, claims, episodes
        )
        return result, (data.version if data is not None else 0)

    def _claims_and_episodes(
        self, contract: Contract, definition: ContractDefinition, year: int, data: YearData | None
    ) -> tuple[list[Claim], list[Episode]]:
        """The outcome claims in force of years 1..year and the PROM episodes in force of ``year``
        (a correction of any year's stream replaces the record it names)."""
        if definition.rate_card is None and not definition.health_gain:
            return [], []
        calendar = definition.calendar(contract.extended)
        streams: dict[int, YearData] = {year: data} if data is not None else {}
        for y in range(1, calendar.years + 1):
            if y != year:
                other, _ = replayed(self, year_data_uuid(contract.contract_id, y))
                if other is not None:
                    streams[y] = other
        superseded: set[str] = set()
        for stream in streams.values():
            superseded.update(getattr(stream, "superseded", {}))
        claims: list[Claim] = []
        episodes: list[Episode] = []
        for y, stream in sorted(streams.items()):
            if y <= year:
                for cid, (provider, participant, outcome, period, arrival, _) in getattr(
                    stream, "claims", {}
                ).items():
                    if cid not in superseded:
                        claims.append(
                            Claim(
                                cid,
                                provider,
                                participant,
                                outcome,
                                calendar.period(period),
                                y,
                                tuple(arrival),
                            )
                        )
            if y == year:
                for eid, (provider, entry_id, _, pre, post, expected, _) in getattr(
                    stream, "episodes", {}
                ).items():
                    entry = definition.health_gain_entry(entry_id)
                    if eid in superseded or entry is None:
                        continue
                    gain = Decimal(expected) if expected is not None else entry.target_gain
                    assert gain is not None  # refused at ingest otherwise
                    episodes.append(Episode(eid, provider, entry_id, y, Decimal(pre), Decimal(post), gain))
        return claims, episodes

    def _decision(
        self, contract: Contract, definition: ContractDefinition, settlement: Settlement, year: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        result, data_version = self.compute_year(contract, definition, year)
        figures = result.figures()
        balance = result.core - settlement.paid
        if balance:
            figures["core_balance_at_close"] = fmt_money(balance)
        trace = dict(result.trace)
        trace["data_version"] = data_version
        trace["budget_history"] = [
            dict(h, amount=fmt(h["amount"])) for h in contract.budget_history if h["year"] == year
        ]
        trace["instalments_paid"] = fmt_money(settlement.paid)
        trace["variations"] = self.terms(contract).variation_ids(year)
        return figures, trace

    def data_gaps(self, contract_id: str, year: int) -> Gaps:
        """The cost reports and indicator periods a year's settlement lacks (payment-rules §4, §5)."""
        contract, definition = self.load_contract(contract_id)
        calendar = definition.calendar(contract.extended)
        self._check_year(calendar, year)
        data, _ = replayed(self, year_data_uuid(contract_id, year))  # the events, not a snapshot
        costed = {(row[1], row[2]) for row in data.latest_cost.values()} if data else set()
        submitted = {(row[2], row[3]) for row in data.latest_submission.values()} if data else set()
        return year_gaps(
            year_terms(definition, year), year, [p.label for p in calendar.periods(year)], costed, submitted
        )

    def close_year(self, contract_id: str, year: int, actor: str = "system") -> dict[str, Any]:
        """Decide outstanding instalments, then the outcomes payment and the risk share."""

        def attempt() -> dict[str, Any]:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "close_year", definition)
            calendar = definition.calendar(contract.extended)
            self._check_year(calendar, year)
            settlement = self._settlement(contract_id, year)
            if settlement.closed:
                raise YearClosed(
                    f"year {year} of {contract_id!r} is already closed; use `restate` to "
                    f"recompute it from the data now held"
                )
            if year_terms(definition, year).require_cost_reports:
                missing = self.data_gaps(contract_id, year).cost_reports_missing
                if missing:
                    shown = ", ".join(f"{p} {q}" for p, q in missing[:5]) + (" …" if len(missing) > 5 else "")
                    raise InvalidCommand(
                        f"year {year} of {contract_id!r} lacks {len(missing)} cost report(s) "
                        f"({shown}) and its terms require every one before the close",
                        code="incomplete_data",
                    )
            periods = calendar.periods(year)
            self._decide_instalments(contract, definition, settlement, periods, periods[-1], actor)
            figures, trace = self._decision(contract, definition, settlement, year)
            settlement.close(
                figures=figures,
                trace=trace,
                decided_at=iso(self.clock()),
                actor=actor,
                variations=self.terms(contract).variation_ids(year),
            )
            # decided on the data as read: a record landing meanwhile fails this save and the close is retried
            self.save(settlement, expect_versions={year_data_uuid(contract_id, year): trace["data_version"]})
            return self.statement(contract_id, year)

        return self._retrying(attempt)

    def restate(
        self, contract_id: str, year: int, actor: str = "system", reason_prefix: str = ""
    ) -> dict[str, Any] | None:
        """Recompute a closed year; record a true-up for any difference. None when nothing changed."""

        def attempt() -> dict[str, Any] | None:
            contract, definition = self.load_contract(contract_id)
            self.authorize(actor, "restate", definition)
            self._check_year(definition.calendar(contract.extended), year)
            settlement = self._maybe(settlement_uuid(contract_id, year))
            if settlement is None or not settlement.closed:
                raise YearNotClosed(f"year {year} of {contract_id!r} is not closed; close it first")
            outcome = self._true_up(contract, settlement, year, actor, None, reason_prefix)
            if outcome is not None:  # decided on the data as read (see close_year)
                data_version = settlement.current_trace()["data_version"]
                self.save(settlement, expect_versions={year_data_uuid(contract_id, year): data_version})
            return outcome

        return self._retrying(attempt)

    def restate_later_years(self, contract_id: str, year: int, actor: str = "system") -> list[dict[str, Any]]:
        """Restate the closed years after ``year`` of a contract with a rate card (its caps run over the
        term, so an earlier year's claims move later years' figures); the true-ups recorded."""
        contract, definition = self.load_contract(contract_id)
        if definition.rate_card is None:
            return []
        out = []
        for later in range(year + 1, definition.calendar(contract.extended).years + 1):
            settlement = self._maybe(settlement_uuid(contract_id, later))
            if settlement is None or not settlement.closed:
                continue
            true_up = self.restate(contract_id, later, actor=actor)
            if true_up is not None:
                out.append({"year": later, "true_up": true_up})
        return out

    def _true_up(
        self,
        contract: Contract,
        settlement: Settlement,
        year: int,
        actor: str,
        reason: str | None,
        reason_prefix: str = "",
    ) -> dict[str, Any] | None:
        """Recompute a closed year on the terms and data now held (in memory); record a true-up for any
        difference, with ``reason`` (else one naming the corrections, late data and budget changes)."""
        definition = self._definition(contract)
        current = settlement.current_figures()
        previous_trace = settlement.current_trace()
        figures, trace = self._decision(contract, definition, settlement, year)
        amount = Decimal(figures["total"]) - Decimal(current["total"])
        parties = list(dict.fromkeys([*current["by_party"], *figures["by_party"]]))
        by_party = {
            p: Decimal(figures["by_party"].get(p, "0")) - Decimal(current["by_party"].get(p, "0"))
            for p in parties
        }
        if amount == ZERO and not any(by_party.values()):
            return None
        if reason is None:
            reason = self._restatement_reason(contract.contract_id, year, previous_trace, trace)
        reason = reason_prefix + reason
        settlement.true_up(
            amount=amount,
            by_party=by_party,
            reason=reason,
            figures=figures,
            trace=trace,
            decided_at=iso(self.clock()),
            actor=actor,
            variations=self.terms(contract).variation_ids(year),
        )
        return {
            "decided_at": settlement.true_ups[-1]["decided_at"],
            "amount": fmt_money(amount),
            "reason": reason,
            "by_party": {p: fmt_money(v) for p, v in by_party.items()},
        }

    # ------------------------------------------------------------------ disputes

    def raise_dispute(self, contract_id: str, year: int, reason: str, actor: str) -> dict[str, Any]:
        """A provider disputes the year's latest decision, within the contract's time bar."""

        def attempt() -> dict[str, Any]:
            contract, definition = self.load_contract(contract_id)
            who = self.authorize(actor, "raise_dispute", definition)
            self._check_year(definition.calendar(contract.extended), year)
            settlement = self._maybe(settlement_uuid(contract_id, year))
            latest = settlement.latest_decision() if settlement is not None else None
            if latest is None:
                raise InvalidCommand(
                    f"year {year} of {contract_id!r} has no decision to dispute yet",
                    code="nothing_to_dispute",
                )
            if not reason.strip():
                raise InvalidCommand("--reason: say what is disputed and why", code="invalid_command")
            check_note(reason, "reason")
            label, decided_at = latest
            now = self.clock()
            bar = definition.dispute_time_bar_days
            decided = datetime.fromisoformat(decided_at.replace("Z", "+00:00"))
            if now - decided > timedelta(days=bar):
                raise InvalidCommand(
                    f"the {label} of {contract_id} year {year} was decided on {decided_at}; disputes must be raised "
                    f"within {bar} days (time bar passed {iso(decided + timedelta(days=bar))})",
                    code="time_barred",
                )
            dispute_id = f"D{year}-{len(settlement.disputes) + 1}"
            settlement.raise_dispute(
                dispute_id=dispute_id,
                raised_by=str(who),
                reason=reason,
                decision=label,
                decision_at=decided_at,
                raised_at=iso(now),
                actor=str(who),
            )
            self.save(settlement)
            return dict(settlement.disputes[dispute_id])

        return self._retrying(attempt)

    def resolve_dispute(
        self,
        contract_id: str,
        year: int,
        dispute_id: str,
        upheld: bool,
        note: str,
        actor: str,
        adjust: str | None = None,
        party: str | None = None,
    ) -> dict[str, Any]:
        """The commissioner upholds or rejects a dispute. Upheld: a restatement, or a manual adjustment."""
        check_note(note, "note")
        amount = None
        if adjust is not None:
            try:
                amount = to_money(adjust)
            except NotANumber as exc:
                raise InvalidCommand(f"--adjust: {exc}", code=exc.code) from None
            if not upheld:
                raise InvalidCommand("--adjust takes an amount in pence (2 places) and only with --upheld")

        def attempt() -> dict[str, Any]:
            contract, definition = self.load_contract(contract_id)
            who = self.authorize(actor, "resolve_dispute", definition)
            settlement = self._maybe(settlement_uuid(contract_id, year))
            dispute = (settlement.disputes if settlement is not None else {}).get(dispute_id)
            if dispute is None:
                raise NotFound(
                    f"no dispute {dispute_id!r} on {contract_id} year {year}", code="unknown_dispute"
                )
            if dispute["status"] != "open":
                raise InvalidCommand(
                    f"dispute {dispute_id} is already {dispute['status']}", code="dispute_closed"
                )
            target = party or definition.lead_provider.id
            if target not in year_terms(definition, year).providers:
                raise InvalidCommand(f"--party {target!r} is not a provider party to {contract_id}")
            settlement.resolve_dispute(
                dispute_id=dispute_id, upheld=upheld, note=note, resolved_at=iso(self.clock()), actor=str(who)
            )
            outcome: dict[str, Any] = {"dispute_id": dispute_id, "status": "upheld" if upheld else "rejected"}
            if upheld and amount is not None:
                settlement.adjust(
                    amount=amount,
                    by_party={target: amount},
                    reason=f"dispute {dispute_id} upheld: {note}",
                    dispute_id=dispute_id,
                    decided_at=iso(self.clock()),
                    actor=str(who),
                )
                outcome["adjustment"] = {"amount": fmt_money(amount), "party": target}
            self.save(settlement)
            if upheld and amount is None:
                outcome["true_up"] = self.restate(
                    contract_id, year, actor=actor, reason_prefix=f"dispute {dispute_id} upheld: {note}; "
                )
            return outcome

        return self._retrying(attempt)

    def disputes(self, contract_id: str, year: int | None = None) -> list[dict[str, Any]]:
        contract, definition = self.load_contract(contract_id)
        years = [year] if year else range(1, definition.term_years(contract.extended) + 1)
        out = []
        for y in years:
            settlement = self._maybe(settlement_uuid(contract_id, y))
            for d in settlement.disputes.values() if settlement is not None else []:
                out.append({"year": y, **d})
        return out

    def _restatement_reason(
        self, contract_id: str, year: int, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> str:
        """Why a restatement differs: corrections (superseding data the decision used), late data, budget."""
        data, _ = replayed(self, year_data_uuid(contract_id, year))
        supersedes: dict[str, str | None] = {}
        if data is not None:
            supersedes.update((e[0], e[-1]) for e in data.latest_submission.values())
            supersedes.update((e[0], e[-1]) for e in data.latest_cost.values())
        if "claims_used" in after or "episodes_used" in after:  # corrections may sit in any year's stream
            contract, definition = self.load_contract(contract_id)
            for y in range(1, definition.calendar(contract.extended).years + 1):
                stream, _ = replayed(self, year_data_uuid(contract_id, y))
                for rid, entry in {
                    **getattr(stream, "claims", {}),
                    **getattr(stream, "episodes", {}),
                }.items():
                    supersedes[rid] = entry[-1]
        parts = []
        for label, key, correction in (
            ("submission", "submissions_used", "correction"),
            ("cost report", "cost_reports_used", "cost correction"),
            ("outcome claim", "claims_used", "claim correction"),
            ("PROM episode", "episodes_used", "episode correction"),
        ):
            old = set(before.get(key, []))
            added = sorted(set(after.get(key, [])) - old)
            corrections = [rid for rid in added if supersedes.get(rid) is not None]
            late = [rid for rid in added if supersedes.get(rid) is None]
            if corrections:
                parts.append(f"{correction} {', '.join(corrections)}")
            if late:
                parts.append(f"late {label} {', '.join(late)}")
        old_budget = before.get("budget_history", [])
        new_budget = after.get("budget_history", [])
        if old_budget != new_budget and new_budget:
            last = new_budget[-1]
            parts.append(f"budget change ({last['reason']}: {last['amount']})")
        added = [v for v in after.get("variations", []) if v not in before.get("variations", [])]
        if added:
            parts.append(f"variation {', '.join(added)}")
        if not parts and before.get("rate_card") != after.get("rate_card"):
            parts.append("outcome claims of earlier years (the rate card's caps run over the term)")
        if not parts:
            parts.append("recomputed from the data and terms now held")
        return "restated after " + "; ".join(parts)

    # --------------------------------------------------------------- statements

    def statement(self, contract_id: str, year: int) -> dict[str, Any]:
        """The year statement in the shape of contract-format.md, from the aggregates."""
        contract, definition = self.load_contract(contract_id)
        self._check_year(definition.calendar(contract.extended), year)
        settlement = self._maybe(settlement_uuid(contract_id, year))
        instalments = [(i["period"], i["amount"]) for i in (settlement.instalments if settlement else [])]
        variations = self.terms(contract).variation_ids(year)
        if settlement is not None and settlement.closed:
            return closed_statement(
                contract_id, year, settlement.closed["figures"], instalments, settlement.true_ups, variations
            )
        result, _ = self.compute_year(contract, definition, year)
        paid_by_party: dict[str, Decimal] = {}
        for i in settlement.instalments if settlement else []:
            for p, v in i["by_party"].items():
                paid_by_party[p] = paid_by_party.get(p, ZERO) + Decimal(v)
        return open_statement(
            contract_id,
            year,
            result,
            instalments,
            paid_by_party,
            year_terms(definition, year).providers,
            variations,
        )

    def settlement_state(self, contract_id: str, year: int) -> Settlement | None:
        return self._maybe(settlement_uuid(contract_id, year))
