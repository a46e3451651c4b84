"""The contract definition's value types: immutable, built only by the reader
(:mod:`ledger.domain.definition.reader`) or from the stored form
(:mod:`ledger.domain.definition.storage`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.domain.finance import DEFAULT as DEFAULT_FINANCE
from ledger.domain.finance import FinanceTerms
from ledger.domain.numbers import ONE, ZERO
from ledger.domain.periods import Calendar

# ids are matched whole (fullmatch), at most 64 characters: the width the read models store
ID_PATTERN = re.compile(r"[a-z0-9-]{1,64}")
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_WHOLE = 10**9
MAX_TERM_YEARS = 50  # years of a term, and of an extension
RULES = ("fixed", "bands", "sliding")
UNITS = ("ratio", "value")
AGGREGATIONS = ("sum", "mean", "latest")


# ---------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Party:
    id: str
    name: str


@dataclass(frozen=True)
class Threshold:
    """An absolute number, or ``baseline × (1 + baseline_change)``."""

    absolute: Decimal | None = None
    baseline_change: Decimal | None = None

    @property
    def is_relative(self) -> bool:
        return self.baseline_change is not None


@dataclass(frozen=True)
class Band:
    threshold: Threshold
    score: Decimal
    higher_is_better: bool  # at_least (True) or at_most (False)


@dataclass(frozen=True)
class Scoring:
    rule: str
    target: Threshold | None = None
    direction: str | None = None
    bands: tuple[Band, ...] = ()
    zero_at: Threshold | None = None
    full_at: Threshold | None = None

    def thresholds(self) -> list[Threshold]:
        found = [self.target, self.zero_at, self.full_at] + [b.threshold for b in self.bands]
        return [t for t in found if t is not None]


@dataclass(frozen=True)
class Measure:
    """Something that is submitted and scored: an indicator or a subcomponent."""

    id: str  # submission key: "indicator" or "indicator.subcomponent"
    weight: Decimal
    unit: str
    aggregation: str
    scoring: Scoring


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    domain: str
    weight: Decimal
    paid_from_year: int
    measure: Measure | None  # None when the indicator has subcomponents
    subcomponents: tuple[Measure, ...]
    attribution: tuple[tuple[str, Decimal], ...]

    @property
    def measures(self) -> tuple[Measure, ...]:
        return self.subcomponents if self.measure is None else (self.measure,)


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    weight: Decimal
    projected: tuple[int, ...]

    def projected_for(self, year: int) -> int:
        """Projection for ``year``; years past the list repeat its last entry."""
        return self.projected[min(year, len(self.projected)) - 1]


@dataclass(frozen=True)
class Capitation:
    rate_per_head: Decimal
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class BudgetTerms:
    year1: Decimal | None
    capitation: Capitation | None
    efficiency: tuple[Decimal, ...]  # entry 0 applies to year 2
    uplift: tuple[Decimal, ...]
    population_tolerance: Decimal
    historical_spend: tuple[tuple[int, Decimal], ...]

    @staticmethod
    def _for_year(values: tuple[Decimal, ...], year: int) -> Decimal:
        if year < 2 or not values:
            return ZERO
        return values[min(year - 2, len(values) - 1)]

    def efficiency_for(self, year: int) -> Decimal:
        return self._for_year(self.efficiency, year)

    def uplift_for(self, year: int) -> Decimal:
        return self._for_year(self.uplift, year)


@dataclass(frozen=True)
class ScheduleEntry:
    from_year: int
    core: Decimal
    outcomes: Decimal
    reserve: Decimal
    risk_share: str | None


@dataclass(frozen=True)
class Tier:
    upto: Decimal | None
    gain_share: Decimal
    loss_share: Decimal


@dataclass(frozen=True)
class RiskShareTerms:
    name: str
    reference: str  # budget | revenue
    tiers: tuple[Tier, ...]
    cap: Decimal | None
    high_cost_threshold: Decimal | None
    split: tuple[tuple[str, Decimal], ...] = ()  # who bears the adjustment; empty = the lead provider
    high_cost_to: str = "lead"  # lead | reporting
    quality_link: bool = False


@dataclass(frozen=True)
class RateOutcome:
    id: str
    name: str | None
    price: Decimal
    max_per_participant: int = 1
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateCard:
    """Outcome prices paid at year close (payment rules §8); never varied (§9)."""

    outcomes: tuple[RateOutcome, ...]
    participant_cap: Decimal | None = None
    contract_cap: Decimal | None = None
    paid_from_year: int = 1

    def outcome(self, outcome_id: str) -> RateOutcome | None:
        for o in self.outcomes:
            if o.id == outcome_id:
                return o
        return None


@dataclass(frozen=True)
class HealthGainEntry:
    """Payment per point of patient-reported health gain above expected (payment rules §9)."""

    id: str
    measure: str
    scale_min: Decimal
    scale_max: Decimal
    price_per_point: Decimal
    target_gain: Decimal | None = None
    min_episodes: int = 1
    floor: Decimal | None = None
    cap: Decimal | None = None
    paid_from_year: int = 1


@dataclass(frozen=True)
class ContractDefinition:
    id: str
    name: str
    model: str
    commissioner: Party
    lead_provider: Party
    subcontractors: tuple[Party, ...]
    currency: str
    start: date
    years: int
    extension_years: int
    period: str
    budget: BudgetTerms
    core_split: tuple[tuple[str, Decimal], ...]
    schedule: tuple[ScheduleEntry, ...]
    risk_shares: tuple[RiskShareTerms, ...]
    baselines: tuple[tuple[str, Decimal], ...]
    indicators: tuple[Indicator, ...]
    dispute_time_bar_days: int = 30
    require_cost_reports: bool = (
        False  # closing.require_cost_reports: close-year refuses while any is missing
    )
    finance: FinanceTerms = (
        DEFAULT_FINANCE  # finance: payment terms and finance codes (ledger/domain/finance.py)
    )
    rate_card: RateCard | None = None  # payment rules §8
    health_gain: tuple[HealthGainEntry, ...] = ()  # payment rules §9
    document: Mapping[str, Any] = field(compare=False, repr=False, default_factory=dict)

    @property
    def providers(self) -> tuple[str, ...]:
        return (self.lead_provider.id, *(p.id for p in self.subcontractors))

    @property
    def providers_ever(self) -> tuple[str, ...]:
        """Every provider party in any year's terms (variations add and remove subcontractors)."""
        ever = self.__dict__.get("_providers_ever")
        return ever if ever is not None else self.providers

    def calendar(self, extended: bool = False) -> Calendar:
        return Calendar(self.start, self.period, self.term_years(extended))

    def term_years(self, extended: bool = False) -> int:
        return self.years + (self.extension_years if extended else 0)

    def schedule_for(self, year: int) -> ScheduleEntry:
        """The entry with the largest ``from_year`` not after ``year`` (inherited forward)."""
        chosen = self.schedule[0]
        for entry in self.schedule:
            if entry.from_year <= year:
                chosen = entry
        return chosen

    def risk_share(self, name: str) -> RiskShareTerms:
        for terms in self.risk_shares:
            if terms.name == name:
                return terms
        raise KeyError(name)

    def measure(self, key: str) -> Measure | None:
        return _measure_index(self).get(key)

    def health_gain_entry(self, entry_id: str) -> HealthGainEntry | None:
        for entry in self.health_gain:
            if entry.id == entry_id:
                return entry
        return None

    def indicator(self, indicator_id: str) -> Indicator | None:
        for ind in self.indicators:
            if ind.id == indicator_id:
                return ind
        return None


