"""The year statement (contract-format.md), assembled from decisions or provisional figures.

Used by the application (from aggregates) and by the projections (from read
models), so both print exactly the same document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.domain.numbers import ZERO, fmt_money
from ledger.domain.rules.settlement import YearSettlement


def _instalments(instalments: Iterable[tuple[str, Decimal]]) -> list[dict[str, str]]:
    return [{"period": period, "amount": fmt_money(Decimal(amount))} for period, amount in instalments]


def closed_statement(
    contract_id: str,
    year: int,
    figures: Mapping[str, Any],
    instalments: Iterable[tuple[str, Decimal]],
    true_ups: Iterable[Mapping[str, Any]],
    variations: Sequence[str] = (),
) -> dict[str, Any]:
    """Statement of a closed year: the original decision's figures plus each true-up."""
    f = figures
    core: dict[str, Any] = {"annual": f["core"], "instalments": _instalments(instalments)}
    if "core_balance_at_close" in f:
        core["balance_at_close"] = f["core_balance_at_close"]
    return {
        "contract_id": contract_id,
        "year": year,
        "budget": f["budget"],
        "core": core,
        "outcomes": {"pot": f["pot"], "payment": f["outcome_payment"], "indicators": f["indicators"]},
        "reserve": f["reserve"],
        "risk_share": f["risk_share"],
        "high_cost_reimbursement": f["high_cost_reimbursement"],
        "year_close_payment": f["year_close_payment"],
        "total": f["total"],
        "by_party": f["by_party"],
        "terms": {"variations": list(variations)},
        "rate_card": f.get("rate_card"),
        "health_gain": f.get("health_gain"),
        "true_ups": [
            {
                "decided_at": t["decided_at"],
                "amount": fmt_money(Decimal(t["amount"])),
                "reason": t["reason"],
                "by_party": {p: fmt_money(Decimal(v)) for p, v in t["by_party"].items()},
            }
            for t in true_ups
        ],
    }


def open_statement(
    contract_id: str,
    year: int,
    provisional: YearSettlement,
    instalments: Sequence[tuple[str, Decimal]],
    paid_by_party: Mapping[str, Decimal],
    providers: Sequence[str],
    variations: Sequence[str] = (),
) -> dict[str, Any]:
    """Statement of an open year: instalments decided so far and provisional indicator scores."""
    by_party = dict.fromkeys(providers, ZERO)
    for party, amount in paid_by_party.items():
        by_party[party] = by_party.get(party, ZERO) + Decimal(amount)
    return {
        "contract_id": contract_id,
        "year": year,
        "budget": fmt_money(provisional.budget),
        "core": {"annual": fmt_money(provisional.core), "instalments": _instalments(instalments)},
        "outcomes": {
            "pot": fmt_money(provisional.pot),
            "payment": None,
            "indicators": [i.to_statement() for i in provisional.indicators],
        },
        "reserve": fmt_money(provisional.reserve),
        "risk_share": None,
        "high_cost_reimbursement": None,
        "year_close_payment": None,
        "total": fmt_money(sum((Decimal(a) for _, a in instalments), ZERO)),
        "by_party": {p: fmt_money(v) for p, v in by_party.items()},
        "terms": {"variations": list(variations)},
        # the figures so far (payment rules §8, §9): decided only at the close
        "rate_card": provisional.rate_card.to_statement() if provisional.rate_card is not None else None,
        "health_gain": (
            [g.to_statement() for g in provisional.health_gain]
            if provisional.health_gain is not None
            else None
        ),
        "true_ups": [],
    }
