"""Event-sourced aggregates: the permanent record of every contract.

Streams are split so none grows without bound as a contract ages:

* :class:`Contract` — registration, budgets, baselines, extensions (a few events a year);
* :class:`YearData` — one per contract year: accepted submissions, cost reports,
  population counts (snapshotted every :data:`SNAPSHOT_EVERY` events);
* :class:`Settlement` — one per contract year: instalments, the year close, true-ups;
* :class:`Rejection` — one per distinct rejected record.

Aggregate ids are name-based UUIDs (:func:`contract_uuid` …), so any process can
address a stream without a lookup, and two processes creating the same stream
collide on the event store's optimistic concurrency check instead of forking it.
Every event carries the ``actor`` who caused it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.domain.topics import keep_stored_topics

NAMESPACE = UUID("6f1c2a8e-3b4d-5e6f-8a9b-0c1d2e3f4a5b")
SNAPSHOT_EVERY = 500


def contract_uuid(contract_id: str) -> UUID:
    return uuid5(NAMESPACE, f"contract:{contract_id}")


def year_data_uuid(contract_id: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"data:{contract_id}:{year}")


def settlement_uuid(contract_id: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"settlement:{contract_id}:{year}")


def rejection_uuid(key: str) -> UUID:
    return uuid5(NAMESPACE, f"rejection:{key}")


def _key(*parts: str) -> str:
    return "|".join(parts)


class Contract(Aggregate):
    """A registered contract: its definition and everything that changes its terms."""

    @staticmethod
    def create_id(contract_id: str, **_: Any) -> UUID:
        return contract_uuid(contract_id)

    @event("Registered")
    def __init__(self, contract_id: str, definition: dict[str, Any], source_sha256: str, actor: str) -> None:
        self.contract_id = contract_id
        self.definition = definition
        self.source_sha256 = source_sha256
        self.budgets: dict[str, Decimal] = {}
        self.budget_history: list[dict[str, Any]] = []
        self.baselines: dict[str, Decimal] = {}
        self.baseline_after: dict[str, int] = {}  # key -> how many variations were recorded before it
        self.variations: list[dict[str, Any]] = []  # variation documents, in recording order
        self.extended = False

    @event("BudgetSet")
    def set_budget(
        self, year: int, amount: Decimal, reason: str, note: str, trace: dict[str, Any], actor: str
    ) -> None:
        self.budgets[str(year)] = amount
        self.budget_history.append({"year": year, "amount": amount, "reason": reason, "note": note})

    @event("BaselineRecorded")
    def record_baseline(self, key: str, value: Decimal, note: str, actor: str) -> None:
        self.baselines[key] = value
        self.baseline_after[key] = len(self.variations)

    @event("ExtensionRecorded")
    def record_extension(self, years: int, actor: str) -> None:
        self.extended = True

    @event("VariationRecorded")
    def record_variation(
        self,
        variation_id: str,
        effective_from_year: int,
        reason: str,
        document: dict[str, Any],
        source_sha256: str,
        restated_years: list[int],
        actor: str,
    ) -> None:
        """A contract variation (payment rules §7): the terms change from ``effective_from_year``."""
        self.variations.append(document)

    def budget(self, year: int) -> Decimal | None:
        return self.budgets.get(str(year))


class YearData(Aggregate):
    """The providers' accepted data for one contract year. Corrections supersede; nothing is removed.

    The state keeps only what a command or a year close needs — the latest version
    per (measure, period, provider), per (provider, period) and per segment — so it
    is bounded by the contract's shape, not by how many records or corrections
    arrived. Every version stays in the event stream; record ids are indexed by the
    event store's record index (see :mod:`ledger.adapters.store`).
    """

    @staticmethod
    def create_id(contract_id: str, year: int, **_: Any) -> UUID:
        return year_data_uuid(contract_id, year)

    @event("Opened")
    def __init__(self, contract_id: str, year: int) -> None:
        self.contract_id = contract_id
        self.year = year
        # "measure|period|provider" -> [id, provider, measure, period, num, den, value, supersedes]
        self.latest_submission: dict[str, list[Any]] = {}
        # "provider|period" -> [id, provider, period, total, [[case, cost], ...], supersedes]
        self.latest_cost: dict[str, list[Any]] = {}
        self.population: dict[str, list[Any]] = {}  # segment -> [record id, count, supersedes]
        self._rate_card_state()

    def _rate_card_state(self) -> None:
        # claim id -> [provider, participant, outcome, period, arrival, supersedes] (payment rules §8)
        self.claims: dict[str, list[Any]] = {}
        # episode id -> [provider, entry, period, pre, post, expected_gain or None, supersedes] (§9)
        self.episodes: dict[str, list[Any]] = {}
        self.superseded: dict[str, str] = {}  # claim or episode id (of any year) -> the id replacing it

    class SubmissionAccepted(Aggregate.Event):
        submission_id: str
        provider_id: str
        indicator_id: str
        period: str
        numerator: Decimal | None
        denominator: Decimal | None
        value: Decimal | None
        digest: str
        supersedes: str | None
        actor: str

        def apply(self, agg: YearData) -> None:
            agg.latest_submission[_key(self.indicator_id, self.period, self.provider_id)] = [
                self.submission_id,
                self.provider_id,
                self.indicator_id,
                self.period,
                self.numerator,
                self.denominator,
                self.value,
                self.supersedes,
            ]

    class CostReported(Aggregate.Event):
        report_id: str
        provider_id: str
        period: str
        total_cost: Decimal
        high_cost_cases: list[list[Any]]
        digest: str
        supersedes: str | None
        actor: str

        def apply(self, agg: YearData) -> None:
            agg.latest_cost[_key(self.provider_id, self.period)] = [
                self.report_id,
                self.provider_id,
                self.period,
                self.total_cost,
                self.high_cost_cases,
                self.supersedes,
            ]

    class PopulationCounted(Aggregate.Event):
        record_id: str
        segment_id: str
        count: int
        digest: str
        supersedes: str | None
        actor: str

        def apply(self, agg: YearData) -> None:
            agg.population[self.segment_id] = [self.record_id, self.count, self.supersedes]

    class OutcomeClaimed(Aggregate.Event):
        """An outcome claim (payment rules §8). ``arrival`` is the claim's place in arrival order: its
        own for a new claim, the first claim's of its correction chain for a correction."""

        claim_id: str
        provider_id: str
        participant_id: str
        outcome_id: str
        period: str
        evidence: str | None
        digest: str
        supersedes: str | None
        arrival: list[Any]
        actor: str

        def apply(self, agg: YearData) -> None:
            if not hasattr(agg, "claims"):
                agg._rate_card_state()
            agg.claims[self.claim_id] = [
                self.provider_id,
                self.participant_id,
                self.outcome_id,
                self.period,
                self.arrival,
                self.supersedes,
            ]
            if self.supersedes is not None:
                agg.superseded[self.supersedes] = self.claim_id

    class PromEpisodeRecorded(Aggregate.Event):
        """A PROM episode (payment rules §9); ``supersedes`` names the episode it corrects (any year)."""

        episode_id: str
        provider_id: str
        health_gain_id: str
        period: str
        pre_score: Decimal
        post_score: Decimal
        expected_gain: Decimal | None
        digest: str
        supersedes: str | None
        actor: str

        def apply(self, agg: YearData) -> None:
            if not hasattr(agg, "episodes"):
                agg._rate_card_state()
            agg.episodes[self.episode_id] = [
                self.provider_id,
                self.health_gain_id,
                self.period,
                self.pre_score,
                self.post_score,
                self.expected_gain,
                self.supersedes,
            ]
            if self.supersedes is not None:
                agg.superseded[self.supersedes] = self.episode_id

    def accept_claim(self, c: Any, arrival: list[Any], actor: str) -> None:
        self.trigger_event(
            self.OutcomeClaimed,
            claim_id=c.claim_id,
            provider_id=c.provider_id,
            participant_id=c.participant_id,
            outcome_id=c.outcome_id,
            period=c.period,
            evidence=c.evidence,
            digest=c.digest,
            supersedes=c.supersedes,
            arrival=arrival,
            actor=actor,
        )

    def accept_episode(self, e: Any, actor: str) -> None:
        self.trigger_event(
            self.PromEpisodeRecorded,
            episode_id=e.episode_id,
            provider_id=e.provider_id,
            health_gain_id=e.health_gain_id,
            period=e.period,
            pre_score=e.pre_score,
            post_score=e.post_score,
            expected_gain=e.expected_gain,
            digest=e.digest,
            supersedes=e.supersedes,
            actor=actor,
        )

    def accept_submission(self, s: Any, actor: str) -> str | None:
        previous = self.latest_submission.get(_key(s.indicator_id, s.period, s.provider_id))
        supersedes = previous[0] if previous else None
        self.trigger_event(
            self.SubmissionAccepted,
            submission_id=s.submission_id,
            provider_id=s.provider_id,
            indicator_id=s.indicator_id,
            period=s.period,
            numerator=s.numerator,
            denominator=s.denominator,
            value=s.value,
            digest=s.digest,
            supersedes=supersedes,
            actor=actor,
        )
        return supersedes

    def accept_cost_report(self, c: Any, actor: str) -> str | None:
        previous = self.latest_cost.get(_key(c.provider_id, c.period))
        supersedes = previous[0] if previous else None
        self.trigger_event(
            self.CostReported,
            report_id=c.report_id,
            provider_id=c.provider_id,
            period=c.period,
            total_cost=c.total_cost,
            high_cost_cases=[[ref, cost] for ref, cost in c.high_cost_cases],
            digest=c.digest,
            supersedes=supersedes,
            actor=actor,
        )
        return supersedes

    def accept_population(self, p: Any, actor: str) -> str | None:
        previous = self.population.get(p.segment_id)
        supersedes = previous[0] if previous else None
        self.trigger_event(
            self.PopulationCounted,
            record_id=p.record_id,
            segment_id=p.segment_id,
            count=p.count,
            digest=p.digest,
            supersedes=supersedes,
            actor=actor,
        )
        return supersedes

    def population_counts(self) -> dict[str, int]:
        return {segment: int(v[1]) for segment, v in self.population.items()}