def _measure_index(defn: ContractDefinition) -> dict[str, Measure]:
    cached = defn.__dict__.get("_measures")
    if cached is None:
        cached = {m.id: m for ind in defn.indicators for m in ind.measures}
        object.__setattr__(defn, "_measures", cached)
    return cached


def _resolved(threshold: Threshold, baselines: Mapping[str, Decimal], measure_id: str) -> Decimal | None:
    if threshold.absolute is not None or threshold.baseline_change is None:
        return threshold.absolute
    base = baseline_for(baselines, measure_id)
    return None if base is None else base * (ONE + threshold.baseline_change)


def degenerate_sliding_scales(defn: ContractDefinition, baselines: Mapping[str, Decimal]) -> list[str]:
    """Measures whose sliding zero_at and full_at resolve to the same number under ``baselines``."""
    return [
        m.id
        for ind in defn.indicators
        for m in ind.measures
        if m.scoring.rule == "sliding"
        and m.scoring.zero_at is not None
        and m.scoring.full_at is not None
        and _resolved(m.scoring.zero_at, baselines, m.id) == _resolved(m.scoring.full_at, baselines, m.id)
    ]


def baseline_for(baselines: Mapping[str, Decimal], measure_id: str) -> Decimal | None:
    """The baseline of a measure: by its full key, else by its own (sub-indicator) id."""
    if measure_id in baselines:
        return baselines[measure_id]
    short = measure_id.rsplit(".", 1)[-1]
    return baselines.get(short) if short != measure_id else None


# ---------------------------------------------------------------------------
