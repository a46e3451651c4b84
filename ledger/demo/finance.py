"""Cost reports (with high-cost cases) and population counts.

Costs are aimed at an approximate budget computed from the definition, the way
the payment rules compute B_y from projections (capitation: rate × Σ weight ×
projected; fixed: year1; then × (1 − efficiency)(1 + uplift) each year). Odd
years overspend and even years underspend by 0.8-3.8%, so a risk share shows
both a loss and a gain. Population counts come once a year per segment, a few
months into the year, within tolerance except in one year (year 3, or the last
generated year when fewer), which exceeds it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.demo.stream import Stream
from ledger.demo.terms import add_months, is_quarterly, periods, year_end, year_start

D = Decimal
PENNY = D("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def _for_year(raw: Any, year: int) -> Decimal:
    """Efficiency/uplift for ``year``: a number, or a list from year 2 whose last entry repeats."""
    if raw is None or year < 2:
        return D(0)
    if isinstance(raw, list):
        return D(str(raw[min(year - 2, len(raw) - 1)]))
    return D(str(raw))


def projected(segment: dict[str, Any], year: int) -> int:
    values = segment["projected"]
    return int(values[min(year, len(values)) - 1])


def approximate_budgets(definition: dict[str, Any], years: int) -> list[Decimal]:
    """B_1..B_years from projections (no population adjustment)."""
    budget = definition["budget"]
    factor, out = D(1), []
    for year in range(1, years + 1):
        factor *= (1 - _for_year(budget.get("efficiency"), year)) * (
            1 + _for_year(budget.get("uplift"), year)
        )
        if "capitation" in budget:
            cap = budget["capitation"]
            heads = sum((D(str(s["weight"])) * projected(s, year) for s in cap["segments"]), D(0))
            out.append(money(D(str(cap["rate_per_head"])) * factor * heads))
        else:
            out.append(money(D(str(budget["year1"])) * factor))
    return out


def _shares(definition: dict[str, Any]) -> dict[str, Decimal]:
    lead = definition["contract"]["lead_provider"]["id"]
    split = (definition.get("payment") or {}).get("core_split") or {lead: "1"}
    return {party: D(str(share)) for party, share in split.items() if D(str(share)) > 0}


def _high_cost_cases(
    stream: Stream, definition: dict[str, Any], year: int, n: int, counter: list[int], carried: list[str]
) -> dict[tuple[str, int], list[dict[str, str]]]:
    """Cases of the year: (provider, period index) → [{case_ref, cost}]; some span providers."""
    rng = stream.rng
    providers = list(_shares(definition))
    lead = definition["contract"]["lead_provider"]["id"]
    out: dict[tuple[str, int], list[dict[str, str]]] = {}
    refs: list[str] = []
    for _ in range(8 if n == 12 else 6):
        if carried and rng.randint(1, 100) <= 25:
            ref = carried.pop(0)  # a case continuing from last year
        else:
            counter[0] += 1
            ref = f"HC-{counter[0]:04d}"
        refs.append(ref)
        total = rng.randint(500_000, 4_000_000)  # pence: £5,000 to £40,000 in the year
        owners = [lead] if rng.randint(1, 100) <= 75 else [rng.choice(providers[1:] or [lead])]
        if rng.randint(1, 100) <= 20 and len(providers) > 1:
            owners.append(rng.choice([p for p in providers if p != owners[0]]))
        span = rng.randint(1, min(6, n) if n == 12 else min(3, n))
        first = rng.randint(1, n - span + 1)
        for o, owner in enumerate(owners):
            owner_total = total * (70 if o == 0 else 30) // 100 if len(owners) > 1 else total
            for k in range(span):
                part = owner_total // span + (owner_total % span if k == span - 1 else 0)
                cost = str(money(D(part) / 100))
                out.setdefault((owner, first + k), []).append({"case_ref": ref, "cost": cost})
    carried[:] = refs[-2:]
    return out


def add_cost_reports(stream: Stream, definition: dict[str, Any], years: int) -> None:
    """One cost report per provider and period, the year's total near its budget."""
    rng = stream.rng
    contract_id = definition["contract"]["id"]
    shares = _shares(definition)
    lag = (10, 40) if is_quarterly(definition) else (8, 25)
    budgets = approximate_budgets(definition, years)
    counter: list[int] = [0]
    carried: list[str] = []
    for year in range(1, years + 1):
        drift = rng.randint(80, 380) * (1 if year % 2 else -1)
        target = budgets[year - 1] * D(10000 + drift) / 10000
        pers = periods(definition, year)
        season = [D(104) if p.first.month in (12, 1, 2, 3) else D(98) for p in pers]
        cases = _high_cost_cases(stream, definition, year, len(pers), counter, carried)
        for i, period in enumerate(pers):
            for provider, share in shares.items():
                noise = D(10000 + rng.randint(-150, 150)) / 10000
                total = money(target * share * season[i] / sum(season) * noise)
                body = {
                    "contract_id": contract_id,
                    "provider_id": provider,
                    "period": period.label,
                    "total_cost": str(total),
                    "high_cost_cases": cases.get((provider, period.index), []),
                }
                arrival = period.last + timedelta(days=rng.randint(*lag))
                stream.add(arrival, "cost_report", body, year=year)


def _weighted(segments: list[dict[str, Any]], counts: list[int]) -> Decimal:
    return sum((D(str(s["weight"])) * c for s, c in zip(segments, counts, strict=True)), D(0))


def add_population_counts(stream: Stream, definition: dict[str, Any], years: int) -> None:
    """Capitation only: a count per segment per year; one year beyond the tolerance."""
    cap = definition["budget"].get("capitation")
    if not cap:
        return
    rng = stream.rng
    contract_id = definition["contract"]["id"]
    segments = cap["segments"]
    tolerance = D(str(definition["budget"].get("population_tolerance", "0")))
    exceeding = min(3, years)
    for year in range(1, years + 1):
        proj = [projected(s, year) for s in segments]
        while True:
            low, high = (250, 450) if year == exceeding else (-60, 60)
            counts = [
                int((D(c) * D(10000 + rng.randint(low, high)) / 10000).to_integral_value(ROUND_HALF_UP))
                for c in proj
            ]
            change = abs(_weighted(segments, counts) / _weighted(segments, proj) - 1)
            if (change > tolerance) if year == exceeding else (change <= tolerance / 2):
                break
        arrival = add_months(year_start(definition, year), 3) + timedelta(days=rng.randint(5, 20))
        recount = year == 2 and year != exceeding
        biggest = max(range(len(segments)), key=lambda i: D(str(segments[i]["weight"])) * counts[i])
        for i, (segment, count) in enumerate(zip(segments, counts, strict=True)):
            first_count = count * 996 // 1000 if recount and i == biggest else count
            body = {
                "contract_id": contract_id,
                "year": year,
                "segment_id": segment["id"],
                "count": first_count,
            }
            stream.add(arrival, "population", body, year=year)
            if first_count != count:  # a recount corrects a mis-keyed figure months later
                later = arrival + timedelta(days=rng.randint(60, 120))
                stream.add(
                    later,
                    "population",
                    dict(body, count=count),
                    kind="correction",
                    detail="late" if later > year_end(definition, year) + timedelta(days=60) else "timely",
                    year=year,
                )
