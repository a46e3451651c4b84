"""Providers' data records: parsing and validation against a contract. Pure.

A record is either accepted as a typed value (:class:`Submission`,
:class:`CostReport`, :class:`PopulationCount`) or refused with a
:class:`Refusal` naming a stable reason code, the field and the reason.
The same fields arrive as JSON lines (``ingest``) or as Avro on Kafka.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Any

from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import unknown_contract
from ledger.domain.ids import PARTY_ID_LENGTH, RECORD_ID_LENGTH, id_problem, printable, safe
from ledger.domain.numbers import MAX_COUNT, MAX_NUMBER_TEXT, ZERO, NotANumber, to_measure, to_money
from ledger.domain.periods import Calendar, PeriodError
from ledger.domain.variations import terms_of

ID_FIELDS = {
    "submission": "submission_id",
    "cost_report": "report_id",
    "population": "record_id",
    "outcome_claim": "claim_id",
    "prom_episode": "episode_id",
}
MAX_EVIDENCE = 1000  # characters of an outcome claim's evidence note

# Ids a record carries, with the width the read models store for each.
ID_LENGTHS = {
    "submission_id": RECORD_ID_LENGTH,
    "report_id": RECORD_ID_LENGTH,
    "record_id": RECORD_ID_LENGTH,
    "contract_id": PARTY_ID_LENGTH,
    "provider_id": PARTY_ID_LENGTH,
    "indicator_id": RECORD_ID_LENGTH,
    "segment_id": PARTY_ID_LENGTH,
    "case_ref": RECORD_ID_LENGTH,
    "period": 16,
    "claim_id": RECORD_ID_LENGTH,
    "episode_id": RECORD_ID_LENGTH,
    "participant_id": RECORD_ID_LENGTH,
    "outcome_id": RECORD_ID_LENGTH,
    "health_gain_id": RECORD_ID_LENGTH,
    "supersedes": RECORD_ID_LENGTH,
}
MAX_CASES = 10_000  # high-cost cases in one cost report


@dataclass(frozen=True)
class Refusal:
    code: str
    field: str | None
    message: str
    # the contract a refused sender may not read: a door open to strangers (the service) shows the
    # refusal as for an unregistered contract; what is stored and listed keeps the reason
    conceals: str | None = dataclass_field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.code}: {self.field + ': ' if self.field else ''}{self.message}"


def as_sent_back(refusal: Refusal) -> Refusal:
    """A refusal as its sender is told it (a service response, a dead letter): one naming a contract
    the sender may not read reads as for an unregistered contract, the same code and words, so that
    refusals do not tell a stranger which contracts exist. The ledger keeps the real reason."""
    return refusal if refusal.conceals is None else unknown_contract_refusal(refusal.conceals)


def unknown_contract_refusal(contract_id: str) -> Refusal:
    return Refusal("unknown_contract", "contract_id", unknown_contract(contract_id).message)


class RecordRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def refuse(code: str, field: str | None, message: str) -> RecordRefused:
    return RecordRefused(Refusal(code, field, message))


@contextmanager
def within(path: str) -> Iterator[None]:
    """Refusals raised inside name their field under ``path`` (e.g. ``high_cost_cases[0].cost``)."""
    try:
        yield
    except RecordRefused as exc:
        r = exc.refusal
        raise RecordRefused(Refusal(r.code, f"{path}.{r.field}" if r.field else path, r.message)) from None


@dataclass(frozen=True)
class Submission:
    submission_id: str
    contract_id: str
    provider_id: str
    indicator_id: str
    period: str
    year: int
    numerator: Decimal | None
    denominator: Decimal | None
    value: Decimal | None
    digest: str

    type = "submission"

    @property
    def record_id(self) -> str:
        return self.submission_id


@dataclass(frozen=True)
class CostReport:
    report_id: str
    contract_id: str
    provider_id: str
    period: str
    year: int
    total_cost: Decimal
    high_cost_cases: tuple[tuple[str, Decimal], ...]
    digest: str

    type = "cost_report"

    @property
    def record_id(self) -> str:
        return self.report_id


@dataclass(frozen=True)
class PopulationCount:
    record_id: str
    contract_id: str
    year: int
    segment_id: str
    count: int
    digest: str

    type = "population"


@dataclass(frozen=True)
class OutcomeClaim:
    """A participant's outcome claimed against the rate card (payment rules §8)."""

    claim_id: str
    contract_id: str
    provider_id: str
    participant_id: str
    outcome_id: str
    period: str
    year: int
    evidence: str | None
    supersedes: str | None
    digest: str

    type = "outcome_claim"

    @property
    def record_id(self) -> str:
        return self.claim_id