class Settlement(Aggregate):
    """Payment decisions for one contract year: instalments, the close, and true-ups."""

    @staticmethod
    def create_id(contract_id: str, year: int, **_: Any) -> UUID:
        return settlement_uuid(contract_id, year)

    @event("Opened")
    def __init__(self, contract_id: str, year: int) -> None:
        self.contract_id = contract_id
        self.year = year
        self.instalments: list[dict[str, Any]] = []
        self.closed: dict[str, Any] | None = None
        self.true_ups: list[dict[str, Any]] = []  # restatements and adjustments, in order
        self.disputes: dict[str, dict[str, Any]] = {}

    @event("InstalmentDecided")
    def decide_instalment(
        self,
        period: str,
        index: int,
        count: int,
        amount: Decimal,
        budget: Decimal,
        core_annual: Decimal,
        paid_before: Decimal,
        by_party: dict[str, Decimal],
        decided_at: str,
        actor: str,
    ) -> None:
        self.instalments.append(
            {
                "period": period,
                "index": index,
                "count": count,
                "amount": amount,
                "budget": budget,
                "core_annual": core_annual,
                "by_party": by_party,
                "decided_at": decided_at,
            }
        )

    class YearClosed(Aggregate.Event):
        """v2 adds ``variations``: the ids of the contract variations whose terms the decision used."""

        class_version = 2
        figures: dict[str, Any]
        trace: dict[str, Any]
        decided_at: str
        actor: str
        variations: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["variations"] = []  # recorded before variations existed: the registered terms

    @event(YearClosed)
    def close(
        self,
        figures: dict[str, Any],
        trace: dict[str, Any],
        decided_at: str,
        actor: str,
        variations: list[str],
    ) -> None:
        self.closed = {"figures": figures, "trace": trace, "decided_at": decided_at, "variations": variations}

    class TrueUpDecided(Aggregate.Event):
        """v2 adds ``variations`` (as :class:`YearClosed`)."""

        class_version = 2
        amount: Decimal
        by_party: dict[str, Decimal]
        reason: str
        figures: dict[str, Any]
        trace: dict[str, Any]
        decided_at: str
        actor: str
        variations: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["variations"] = []

    @event(TrueUpDecided)
    def true_up(
        self,
        amount: Decimal,
        by_party: dict[str, Decimal],
        reason: str,
        figures: dict[str, Any],
        trace: dict[str, Any],
        decided_at: str,
        actor: str,
        variations: list[str],
    ) -> None:
        self.true_ups.append(
            {
                "kind": "restatement",
                "amount": amount,
                "by_party": by_party,
                "reason": reason,
                "figures": figures,
                "trace": trace,
                "decided_at": decided_at,
                "variations": variations,
            }
        )

    @event("AdjustmentDecided")
    def adjust(
        self,
        amount: Decimal,
        by_party: dict[str, Decimal],
        reason: str,
        dispute_id: str | None,
        decided_at: str,
        actor: str,
    ) -> None:
        """A manual adjustment (e.g. an upheld dispute): money moved without recomputing the year."""
        self.true_ups.append(
            {
                "kind": "adjustment",
                "amount": amount,
                "by_party": by_party,
                "reason": reason,
                "dispute_id": dispute_id,
                "decided_at": decided_at,
            }
        )

    @event("DisputeRaised")
    def raise_dispute(
        self,
        dispute_id: str,
        raised_by: str,
        reason: str,
        decision: str,
        decision_at: str,
        raised_at: str,
        actor: str,
    ) -> None:
        self.disputes[dispute_id] = {
            "dispute_id": dispute_id,
            "raised_by": raised_by,
            "reason": reason,
            "decision": decision,
            "decision_at": decision_at,
            "raised_at": raised_at,
            "status": "open",
            "resolution": None,
        }

    @event("DisputeResolved")
    def resolve_dispute(self, dispute_id: str, upheld: bool, note: str, resolved_at: str, actor: str) -> None:
        self.disputes[dispute_id].update(
            status="upheld" if upheld else "rejected",
            resolution={"note": note, "resolved_at": resolved_at, "by": actor},
        )

    def latest_decision(self) -> tuple[str, str] | None:
        """(label, decided_at) of the latest decision of the year: the close or a later true-up."""
        if self.closed is None:
            return None
        if self.true_ups:
            return f"true-up {len(self.true_ups)}", self.true_ups[-1]["decided_at"]
        return "close", self.closed["decided_at"]

    @property
    def paid(self) -> Decimal:
        return sum((i["amount"] for i in self.instalments), Decimal("0"))

    def decided_periods(self) -> set[str]:
        return {i["period"] for i in self.instalments}

    def current_figures(self) -> dict[str, Any] | None:
        """The figures now in force: the latest restatement's, else the original close's."""
        restated = [t for t in self.true_ups if t["kind"] == "restatement"]
        if restated:
            return restated[-1]["figures"]
        return self.closed["figures"] if self.closed else None

    def current_trace(self) -> dict[str, Any]:
        restated = [t for t in self.true_ups if t["kind"] == "restatement"]
        return restated[-1]["trace"] if restated else (self.closed or {}).get("trace", {})


class Rejection(Aggregate):
    """A record that could not be accepted, kept with its source line and the reason."""

    @staticmethod
    def create_id(key: str, **_: Any) -> UUID:
        return rejection_uuid(key)

    @event("Recorded")
    def __init__(
        self,
        key: str,
        source: str,
        line: int | None,
        raw: str,
        code: str,
        field: str | None,
        message: str,
        contract_id: str | None,
        record_type: str | None,
        record_id: str | None,
        actor: str,
    ) -> None:
        self.key = key
        self.source = source
        self.line = line
        self.raw = raw
        self.code = code
        self.field = field
        self.message = message
        self.contract_id = contract_id
        self.record_type = record_type
        self.record_id = record_id


class AccessRefused(Aggregate):
    """A command refused because its actor may not do it: kept for the audit trail."""

    @event("Recorded")
    def __init__(self, actor: str, action: str, contract_id: str | None, reason: str) -> None:
        self.actor = actor
        self.action = action
        self.contract_id = contract_id
        self.reason = reason


keep_stored_topics(globals())  # stored topics stay "ledger.domain:…" (ledger/domain/topics.py)
