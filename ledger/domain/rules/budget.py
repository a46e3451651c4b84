"""Budget for a contract year (payment rules §2) and core instalments (§3). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.domain.definition import ContractDefinition
from ledger.domain.numbers import ONE, ZERO, exact, fmt, money


@dataclass(frozen=True)
class BudgetFigure:
    year: int
    amount: Decimal
    trace: Mapping[str, Any]


def adjustment_factor(defn: ContractDefinition, year: int) -> Decimal:
    """Π over k = 2..year of (1 − efficiency_k)(1 + uplift_k), unrounded."""
    factor = ONE
    with exact():
        for k in range(2, year + 1):
            factor = factor * (ONE - defn.budget.efficiency_for(k)) * (ONE + defn.budget.uplift_for(k))
    return factor


def budget_for_year(
    defn: ContractDefinition, year: int, counts: Mapping[str, int] | None = None
) -> BudgetFigure:
    """B_y. ``counts`` are the latest actual population counts recorded for the year."""
    terms = defn.budget
    factor = adjustment_factor(defn, year)
    trace: dict[str, Any] = {
        "year": year,
        "efficiency": [fmt(terms.efficiency_for(k)) for k in range(2, year + 1)],
        "uplift": [fmt(terms.uplift_for(k)) for k in range(2, year + 1)],
        "factor": fmt(factor),
    }
    with exact():
        if terms.year1 is not None:
            trace.update(method="fixed", year1=fmt(terms.year1))
            return BudgetFigure(year, money(terms.year1 * factor), trace)
        cap = terms.capitation
        assert cap is not None
        rate = cap.rate_per_head * factor
        projected = {s.id: s.projected_for(year) for s in cap.segments}
        projected_total = sum((s.weight * projected[s.id] for s in cap.segments), ZERO)
        actual = dict(projected)
        actual.update({k: v for k, v in (counts or {}).items() if k in projected})
        actual_total = sum((s.weight * actual[s.id] for s in cap.segments), ZERO)
        use_actual = False
        if counts and actual_total != projected_total:
            if projected_total == ZERO:
                use_actual = True
            else:
                use_actual = abs(actual_total / projected_total - ONE) > terms.population_tolerance
        used = actual if use_actual else projected
        weighted = actual_total if use_actual else projected_total
        trace.update(
            method="capitation",
            rate_year1=fmt(cap.rate_per_head),
            rate=fmt(rate),
            projected_weighted=fmt(projected_total),
            actual_weighted=fmt(actual_total) if counts else None,
            tolerance=fmt(terms.population_tolerance),
            counts_used="actual" if use_actual else "projected",
            counts={k: used[k] for k in sorted(used)},
        )
        return BudgetFigure(year, money(rate * weighted), trace)


def core_for_year(budget: Decimal, core_fraction: Decimal) -> Decimal:
    return money(budget * core_fraction)


def instalment(core: Decimal, paid_before: Decimal, index: int, count: int) -> Decimal:
    """Instalment for period ``index`` (1-based) of ``count``: the remaining-balance rule."""
    if not 1 <= index <= count:
        raise ValueError(f"instalment index {index} is outside 1..{count}")
    with exact():
        return money((core - paid_before) / Decimal(count - index + 1))
