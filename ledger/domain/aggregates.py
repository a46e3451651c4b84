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

One aggregate style: every event is a nested class declaring its fields and its ``class_version``
(with ``upcast_vN_vM`` static methods once past 1), and is triggered by a command method decorated
with ``@event(ThatClass)`` whose body applies it. Where a command has invariants, its public method
checks them first (``check_*``, raising a ledger error; never ``assert``) and then calls the private
decorated method, so a replay applies the event without re-checking it.

State that a close or a restatement reads is held in small named tuples (:class:`CostState` …) or,
for the latest submissions, plain rows nested by indicator, party and period (read through the named
view :attr:`YearData.latest_submission`); they are stored as JSON arrays in snapshots, as the
positional lists before them were. A change of a stream's stored state layout raises the aggregate's
``class_version`` with an ``upcast_vN_vM`` for the snapshots older releases took.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from sys import intern
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, decorated_funcs, event

from ledger.domain import errors
from ledger.domain.topics import keep_stored_topics

NAMESPACE = UUID("6f1c2a8e-3b4d-5e6f-8a9b-0c1d2e3f4a5b")
SNAPSHOT_EVERY = 2000


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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class LedgerAggregate(Aggregate):
    """Base of the ledger's aggregates: every event class is at ``class_version`` 1 unless it says otherwise
    (raise it with an ``upcast_vN_vM`` static method; never edit a stored event's meaning)."""

    class_version = 1

    class Event(Aggregate.Event):
        class_version = 1

    class Created(Event, Aggregate.Created):
        class_version = 1

    def _emit(self, event_class: type[Aggregate.Event], **fields: Any) -> None:
        """Trigger ``event_class`` (an ``@event``-decorated event) with exactly its own fields: what calling
        its decorated command method does — the event made as the next of the stream, the method's body
        applied, the event kept pending — without that path's inspection of the arguments (it matches
        them to the method's parameters twice per event, a third of an ingested record's cost of its
        event). The event is the library's own class, stored and replayed as any other
        (tests/integration/test_fast_events.py builds every stream both ways and compares them)."""
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=event_class.create_timestamp(),
            **fields,
        )
        decorated_funcs[event_class](self, **fields)
        self.version = event.originator_version
        self.modified_on = event.timestamp
        self._pending_events.append(event)


# a latest submission as YearData holds it: (submission_id, numerator, denominator[, value[, supersedes]])
SubmissionRow = tuple[Any, ...]


def submission_row(
    submission_id: str,
    numerator: Decimal | None,
    denominator: Decimal | None,
    value: Decimal | None = None,
    supersedes: str | None = None,
) -> SubmissionRow:
    """The row of a latest submission, its trailing value and supersedes left off when None (most
    submissions are first versions of a ratio: 16 bytes a slot less); :func:`row_fields` pads it."""
    if supersedes is not None:
        return (submission_id, numerator, denominator, value, supersedes)
    if value is not None:
        return (submission_id, numerator, denominator, value)
    return (submission_id, numerator, denominator)


def row_fields(row: SubmissionRow) -> tuple[Any, Any, Any, Any, Any]:
    """(submission_id, numerator, denominator, value, supersedes) of a :func:`submission_row`."""
    return (row[0], row[1], row[2], row[3] if len(row) > 3 else None, row[4] if len(row) > 4 else None)


_NONE: dict[str, Any] = {}  # an empty level of YearData.submitted (never written)


class SubmissionState(NamedTuple):
    """The latest accepted submission for a (measure, period, provider)."""

    submission_id: str
    provider_id: str
    indicator_id: str
    period: str
    numerator: Decimal | None
    denominator: Decimal | None
    value: Decimal | None
    supersedes: str | None


class CostState(NamedTuple):
    """The latest cost report of a (provider, period); ``high_cost_cases`` is [[case, cost], …]."""

    report_id: str
    provider_id: str
    period: str
    total_cost: Decimal
    high_cost_cases: list[list[Any]]
    supersedes: str | None


class PopulationState(NamedTuple):
    """The latest population count of a segment."""

    record_id: str
    counted: int  # (not ``count``: that is a tuple's method)
    supersedes: str | None


