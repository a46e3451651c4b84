"""Outcome indicators (payment rules §4): values, scores and earned amounts. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledger.domain.definition import ContractDefinition, Indicator, Measure, Scoring, Threshold, baseline_for
from ledger.domain.errors import LedgerError
from ledger.domain.numbers import ONE, ZERO, exact, fmt, fmt_money, money, split
from ledger.domain.periods import Period

SCORED, MISSING, NOT_LINKED = "scored", "missing", "not_linked"


@dataclass(frozen=True)
class Observation:
    """The figures of one accepted (latest-version) submission."""

    submission_id: str
    measure_id: str
    provider_id: str
    period: Period
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    value: Decimal | None = None


@dataclass(frozen=True)
class MeasureResult:
    measure_id: str
    value: Decimal | None
    score: Decimal
    trace: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndicatorResult:
    id: str
    status: str
    value: Decimal | None
    score: Decimal
    weight: Decimal
    normalised_weight: Decimal
    earned: Decimal
    by_party: Mapping[str, Decimal]
    measures: tuple[MeasureResult, ...]

    def to_statement(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "value": fmt(self.value),
            "score": fmt(self.score),
            "weight": fmt(self.weight),
            "normalised_weight": fmt(self.normalised_weight),
            "earned": fmt_money(self.earned),
        }


def resolve(threshold: Threshold, baselines: Mapping[str, Decimal], measure_id: str) -> Decimal:
    if threshold.absolute is not None:
        return threshold.absolute
    base = baseline_for(baselines, measure_id)
    if base is None:
        raise LookupError(f"no baseline for {measure_id!r}")
    with exact():
        return base * (ONE + threshold.baseline_change)  # type: ignore[operator]


def measure_value(
    measure: Measure, observations: Sequence[Observation]
) -> tuple[Decimal | None, dict[str, Any]]:
    """Value of one measure for a year from its latest-version observations."""
    per_period: dict[Period, list[Decimal]] = {}
    with exact():
        for ob in observations:
            acc = per_period.setdefault(ob.period, [ZERO, ZERO, ZERO])
            if measure.unit == "ratio":
                acc[0] += ob.numerator or ZERO
                acc[1] += ob.denominator or ZERO
            else:
                acc[2] += ob.value or ZERO
        periods = sorted(per_period)
        trace: dict[str, Any] = {
            "periods": [
                {
                    "period": p.label,
                    **(
                        {"numerator": fmt(per_period[p][0]), "denominator": fmt(per_period[p][1])}
                        if measure.unit == "ratio"
                        else {"value": fmt(per_period[p][2])}
                    ),
                }
                for p in periods
            ],
            "submissions": sorted(ob.submission_id for ob in observations),
        }
        if not periods:
            return None, trace

        def period_value(p: Period) -> Decimal | None:
            num, den, val = per_period[p]
            if measure.unit == "ratio":
                return num / den if den != ZERO else None
            return val

        if measure.aggregation == "sum":
            if measure.unit == "ratio":
                num = sum((per_period[p][0] for p in periods), ZERO)
                den = sum((per_period[p][1] for p in periods), ZERO)
                return (num / den if den != ZERO else None), trace
            return sum((per_period[p][2] for p in periods), ZERO), trace
        if measure.aggregation == "mean":
            values = [v for p in periods if (v := period_value(p)) is not None]
            if not values:
                return None, trace
            total = ZERO
            for v in values:
                total += v
            return total / Decimal(len(values)), trace
        # latest: the combined value of the latest period with a submission
        return period_value(periods[-1]), trace


def score(
    scoring: Scoring, value: Decimal, baselines: Mapping[str, Decimal], measure_id: str
) -> tuple[Decimal, dict[str, Any]]:
    """Score in [0, 1] under the measure's rule, with the resolved thresholds."""
    with exact():
        if scoring.rule == "fixed":
            target = resolve(scoring.target, baselines, measure_id)  # type: ignore[arg-type]
            met = value >= target if scoring.direction == "higher" else value <= target
            return (ONE if met else ZERO), {
                "rule": "fixed",
                "target": fmt(target),
                "direction": scoring.direction,
            }
        if scoring.rule == "bands":
            best = ZERO
            bands = []
            for band in scoring.bands:
                t = resolve(band.threshold, baselines, measure_id)
                met = value >= t if band.higher_is_better else value <= t
                bands.append(
                    {
                        "at_least" if band.higher_is_better else "at_most": fmt(t),
                        "score": fmt(band.score),
                        "met": met,
                    }
                )
                if met and band.score > best:
                    best = band.score
            return best, {"rule": "bands", "bands": bands}
        zero = resolve(scoring.zero_at, baselines, measure_id)  # type: ignore[arg-type]
        full = resolve(scoring.full_at, baselines, measure_id)  # type: ignore[arg-type]
        if full == zero:
            raise LedgerError(
                f"{measure_id}: the sliding scale's zero_at and full_at both resolve to {zero}; "
                f"record a baseline that separates them",
                code="degenerate_scale",
            )
        raw = (value - zero) / (full - zero)
        result = ZERO if raw < ZERO else ONE if raw > ONE else raw
        return result, {"rule": "sliding", "zero_at": fmt(zero), "full_at": fmt(full)}


