"""Registration and terms: contracts registered, extended, varied; budgets and baselines; what-ifs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError

from ledger.domain.aggregates import Contract, contract_uuid, year_data_uuid
from ledger.domain.definition import ContractDefinition, degenerate_sliding_scales, parse_definition
from ledger.domain.errors import (
    AlreadyExists,
    InvalidCommand,
    NotFound,
    ValidationFailed,
    YearClosed,
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
    to_measure,
    to_money,
)
from ledger.domain.periods import Calendar
from ledger.domain.rules.budget import BudgetFigure, budget_for_year
from ledger.domain.variations import InvalidVariation, Variation, parse_variation, year_terms
from ledger.usecases.access import Access
from ledger.usecases.common import document, variation_of
from ledger.usecases.results import (
    Difference,
    RestatedYear,
    Statement,
    VariationRecorded,
    VariationSummary,
    WhatIf,
    WhatIfYear,
)
from ledger.usecases.settlement import Settling

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger

BUDGET_REASONS = ("initial", "efficiency", "uplift", "population", "extension", "variation", "correction")


def bounded_budgets(definition: ContractDefinition) -> dict[int, BudgetFigure]:
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


def population_budget_change(
    definition: ContractDefinition, year: int, before: Mapping[str, int], after: Mapping[str, int]
) -> tuple[Decimal, dict[str, Any]] | None:
    """The year's new budget (and its trace) when a population count moves it, else None."""
    terms = year_terms(definition, year)
    old = budget_for_year(terms, year, before)
    new = budget_for_year(terms, year, after)
    if new.amount == old.amount:
        return None
    return new.amount, dict(new.trace)


def _summary(variation: Variation) -> VariationSummary:
    return VariationSummary(
        variation_id=variation.id,
        effective_from_year=variation.effective_from_year,
        reason=variation.reason,
        agreed=variation.agreed,
        changes=variation.summary(),
    )