class ClaimState(NamedTuple):
    """An outcome claim (payment rules §8); ``arrival`` is its place in arrival order, (received at,
    year, stream version), held as a tuple (the event stores it as a list: 32 bytes a claim more)."""

    provider_id: str
    participant_id: str
    outcome_id: str
    period: str
    arrival: tuple[Any, ...]
    supersedes: str | None


class EpisodeState(NamedTuple):
    """A PROM episode (payment rules §9); ``expected_gain`` None means the entry's target gain."""

    provider_id: str
    health_gain_id: str
    period: str
    pre_score: Decimal
    post_score: Decimal
    expected_gain: Decimal | None
    supersedes: str | None


class Contract(LedgerAggregate):
    """A registered contract: its definition and everything that changes its terms."""

    @staticmethod
    def create_id(contract_id: str, **_: Any) -> UUID:
        return contract_uuid(contract_id)

    class Registered(LedgerAggregate.Created):
        class_version = 1
        contract_id: str
        definition: dict[str, Any]
        source_sha256: str
        actor: str

    @event(Registered)
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

    class BudgetSet(LedgerAggregate.Event):
        class_version = 1
        year: int
        amount: Decimal
        reason: str
        note: str
        trace: dict[str, Any]
        actor: str

    @event(BudgetSet)
    def set_budget(
        self, year: int, amount: Decimal, reason: str, note: str, trace: dict[str, Any], actor: str
    ) -> None:
        self.budgets[str(year)] = amount
        self.budget_history.append({"year": year, "amount": amount, "reason": reason, "note": note})

    class BaselineRecorded(LedgerAggregate.Event):
        class_version = 1
        key: str
        value: Decimal
        note: str
        actor: str

    @event(BaselineRecorded)
    def record_baseline(self, key: str, value: Decimal, note: str, actor: str) -> None:
        self.baselines[key] = value
        self.baseline_after[key] = len(self.variations)

    def check_extendable(self, extension_years: int) -> None:
        if self.extended:
            raise errors.InvalidCommand(f"contract {self.contract_id!r} is already extended")
        if extension_years == 0:
            raise errors.InvalidCommand(f"contract {self.contract_id!r} has no extension_years in its terms")

    def record_extension(self, years: int, actor: str) -> None:
        self.check_extendable(years)
        self._extension_recorded(years=years, actor=actor)

    class ExtensionRecorded(LedgerAggregate.Event):
        class_version = 1
        years: int
        actor: str

    @event(ExtensionRecorded)
    def _extension_recorded(self, years: int, actor: str) -> None:
        self.extended = True

    class VariationRecorded(LedgerAggregate.Event):
        class_version = 1
        variation_id: str
        effective_from_year: int
        reason: str
        document: dict[str, Any]
        source_sha256: str
        restated_years: list[int]
        actor: str

    @event(VariationRecorded)
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

    # -- provider keys (signed submissions; ledger.usecases.signatures) ----------

    signatures_required: bool = False  # until a SignaturesRequired event says otherwise

    class ProviderKeyAdded(Aggregate.Event):
        """A provider party's Ed25519 public key (PEM), registered by the commissioner."""

        class_version = 1
        party: str
        key_id: str
        public_key: str
        actor: str

        def apply(self, agg: Contract) -> None:
            agg.provider_keys_state()[self.key_id] = {
                "party": self.party,
                "public_key": self.public_key,
                "added_at": self.timestamp.isoformat(),
                "revoked_at": None,
            }

    class ProviderKeyRevoked(Aggregate.Event):
        class_version = 1
        key_id: str
        reason: str
        actor: str

        def apply(self, agg: Contract) -> None:
            agg.provider_keys_state()[self.key_id]["revoked_at"] = self.timestamp.isoformat()

    class SignaturesRequired(Aggregate.Event):
        """From now on records must (``required``) or may be signed by a registered provider key."""

        class_version = 1
        required: bool
        actor: str

        def apply(self, agg: Contract) -> None:
            agg.signatures_required = self.required

    def provider_keys_state(self) -> dict[str, dict[str, Any]]:
        """key id -> {party, public_key, added_at, revoked_at} (absent on contracts that predate keys)."""
        if "provider_keys" not in self.__dict__:
            self.provider_keys: dict[str, dict[str, Any]] = {}
        return self.provider_keys

    def add_provider_key(self, party: str, key_id: str, public_key: str, actor: str) -> None:
        self.trigger_event(
            self.ProviderKeyAdded, party=party, key_id=key_id, public_key=public_key, actor=actor
        )

    def revoke_provider_key(self, key_id: str, reason: str, actor: str) -> None:
        self.trigger_event(self.ProviderKeyRevoked, key_id=key_id, reason=reason, actor=actor)

    def require_signatures(self, required: bool, actor: str) -> None:
        self.trigger_event(self.SignaturesRequired, required=required, actor=actor)


