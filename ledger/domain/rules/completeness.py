"""Data completeness of a contract year: which cost reports and indicator periods are missing.

Pure. A year's settlement rests on providers' data; before a commissioner closes it they
should see what was never sent: for every provider × period, a cost report (when the
year has a risk share, whose variance is computed from reported costs), and for every
indicator paid that year, at least one submission per period of each of its measures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.domain.definition import ContractDefinition


@dataclass(frozen=True)
class Gaps:
    year: int
    cost_reports_missing: tuple[tuple[str, str], ...]  # (provider, period)
    submissions_missing: tuple[tuple[str, str], ...]  # (measure, period)

    @property
    def complete(self) -> bool:
        return not self.cost_reports_missing and not self.submissions_missing

    def lines(self) -> list[str]:
        """One line per gap, as a person reads it."""
        out = [
            f"no cost report from {provider} for {period}" for provider, period in self.cost_reports_missing
        ]
        out += [
            f"no submission for indicator {measure} in {period}"
            for measure, period in self.submissions_missing
        ]
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "year": self.year,
            "complete": self.complete,
            "cost_reports_missing": [{"provider_id": p, "period": q} for p, q in self.cost_reports_missing],
            "submissions_missing": [{"indicator_id": m, "period": q} for m, q in self.submissions_missing],
        }


def year_gaps(
    definition: ContractDefinition,
    year: int,
    periods: Iterable[str],
    costed: set[tuple[str, str]],
    submitted: set[tuple[str, str]],
) -> Gaps:
    """``costed``: (provider, period) with a cost report; ``submitted``: (measure, period) with data."""
    labels = list(periods)
    entry = definition.schedule_for(year)
    costs: list[tuple[str, str]] = []
    if entry.risk_share is not None:
        costs = [(p, q) for p in definition.providers for q in labels if (p, q) not in costed]
    measures: list[tuple[str, str]] = []
    if entry.outcomes > 0:
        for indicator in definition.indicators:
            if indicator.paid_from_year > year:
                continue
            for measure in indicator.measures:
                measures += [(measure.id, q) for q in labels if (measure.id, q) not in submitted]
    return Gaps(year, tuple(costs), tuple(measures))
