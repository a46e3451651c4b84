"""Settling a contract year: instalments, the year close, restatements and statements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger.domain.aggregates import Contract, Settlement, YearData, year_data_uuid
from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import InvalidCommand
from ledger.domain.numbers import ZERO, fmt, fmt_money, split
from ledger.domain.periods import Period, PeriodError
from ledger.domain.rules.budget import budget_for_year, core_for_year, instalment
from ledger.domain.rules.completeness import Gaps, year_gaps
from ledger.domain.rules.healthgain import Episode
from ledger.domain.rules.outcomes import Observation
from ledger.domain.rules.ratecard import Claim
from ledger.domain.rules.riskshare import CostFact
from ledger.domain.rules.settlement import YearSettlement, settle_year
from ledger.domain.statement import closed_statement, open_statement
from ledger.domain.variations import year_terms
from ledger.usecases.access import Access
from ledger.usecases.checks import replayed
from ledger.usecases.common import iso
from ledger.usecases.results import InstalmentDecision, LaterRestatement, Statement, TrueUp

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger


class Settling:
    """Payment decisions: core instalments, the year close, true-ups; the statement of a year."""

    def __init__(self, store: Ledger, access: Access) -> None:
        self.store = store
        self.access = access

    # ----------------------------------------------------------------- instalments

    def pay(self, contract_id: str, through: str, actor: str = "system") -> list[InstalmentDecision]:
        """Decide every core instalment due up to and including period ``through``."""

        def attempt() -> list[InstalmentDecision]:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "pay", definition)
            calendar = definition.calendar(contract.extended)
            try:
                until = calendar.period(through)
            except PeriodError as exc:
                raise InvalidCommand(f"the period to pay through: {exc}", code="invalid_period") from None
            last_year = calendar.year_of(until)
            if last_year is None:
                raise InvalidCommand(
                    f"the period to pay through, {through}, is outside the contract term",
                    code="period_outside_term",
                )
            decided: list[InstalmentDecision] = []
            touched = []
            for year in range(1, last_year + 1):
                settlement = self.store._settlement(contract_id, year)
                if settlement.closed:
                    continue
                new = self._decide_instalments(
                    contract, definition, settlement, calendar.periods(year), until, actor
                )
                if new:
                    decided.extend(new)
                    touched.append(settlement)
            if touched:
                self.store.save(*touched)
            return decided

        return self.store._retrying(attempt)

    def _year_budget(self, contract: Contract, definition: ContractDefinition, year: int) -> Decimal:
        amount = contract.budget(year)
        return amount if amount is not None else budget_for_year(year_terms(definition, year), year).amount

    def _decide_instalments(
        self,
        contract: Contract,
        definition: ContractDefinition,
        settlement: Settlement,
        periods: Sequence[Period],
        until: Period,
        actor: str,
    ) -> list[InstalmentDecision]:
        year = settlement.year
        budget = self._year_budget(contract, definition, year)
        terms = year_terms(definition, year)
        core = core_for_year(budget, terms.schedule_for(year).core)
        decided = settlement.decided_periods()
        core_split = dict(terms.core_split)
        lead = definition.lead_provider.id
        out: list[InstalmentDecision] = []
        now = iso(self.store.clock())
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
                InstalmentDecision(
                    contract_id=contract.contract_id, year=year, period=period.label, amount=fmt_money(amount)
                )
            )
        return out

    # --------------------------------------------------------------------- figures

    def compute_year(
        self, contract: Contract, definition: ContractDefinition, year: int
    ) -> tuple[YearSettlement, int]:
        """Settle ``year`` from the data held now. Returns the settlement and the data stream version."""
        calendar = definition.calendar(contract.extended)
        # replayed from the sealed events: a stored snapshot is checked against the replay, never trusted
        data, _ = replayed(self.store, year_data_uuid(contract.contract_id, year))
        observations: list[Observation] = []
        costs: list[CostFact] = []
        if data is not None:
            for s in data.latest_submission.values():
                observations.append(
                    Observation(
                        s.submission_id,
                        s.indicator_id,
                        s.provider_id,
                        calendar.stored(s.period),
                        s.numerator,
                        s.denominator,
                        s.value,
                    )
                )
            for c in data.latest_cost.values():
                costs.append(
                    CostFact(
                        c.report_id,
                        c.provider_id,
                        calendar.stored(c.period),
                        Decimal(c.total_cost),
                        tuple((ref, Decimal(cost)) for ref, cost in c.high_cost_cases),
                    )
                )
        baselines = self.store._baselines(contract, year)
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
                other, _ = replayed(self.store, year_data_uuid(contract.contract_id, y))
                if other is not None:
                    streams[y] = other
        superseded: set[str] = set()
        for stream in streams.values():
            superseded.update(stream.superseded)
        claims: list[Claim] = []
        episodes: list[Episode] = []
        for y, stream in sorted(streams.items()):
            if y <= year:
                for cid, c in stream.claims.items():
                    if cid not in superseded:
                        claims.append(
                            Claim(
                                cid,
                                c.provider_id,
                                c.participant_id,
                                c.outcome_id,
                                calendar.stored(c.period),
                                y,
                                tuple(c.arrival),
                            )
                        )
            if y == year:
                for eid, e in stream.episodes.items():
                    entry = definition.health_gain_entry(e.health_gain_id)
                    if eid in superseded or entry is None:
                        continue
                    gain = Decimal(e.expected_gain) if e.expected_gain is not None else entry.target_gain
                    if gain is None:  # refused at ingest otherwise
                        raise InvalidCommand(
                            f"PROM episode {eid} has no expected gain", code="no_expected_gain"
                        )
                    episodes.append(
                        Episode(
                            eid,
                            e.provider_id,
                            e.health_gain_id,
                            y,
                            Decimal(e.pre_score),
                            Decimal(e.post_score),
                            gain,
                        )
                    )
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
        trace["variations"] = self.store.terms(contract).variation_ids(year)
        return figures, trace

    def data_gaps(self, contract_id: str, year: int) -> Gaps:
        """The cost reports and indicator periods a year's settlement lacks (payment-rules §4, §5)."""
        contract, definition = self.store.load_contract(contract_id)
        calendar = definition.calendar(contract.extended)
        self.store.check_year(calendar, year)
        data, _ = replayed(self.store, year_data_uuid(contract_id, year))  # the events, not a snapshot
        costed = {(c.provider_id, c.period) for c in data.latest_cost.values()} if data else set()
        submitted = {(s.indicator_id, s.period) for s in data.latest_submission.values()} if data else set()
        return year_gaps(
            year_terms(definition, year), year, [p.label for p in calendar.periods(year)], costed, submitted
        )

    # ------------------------------------------------------------------- decisions

    def close_year(self, contract_id: str, year: int, actor: str = "system") -> Statement:
        """Decide outstanding instalments, then the outcomes payment and the risk share."""

        def attempt() -> Statement:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "close_year", definition)
            calendar = definition.calendar(contract.extended)
            self.store.check_year(calendar, year)
            settlement = self.store._settlement(contract_id, year)
            settlement.check_open()
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
                decided_at=iso(self.store.clock()),
                actor=actor,
                variations=self.store.terms(contract).variation_ids(year),
            )
            # decided on the data as read: a record landing meanwhile fails this save and the close is retried
            self.store.save(
                settlement, expect_versions={year_data_uuid(contract_id, year): trace["data_version"]}
            )
            return self.statement(contract_id, year)

        return self.store._retrying(attempt)

    def restate(
        self, contract_id: str, year: int, actor: str = "system", reason_prefix: str = ""
    ) -> TrueUp | None:
        """Recompute a closed year; record a true-up for any difference. None when nothing changed."""

        def attempt() -> TrueUp | None:
            contract, definition = self.store.load_contract(contract_id)
            self.access.authorize(actor, "restate", definition)
            self.store.check_year(definition.calendar(contract.extended), year)
            settlement = self.store._settlement(contract_id, year)
            settlement.check_closed()
            outcome = self.true_up(contract, settlement, year, actor, None, reason_prefix)
            if outcome is not None:  # decided on the data as read (see close_year)
                data_version = settlement.current_trace()["data_version"]
                self.store.save(settlement, expect_versions={year_data_uuid(contract_id, year): data_version})
            return outcome

        return self.store._retrying(attempt)

    def restate_later_years(
        self, contract_id: str, year: int, actor: str = "system"
    ) -> list[LaterRestatement]:
        """Restate the closed years after ``year`` of a contract with a rate card (its caps run over the
        term, so an earlier year's claims move later years' figures); the true-ups recorded."""
        contract, definition = self.store.load_contract(contract_id)
        if definition.rate_card is None:
            return []
        out: list[LaterRestatement] = []
        for later in range(year + 1, definition.calendar(contract.extended).years + 1):
            settlement = self.store.settlement_state(contract_id, later)
            if settlement is None or not settlement.closed:
                continue
            true_up = self.restate(contract_id, later, actor=actor)
            if true_up is not None:
                out.append(LaterRestatement(year=later, true_up=true_up))
        return out

    def true_up(
        self,
        contract: Contract,
        settlement: Settlement,
        year: int,
        actor: str,
        reason: str | None,
        reason_prefix: str = "",
    ) -> TrueUp | None:
        """Recompute a closed year on the terms and data now held (in memory); record a true-up for any
        difference, with ``reason`` (else one naming the corrections, late data and budget changes).
        Nothing is saved: the caller saves ``settlement``."""
        definition = self.store._definition(contract)
        current = settlement.current_figures() or {}
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
            decided_at=iso(self.store.clock()),
            actor=actor,
            variations=self.store.terms(contract).variation_ids(year),
        )
        return TrueUp(
            decided_at=settlement.true_ups[-1]["decided_at"],
            amount=fmt_money(amount),
            reason=reason,
            by_party={p: fmt_money(v) for p, v in by_party.items()},
        )

    def _restatement_reason(
        self, contract_id: str, year: int, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> str:
        """Why a restatement differs: corrections (superseding data the decision used), late data, budget."""
        data, _ = replayed(self.store, year_data_uuid(contract_id, year))
        supersedes: dict[str, str | None] = {}
        if data is not None:
            supersedes.update((s.submission_id, s.supersedes) for s in data.latest_submission.values())
            supersedes.update((c.report_id, c.supersedes) for c in data.latest_cost.values())
        if "claims_used" in after or "episodes_used" in after:  # corrections may sit in any year's stream
            contract, definition = self.store.load_contract(contract_id)
            for y in range(1, definition.calendar(contract.extended).years + 1):
                stream, _ = replayed(self.store, year_data_uuid(contract_id, y))
                if stream is None:
                    continue
                supersedes.update((rid, c.supersedes) for rid, c in stream.claims.items())
                supersedes.update((rid, e.supersedes) for rid, e in stream.episodes.items())
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
        variations = [v for v in after.get("variations", []) if v not in before.get("variations", [])]
        if variations:
            parts.append(f"variation {', '.join(variations)}")
        if not parts and before.get("rate_card") != after.get("rate_card"):
            parts.append("outcome claims of earlier years (the rate card's caps run over the term)")
        if not parts:
            parts.append("recomputed from the data and terms now held")
        return "restated after " + "; ".join(parts)

    # ------------------------------------------------------------------ statements

    def statement(self, contract_id: str, year: int) -> Statement:
        """The year statement in the shape of contract-format.md, from the aggregates."""
        contract, definition = self.store.load_contract(contract_id)
        self.store.check_year(definition.calendar(contract.extended), year)
        settlement = self.store.settlement_state(contract_id, year)
        instalments = [(i["period"], i["amount"]) for i in (settlement.instalments if settlement else [])]
        variations = self.store.terms(contract).variation_ids(year)
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
        return self.store.settlement_state(contract_id, year)

    def fresh_close(self, contract: Contract, year: int) -> Statement:
        """The statement a close of ``year`` would give now on ``contract``'s terms (held in memory),
        as close_year decides it: outstanding instalments, then the year's figures. Nothing is saved."""
        definition = self.store._definition(contract)
        calendar = definition.calendar(contract.extended)
        # a closed year's instalments stand as decided (a restatement recomputes the rest, as here)
        settlement = self.store._settlement(contract.contract_id, year)
        periods = calendar.periods(year)
        self._decide_instalments(contract, definition, settlement, periods, periods[-1], "whatif")
        figures, _ = self._decision(contract, definition, settlement, year)
        instalments = [(i["period"], i["amount"]) for i in settlement.instalments]
        return closed_statement(
            contract.contract_id,
            year,
            figures,
            instalments,
            [],
            self.store.terms(contract).variation_ids(year),
        )