class YearData(LedgerAggregate):
    """The providers' accepted data for one contract year. Corrections supersede; nothing is removed.

    The state keeps only what a command or a year close needs — the latest version
    per (measure, period, provider), per (provider, period) and per segment — so it
    is bounded by the contract's shape, not by how many records or corrections
    arrived. Every version stays in the event stream; record ids are indexed by the
    event store's record index (see :mod:`ledger.adapters.store`).
    """

    # 2: the latest submissions held as ``submitted`` (indicator -> party -> period -> row), not as
    # ``latest_submission`` ("measure|period|provider" -> SubmissionState); snapshots are upcast
    class_version = 2

    @staticmethod
    def create_id(contract_id: str, year: int, **_: Any) -> UUID:
        return year_data_uuid(contract_id, year)

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A version-1 snapshot's ``latest_submission`` as ``submitted``, nested in the order a replay
        of the same events nests it (first arrival of each indicator, party and slot)."""
        submitted: dict[str, dict[str, dict[str, Any]]] = {}
        for row in state.pop("latest_submission", {}).values():
            submission_id, provider_id, indicator_id, period, numerator, denominator, value, supersedes = row
            submitted.setdefault(indicator_id, {}).setdefault(provider_id, {})[period] = submission_row(
                submission_id, numerator, denominator, value, supersedes
            )
        state["submitted"] = submitted

    class Opened(LedgerAggregate.Created):
        class_version = 1
        contract_id: str
        year: int

    @event(Opened)
    def __init__(self, contract_id: str, year: int) -> None:
        self.contract_id = contract_id
        self.year = year
        # indicator -> party -> period -> submission_row(id, numerator, denominator, value, supersedes):
        # the names are held once per indicator and party, not once per slot (memory: a slot is a
        # dict entry, the row and its id; see :attr:`latest_submission` for the named view)
        self.submitted: dict[str, dict[str, dict[str, SubmissionRow]]] = {}
        self.latest_cost: dict[str, CostState] = {}  # "provider|period" ->
        self.population: dict[str, PopulationState] = {}  # segment ->
        self._rate_card_state()

    def _rate_card_state(self) -> None:
        self.claims: dict[str, ClaimState] = {}  # claim id -> (payment rules §8)
        self.episodes: dict[str, EpisodeState] = {}  # episode id -> (§9)
        self.superseded: dict[str, str] = {}  # claim or episode id (of any year) -> the id replacing it

    @property
    def latest_submission(self) -> dict[str, SubmissionState]:
        """The latest accepted submission per "measure|period|provider", made from :attr:`submitted`
        (indicator by indicator, party by party, in the order each first arrived)."""
        return {
            _key(indicator_id, period, provider_id): SubmissionState(
                submission_id, provider_id, indicator_id, period, numerator, denominator, value, supersedes
            )
            for indicator_id, by_party in self.submitted.items()
            for provider_id, by_period in by_party.items()
            for period, row in by_period.items()
            for submission_id, numerator, denominator, value, supersedes in (row_fields(row),)
        }

    def restore_named_state(self) -> None:
        """Named tuples again after a snapshot (it stores them as JSON arrays); older snapshots lack
        the rate-card state."""
        if not hasattr(self, "claims"):
            self._rate_card_state()
        # the names as one shared copy each and the rows as tuples, as the events' apply methods keep them
        self.submitted = {
            intern(indicator_id): {
                intern(provider_id): {
                    intern(period): submission_row(*row_fields(row)) for period, row in by_period.items()
                }
                for provider_id, by_period in by_party.items()
            }
            for indicator_id, by_party in self.submitted.items()
        }
        # (state, its row type, the fields kept as one shared copy, as the events' apply methods keep them)
        # and the fields held as tuples (a claim's arrival), as the events' apply methods keep them
        kinds: tuple[tuple[str, Any, tuple[int, ...], tuple[int, ...]], ...] = (
            ("latest_cost", CostState, (1, 2), ()),  # party, period
            ("population", PopulationState, (), ()),
            ("claims", ClaimState, (0, 1, 2, 3), (4,)),  # party, participant, outcome, period; arrival
            ("episodes", EpisodeState, (0, 1, 2), ()),  # party, health gain entry, period
        )
        for name, kind, shared, tuples in kinds:
            held: dict[str, Any] = getattr(self, name)
            for key, row in held.items():
                if type(row) is not kind:
                    held[key] = kind(
                        *(
                            intern(v)
                            if i in shared and type(v) is str
                            else tuple(v)
                            if i in tuples and type(v) is list
                            else v
                            for i, v in enumerate(row)
                        )
                    )

    # ---------------------------------------------------------------- commands

    def accept_submission(self, s: Any, actor: str) -> str | None:
        previous = self.submitted.get(s.indicator_id, _NONE).get(s.provider_id, _NONE).get(s.period)
        supersedes = previous[0] if previous else None
        self._emit(
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
        supersedes = previous.report_id if previous else None
        self._emit(
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
        supersedes = previous.record_id if previous else None
        self._emit(
            self.PopulationCounted,
            record_id=p.record_id,
            segment_id=p.segment_id,
            count=p.count,
            digest=p.digest,
            supersedes=supersedes,
            actor=actor,
        )
        return supersedes

    def accept_claim(self, c: Any, arrival: list[Any], actor: str) -> None:
        self._emit(
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
        self._emit(
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

    def population_counts(self) -> dict[str, int]:
        return {segment: int(v.counted) for segment, v in self.population.items()}

    # ------------------------------------------------------------------ events

    class SubmissionAccepted(LedgerAggregate.Event):
        class_version = 1
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

    @event(SubmissionAccepted)
    def _submission_accepted(
        self,
        submission_id: str,
        provider_id: str,
        indicator_id: str,
        period: str,
        numerator: Decimal | None,
        denominator: Decimal | None,
        value: Decimal | None,
        digest: str,
        supersedes: str | None,
        actor: str,
    ) -> None:
        by_party = self.submitted.get(indicator_id)
        if by_party is None:
            by_party = self.submitted[intern(indicator_id)] = {}
        by_period = by_party.get(provider_id)
        if by_period is None:
            by_period = by_party[intern(provider_id)] = {}
        # the period repeats in every party's entries: one shared copy (memory)
        by_period[intern(period)] = submission_row(submission_id, numerator, denominator, value, supersedes)

    class CostReported(LedgerAggregate.Event):
        class_version = 1
        report_id: str
        provider_id: str
        period: str
        total_cost: Decimal
        high_cost_cases: list[list[Any]]
        digest: str
        supersedes: str | None
        actor: str

    @event(CostReported)
    def _cost_reported(
        self,
        report_id: str,
        provider_id: str,
        period: str,
        total_cost: Decimal,
        high_cost_cases: list[list[Any]],
        digest: str,
        supersedes: str | None,
        actor: str,
    ) -> None:
        provider_id, period = intern(provider_id), intern(period)
        self.latest_cost[_key(provider_id, period)] = CostState(
            report_id, provider_id, period, total_cost, high_cost_cases, supersedes
        )

    class PopulationCounted(LedgerAggregate.Event):
        class_version = 1
        record_id: str
        segment_id: str
        count: int
        digest: str
        supersedes: str | None
        actor: str

    @event(PopulationCounted)
    def _population_counted(
        self, record_id: str, segment_id: str, count: int, digest: str, supersedes: str | None, actor: str
    ) -> None:
        self.population[segment_id] = PopulationState(record_id, count, supersedes)

    class OutcomeClaimed(LedgerAggregate.Event):
        class_version = 1
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

    @event(OutcomeClaimed)
    def _outcome_claimed(
        self,
        claim_id: str,
        provider_id: str,
        participant_id: str,
        outcome_id: str,
        period: str,
        evidence: str | None,
        digest: str,
        supersedes: str | None,
        arrival: list[Any],
        actor: str,
    ) -> None:
        """An outcome claim (payment rules §8). ``arrival`` is the claim's place in arrival order: its
        own for a new claim, the first claim's of its correction chain for a correction."""
        if not hasattr(self, "claims"):
            self._rate_card_state()
        # party, outcome and period repeat in every claim, a participant in several: one copy of each
        self.claims[claim_id] = ClaimState(
            intern(provider_id),
            intern(participant_id),
            intern(outcome_id),
            intern(period),
            tuple(arrival),
            supersedes,
        )
        if supersedes is not None:
            self.superseded[supersedes] = claim_id

    class PromEpisodeRecorded(LedgerAggregate.Event):
        class_version = 1
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

    @event(PromEpisodeRecorded)
    def _prom_episode_recorded(
        self,
        episode_id: str,
        provider_id: str,
        health_gain_id: str,
        period: str,
        pre_score: Decimal,
        post_score: Decimal,
        expected_gain: Decimal | None,
        digest: str,
        supersedes: str | None,
        actor: str,
    ) -> None:
        """A PROM episode (payment rules §9); ``supersedes`` names the episode it corrects (any year)."""
        if not hasattr(self, "episodes"):
            self._rate_card_state()
        self.episodes[episode_id] = EpisodeState(
            intern(provider_id),
            intern(health_gain_id),
            intern(period),
            pre_score,
            post_score,
            expected_gain,
            supersedes,
        )
        if supersedes is not None:
            self.superseded[supersedes] = episode_id

    class RecordSigned(Aggregate.Event):
        """The verified provider signature of the record accepted just before it (same digest):
        the key, its party, the signature and the canonical bytes it covers (ledger.domain.signatures)."""

        class_version = 1
        record_type: str
        record_id: str
        digest: str
        key_id: str
        party: str
        signature: str
        canonical: str
        actor: str

        def apply(self, agg: YearData) -> None:
            pass  # evidence only: no state a command needs

    def keep_signature(self, record: Any, signed: Any, actor: str) -> None:
        self.trigger_event(
            self.RecordSigned,
            record_type=record.type,
            record_id=record.record_id,
            digest=record.digest,
            key_id=signed.key_id,
            party=signed.party,
            signature=signed.signature,
            canonical=signed.canonical,
            actor=actor,
        )


