"""What real feeds also carry: late returns, corrections, re-sent duplicates, invalid records.

- late: one subcontractor return per closed year arrives 3-6 months after the
  year ends (a late submission, not a correction);
- corrections: about 2% of submissions and cost reports are re-sent later with
  a new id and a changed figure; about a third of them arrive after the year
  they belong to is over (detail ``late`` = more than 60 days after year end,
  i.e. after a plausible year close);
- duplicates: about 1% of records are re-sent with the same id and content
  within a week (always before any correction of the same record);
- invalid: one record of each kind in :data:`INVALID_KINDS`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.demo.stream import Event, Stream
from ledger.demo.terms import period_before_start, year_end

D = Decimal
LATE_AFTER = timedelta(days=60)
INVALID_KINDS = (
    "numerator_above_denominator",
    "zero_denominator",
    "negative_denominator",
    "unknown_indicator",
    "unknown_subcomponent",
    "provider_not_party",
    "period_outside_term",
    "non_numeric_value",
    "missing_field",
    "unknown_contract",
    "conflicting_duplicate",
    "non_numeric_cost",
    "unknown_segment",
)
OUTSIDERS = {"oxon-mh": "ouh", "cheshire-amh": "coch"}  # local acute trusts: not parties


def _late(definition: dict[str, Any], event: Event, arrival: Any) -> str:
    return "late" if arrival > year_end(definition, event.year) + LATE_AFTER else "timely"


def add_late_submissions(stream: Stream, definition: dict[str, Any], years: int) -> None:
    """Each year but the last, one return (a subcontractor's when there is one) arrives late."""
    lead = definition["contract"]["lead_provider"]["id"]
    for year in range(1, years):
        pool = [e for e in stream.of("submission") if e.year == year]
        subs = [e for e in pool if e.body["provider_id"] != lead]
        event = stream.rng.choice(subs or pool)
        event.arrival = year_end(definition, year) + timedelta(days=stream.rng.randint(90, 180))
        event.detail = "late"


def _changed(body: dict[str, Any], rng: Any) -> dict[str, Any]:
    new = dict(body)
    if "numerator" in body:
        num, den = int(body["numerator"]), int(body["denominator"])
        if rng.randint(1, 4) == 1:
            den += rng.randint(1, max(1, den // 20))
        step = rng.randint(1, max(1, den * 3 // 100))
        num = num + step if num + step <= den else max(0, num - step)
        if (num, den) == (int(body["numerator"]), int(body["denominator"])):
            num = num - 1 if num > 0 else num + 1
        new.update(numerator=str(num), denominator=str(den))
    elif "value" in body:
        value = D(body["value"])
        pct = rng.randint(2, 8) * rng.choice((-1, 1))
        changed = (value * (100 + pct) / 100).quantize(value, rounding=ROUND_HALF_UP)
        if changed == value:
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int)  # a finite number: the generator wrote it
            changed = value + D(1).scaleb(exponent)
        new["value"] = str(changed)
    else:
        total = D(body["total_cost"])
        bp = rng.randint(20, 200) * rng.choice((-1, 1))
        new["total_cost"] = str((total * (10000 + bp) / 10000).quantize(D("0.01"), rounding=ROUND_HALF_UP))
        new["high_cost_cases"] = [dict(c) for c in body["high_cost_cases"]]
    return new


def add_corrections(stream: Stream, definition: dict[str, Any], per_10000: int = 200) -> None:
    rng = stream.rng
    for event in [e for e in stream.events if e.kind == "normal" and e.type != "population"]:
        if rng.randint(1, 10000) > per_10000:
            continue
        if rng.randint(1, 100) <= 35:
            arrival = year_end(definition, event.year) + timedelta(days=rng.randint(75, 200))
        else:
            arrival = event.arrival + timedelta(days=rng.randint(14, 60))
        arrival = max(arrival, event.arrival + timedelta(days=14))
        stream.add(
            arrival,
            event.type,
            _changed(event.body, rng),
            kind="correction",
            detail=_late(definition, event, arrival),
            year=event.year,
        )


def add_duplicates(stream: Stream, per_10000: int = 100) -> None:
    rng = stream.rng
    for event in [e for e in stream.events if e.kind in ("normal", "correction")]:
        if rng.randint(1, 10000) <= per_10000:
            arrival = event.arrival + timedelta(days=rng.randint(0, 7))
            stream.add(
                arrival,
                event.type,
                event.body,
                kind="duplicate",
                detail="resent",
                year=event.year,
                same_id_as=event,
            )


def add_invalid_records(stream: Stream, definition: dict[str, Any]) -> None:
    """One invalid record of each kind, each modelled on a real record of the stream."""
    rng = stream.rng
    contract = definition["contract"]
    normal = [e for e in stream.of("submission") if e.detail != "late"]
    ratios = [e for e in normal if "numerator" in e.body]
    values = [e for e in normal if "value" in e.body] or ratios
    with_subs = [i["id"] for i in definition.get("indicators") or [] if i.get("subcomponents")]
    for kind in INVALID_KINDS:
        pool = {
            "non_numeric_value": values,
            "non_numeric_cost": stream.of("cost_report"),
            "unknown_segment": stream.of("population"),
        }.get(kind, ratios)
        if not pool or (kind == "unknown_subcomponent" and not with_subs):
            continue
        template = rng.choice(pool)
        body = dict(template.body)
        same_id_as = None
        if kind == "numerator_above_denominator":
            body["numerator"] = str(int(body["denominator"]) + rng.randint(1, 20))
        elif kind == "zero_denominator":
            body.update(numerator="0", denominator="0")
        elif kind == "negative_denominator":
            body["denominator"] = f"-{body['denominator']}"
        elif kind == "unknown_indicator":
            body["indicator_id"] = "waiting-times"
        elif kind == "unknown_subcomponent":
            body["indicator_id"] = f"{rng.choice(with_subs)}.phone-contact"
        elif kind == "provider_not_party":
            body["provider_id"] = OUTSIDERS.get(contract["id"], "not-a-party")
        elif kind == "period_outside_term":
            body["period"] = period_before_start(definition)
        elif kind == "non_numeric_value":
            body["value" if "value" in body else "numerator"] = "n/a"
        elif kind == "missing_field":
            del body["period"]
        elif kind == "unknown_contract":
            body["contract_id"] = f"{contract['id']}-legacy"
        elif kind == "conflicting_duplicate":
            body = _changed(body, rng)
            same_id_as = template
        elif kind == "non_numeric_cost":
            body["total_cost"] = "TBC"
        elif kind == "unknown_segment":
            body["segment_id"] = "older-adults"
        arrival = template.arrival + timedelta(days=rng.randint(1, 20))
        stream.add(
            arrival,
            template.type,
            body,
            kind="invalid",
            detail=kind,
            year=template.year,
            same_id_as=same_id_as,
        )
