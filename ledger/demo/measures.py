"""Indicator submissions with plausible values near each measure's thresholds.

Every measure (an indicator, or ``indicator.subcomponent``) gets a range from its
scoring rule: a "worse" end below the point that scores anything and a "better"
end past full marks. Performance is a position ``p`` on that range (0 = worse,
1 = better) that starts low in year 1 and mostly improves year on year, with
noise per period, so scores vary between 0 and 1 across measures and years.
The lead provider submits every period; subcontractors named in a measure's
attribution (or in the hints below) submit most periods for ratio measures.
No floats: all arithmetic is Decimal built from integers and the contract text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.demo.stream import Stream
from ledger.demo.terms import Period, is_quarterly, periods

D = Decimal
HUNDRED = D(100)

# Per measure: den = lead provider's denominator per month (snapshot measures
# are counts at a point in time and do not scale with the period's length);
# dp = decimal places of a value; subs = subcontractors who submit (default: the
# attribution's); sub_share = a subcontractor's denominator as % of the lead's;
# p0/step = position in year 1 and yearly change, in % of the range (drawn
# at random for measures not listed);
# noise = per-period noise in % of the range; range = (worse, better) override;
# from_year = first year with data (a dataset still maturing before it).
HINTS: dict[str, dict[str, Any]] = {
    # oxon-mh: a mixed first year (80/20 from year 1) and steady improvement,
    # except carers' satisfaction, which slips a little each year.
    "suicide-rate": {"dp": 1, "noise": 5, "p0": 30, "step": 14},
    "mortality-age": {"dp": 1, "noise": 8, "p0": 40, "step": 10},
    "recovery-star": {"den": 420, "p0": 40, "step": 12},
    "care-plans-reviewed": {"den": 900, "p0": 45, "step": 10},
    "person-centred-care-plan": {"den": 3200, "snapshot": True, "noise": 6, "p0": 60, "step": 6},
    "remain-discharged": {"den": 260, "p0": 45, "step": 8},
    "crisis-response": {"den": 310, "p0": 58, "step": 6},
    "carers.offered-assessment": {"den": 180, "subs": ["mind"], "p0": 55, "step": 8},
    "carers.attending-care-planning": {"den": 240, "subs": [], "p0": 35, "step": 12},
    "carers.satisfied-equal-partners": {"den": 90, "subs": ["mind"], "p0": 50, "step": -3},
    "employment": {"den": 3000, "snapshot": True, "sub_share": 8, "noise": 6, "p0": 40, "step": 8},
    "meaningful-activity": {"den": 1500, "sub_share": 15, "p0": 35, "step": 10},
    "settled-accommodation": {"den": 3000, "snapshot": True, "sub_share": 6, "p0": 45, "step": 9},
    "ae-attendances": {"dp": 0, "p0": 40, "step": 12},
    "health-screening.bmi-recorded": {"den": 380, "from_year": 2, "p0": 50, "step": 10},
    "health-screening.diabetes-screened": {"den": 380, "from_year": 2, "p0": 35, "step": 12},
    "health-screening.cholesterol-screened": {"den": 380, "from_year": 2, "p0": 40, "step": 12},
    # cheshire-amh: years 1-3 are measured but not linked; year 4 mixed, year 5 better.
    "followup-7day": {"den": 45, "range": ("0.90", "0.985"), "p0": 40, "step": 8},
    "emergency-readmissions": {"dp": 0, "p0": 35, "step": 10},
    "clinical-improvement": {"den": 300, "sub_share": 10, "p0": 35, "step": 12},
    "out-of-area-bed-days": {"dp": 0, "p0": 30, "step": 13},
    "community-spend-share": {"den": 4300000, "noise": 4, "p0": 35, "step": 12},  # pounds
    "service-user-experience": {"den": 150, "sub_share": 15, "p0": 50, "step": 8},
    "employment-education": {
        "den": 2100,
        "snapshot": True,
        "sub_share": 12,
        "noise": 6,
        "p0": 30,
        "step": 10,
    },
    "carer-involvement.carers-identified": {"den": 120, "subs": [], "p0": 45, "step": 8},
    "carer-involvement.carer-support-plan": {"den": 80, "subs": ["making-space"], "p0": 30, "step": 10},
    "data-quality.nhs-number-valid": {
        "den": 2500,
        "range": ("0.975", "0.997"),
        "sub_share": 10,
        "subs": ["rethink", "making-space", "richmond", "wcmind"],
        "p0": 50,
        "step": 7,
    },
    "data-quality.ethnicity-recorded": {
        "den": 2500,
        "sub_share": 10,
        "p0": 35,
        "step": 12,
        "subs": ["rethink", "making-space", "richmond", "wcmind"],
    },
    "data-quality.returns-on-time": {"den": 14, "subs": [], "p0": 40, "step": 10},
    "ig-assurance": {"den": 113, "snapshot": True, "subs": [], "noise": 4, "p0": 50, "step": 8},
}


def resolve(raw: Any, baseline: Decimal | None) -> Decimal:
    """A threshold: a number, or baseline × (1 + baseline_change)."""
    if isinstance(raw, dict):
        if baseline is None:
            raise ValueError("a relative threshold needs a baseline")
        return baseline * (1 + D(str(raw["baseline_change"])))
    return D(str(raw))


def value_range(scoring: dict[str, Any], baseline: Decimal | None) -> tuple[Decimal, Decimal]:
    """(worse, better): a little beyond the scoring thresholds on each side."""
    rule = scoring["rule"]
    if rule == "sliding":
        a, b = resolve(scoring["zero_at"], baseline), resolve(scoring["full_at"], baseline)
        return a - (b - a) * D("0.15"), b + (b - a) * D("0.15")
    if rule == "bands":
        bands = sorted(scoring["bands"], key=lambda band: D(str(band["score"])))
        key = "at_least" if "at_least" in bands[0] else "at_most"
        a, b = resolve(bands[0][key], baseline), resolve(bands[-1][key], baseline)
        d = b - a if b != a else abs(a) * D("0.1") * (1 if key == "at_least" else -1)
        return a - d * D("0.5"), b + d * D("0.3")
    target = resolve(scoring["target"], baseline)
    d = abs(target) * D("0.08") * (1 if scoring["direction"] == "higher" else -1)
    return target - d * D("0.75"), target + d * D("0.4")


@dataclass
class Measure:
    key: str
    unit: str
    aggregation: str
    worse: Decimal
    better: Decimal
    p0: int
    step: int
    noise: int
    hint: dict[str, Any]
    submitters: list[tuple[str, int, int]]  # (provider, % of lead denominator, p offset %)

    def value_at(self, p: Decimal) -> Decimal:
        return self.worse + (self.better - self.worse) * p


def measures_of(definition: dict[str, Any], stream: Stream) -> list[Measure]:
    rng = stream.rng
    lead = definition["contract"]["lead_provider"]["id"]
    baselines = {str(k): D(str(v)) for k, v in (definition.get("baselines") or {}).items()}
    out: list[Measure] = []
    for ind in definition.get("indicators") or []:
        parts = (
            [(f"{ind['id']}.{s['id']}", s) for s in ind["subcomponents"]]
            if ind.get("subcomponents")
            else [(ind["id"], ind)]
        )
        attributed = [p for p in (ind.get("attribution") or {}) if p != lead]
        for key, m in parts:
            hint = HINTS.get(key, {})
            unit = m.get("unit", "ratio")
            baseline = baselines.get(key, baselines.get(key.rsplit(".", 1)[-1]))
            worse, better = (
                (D(x) for x in hint["range"]) if "range" in hint else value_range(m["scoring"], baseline)
            )
            p0 = hint["p0"] if "p0" in hint else rng.randint(25, 55)
            step = hint["step"] if "step" in hint else rng.randint(6, 14)
            subs = hint.get("subs", attributed) if unit == "ratio" else []
            submitters = [(lead, 100, 0)] + [
                (sub, hint.get("sub_share", 20), rng.randint(-12, 8)) for sub in subs
            ]
            out.append(
                Measure(
                    key,
                    unit,
                    m.get("aggregation", "sum"),
                    worse,
                    better,
                    p0,
                    step,
                    hint.get("noise", 12),
                    hint,
                    submitters,
                )
            )
    return out


def _round(value: Decimal, places: int = 0) -> Decimal:
    return value.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_UP)


def figures(
    m: Measure, stream: Stream, share: int, offset: int, period: Period, quarterly: bool
) -> dict[str, str]:
    """Numerator/denominator or value for one provider and period."""
    rng = stream.rng
    jitter = rng.randint(-m.noise, m.noise) + rng.randint(-m.noise, m.noise)
    p = D(m.p0 + m.step * (period.year - 1) + offset + jitter) / HUNDRED
    level = m.value_at(p)
    if m.unit == "ratio":
        months = 1 if m.hint.get("snapshot") or not quarterly else 3
        den = D(m.hint.get("den", 400) * months * share) / HUNDRED
        den = den * D(1000 + 15 * (period.year - 1)) / 1000 * D(100 + rng.randint(-6, 6)) / HUNDRED
        den = max(_round(den), D(1))
        ratio = min(max(level, D(0)), D(1))
        return {"numerator": str(_round(den * ratio)), "denominator": str(den)}
    if m.aggregation == "sum":
        level = level / period.count
    return {"value": str(max(_round(level, m.hint.get("dp", 0)), D(0)))}


def add_submissions(stream: Stream, definition: dict[str, Any], years: int) -> None:
    """One submission per measure and period from the lead, most periods from named subs."""
    contract_id = definition["contract"]["id"]
    quarterly = is_quarterly(definition)
    lag = (5, 35) if quarterly else (3, 20)
    measures = measures_of(definition, stream)
    for year in range(1, years + 1):
        for period in periods(definition, year):
            for m in measures:
                if year < m.hint.get("from_year", 1):
                    continue
                for i, (provider, share, offset) in enumerate(m.submitters):
                    if i and stream.rng.randint(1, 100) > 90:
                        continue  # a subcontractor missing a return
                    body = {
                        "contract_id": contract_id,
                        "provider_id": provider,
                        "indicator_id": m.key,
                        "period": period.label,
                        **figures(m, stream, share, offset, period, quarterly),
                    }
                    arrival = period.last + timedelta(days=stream.rng.randint(*lag))
                    stream.add(arrival, "submission", body, year=year)
