"""Reading and validating a contract's YAML document into a :class:`ContractDefinition`.

:func:`parse_definition` takes the document (as loaded by :mod:`ledger.adapters.yamlio`) and
either returns the definition or raises :class:`~ledger.domain.errors.ValidationFailed`
listing *every* problem with its path (e.g. ``indicators[2].scoring.full_at``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.domain.definition.storage import from_stored, to_document
from ledger.domain.definition.types import (
    AGGREGATIONS,
    ID_PATTERN,
    KEY_PATTERN,
    MAX_TERM_YEARS,
    MAX_WHOLE,
    RULES,
    UNITS,
    Band,
    BudgetTerms,
    Capitation,
    ContractDefinition,
    HealthGainEntry,
    Indicator,
    Measure,
    Party,
    RateCard,
    RateOutcome,
    RiskShareTerms,
    ScheduleEntry,
    Scoring,
    Segment,
    Threshold,
    Tier,
    _resolved,
    baseline_for,
)
from ledger.domain.errors import ValidationFailed
from ledger.domain.finance import parse_finance
from ledger.domain.ids import PARTY_ID_LENGTH, safe, text_problem
from ledger.domain.numbers import ONE, ZERO, NotANumber, to_decimal, to_money
from ledger.domain.periods import MONTHLY, QUARTERLY


class _Reader:
    """Reads values out of a loaded document, collecting problems with their paths."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def mapping(self, value: Any, path: str, *, required: bool = True) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping, not {type(value).__name__}")
            return None
        return value

    def listing(self, value: Any, path: str, *, required: bool = True) -> list[Any] | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, list):
            self.problem(path, f"must be a list, not {type(value).__name__}")
            return None
        return value

    def text(
        self,
        value: Any,
        path: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] = (),
    ) -> str | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(path, "must be a non-empty text")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(
                path,
                f"{safe(value)} must match {pattern.pattern}"
                + (f" (at most {PARTY_ID_LENGTH} characters)" if len(value) > PARTY_ID_LENGTH else ""),
            )
            return None
        if choices and value not in choices:
            self.problem(path, f"{safe(value)} must be one of: {', '.join(choices)}")
            return None
        problem = text_problem(value)
        if problem is not None:
            self.problem(path, problem)
            return None
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        required: bool = True,
        low: Decimal | None = None,
        high: Decimal | None = None,
        positive: bool = False,
        money: bool = False,
    ) -> Decimal | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        try:
            number = to_money(value) if money else to_decimal(value)
        except NotANumber as exc:
            self.problem(path, str(exc))
            return None
        if positive and number <= ZERO:
            self.problem(path, f"must be greater than 0 (got {value})")
            return None
        if low is not None and number < low:
            self.problem(path, f"must be at least {low} (got {value})")
            return None
        if high is not None and number > high:
            self.problem(path, f"must be at most {high} (got {value})")
            return None
        exponent = number.as_tuple().exponent  # an int: to_decimal refuses NaN and infinities
        if money and isinstance(exponent, int) and exponent < -2:
            self.problem(path, f"an amount has at most 2 decimal places (got {value})")
            return None
        return number

    def fraction(self, value: Any, path: str, *, required: bool = True) -> Decimal | None:
        return self.number(value, path, required=required, low=ZERO, high=ONE)

    def calendar_date(self, value: Any, path: str, *, required: bool = True) -> date | None:
        """A date written YYYY-MM-DD (YAML reads an unquoted one as a date already)."""
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not ISO: reported below as not a date
                value = date.fromisoformat(value)
        if isinstance(value, date):
            return value
        if value is None:
            if required:
                self.problem(path, "is required as a date YYYY-MM-DD")
            return None
        self.problem(path, f"{value!r} is not a date YYYY-MM-DD")
        return None

    def integer(
        self, value: Any, path: str, *, required: bool = True, low: int | None = None, high: int = MAX_WHOLE
    ) -> int | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"must be a whole number (got {safe(value)})")
            return None
        if low is not None and value < low:
            self.problem(path, f"must be at least {low} (got {value})")
            return None
        if value > high:
            self.problem(path, f"must be at most {high:,} (got {safe(value)})")
            return None
        return value

    def unknown_keys(self, mapping: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.problem(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def parse_definition(document: Any) -> ContractDefinition:
    """Validate a whole contract document; raise ValidationFailed listing every problem."""
    r = _Reader()
    doc = r.mapping(document, "(document)")
    if doc is None:
        raise ValidationFailed(r.problems)
    r.unknown_keys(
        doc,
        {
            "contract",
            "budget",
            "payment",
            "baselines",
            "indicators",
            "disputes",
            "closing",
            "finance",
            "rate_card",
            "health_gain",
        },
        "",
    )
    c = r.mapping(doc.get("contract"), "contract") or {}
    r.unknown_keys(
        c,
        {
            "id",
            "name",
            "model",
            "commissioner",
            "lead_provider",
            "subcontractors",
            "currency",
            "start",
            "years",
            "extension_years",
            "period",
        },
        "contract",
    )
    contract_id = r.text(c.get("id"), "contract.id", pattern=ID_PATTERN)
    name = r.text(c.get("name"), "contract.name")
    model = r.text(c.get("model"), "contract.model", choices=("population", "pathway"))
    commissioner = _party(r, c.get("commissioner"), "contract.commissioner")
    lead = _party(r, c.get("lead_provider"), "contract.lead_provider")
    subs = tuple(
        p
        for i, raw in enumerate(
            r.listing(c.get("subcontractors"), "contract.subcontractors", required=False) or []
        )
        if (p := _party(r, raw, f"contract.subcontractors[{i}]")) is not None
    )
    currency = r.text(c.get("currency", "GBP"), "contract.currency", pattern=re.compile(r"^[A-Z]{3}$"))
    start = r.calendar_date(c.get("start"), "contract.start")
    years = r.integer(c.get("years"), "contract.years", low=1, high=MAX_TERM_YEARS)
    extension = (
        r.integer(c.get("extension_years", 0), "contract.extension_years", low=0, high=MAX_TERM_YEARS) or 0
    )
    period = r.text(c.get("period", MONTHLY), "contract.period", choices=(MONTHLY, QUARTERLY))
    if period == QUARTERLY and start is not None and (start.day != 1 or start.month not in (1, 4, 7, 10)):
        r.problem(
            "contract.start",
            f"a quarterly contract must start on the first day of a "
            f"calendar quarter (got {start.isoformat()})",
        )

    parties = [p for p in [commissioner, lead, *subs] if p is not None]
    seen: set[str] = set()
    for p in parties:
        if p.id in seen:
            r.problem("contract", f"party id {p.id!r} is used more than once")
        seen.add(p.id)
    providers = [p.id for p in [lead, *subs] if p is not None]
    lead_id = lead.id if lead else ""
    total_years = (years or 1) + extension

    budget = _budget(r, doc.get("budget"), years or 1)
    payment = r.mapping(doc.get("payment"), "payment") or {}
    r.unknown_keys(payment, {"core_split", "schedule", "risk_share"}, "payment")
    core_split = _split(r, payment.get("core_split"), "payment.core_split", providers, lead_id)
    risk_shares = _risk_shares(r, payment.get("risk_share"), "payment.risk_share", providers, lead_id)
    declared_risk = payment.get("risk_share")
    schedule = _schedule(
        r,
        payment.get("schedule"),
        "payment.schedule",
        {str(k) for k in declared_risk} if isinstance(declared_risk, dict) else set(),
    )

    baselines_doc = r.mapping(doc.get("baselines"), "baselines", required=False) or {}
    baselines: dict[str, Decimal] = {}
    for key, value in baselines_doc.items():
        number = r.number(value, f"baselines.{key}")
        if number is not None:
            baselines[str(key)] = number

    indicators = _indicators(r, doc.get("indicators"), providers, lead_id, baselines, total_years)
    known = _declared_measure_ids(doc.get("indicators"))
    for key in baselines:
        if key not in known:
            r.problem(f"baselines.{key}", "no indicator or sub-indicator has this id")

    disputes = r.mapping(doc.get("disputes"), "disputes", required=False) or {}
    r.unknown_keys(disputes, {"time_bar_days"}, "disputes")
    time_bar = r.integer(disputes.get("time_bar_days", 30), "disputes.time_bar_days", low=0, high=3660)
    closing = r.mapping(doc.get("closing"), "closing", required=False) or {}
    r.unknown_keys(closing, {"require_cost_reports"}, "closing")
    require_costs = closing.get("require_cost_reports", False)
    if not isinstance(require_costs, bool):
        r.problem("closing.require_cost_reports", f"must be true or false (got {safe(require_costs)})")
    finance = parse_finance(r, doc.get("finance"), providers)
    rate_card = _rate_card(r, doc.get("rate_card"), total_years)
    health_gain = _health_gain(r, doc.get("health_gain"), total_years)

    if r.problems:
        raise ValidationFailed(r.problems)
    assert (
        contract_id
        and name
        and time_bar is not None
        and model
        and commissioner
        and lead
        and currency
        and start
    )
    assert years and period and budget
    definition = ContractDefinition(
        id=contract_id,
        name=name,
        model=model,
        commissioner=commissioner,
        lead_provider=lead,
        subcontractors=subs,
        currency=currency,
        start=start,
        years=years,
        extension_years=extension,
        period=period,
        budget=budget,
        core_split=tuple(core_split.items()),
        schedule=schedule,
        risk_shares=risk_shares,
        baselines=tuple(baselines.items()),
        indicators=indicators,
        dispute_time_bar_days=time_bar,
        require_cost_reports=require_costs is True,
        finance=finance,
        rate_card=rate_card,
        health_gain=health_gain,
    )
    object.__setattr__(definition, "document", to_document(document))
    return definition


def _rate_card(r: _Reader, raw: Any, total_years: int) -> RateCard | None:
    """The ``rate_card`` section (payment rules §8), every problem with its path."""
    card = r.mapping(raw, "rate_card", required=False)
    if card is None:
        return None
    r.unknown_keys(card, {"outcomes", "participant_cap", "contract_cap", "paid_from_year"}, "rate_card")
    items = r.listing(card.get("outcomes"), "rate_card.outcomes") or []
    if isinstance(card.get("outcomes"), list) and not items:
        r.problem("rate_card.outcomes", "must name at least one outcome")
    outcomes: list[RateOutcome] = []
    raw_requires: list[tuple[str, list[Any]]] = []
    seen: set[str] = set()
    for i, raw_o in enumerate(items):
        path = f"rate_card.outcomes[{i}]"
        m = r.mapping(raw_o, path)
        if m is None:
            continue
        r.unknown_keys(m, {"id", "name", "price", "max_per_participant", "requires"}, path)
        oid = r.text(m.get("id"), f"{path}.id", pattern=KEY_PATTERN)
        if oid is not None and oid in seen:
            r.problem(f"{path}.id", f"outcome {oid!r} is listed more than once")
        name = r.text(m.get("name"), f"{path}.name", required=False)
        price = r.number(m.get("price"), f"{path}.price", positive=True, money=True)
        most = r.integer(m.get("max_per_participant", 1), f"{path}.max_per_participant", low=1)
        requires = r.listing(m.get("requires"), f"{path}.requires", required=False) or []
        if oid is None or price is None or most is None:
            continue
        seen.add(oid)
        raw_requires.append((path, requires))
        outcomes.append(RateOutcome(oid, name, price, most, ()))
    ids = {o.id for o in outcomes}
    resolved: list[RateOutcome] = []
    for outcome, (path, requires) in zip(outcomes, raw_requires, strict=True):
        names: list[str] = []
        for j, req in enumerate(requires):
            where = f"{path}.requires[{j}]"
            text = r.text(req, where, pattern=KEY_PATTERN)
            if text is None:
                continue
            if text == outcome.id:
                r.problem(where, f"outcome {text!r} cannot require itself")
            elif text not in ids:
                r.problem(where, f"{text!r} is not an outcome on the rate card")
            elif text not in names:
                names.append(text)
        resolved.append(
            RateOutcome(outcome.id, outcome.name, outcome.price, outcome.max_per_participant, tuple(names))
        )
    # a cycle of prerequisites can never be paid
    graph = {o.id: o.requires for o in resolved}
    for index, outcome in enumerate(resolved):
        stack, visited = list(outcome.requires), set()
        while stack:
            node = stack.pop()
            if node == outcome.id:
                r.problem(
                    f"{raw_requires[index][0]}.requires",
                    f"outcome {outcome.id!r} requires itself through a cycle of prerequisites",
                )
                break
            if node not in visited:
                visited.add(node)
                stack.extend(graph.get(node, ()))
    participant_cap = r.number(
        card.get("participant_cap"), "rate_card.participant_cap", required=False, low=ZERO, money=True
    )
    contract_cap = r.number(
        card.get("contract_cap"), "rate_card.contract_cap", required=False, low=ZERO, money=True
    )
    paid_from = r.integer(card.get("paid_from_year", 1), "rate_card.paid_from_year", low=1, high=total_years)
    return RateCard(tuple(resolved), participant_cap, contract_cap, paid_from or 1)


def _health_gain(r: _Reader, raw: Any, total_years: int) -> tuple[HealthGainEntry, ...]:
    """The ``health_gain`` entries (payment rules §9), every problem with its path."""
    items = r.listing(raw, "health_gain", required=False) or []
    out: list[HealthGainEntry] = []
    seen: set[str] = set()
    for i, raw_e in enumerate(items):
        path = f"health_gain[{i}]"
        m = r.mapping(raw_e, path)
        if m is None:
            continue
        r.unknown_keys(
            m,
            {
                "id",
                "measure",
                "scale",
                "price_per_point",
                "target_gain",
                "min_episodes",
                "floor",
                "cap",
                "paid_from_year",
            },
            path,
        )
        eid = r.text(m.get("id"), f"{path}.id", pattern=KEY_PATTERN)
        if eid is not None and eid in seen:
            r.problem(f"{path}.id", f"health-gain entry {eid!r} is listed more than once")
        measure = r.text(m.get("measure"), f"{path}.measure")
        scale = r.mapping(m.get("scale"), f"{path}.scale") or {}
        r.unknown_keys(scale, {"min", "max"}, f"{path}.scale")
        low = r.number(scale.get("min"), f"{path}.scale.min") if scale else None
        high = r.number(scale.get("max"), f"{path}.scale.max") if scale else None
        if low is not None and high is not None and high <= low:
            r.problem(f"{path}.scale.max", f"must be greater than scale.min ({low})")
            high = None
        price = r.number(m.get("price_per_point"), f"{path}.price_per_point", positive=True, money=True)
        target = r.number(m.get("target_gain"), f"{path}.target_gain", required=False)
        if target is not None and low is not None and high is not None and abs(target) > high - low:
            r.problem(
                f"{path}.target_gain", f"a gain of {target} is impossible on a scale of {low} to {high}"
            )
        minimum = r.integer(m.get("min_episodes", 1), f"{path}.min_episodes", low=1)
        floor = cap = None
        if "floor" in m:
            floor = r.number(m.get("floor"), f"{path}.floor", money=True)
            if floor is None and m.get("floor") is None:
                r.problem(f"{path}.floor", "omit the floor to allow claw-back; null is not a floor")
        if "cap" in m:
            cap = r.number(m.get("cap"), f"{path}.cap", money=True)
            if cap is None and m.get("cap") is None:
                r.problem(f"{path}.cap", "omit the cap for none; null is not a cap")
        if floor is not None and cap is not None and cap < floor:
            r.problem(f"{path}.cap", f"must not be below the floor ({floor})")
        paid_from = r.integer(m.get("paid_from_year", 1), f"{path}.paid_from_year", low=1, high=total_years)
        if None in (eid, measure, low, high, price, minimum, paid_from):
            continue
        assert eid and measure and low is not None and high is not None and price and minimum and paid_from
        seen.add(eid)
        out.append(HealthGainEntry(eid, measure, low, high, price, target, minimum, floor, cap, paid_from))
    return tuple(out)


def _declared_measure_ids(raw: Any) -> set[str]:
    """Every indicator and sub-indicator id the document declares (valid or not)."""
    ids: set[str] = set()
    for ind in raw if isinstance(raw, list) else []:
        if isinstance(ind, dict) and isinstance(ind.get("id"), str):
            ids.add(ind["id"])
            subs = ind.get("subcomponents")
            for sub in subs if isinstance(subs, list) else []:
                if isinstance(sub, dict) and isinstance(sub.get("id"), str):
                    ids |= {sub["id"], f"{ind['id']}.{sub['id']}"}
    return ids


def _party(r: _Reader, raw: Any, path: str) -> Party | None:
    m = r.mapping(raw, path)
    if m is None:
        return None
    r.unknown_keys(m, {"id", "name"}, path)
    pid = r.text(m.get("id"), f"{path}.id", pattern=KEY_PATTERN)
    name = r.text(m.get("name", pid), f"{path}.name")
    return Party(pid, name) if pid and name else None


def _per_year(r: _Reader, raw: Any, path: str, years: int, *, low: Decimal) -> tuple[Decimal, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list):
        values = [r.number(v, f"{path}[{i}]", low=low, high=ONE) for i, v in enumerate(raw)]
        if len(raw) < years - 1:
            r.problem(
                path,
                f"a per-year list needs at least years - 1 = {years - 1} entries "
                f"(year 2 onwards); got {len(raw)}",
            )
        return tuple(v for v in values if v is not None)
    value = r.number(raw, path, low=low, high=ONE)
    return (value,) if value is not None else ()


def _budget(r: _Reader, raw: Any, years: int) -> BudgetTerms | None:
    b = r.mapping(raw, "budget")
    if b is None:
        return None
    r.unknown_keys(
        b,
        {"year1", "capitation", "efficiency", "uplift", "population_tolerance", "historical_spend"},
        "budget",
    )
    year1 = capitation = None
    if ("year1" in b) == ("capitation" in b):
        r.problem("budget", "exactly one of year1 or capitation is required")
    if "year1" in b:
        year1 = r.number(b["year1"], "budget.year1", low=ZERO, money=True)
    if "capitation" in b:
        capitation = _capitation(r, b["capitation"], years)
    tolerance = ZERO
    if "population_tolerance" in b:
        if "capitation" not in b:
            r.problem("budget.population_tolerance", "applies to a capitation budget only")
        tolerance = r.number(b["population_tolerance"], "budget.population_tolerance", low=ZERO) or ZERO
    spend: list[tuple[int, Decimal]] = []
    for key, value in (
        r.mapping(b.get("historical_spend"), "budget.historical_spend", required=False) or {}
    ).items():
        year = r.integer(key, f"budget.historical_spend.{key}")
        amount = r.number(value, f"budget.historical_spend.{key}", low=ZERO, money=True)
        if year is not None and amount is not None:
            spend.append((year, amount))
    return BudgetTerms(
        year1=year1,
        capitation=capitation,
        efficiency=_per_year(r, b.get("efficiency"), "budget.efficiency", years, low=ZERO),
        uplift=_per_year(r, b.get("uplift"), "budget.uplift", years, low=-ONE),
        population_tolerance=tolerance,
        historical_spend=tuple(sorted(spend)),
    )


def _capitation(r: _Reader, raw: Any, years: int) -> Capitation | None:
    m = r.mapping(raw, "budget.capitation")
    if m is None:
        return None
    r.unknown_keys(m, {"rate_per_head", "segments"}, "budget.capitation")
    rate = r.number(m.get("rate_per_head"), "budget.capitation.rate_per_head", positive=True)
    segments: list[Segment] = []
    seen: set[str] = set()
    raw_segments = r.listing(m.get("segments"), "budget.capitation.segments") or []
    if not raw_segments and "segments" in m:
        r.problem("budget.capitation.segments", "at least one segment is required")
    for i, raw_seg in enumerate(raw_segments):
        path = f"budget.capitation.segments[{i}]"
        s = r.mapping(raw_seg, path)
        if s is None:
            continue
        r.unknown_keys(s, {"id", "name", "weight", "projected"}, path)
        sid = r.text(s.get("id"), f"{path}.id", pattern=KEY_PATTERN)
        if sid in seen:
            r.problem(f"{path}.id", f"segment id {sid!r} is used more than once")
        seen.add(sid or "")
        weight = r.number(s.get("weight"), f"{path}.weight", positive=True)
        projected_raw = r.listing(s.get("projected"), f"{path}.projected") or []
        projected = [r.integer(v, f"{path}.projected[{j}]", low=0) for j, v in enumerate(projected_raw)]
        if projected_raw and len(projected_raw) < years:
            r.problem(
                f"{path}.projected", f"needs one count per contract year ({years}); got {len(projected_raw)}"
            )
        if sid and weight is not None and projected and all(p is not None for p in projected):
            segments.append(Segment(sid, s.get("name") or sid, weight, tuple(projected)))  # type: ignore[arg-type]
    if rate is None:
        return None
    return Capitation(rate, tuple(segments))


def _split(r: _Reader, raw: Any, path: str, providers: list[str], lead: str) -> dict[str, Decimal]:
    if raw is None:
        return {lead: ONE}
    m = r.mapping(raw, path)
    if m is None:
        return {lead: ONE}
    out: dict[str, Decimal] = {}
    for party, value in m.items():
        if party not in providers:
            r.problem(f"{path}.{party}", f"{party!r} is not the lead provider or a subcontractor")
        share = r.fraction(value, f"{path}.{party}")
        if share is not None:
            out[str(party)] = share
    if out and len(out) == len(m) and sum(out.values(), ZERO) != ONE:
        r.problem(path, f"fractions must sum to 1 (they sum to {sum(out.values(), ZERO)})")
    return out


def _schedule(r: _Reader, raw: Any, path: str, risk_names: set[str]) -> tuple[ScheduleEntry, ...]:
    entries: list[ScheduleEntry] = []
    items = r.listing(raw, path) or []
    if raw is not None and isinstance(raw, list) and not items:
        r.problem(path, "at least one entry is required")
    previous = 0
    for i, raw_entry in enumerate(items):
        p = f"{path}[{i}]"
        e = r.mapping(raw_entry, p)
        if e is None:
            continue
        r.unknown_keys(e, {"from_year", "core", "outcomes", "reserve", "risk_share"}, p)
        from_year = r.integer(e.get("from_year"), f"{p}.from_year", low=1, high=MAX_TERM_YEARS)
        if from_year is not None:
            if i == 0 and from_year != 1:
                r.problem(f"{p}.from_year", "the first entry must start at year 1")
            elif from_year <= previous:
                r.problem(f"{p}.from_year", f"must be after the previous entry's year {previous}")
            previous = max(previous, from_year)
        core = r.fraction(e.get("core"), f"{p}.core")
        outcomes = r.fraction(e.get("outcomes", 0), f"{p}.outcomes")
        reserve = r.fraction(e.get("reserve", 0), f"{p}.reserve")
        risk = e.get("risk_share")
        if risk is not None:
            risk = r.text(risk, f"{p}.risk_share")
            if risk is not None and risk not in risk_names:
                r.problem(f"{p}.risk_share", f"no risk share named {risk!r} in payment.risk_share")
        if None not in (core, outcomes, reserve):
            total = core + outcomes + reserve  # type: ignore[operator]
            if total != ONE:
                r.problem(p, f"core + outcomes + reserve must sum to 1 (they sum to {total})")
            if from_year is not None:
                entries.append(ScheduleEntry(from_year, core, outcomes, reserve, risk))  # type: ignore[arg-type]
    return tuple(entries)


def _risk_shares(
    r: _Reader, raw: Any, path: str, providers: list[str], lead: str
) -> tuple[RiskShareTerms, ...]:
    m = r.mapping(raw, path, required=False) or {}
    out: list[RiskShareTerms] = []
    for name, raw_terms in m.items():
        p = f"{path}.{name}"
        t = r.mapping(raw_terms, p)
        if t is None:
            continue
        r.unknown_keys(
            t,
            {"reference", "tiers", "cap", "high_cost_threshold", "split", "high_cost_to", "quality_link"},
            p,
        )
        reference = r.text(t.get("reference", "budget"), f"{p}.reference", choices=("budget", "revenue"))
        tiers = _tiers(r, t.get("tiers"), f"{p}.tiers")
        cap = r.number(t.get("cap"), f"{p}.cap", required=False, low=ZERO)
        threshold = r.number(
            t.get("high_cost_threshold"), f"{p}.high_cost_threshold", required=False, low=ZERO, money=True
        )
        split = _split(r, t.get("split"), f"{p}.split", providers, lead) if t.get("split") is not None else {}
        high_cost_to = r.text(
            t.get("high_cost_to", "lead"), f"{p}.high_cost_to", choices=("lead", "reporting")
        )
        quality_link = t.get("quality_link", False)
        if not isinstance(quality_link, bool):
            r.problem(f"{p}.quality_link", f"must be true or false (got {quality_link!r})")
            quality_link = False
        if reference is not None and high_cost_to is not None:
            out.append(
                RiskShareTerms(
                    str(name),
                    reference,
                    tiers,
                    cap,
                    threshold,
                    tuple(split.items()),
                    high_cost_to,
                    quality_link,
                )
            )
    return tuple(out)


def _tiers(r: _Reader, raw: Any, path: str) -> tuple[Tier, ...]:
    items = r.listing(raw, path) or []
    if isinstance(raw, list) and not items:
        r.problem(path, "at least one tier is required")
    tiers: list[Tier] = []
    previous: Decimal = ZERO
    open_ended_seen = False
    for i, raw_tier in enumerate(items):
        p = f"{path}[{i}]"
        t = r.mapping(raw_tier, p)
        if t is None:
            continue
        r.unknown_keys(t, {"upto", "provider_share", "provider_gain_share", "provider_loss_share"}, p)
        if open_ended_seen:
            r.problem(p, "a tier after the open-ended tier (upto: null) is never reached")
        upto = None
        if t.get("upto") is None:
            if "upto" not in t:
                r.problem(f"{p}.upto", "is required (a fraction of the reference, or null for the last tier)")
            open_ended_seen = True
        else:
            upto = r.number(t.get("upto"), f"{p}.upto", positive=True)
            if upto is not None:
                if upto <= previous:
                    r.problem(
                        f"{p}.upto",
                        f"tiers must be in increasing order without overlap "
                        f"({upto} is not above the previous tier's {previous})",
                    )
                previous = max(previous, upto)
        both = r.fraction(t.get("provider_share"), f"{p}.provider_share", required=False)
        gain = r.fraction(t.get("provider_gain_share"), f"{p}.provider_gain_share", required=False)
        loss = r.fraction(t.get("provider_loss_share"), f"{p}.provider_loss_share", required=False)
        gain = gain if gain is not None else both
        loss = loss if loss is not None else both
        if gain is None or loss is None:
            if not any(k in t for k in ("provider_share", "provider_gain_share", "provider_loss_share")) or (
                both is None and "provider_share" not in t
            ):
                r.problem(p, "needs provider_share, or both provider_gain_share and provider_loss_share")
            continue
        tiers.append(Tier(upto, gain, loss))
    return tuple(tiers)


def _threshold(
    r: _Reader, raw: Any, path: str, measure_id: str, baselines: Mapping[str, Decimal]
) -> Threshold | None:
    if isinstance(raw, dict):
        r.unknown_keys(raw, {"baseline_change"}, path)
        change = r.number(raw.get("baseline_change"), f"{path}.baseline_change", low=-ONE)
        if change is None:
            return None
        if baseline_for(baselines, measure_id) is None:
            r.problem(
                path,
                f"a threshold relative to the baseline needs baselines.{measure_id} "
                f"(no baseline is recorded for {measure_id!r})",
            )
            return None
        return Threshold(baseline_change=change)
    value = r.number(raw, path)
    return Threshold(absolute=value) if value is not None else None


def _scoring(
    r: _Reader, raw: Any, path: str, measure_id: str, baselines: Mapping[str, Decimal]
) -> Scoring | None:
    s = r.mapping(raw, path)
    if s is None:
        return None
    rule = r.text(s.get("rule"), f"{path}.rule", choices=RULES)
    if rule == "fixed":
        r.unknown_keys(s, {"rule", "target", "direction"}, path)
        target = None
        if s.get("target") is not None:
            target = _threshold(r, s.get("target"), f"{path}.target", measure_id, baselines)
        else:
            r.problem(f"{path}.target", "is required")
        direction = r.text(s.get("direction"), f"{path}.direction", choices=("higher", "lower"))
        if target is None or direction is None:
            return None
        return Scoring("fixed", target=target, direction=direction)
    if rule == "bands":
        r.unknown_keys(s, {"rule", "bands"}, path)
        bands: list[Band] = []
        items = r.listing(s.get("bands"), f"{path}.bands") or []
        if isinstance(s.get("bands"), list) and not items:
            r.problem(f"{path}.bands", "at least one band is required")
        kinds = set()
        for i, raw_band in enumerate(items):
            p = f"{path}.bands[{i}]"
            b = r.mapping(raw_band, p)
            if b is None:
                continue
            r.unknown_keys(b, {"at_least", "at_most", "score"}, p)
            if ("at_least" in b) == ("at_most" in b):
                r.problem(p, "needs exactly one of at_least or at_most")
                continue
            key = "at_least" if "at_least" in b else "at_most"
            kinds.add(key)
            threshold = _threshold(r, b[key], f"{p}.{key}", measure_id, baselines)
            score = r.fraction(b.get("score"), f"{p}.score")
            if threshold is not None and score is not None:
                bands.append(Band(threshold, score, key == "at_least"))
        if len(kinds) > 1:
            r.problem(
                f"{path}.bands",
                "bands must all use at_least (higher is better) or all use at_most (lower is better)",
            )
        return Scoring("bands", bands=tuple(bands)) if bands else None
    if rule == "sliding":
        r.unknown_keys(s, {"rule", "zero_at", "full_at"}, path)
        zero_raw, full_raw = s.get("zero_at"), s.get("full_at")
        zero = full = None
        if zero_raw is not None:
            zero = _threshold(r, zero_raw, f"{path}.zero_at", measure_id, baselines)
        else:
            r.problem(f"{path}.zero_at", "is required")
        if full_raw is not None:
            full = _threshold(r, full_raw, f"{path}.full_at", measure_id, baselines)
        else:
            r.problem(f"{path}.full_at", "is required")
        if zero is None or full is None:
            return None
        if zero == full or _resolved(zero, baselines, measure_id) == _resolved(full, baselines, measure_id):
            r.problem(
                f"{path}.full_at",
                f"must differ from zero_at (both are {_resolved(zero, baselines, measure_id)})",
            )
            return None
        return Scoring("sliding", zero_at=zero, full_at=full)
    return None


_UNREAD = object()


def _measure(
    r: _Reader,
    m: Mapping[str, Any],
    path: str,
    key: str,
    baselines: Mapping[str, Decimal],
    *,
    weight: Any = _UNREAD,
) -> Measure | None:
    if weight is _UNREAD:
        weight = r.number(m.get("weight"), f"{path}.weight", positive=True)
    unit = r.text(m.get("unit", "ratio"), f"{path}.unit", choices=UNITS)
    aggregation = r.text(m.get("aggregation", "sum"), f"{path}.aggregation", choices=AGGREGATIONS)
    scoring = _scoring(r, m.get("scoring"), f"{path}.scoring", key, baselines)
    if None in (weight, unit, aggregation, scoring):
        return None
    return Measure(key, weight, unit, aggregation, scoring)  # type: ignore[arg-type]


def _indicators(
    r: _Reader, raw: Any, providers: list[str], lead: str, baselines: Mapping[str, Decimal], total_years: int
) -> tuple[Indicator, ...]:
    items = r.listing(raw, "indicators", required=False) or []
    out: list[Indicator] = []
    seen: set[str] = set()
    for i, raw_ind in enumerate(items):
        path = f"indicators[{i}]"
        m = r.mapping(raw_ind, path)
        if m is None:
            continue
        r.unknown_keys(
            m,
            {
                "id",
                "name",
                "domain",
                "weight",
                "unit",
                "aggregation",
                "paid_from_year",
                "scoring",
                "subcomponents",
                "attribution",
            },
            path,
        )
        iid = r.text(m.get("id"), f"{path}.id", pattern=KEY_PATTERN)
        if iid is not None and iid in seen:
            r.problem(f"{path}.id", f"indicator id {iid!r} is used more than once")
        seen.add(iid or "")
        weight = r.number(m.get("weight"), f"{path}.weight", positive=True)
        paid_from = r.integer(
            m.get("paid_from_year", 1), f"{path}.paid_from_year", low=1, high=MAX_TERM_YEARS
        )
        attribution = _split(r, m.get("attribution"), f"{path}.attribution", providers, lead)
        measure = None
        subs: list[Measure] = []
        has_subs = m.get("subcomponents") is not None
        if has_subs == ("scoring" in m):
            r.problem(path, "needs exactly one of scoring or subcomponents")
        elif has_subs:
            for key in ("unit", "aggregation"):
                if key in m:
                    r.problem(f"{path}.{key}", "belongs on each subcomponent when there are subcomponents")
            sub_seen: set[str] = set()
            sub_items = r.listing(m.get("subcomponents"), f"{path}.subcomponents") or []
            if not sub_items and isinstance(m.get("subcomponents"), list):
                r.problem(f"{path}.subcomponents", "at least one subcomponent is required")
            for j, raw_sub in enumerate(sub_items):
                sp = f"{path}.subcomponents[{j}]"
                s = r.mapping(raw_sub, sp)
                if s is None:
                    continue
                r.unknown_keys(s, {"id", "name", "weight", "unit", "aggregation", "scoring"}, sp)
                sid = r.text(s.get("id"), f"{sp}.id", pattern=KEY_PATTERN)
                if sid is not None and sid in sub_seen:
                    r.problem(f"{sp}.id", f"subcomponent id {sid!r} is used more than once")
                sub_seen.add(sid or "")
                sub = _measure(r, s, sp, f"{iid}.{sid}", baselines)
                if sub is not None and sid and iid:
                    subs.append(sub)
        elif iid is not None:
            measure = _measure(r, m, path, iid, baselines, weight=weight)
        if iid and weight is not None and paid_from is not None and (measure or subs):
            out.append(
                Indicator(
                    id=iid,
                    name=str(m.get("name") or iid),
                    domain=str(m.get("domain") or ""),
                    weight=weight,
                    paid_from_year=paid_from,
                    measure=measure,
                    subcomponents=tuple(subs),
                    attribution=tuple(attribution.items()),
                )
            )
    return tuple(out)


def from_document(document: Mapping[str, Any]) -> ContractDefinition:
    """Rebuild a definition from its stored canonical form."""
    return parse_definition(from_stored(document))