@dataclass(frozen=True)
class PromEpisode:
    """A patient episode's PROM scores before and after treatment (payment rules §9)."""

    episode_id: str
    contract_id: str
    provider_id: str
    health_gain_id: str
    period: str
    year: int
    pre_score: Decimal
    post_score: Decimal
    expected_gain: Decimal | None
    supersedes: str | None
    digest: str

    type = "prom_episode"

    @property
    def record_id(self) -> str:
        return self.episode_id


Record = Submission | CostReport | PopulationCount | OutcomeClaim | PromEpisode


@dataclass(frozen=True)
class Envelope:
    """What can be known of a record before its contract is looked up."""

    type: str
    record_id: str
    contract_id: str
    fields: Mapping[str, Any]


def parse_json_line(text: str) -> Any:
    """One JSON value; duplicate keys, lone surrogates and over-long numbers are refused.

    A line of ASCII without a ``\\u`` escape cannot hold a lone surrogate (it could only come from an
    escape), so its objects are checked for duplicate keys only; any other line is checked text by text.
    The verdict is the same either way (tests/unit/test_parse_paths.py)."""
    decoder = _ASCII_DECODER if text.isascii() and "\\u" not in text else _DECODER
    try:
        return decoder.decode(text)
    except RecordRefused:
        raise
    except (ValueError, RecursionError) as exc:
        hint = ""
        if "," in text and not text.lstrip().startswith(("{", "[")):
            hint = "; this looks like CSV: name the file .csv or pass --format csv"
        raise refuse("invalid_json", None, f"not valid JSON: {exc}{hint}") from None


def _no_constant(name: str) -> Any:
    raise refuse("non_numeric", None, f"{name} is not a number")


def _parse_float(text: str) -> Decimal | str:
    # over-long number text is kept as text: the field's own check names it out of range
    return text if len(text) > MAX_NUMBER_TEXT else Decimal(text)


def _parse_int(text: str) -> int | str:
    return text if len(text) > MAX_NUMBER_TEXT else int(text)


def _check_text(value: Any, where: str) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise refuse(
                "invalid_encoding",
                where or None,
                f"contains a lone surrogate (\\u{ord(value[exc.start]):04x}): not valid Unicode",
            ) from None
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, f"{where}[{i}]")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        _check_text(key, "")
        if key in obj:
            raise refuse(
                "duplicate_key",
                printable(key)[:RECORD_ID_LENGTH],
                "appears more than once in one object (which one counts is ambiguous)",
            )
        _check_text(value, key)
        obj[key] = value
    return obj


def _ascii_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        return _object(pairs)  # a key repeats: refused, naming the first that does
    return obj


def _decoder(object_pairs_hook: Any) -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_float=_parse_float,
        parse_int=_parse_int,
        parse_constant=_no_constant,
        object_pairs_hook=object_pairs_hook,
    )


_DECODER = _decoder(_object)
_ASCII_DECODER = _decoder(_ascii_object)