class Registration:
    """Contracts and the terms in force: what is registered and everything that changes it."""

    def __init__(self, store: Ledger, access: Access, settling: Settling) -> None:
        self.store = store
        self.access = access
        self.settling = settling

    # ------------------------------------------------------------------- contracts

    def register_contract(self, text: str, actor: str = "system") -> tuple[ContractDefinition, bool]:
        """Register a contract from its YAML text. Returns (definition, newly registered)."""
        definition = parse_definition(document(text, "contract"))
        self.access.authorize(actor, "register", definition)
        sha = hashlib.sha256(text.encode()).hexdigest()
        existing = self.store._maybe(contract_uuid(definition.id))
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
        figures = bounded_budgets(definition)
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
            self.store.save(contract)
        except IntegrityError:
            raise AlreadyExists(f"contract {definition.id!r} was registered concurrently") from None
        return definition, True

    def record_extension(self, contract_id: str, actor: str = "system") -> list[int]:
        def attempt() -> list[int]:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "extend", definition)
            contract.check_extendable(definition.extension_years)
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
            self.store.save(contract)
            return years

        return self.store._retrying(attempt)

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
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "adjust_budget", definition)
            self.store.check_year(definition.calendar(contract.extended), year)
            contract.set_budget(
                year=year,
                amount=value,
                reason=reason,
                note=note,
                trace={"previous": fmt(contract.budget(year))},
                actor=actor,
            )
            self.store.save(contract)
            return value

        return self.store._retrying(attempt)

    def record_baseline(
        self, contract_id: str, key: str, value: str, note: str, actor: str = "system"
    ) -> None:
        check_note(note, "note")
        try:
            number = to_measure(value)
        except NotANumber as exc:
            raise InvalidCommand(f"value: {exc}", code=exc.code) from None

        def attempt() -> None:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "record_baseline", definition)
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
            self.store.save(contract)

        self.store._retrying(attempt)

    def population_budget_change(
        self, definition: ContractDefinition, year: int, before: Mapping[str, int], after: Mapping[str, int]
    ) -> tuple[Decimal, dict[str, Any]] | None:
        return population_budget_change(definition, year, before, after)

    # ------------------------------------------------------------------ variations

    def vary_contract(
        self, contract_id: str, text: str, restate: bool = False, actor: str = "system"
    ) -> VariationRecorded:
        """Record a contract variation (payment rules §7), validated against every year it affects.

        Returns what was recorded (``recorded`` False for an identical re-submission)."""
        variation = variation_of(text, contract_id)

        def attempt() -> VariationRecorded:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "vary", definition)
            terms = self.store.terms(contract)
            for held in terms.variations:
                if held.id == variation.id:
                    if dict(held.document) == dict(variation.document):
                        return self._recorded(contract, variation, recorded=False, restated=[])
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
                if (s := self.store.settlement_state(contract_id, y)) is not None and s.closed
            ]
            if closed and not restate:
                raise YearClosed(
                    f"variation {variation.id} is effective from year {e} but year(s) "
                    f"{', '.join(map(str, closed))} of {contract_id!r} are closed; recording it "
                    f"restates them on the new terms, which was not asked for"
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
                self._budgets_on_new_terms(contract, variation, calendar.years, actor, recording=True)
            settlements = []
            restated: list[RestatedYear] = []
            for year in closed:
                settlement = self.store._settlement(contract_id, year)
                true_up = self.settling.true_up(
                    contract,
                    settlement,
                    year,
                    actor,
                    f"restated after variation {variation.id} ({variation.reason})",
                )
                if true_up is not None:
                    settlements.append(settlement)
                    restated.append(RestatedYear(year=year, **true_up))
            self.store.save(contract, *settlements)
            return self._recorded(contract, variation, recorded=True, restated=restated)

        return self.store._retrying(attempt)

    def _budgets_on_new_terms(
        self, contract: Contract, variation: Variation, years: int, actor: str, recording: bool
    ) -> None:
        """The budget of every year from the variation's on, set where the new terms change it.

        ``recording`` (a variation being recorded, not a what-if): an amount beyond 13 integer digits
        refuses the variation, and the budget's note and trace name the variation's reason."""
        new_terms = self.store.terms(contract)
        for year in range(variation.effective_from_year, years + 1):
            data = self.store._maybe(year_data_uuid(contract.contract_id, year))
            counts = data.population_counts() if data is not None else None
            if recording:
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
            else:
                figure = budget_for_year(new_terms.for_year(year), year, counts or None)
            if figure.amount != contract.budget(year):
                contract.set_budget(
                    year=year,
                    amount=figure.amount,
                    reason="variation",
                    note=f"variation {variation.id}: {variation.reason}"
                    if recording
                    else f"variation {variation.id}",
                    trace=dict(figure.trace, variation=variation.id) if recording else dict(figure.trace),
                    actor=actor,
                )

    def _recorded(
        self, contract: Contract, variation: Variation, recorded: bool, restated: list[RestatedYear]
    ) -> VariationRecorded:
        return VariationRecorded(
            contract_id=contract.contract_id,
            variation_id=variation.id,
            effective_from_year=variation.effective_from_year,
            reason=variation.reason,
            agreed=variation.agreed,
            recorded=recorded,
            changes=variation.summary(),
            restated=restated,
        )

    def variations(self, contract_id: str) -> list[VariationSummary]:
        contract, _ = self.store.load_contract(contract_id)
        return [_summary(v) for v in self.store.terms(contract).variations]

    def contract_terms(self, contract_id: str, year: int) -> dict[str, Any]:
        """The terms in force for ``year``, in the contract definition's own shape."""
        contract, definition = self.store.load_contract(contract_id)
        self.store.check_year(definition.calendar(contract.extended), year)
        return self.store.terms(contract).document_for(year)

    # --------------------------------------------------------------------- what-if

    def whatif(
        self,
        contract_id: str,
        text: str | None = None,
        years: tuple[int, int] | None = None,
        schedule_of_year: int | None = None,
        actor: str = "system",
    ) -> WhatIf:
        """Settle years as if a variation had been recorded (``text``), or with the schedule entry and
        risk-share terms of year ``schedule_of_year`` (shadow settlement); nothing is recorded.

        Each year gives ``in_force`` (the statement as it stands, true-ups included; for an open year
        the close it would get now on the terms in force), ``whatif`` (a fresh close on the new terms,
        exactly what recording the variation with its restatement then closing would decide) and the
        ``difference`` (whatif total − in-force net total, and by party)."""
        contract, definition = self.store.load_contract(contract_id)
        self.access.authorize(actor, "read", definition)
        calendar = definition.calendar(contract.extended)
        variation = self._whatif_variation(contract, calendar, text, years, schedule_of_year)
        e = variation.effective_from_year
        first, last = self._years_to_settle(contract_id, calendar, e, years)
        in_force = {y: self.shadow_statement(contract_id, y) for y in range(first, last + 1)}
        # the variation applied in memory only: the same steps as vary_contract, never saved
        terms = self.store.terms(contract)
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
                self._budgets_on_new_terms(contract, variation, calendar.years, actor, recording=False)
        out = [self._compared(contract, year, in_force[year]) for year in range(first, last + 1)]
        return WhatIf(contract_id=contract_id, variation_id=variation.id, effective_from_year=e, years=out)

    def _whatif_variation(
        self,
        contract: Contract,
        calendar: Calendar,
        text: str | None,
        years: tuple[int, int] | None,
        schedule_of_year: int | None,
    ) -> Variation:
        """The variation a what-if settles on: the one given, or year ``schedule_of_year``'s schedule."""
        if schedule_of_year is not None:
            self.store.check_year(calendar, schedule_of_year)
            if years is None:
                raise InvalidCommand(
                    "a shadow settlement on another year's schedule needs the years to settle",
                    code="years_needed",
                )
            return self._schedule_variation(contract, years[0], schedule_of_year)
        if text is None:
            raise InvalidCommand(
                "a what-if needs a variation or the year whose schedule to settle on", code="variation_needed"
            )
        return variation_of(text, contract.contract_id)

    def _years_to_settle(
        self, contract_id: str, calendar: Calendar, effective: int, years: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The years given, else from the variation's first year to the last closed one."""
        if years is None:
            closed = [
                y
                for y in range(1, calendar.years + 1)
                if (st := self.store.settlement_state(contract_id, y)) is not None and st.closed
            ]
            years = (effective, max([effective, *closed]))
        first, last = years
        for y in (first, last):
            self.store.check_year(calendar, y)
        if last < first:
            raise InvalidCommand(
                f"years {first}-{last}: the first year comes after the last", code="years_reversed"
            )
        return first, last

    def _compared(self, contract: Contract, year: int, now: Statement) -> WhatIfYear:
        fresh = self.settling.fresh_close(contract, year)
        net_total = Decimal(now["total"]) + sum((Decimal(t["amount"]) for t in now["true_ups"]), ZERO)
        net_party: dict[str, Decimal] = {p: Decimal(v) for p, v in now["by_party"].items()}
        for t in now["true_ups"]:
            for p, v in t["by_party"].items():
                net_party[p] = net_party.get(p, ZERO) + Decimal(v)
        parties = list(dict.fromkeys([*net_party, *fresh["by_party"]]))
        difference = Difference(
            total=fmt_money(Decimal(fresh["total"]) - net_total),
            by_party={
                p: fmt_money(Decimal(fresh["by_party"].get(p, "0")) - net_party.get(p, ZERO)) for p in parties
            },
        )
        return WhatIfYear(year=year, in_force=now, whatif=fresh, difference=difference)

    def shadow_statement(self, contract_id: str, year: int) -> Statement:
        """The statement in force; for an open year, the close it would get now (nothing recorded)."""
        settlement = self.store.settlement_state(contract_id, year)
        if settlement is not None and settlement.closed:
            return self.settling.statement(contract_id, year)
        contract, _ = self.store.load_contract(contract_id)
        return self.settling.fresh_close(contract, year)

    def _schedule_variation(self, contract: Contract, first: int, z: int) -> Variation:
        """A variation putting year ``z``'s schedule entry and risk-share terms in force from ``first``."""
        doc = self.store.terms(contract).document_for(z)
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