def _measure_result(
    measure: Measure, observations: Sequence[Observation], baselines: Mapping[str, Decimal]
) -> MeasureResult:
    value, trace = measure_value(measure, observations)
    if value is None:
        return MeasureResult(measure.id, None, ZERO, {**trace, "status": MISSING})
    result, scoring_trace = score(measure.scoring, value, baselines, measure.id)
    base = baseline_for(baselines, measure.id)
    return MeasureResult(
        measure.id,
        value,
        result,
        {
            **trace,
            "status": SCORED,
            "value": fmt(value),
            "score": fmt(result),
            "unit": measure.unit,
            "aggregation": measure.aggregation,
            "baseline": fmt(base),
            "scoring": scoring_trace,
        },
    )


def indicator_score(
    indicator: Indicator, observations: Mapping[str, Sequence[Observation]], baselines: Mapping[str, Decimal]
) -> tuple[Decimal | None, Decimal, bool, tuple[MeasureResult, ...]]:
    """(value, score, missing, measure results) for one indicator."""
    results = tuple(_measure_result(m, observations.get(m.id, ()), baselines) for m in indicator.measures)
    if indicator.measure is not None:
        only = results[0]
        return only.value, only.score, only.value is None, results
    with exact():
        total_weight = sum((m.weight for m in indicator.subcomponents), ZERO)
        combined = ZERO
        for m, res in zip(indicator.subcomponents, results, strict=True):  # results are of .measures
            combined += (m.weight / total_weight) * res.score
    missing = all(res.value is None for res in results)
    return None, (ZERO if missing else combined), missing, results


def outcomes(
    defn: ContractDefinition,
    year: int,
    pot: Decimal,
    observations: Iterable[Observation],
    baselines: Mapping[str, Decimal],
) -> tuple[IndicatorResult, ...]:
    """Score every indicator for ``year`` and share out the pot by normalised weight."""
    by_measure: dict[str, list[Observation]] = {}
    for ob in observations:
        by_measure.setdefault(ob.measure_id, []).append(ob)
    linked = [ind for ind in defn.indicators if ind.paid_from_year <= year]
    with exact():
        total_weight = sum((ind.weight for ind in linked), ZERO)
        results = []
        for ind in defn.indicators:
            value, result, missing, measures = indicator_score(ind, by_measure, baselines)
            is_linked = ind.paid_from_year <= year and total_weight != ZERO
            if is_linked:
                norm = ind.weight / total_weight
                earned = money(pot * norm * result)
                status = MISSING if missing else SCORED
            else:
                norm, earned, status = ZERO, money(ZERO), NOT_LINKED
            results.append(
                IndicatorResult(
                    id=ind.id,
                    status=status,
                    value=value,
                    score=result,
                    weight=ind.weight,
                    normalised_weight=norm,
                    earned=earned,
                    by_party=split(earned, dict(ind.attribution), defn.lead_provider.id),
                    measures=measures,
                )
            )
    return tuple(results)