def text_field(fields: Mapping[str, Any], name: str) -> str:
    """A required non-empty text field, or a refusal naming it; ids obey the id grammar."""
    value = fields.get(name)
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and 0 < len(value) <= ID_LENGTHS.get(name, RECORD_ID_LENGTH)
        and value[0] != " "
        and value[-1] != " "
    ):
        # the same verdict as below, sooner: printable ASCII has no white space but the space itself
        return value
    if value is None:
        raise refuse("missing_field", name, "is required")
    if not isinstance(value, str) or not value.strip():
        raise refuse("invalid_field", name, f"must be a non-empty string (got {safe(value)})")
    problem = id_problem(value, max_length=ID_LENGTHS.get(name, RECORD_ID_LENGTH))
    if problem is not None:
        raise refuse("invalid_id", name, problem)
    return value


def envelope(obj: Any) -> Envelope:
    """Check the fields every record has: type, contract_id and its id field."""
    if not isinstance(obj, dict):
        raise refuse("not_an_object", None, f"a record must be a JSON object, not {type(obj).__name__}")
    kind = obj.get("type")
    if kind is None:
        raise refuse("missing_field", "type", "is required (" + ", ".join(ID_FIELDS) + ")")
    if kind not in ID_FIELDS:
        raise refuse("unknown_type", "type", f"{safe(kind)} is not one of " + ", ".join(ID_FIELDS))
    id_field = ID_FIELDS[kind]
    record_id = text_field(obj, id_field)
    contract_id = text_field(obj, "contract_id")
    return Envelope(kind, record_id, contract_id, obj)


