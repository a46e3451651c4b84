"""What the use cases return: typed dicts (callers index them by key and print them as JSON as they are).

A statement stays the JSON document of contract-format.md that :mod:`ledger.domain.statement` builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

Statement = dict[str, Any]  # the year statement of contract-format.md (ledger.domain.statement)


class InstalmentDecision(TypedDict):
    contract_id: str
    year: int
    period: str
    amount: str


class TrueUp(TypedDict):
    decided_at: str
    amount: str
    reason: str
    by_party: dict[str, str]


class RestatedYear(TypedDict):
    """A true-up recorded for a closed year (``year`` first, then the true-up's fields)."""

    year: int
    decided_at: str
    amount: str
    reason: str
    by_party: dict[str, str]


class LaterRestatement(TypedDict):
    year: int
    true_up: TrueUp


class VariationSummary(TypedDict):
    variation_id: str
    effective_from_year: int
    reason: str
    agreed: Mapping[str, Any] | None
    changes: list[str]


class VariationRecorded(TypedDict):
    contract_id: str
    variation_id: str
    effective_from_year: int
    reason: str
    agreed: Mapping[str, Any] | None
    recorded: bool
    changes: list[str]
    restated: list[RestatedYear]


class Difference(TypedDict):
    total: str
    by_party: dict[str, str]


class WhatIfYear(TypedDict):
    year: int
    in_force: Statement
    whatif: Statement
    difference: Difference


class WhatIf(TypedDict):
    contract_id: str
    variation_id: str
    effective_from_year: int
    years: list[WhatIfYear]


class Resolution(TypedDict):
    note: str
    resolved_at: str
    by: str


class Dispute(TypedDict):
    dispute_id: str
    raised_by: str
    reason: str
    decision: str
    decision_at: str
    raised_at: str
    status: str
    resolution: Resolution | None


class ListedDispute(TypedDict):
    """A dispute with its year (``year`` first)."""

    year: int
    dispute_id: str
    raised_by: str
    reason: str
    decision: str
    decision_at: str
    raised_at: str
    status: str
    resolution: Resolution | None


class Adjustment(TypedDict):
    amount: str
    party: str


class DisputeOutcome(TypedDict):
    dispute_id: str
    status: str
    adjustment: NotRequired[Adjustment]
    true_up: NotRequired[TrueUp | None]


class RejectedRecord(TypedDict):
    source: str
    line: int | None
    code: str
    field: str | None
    message: str
    contract_id: str | None
    record_type: str | None
    record_id: str | None
    recorded_at: str
    raw: str