class Settlement(LedgerAggregate):
    """Payment decisions for one contract year: instalments, the close, and true-ups."""

    @staticmethod
    def create_id(contract_id: str, year: int, **_: Any) -> UUID:
        return settlement_uuid(contract_id, year)

    class Opened(LedgerAggregate.Created):
        class_version = 1
        contract_id: str
        year: int

    @event(Opened)
    def __init__(self, contract_id: str, year: int) -> None:
        self.contract_id = contract_id
        self.year = year
        self.instalments: list[dict[str, Any]] = []
        self.closed: dict[str, Any] | None = None
        self.true_ups: list[dict[str, Any]] = []  # restatements and adjustments, in order
        self.disputes: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------- invariants

    def check_open(self) -> None:
        """A closed year takes no new decision but a restatement."""
        if self.closed is not None:
            raise errors.YearClosed(
                f"year {self.year} of {self.contract_id!r} is already closed; a restatement "
                f"recomputes it from the data now held"
            )

    def check_closed(self) -> None:
        """Only a closed year is restated."""
        if self.closed is None:
            raise errors.YearNotClosed(
                f"year {self.year} of {self.contract_id!r} is not closed; close it first"
            )

    def check_period_undecided(self, period: str) -> None:
        if period in self.decided_periods():
            raise errors.InvalidCommand(
                f"the instalment of {period} of {self.contract_id!r} year {self.year} is already decided",
                code="instalment_decided",
            )

    def check_decided(self) -> tuple[str, str]:
        """(label, decided_at) of the decision a dispute would be about; refused before the close."""
        latest = self.latest_decision()
        if latest is None:
            raise errors.InvalidCommand(
                f"year {self.year} of {self.contract_id!r} has no decision to dispute yet",
                code="nothing_to_dispute",
            )
        return latest

    def check_within_time_bar(self, now: datetime, bar_days: int) -> None:
        """A dispute is raised within ``bar_days`` of the decision it disputes."""
        label, decided_at = self.check_decided()
        decided = datetime.fromisoformat(decided_at.replace("Z", "+00:00"))
        if now - decided > timedelta(days=bar_days):
            raise errors.InvalidCommand(
                f"the {label} of {self.contract_id} year {self.year} was decided on {decided_at}; disputes "
                f"must be raised within {bar_days} days (time bar passed "
                f"{_iso(decided + timedelta(days=bar_days))})",
                code="time_barred",
            )

    def check_dispute_open(self, dispute_id: str) -> None:
        """A dispute is resolved once."""
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise errors.NotFound(
                f"no dispute {dispute_id!r} on {self.contract_id} year {self.year}", code="unknown_dispute"
            )
        if dispute["status"] != "open":
            raise errors.InvalidCommand(
                f"dispute {dispute_id} is already {dispute['status']}", code="dispute_closed"
            )

    # --------------------------------------------------------------- commands

    def decide_instalment(self, period: str, **decision: Any) -> None:
        self.check_open()
        self.check_period_undecided(period)
        self._instalment_decided(period=period, **decision)

    def close(self, **decision: Any) -> None:
        self.check_open()
        self._close(**decision)

    def true_up(self, **decision: Any) -> None:
        self.check_closed()
        self._true_up(**decision)

    def raise_dispute(self, **dispute: Any) -> None:
        self.check_decided()
        self._dispute_raised(**dispute)

    def resolve_dispute(self, dispute_id: str, **resolution: Any) -> None:
        self.check_dispute_open(dispute_id)
        self._dispute_resolved(dispute_id=dispute_id, **resolution)

    # ----------------------------------------------------------------- events

    class InstalmentDecided(LedgerAggregate.Event):
        class_version = 1
        period: str
        index: int
        count: int
        amount: Decimal
        budget: Decimal
        core_annual: Decimal
        paid_before: Decimal
        by_party: dict[str, Decimal]
        decided_at: str
        actor: str

    @event(InstalmentDecided)
    def _instalment_decided(
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

    class YearClosed(LedgerAggregate.Event):
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
    def _close(
        self,
        figures: dict[str, Any],
        trace: dict[str, Any],
        decided_at: str,
        actor: str,
        variations: list[str],
    ) -> None:
        self.closed = {"figures": figures, "trace": trace, "decided_at": decided_at, "variations": variations}

    class TrueUpDecided(LedgerAggregate.Event):
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
    def _true_up(
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

    class AdjustmentDecided(LedgerAggregate.Event):
        class_version = 1
        amount: Decimal
        by_party: dict[str, Decimal]
        reason: str
        dispute_id: str | None
        decided_at: str
        actor: str

    @event(AdjustmentDecided)
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

    class DisputeRaised(LedgerAggregate.Event):
        class_version = 1
        dispute_id: str
        raised_by: str
        reason: str
        decision: str
        decision_at: str
        raised_at: str
        actor: str

    @event(DisputeRaised)
    def _dispute_raised(
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

    class DisputeResolved(LedgerAggregate.Event):
        class_version = 1
        dispute_id: str
        upheld: bool
        note: str
        resolved_at: str
        actor: str

    @event(DisputeResolved)
    def _dispute_resolved(
        self, dispute_id: str, upheld: bool, note: str, resolved_at: str, actor: str
    ) -> None:
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


class Rejection(LedgerAggregate):
    """A record that could not be accepted, kept with its source line and the reason."""

    @staticmethod
    def create_id(key: str, **_: Any) -> UUID:
        return rejection_uuid(key)

    class Recorded(LedgerAggregate.Created):
        class_version = 1
        key: str
        source: str
        line: int | None
        raw: str
        code: str
        field: str | None
        message: str
        contract_id: str | None
        record_type: str | None
        record_id: str | None
        actor: str

    @event(Recorded)
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


class AccessRefused(LedgerAggregate):
    """A command refused because its actor may not do it: kept for the audit trail."""

    class Recorded(LedgerAggregate.Created):
        class_version = 1
        actor: str
        action: str
        contract_id: str | None
        reason: str

    @event(Recorded)
    def __init__(self, actor: str, action: str, contract_id: str | None, reason: str) -> None:
        self.actor = actor
        self.action = action
        self.contract_id = contract_id
        self.reason = reason


keep_stored_topics(globals())  # stored topics stay "ledger.domain:…" (ledger/domain/topics.py)