def measure_field(fields: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise refuse("missing_field", name, "is required")
        return None
    try:
        number = to_measure(value)
    except NotANumber as exc:
        raise refuse(exc.code, name, str(exc)) from None
    return number


def money_field(fields: Mapping[str, Any], name: str, *, allow_negative: bool = False) -> Decimal:
    value = fields.get(name)
    if value is None:
        raise refuse("missing_field", name, "is required")
    try:
        amount = to_money(value)
    except NotANumber as exc:
        raise refuse(exc.code, name, str(exc)) from None
    if amount < ZERO and not allow_negative:
        raise refuse("negative_value", name, f"must not be negative (got {safe(value)})")
    return amount


def whole_value(value: Any, name: str, *, low: int, high: int) -> int:
    """A whole number field (JSON integer or its digits as text) within [low, high]."""
    if isinstance(value, str) and value.strip(" ").isdigit() and value.strip(" ").isascii():  # not \x1c, \x85
        if len(value.strip(" ")) > MAX_NUMBER_TEXT:
            raise refuse("number_out_of_range", name, f"{safe(value)} is too large (at most {high:,})")
        value = int(value.strip(" "))
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse("non_numeric", name, f"must be a whole number (got {safe(value)})")
    if value < low:
        raise refuse(
            "negative_value" if value < 0 else "number_out_of_range",
            name,
            f"must be at least {low} (got {value})",
        )
    if value > high:
        raise refuse("number_out_of_range", name, f"{value:,} is too large (at most {high:,})")
    return value


def _canon(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def _not_canonical(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


# the standard library's C encoder made once (json.JSONEncoder.encode makes a new one, with a
# circular-reference check, per call): sorted keys, no spaces, non-ASCII kept; the same text
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # (not in typeshed's json.encoder)
_CHUNKS = (
    _MAKE_ENCODER(None, _not_canonical, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    if _MAKE_ENCODER is not None
    else None
)
_SLOW_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _ENCODE(value: Any) -> str:
    return _SLOW_ENCODE(value) if _CHUNKS is None else "".join(_CHUNKS(value, 0))


def canonical_text(kind: str, content: Mapping[str, Any]) -> str:
    """A record's canonical JSON: ``[type, content]``, keys sorted, no spaces, numbers as plain
    decimal text by value. What :func:`digest` hashes and a provider's signature covers."""
    return _ENCODE([kind, {k: _canon(v) for k, v in content.items()}])


def digest(kind: str, content: Mapping[str, Any]) -> str:
    """Content digest used to tell a duplicate (same content) from a conflicting one.

    Numbers count by value ("300", 300 and "300.0" are the same content).
    """
    return hashlib.sha256(canonical_text(kind, content).encode()).hexdigest()[:32]


def _provider(defn: ContractDefinition, fields: Mapping[str, Any]) -> str:
    provider = text_field(fields, "provider_id")
    if provider not in defn.providers_ever:
        raise refuse(
            "provider_not_party",
            "provider_id",
            # not the parties: whoever sends the record (a non-party too) reads this message
            f"{provider!r} is not a provider party to contract {defn.id!r}",
        )
    return provider


def _in_force(
    defn: ContractDefinition, year: int, provider: str | None, measure_key: str | None
) -> ContractDefinition:
    """The terms of the record's year; refuse a party or an indicator not in force in that year (§7)."""
    terms = terms_of(defn)
    if terms is None or not terms.variations:
        return defn
    current = terms.for_year(year)
    last = terms.last_year()
    if provider is not None and provider not in current.providers:
        raise refuse(
            "provider_not_party",
            "provider_id",
            terms.not_in_force(f"provider {provider!r}", terms.provider_years(provider, last), year),
        )
    if measure_key is not None and current.measure(measure_key) is None:
        raise refuse(
            "unknown_indicator",
            "indicator_id",
            terms.not_in_force(f"indicator {measure_key!r}", terms.measure_years(measure_key, last), year),
        )
    return current


def _period(calendar: Calendar, fields: Mapping[str, Any]) -> tuple[str, int]:
    text = text_field(fields, "period")
    try:
        period = calendar.period(text)
    except PeriodError as exc:
        raise refuse("invalid_period", "period", str(exc)) from None
    year = calendar.year_of(period)
    if year is None:
        lo = calendar.periods(1)[0].label
        hi = calendar.periods(calendar.years)[-1].label
        raise refuse(
            "period_outside_term", "period", f"{period.label} is outside the contract term ({lo} to {hi})"
        )
    return period.label, year  # the canonical spelling: one slot per period


def check_record(env: Envelope, defn: ContractDefinition, calendar: Calendar) -> Record:
    """Validate a record against its contract; raise RecordRefused with the reason."""
    f = env.fields
    if env.type == "submission":
        return _submission(env, defn, calendar)
    if env.type == "outcome_claim":
        return _outcome_claim(env, defn, calendar)
    if env.type == "prom_episode":
        return _prom_episode(env, defn, calendar)
    if env.type == "cost_report":
        provider = _provider(defn, f)
        period, year = _period(calendar, f)
        _in_force(defn, year, provider, None)
        total = money_field(f, "total_cost")
        cases_raw = f.get("high_cost_cases", [])
        if cases_raw is None:
            cases_raw = []
        if not isinstance(cases_raw, list):
            raise refuse("invalid_field", "high_cost_cases", "must be a list of {case_ref, cost}")
        if len(cases_raw) > MAX_CASES:
            raise refuse(
                "too_many_cases",
                "high_cost_cases",
                f"{len(cases_raw):,} cases in one report (at most {MAX_CASES:,}); split the period's report",
            )
        # a case may appear more than once (several episodes in the period): its entries add up (§5)
        cases: list[tuple[str, Decimal]] = []
        for i, case in enumerate(cases_raw):
            name = f"high_cost_cases[{i}]"
            if not isinstance(case, dict):
                raise refuse("invalid_field", name, "must be an object {case_ref, cost}")
            with within(name):
                ref = text_field(case, "case_ref")
                cost = money_field(case, "cost")
            cases.append((ref, cost))
        content = {
            "report_id": env.record_id,
            "contract_id": env.contract_id,
            "provider_id": provider,
            "period": period,
            "total_cost": total,
            "high_cost_cases": [list(c) for c in cases],
        }
        return CostReport(
            env.record_id,
            env.contract_id,
            provider,
            period,
            year,
            total,
            tuple(cases),
            digest(env.type, content),
        )
    # population
    if defn.budget.capitation is None:
        raise refuse(
            "not_capitation",
            "type",
            f"contract {defn.id!r} has a fixed budget; population counts apply to capitation only",
        )
    given = f.get("year")
    if given is None:
        raise refuse("missing_field", "year", "is required")
    if isinstance(given, bool) or not isinstance(given, int):
        raise refuse("invalid_field", "year", f"must be a whole contract year number (got {safe(given)})")
    year = given
    if not 1 <= year <= calendar.years:
        raise refuse(
            "year_outside_term", "year", f"year {year} is outside the contract term (1..{calendar.years})"
        )
    segment = text_field(f, "segment_id")
    if segment not in {s.id for s in defn.budget.capitation.segments}:
        raise refuse("unknown_segment", "segment_id", f"{segment!r} is not a segment of contract {defn.id!r}")
    count = f.get("count")
    if count is None:
        raise refuse("missing_field", "count", "is required")
    count = whole_value(count, "count", low=0, high=MAX_COUNT - 1)
    content = {
        "record_id": env.record_id,
        "contract_id": env.contract_id,
        "year": year,
        "segment_id": segment,
        "count": count,
    }
    return PopulationCount(env.record_id, env.contract_id, year, segment, count, digest(env.type, content))


def _any_year_measure(defn: ContractDefinition, key: str) -> Any:
    terms = terms_of(defn)
    if terms is None or not terms.variations or defn.measure(key) is not None:
        return defn.measure(key)
    for year in range(1, terms.last_year() + 1):
        found = terms.for_year(year).measure(key)
        if found is not None:
            return found
    return None


def _submission(env: Envelope, defn: ContractDefinition, calendar: Calendar) -> Submission:
    f = env.fields
    provider = _provider(defn, f)
    key = text_field(f, "indicator_id")
    measure = _any_year_measure(defn, key)
    if measure is None:
        indicator = defn.indicator(key)
        hint = ""
        if indicator is not None and indicator.subcomponents:
            hint = (
                " (it has subcomponents: submit to " + ", ".join(m.id for m in indicator.subcomponents) + ")"
            )
        raise refuse(
            "unknown_indicator", "indicator_id", f"{key!r} is not an indicator of contract {defn.id!r}{hint}"
        )
    period, year = _period(calendar, f)
    measure = _in_force(defn, year, provider, key).measure(key) or measure
    numerator = denominator = value = None
    if measure.unit == "ratio":
        if f.get("value") is not None and f.get("numerator") is None:
            raise refuse(
                "missing_field", "numerator", f"{key} is a ratio: send numerator and denominator, not value"
            )
        numerator = measure_field(f, "numerator")
        denominator = measure_field(f, "denominator")
        assert numerator is not None and denominator is not None
        if denominator <= ZERO:
            raise refuse(
                "invalid_denominator", "denominator", f"must be greater than 0 (got {safe(f['denominator'])})"
            )
        if numerator < ZERO:
            raise refuse("negative_value", "numerator", f"must not be negative (got {safe(f['numerator'])})")
        if numerator > denominator:
            raise refuse(
                "numerator_exceeds_denominator",
                "numerator",
                f"numerator {safe(f['numerator'])} is greater than denominator {safe(f['denominator'])}",
            )
    else:
        if f.get("value") is None and f.get("numerator") is not None:
            raise refuse(
                "missing_field", "value", f"{key} is a value indicator: send value, not numerator/denominator"
            )
        value = measure_field(f, "value")
    content = {
        "submission_id": env.record_id,
        "contract_id": env.contract_id,
        "provider_id": provider,
        "indicator_id": key,
        "period": period,
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
    }
    return Submission(
        env.record_id,
        env.contract_id,
        provider,
        key,
        period,
        year,
        numerator,
        denominator,
        value,
        digest(env.type, content),
    )


def _supersedes(fields: Mapping[str, Any], record_id: str) -> str | None:
    if fields.get("supersedes") is None:
        return None
    named = text_field(fields, "supersedes")
    if named == record_id:
        raise refuse("invalid_supersedes", "supersedes", "a record cannot supersede itself")
    return named


def _outcome_claim(env: Envelope, defn: ContractDefinition, calendar: Calendar) -> OutcomeClaim:
    f = env.fields
    card = defn.rate_card
    if card is None:
        raise refuse("no_rate_card", "type", f"contract {defn.id!r} has no rate card (payment rules §8)")
    provider = _provider(defn, f)
    participant = text_field(f, "participant_id")
    outcome = text_field(f, "outcome_id")
    if card.outcome(outcome) is None:
        raise refuse(
            "unknown_outcome",
            "outcome_id",
            f"{outcome!r} is not an outcome on the rate card of "
            f"{defn.id!r} ({', '.join(o.id for o in card.outcomes)})",
        )
    period, year = _period(calendar, f)
    _in_force(defn, year, provider, None)
    evidence = f.get("evidence")
    if evidence is not None:
        if not isinstance(evidence, str):
            raise refuse("invalid_field", "evidence", f"must be text (got {safe(evidence)})")
        if len(evidence) > MAX_EVIDENCE:
            raise refuse("too_long", "evidence", f"{len(evidence):,} characters (at most {MAX_EVIDENCE:,})")
        if not evidence.isprintable():
            raise refuse("invalid_field", "evidence", "must be printable text on one line")
    supersedes = _supersedes(f, env.record_id)
    content = {
        "claim_id": env.record_id,
        "contract_id": env.contract_id,
        "provider_id": provider,
        "participant_id": participant,
        "outcome_id": outcome,
        "period": period,
        "evidence": evidence,
        "supersedes": supersedes,
    }
    return OutcomeClaim(
        env.record_id,
        env.contract_id,
        provider,
        participant,
        outcome,
        period,
        year,
        evidence,
        supersedes,
        digest(env.type, content),
    )


def _prom_episode(env: Envelope, defn: ContractDefinition, calendar: Calendar) -> PromEpisode:
    f = env.fields
    provider = _provider(defn, f)
    entry_id = text_field(f, "health_gain_id")
    entry = defn.health_gain_entry(entry_id)
    if entry is None:
        known = ", ".join(e.id for e in defn.health_gain) or "none"
        raise refuse(
            "unknown_health_gain",
            "health_gain_id",
            f"{entry_id!r} is not a health-gain entry of contract {defn.id!r} (entries: {known})",
        )
    period, year = _period(calendar, f)
    _in_force(defn, year, provider, None)
    scores = {}
    for name in ("pre_score", "post_score"):
        score = measure_field(f, name)
        assert score is not None
        if not entry.scale_min <= score <= entry.scale_max:
            raise refuse(
                "score_out_of_scale",
                name,
                f"{safe(f[name])} is outside the {entry.measure} scale ({entry.scale_min} to {entry.scale_max})",
            )
        scores[name] = score
    expected = measure_field(f, "expected_gain", required=False)
    if expected is None and entry.target_gain is None:
        raise refuse("missing_field", "expected_gain", f"is required: entry {entry_id!r} has no target_gain")
    supersedes = _supersedes(f, env.record_id)
    content = {
        "episode_id": env.record_id,
        "contract_id": env.contract_id,
        "provider_id": provider,
        "health_gain_id": entry_id,
        "period": period,
        "pre_score": scores["pre_score"],
        "post_score": scores["post_score"],
        "expected_gain": expected,
        "supersedes": supersedes,
    }
    return PromEpisode(
        env.record_id,
        env.contract_id,
        provider,
        entry_id,
        period,
        year,
        scores["pre_score"],
        scores["post_score"],
        expected,
        supersedes,
        digest(env.type, content),
    )
