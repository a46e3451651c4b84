"""Providers' data records: every refusal reason code with its field (contract format, data records)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from functools import lru_cache

import pytest

from ledger.domain.definition import parse_definition
from ledger.domain.records import (
    CostReport,
    PopulationCount,
    RecordRefused,
    Submission,
    check_record,
    envelope,
    parse_json_line,
)
from tests.unit.worked_example import definition, document

SUBMISSION = {
    "type": "submission",
    "submission_id": "s-1",
    "contract_id": "beds-msk",
    "provider_id": "circle",
    "indicator_id": "proms-improved",
    "period": "2026-Q2",
    "numerator": "340",
    "denominator": "470",
}
VALUE_SUBMISSION = {**SUBMISSION, "indicator_id": "readmissions", "value": "70"}
del VALUE_SUBMISSION["numerator"], VALUE_SUBMISSION["denominator"]
COST = {
    "type": "cost_report",
    "report_id": "c-1",
    "contract_id": "beds-msk",
    "provider_id": "circle",
    "period": "2026-Q2",
    "total_cost": "4700000.00",
    "high_cost_cases": [{"case_ref": "HC-1", "cost": "26000.00"}],
}
POPULATION = {
    "type": "population",
    "record_id": "p-1",
    "contract_id": "beds-msk",
    "year": 2,
    "segment_id": "hips",
    "count": 4302,
}


@lru_cache(maxsize=1)
def capitation_definition():
    doc = document()
    doc["budget"] = {
        "capitation": {
            "rate_per_head": "850.00",
            "segments": [
                {"id": "hips", "weight": "1.8", "projected": [4000, 4050, 4100]},
                {"id": "knees", "weight": "1.0", "projected": [10000, 10200, 10400]},
            ],
        },
        "population_tolerance": "0.02",
    }
    return parse_definition(doc)


def with_(base, **changes):
    record = dict(base)
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def check(raw, defn=None):
    """Run a record (a JSON line, or an object as already decoded) through the whole check."""
    defn = defn or definition()
    obj = parse_json_line(raw) if isinstance(raw, str) else raw
    return check_record(envelope(obj), defn, defn.calendar())


def refusal(raw, defn=None):
    with pytest.raises(RecordRefused) as info:
        check(raw, defn)
    return info.value.refusal


REFUSED = [
    # (case, record, code, field)
    ("truncated JSON", '{"type": "submission", "submission_id":', "invalid_json", None),
    ("empty line", "", "invalid_json", None),
    ("trailing garbage", json.dumps(SUBMISSION) + " x", "invalid_json", None),
    ("a JSON list", "[1, 2]", "not_an_object", None),
    ("a JSON string", '"submission"', "not_an_object", None),
    ("JSON null", "null", "not_an_object", None),
    ("no type", with_(SUBMISSION, type=...), "missing_field", "type"),
    ("unknown type", with_(SUBMISSION, type="invoice"), "unknown_type", "type"),
    ("no submission id", with_(SUBMISSION, submission_id=...), "missing_field", "submission_id"),
    ("no report id", with_(COST, report_id=...), "missing_field", "report_id"),
    ("no record id", with_(POPULATION, record_id=...), "missing_field", "record_id"),
    ("no contract id", with_(SUBMISSION, contract_id=...), "missing_field", "contract_id"),
    ("contract id a number", with_(SUBMISSION, contract_id=5), "invalid_field", "contract_id"),
    ("empty submission id", with_(SUBMISSION, submission_id="  "), "invalid_field", "submission_id"),
    ("no provider", with_(SUBMISSION, provider_id=...), "missing_field", "provider_id"),
    ("provider a number", with_(SUBMISSION, provider_id=7), "invalid_field", "provider_id"),
    ("no indicator", with_(SUBMISSION, indicator_id=...), "missing_field", "indicator_id"),
    ("no period", with_(SUBMISSION, period=...), "missing_field", "period"),
    ("period a number", with_(SUBMISSION, period=202604), "invalid_field", "period"),
    ("no numerator", with_(SUBMISSION, numerator=...), "missing_field", "numerator"),
    ("no denominator", with_(SUBMISSION, denominator=...), "missing_field", "denominator"),
    (
        "value sent for a ratio",
        with_(SUBMISSION, numerator=..., denominator=..., value="0.7"),
        "missing_field",
        "numerator",
    ),
    ("no value", with_(VALUE_SUBMISSION, value=...), "missing_field", "value"),
    (
        "numerator sent for a value",
        with_(VALUE_SUBMISSION, value=..., numerator="70", denominator="1"),
        "missing_field",
        "value",
    ),
    ("numerator n/a", with_(SUBMISSION, numerator="n/a"), "non_numeric", "numerator"),
    ("denominator text NaN", with_(SUBMISSION, denominator="NaN"), "non_numeric", "denominator"),
    ("value text Infinity", with_(VALUE_SUBMISSION, value="Infinity"), "non_numeric", "value"),
    ("value text -inf", with_(VALUE_SUBMISSION, value="-inf"), "non_numeric", "value"),
    ("value with thousands separator", with_(VALUE_SUBMISSION, value="1,000"), "non_numeric", "value"),
    ("value true", with_(VALUE_SUBMISSION, value=True), "non_numeric", "value"),
    ("value a Python float", with_(VALUE_SUBMISSION, value=70.0), "non_numeric", "value"),
    ("value a list", with_(VALUE_SUBMISSION, value=[70]), "non_numeric", "value"),
    # Bare JSON constants are refused while decoding, before any field is known.
    (
        "bare JSON NaN",
        json.dumps(with_(VALUE_SUBMISSION, value=None)).replace("null", "NaN"),
        "non_numeric",
        None,
    ),
    (
        "bare JSON Infinity",
        json.dumps(with_(VALUE_SUBMISSION, value=None)).replace("null", "Infinity"),
        "non_numeric",
        None,
    ),
    (
        "bare JSON -Infinity",
        json.dumps(with_(COST, total_cost=None)).replace("null", "-Infinity"),
        "non_numeric",
        None,
    ),
    ("total cost n/a", with_(COST, total_cost="n/a"), "non_numeric", "total_cost"),
    ("no total cost", with_(COST, total_cost=...), "missing_field", "total_cost"),
    ("provider not a party", with_(SUBMISSION, provider_id="mind"), "provider_not_party", "provider_id"),
    ("commissioner as provider", with_(SUBMISSION, provider_id="bccg"), "provider_not_party", "provider_id"),
    ("cost from a non-party", with_(COST, provider_id="mind"), "provider_not_party", "provider_id"),
    (
        "unknown indicator",
        with_(SUBMISSION, indicator_id="waiting-times"),
        "unknown_indicator",
        "indicator_id",
    ),
    (
        "indicator with subcomponents addressed whole",
        with_(SUBMISSION, indicator_id="shared-decisions"),
        "unknown_indicator",
        "indicator_id",
    ),
    (
        "subcomponent without its indicator",
        with_(SUBMISSION, indicator_id="offered"),
        "unknown_indicator",
        "indicator_id",
    ),
    (
        "unknown subcomponent",
        with_(SUBMISSION, indicator_id="shared-decisions.declined"),
        "unknown_indicator",
        "indicator_id",
    ),
    ("month on a quarterly contract", with_(SUBMISSION, period="2026-04"), "invalid_period", "period"),
    ("quarter five", with_(SUBMISSION, period="2026-Q5"), "invalid_period", "period"),
    ("lower-case quarter", with_(COST, period="2026-q2"), "invalid_period", "period"),
    ("period before the start", with_(SUBMISSION, period="2025-Q1"), "period_outside_term", "period"),
    ("period after the term", with_(SUBMISSION, period="2028-Q2"), "period_outside_term", "period"),
    ("cost after the term", with_(COST, period="2031-Q1"), "period_outside_term", "period"),
    (
        "zero denominator",
        with_(SUBMISSION, numerator="0", denominator="0"),
        "invalid_denominator",
        "denominator",
    ),
    ("negative denominator", with_(SUBMISSION, denominator="-5"), "invalid_denominator", "denominator"),
    ("negative numerator", with_(SUBMISSION, numerator="-1"), "negative_value", "numerator"),
    ("negative total cost", with_(COST, total_cost="-1.00"), "negative_value", "total_cost"),
    (
        "negative case cost",
        with_(COST, high_cost_cases=[{"case_ref": "HC-1", "cost": "-5.00"}]),
        "negative_value",
        "high_cost_cases[0].cost",
    ),
    (
        "numerator above denominator",
        with_(SUBMISSION, numerator="471"),
        "numerator_exceeds_denominator",
        "numerator",
    ),
    ("total cost with 3 places", with_(COST, total_cost="4700000.001"), "invalid_amount", "total_cost"),
    (
        "case cost with 3 places",
        with_(COST, high_cost_cases=[{"case_ref": "HC-1", "cost": "1.234"}]),
        "invalid_amount",
        "high_cost_cases[0].cost",
    ),
    (
        "JSON number cost with 3 places",
        json.dumps(with_(COST, total_cost=None)).replace("null", "100.125"),
        "invalid_amount",
        "total_cost",
    ),
    (
        "case cost n/a",
        with_(COST, high_cost_cases=[{"case_ref": "HC-1", "cost": "n/a"}]),
        "non_numeric",
        "high_cost_cases[0].cost",
    ),
    (
        "case without cost",
        with_(COST, high_cost_cases=[{"case_ref": "HC-1"}]),
        "missing_field",
        "high_cost_cases[0].cost",
    ),
    (
        "case without reference",
        with_(COST, high_cost_cases=[{"cost": "1.00"}]),
        "missing_field",
        "high_cost_cases[0].case_ref",
    ),
    ("cases not a list", with_(COST, high_cost_cases={"HC-1": "1.00"}), "invalid_field", "high_cost_cases"),
    ("case not an object", with_(COST, high_cost_cases=["HC-1"]), "invalid_field", "high_cost_cases[0]"),
    ("population on a fixed budget", POPULATION, "not_capitation", "type"),
]

CAPITATION_REFUSED = [
    ("year zero", with_(POPULATION, year=0), "year_outside_term", "year"),
    ("year after the term", with_(POPULATION, year=4), "year_outside_term", "year"),
    ("no year", with_(POPULATION, year=...), "missing_field", "year"),
    ("year as text", with_(POPULATION, year="2"), "invalid_field", "year"),
    (
        "year a fraction",
        '{"type": "population", "record_id": "p-1", "contract_id": "beds-msk", "year": 2.5, '
        '"segment_id": "hips", "count": 1}',
        "invalid_field",
        "year",
    ),
    ("unknown segment", with_(POPULATION, segment_id="elbows"), "unknown_segment", "segment_id"),
    ("no segment", with_(POPULATION, segment_id=...), "missing_field", "segment_id"),
    ("no count", with_(POPULATION, count=...), "missing_field", "count"),
    ("count n/a", with_(POPULATION, count="n/a"), "non_numeric", "count"),
    ("count with decimals", with_(POPULATION, count="4302.5"), "non_numeric", "count"),
    ("negative count", with_(POPULATION, count=-1), "negative_value", "count"),
]


@pytest.mark.parametrize("record, code, field", [pytest.param(r, c, f, id=n) for n, r, c, f in REFUSED])
def test_a_refused_record_names_its_reason_code_and_field(record, code, field):
    found = refusal(record)
    assert (found.code, found.field) == (code, field)
    assert found.message


@pytest.mark.parametrize(
    "record, code, field", [pytest.param(r, c, f, id=n) for n, r, c, f in CAPITATION_REFUSED]
)
def test_a_refused_population_count_names_its_reason_code_and_field(record, code, field):
    found = refusal(record, capitation_definition())
    assert (found.code, found.field) == (code, field)


def test_a_subcomponent_refusal_hints_at_the_submission_keys():
    found = refusal(with_(SUBMISSION, indicator_id="shared-decisions"))
    assert "shared-decisions.offered" in found.message and "shared-decisions.documented" in found.message


def test_a_bad_case_reference_names_the_case_it_belongs_to():
    found = refusal(with_(COST, high_cost_cases=[{"case_ref": 17, "cost": "1.00"}]))
    assert (found.code, found.field) == ("invalid_field", "high_cost_cases[0].case_ref")


# --- accepted records ----------------------------------------------------------------


def test_json_floats_are_read_as_decimal_never_float():
    obj = parse_json_line('{"a": 0.1, "b": 1e2, "c": 3, "d": [2.50]}')
    assert obj == {"a": D("0.1"), "b": D("1E+2"), "c": 3, "d": [D("2.50")]}
    assert isinstance(obj["a"], D) and str(obj["d"][0]) == "2.50"


def test_a_submission_with_json_numbers_is_accepted_with_decimal_figures():
    line = json.dumps(with_(SUBMISSION, numerator=None, denominator=None))
    line = line.replace('"numerator": null', '"numerator": 340.0').replace(
        '"denominator": null', '"denominator": 470'
    )
    record = check(line)
    assert isinstance(record, Submission)
    assert record.numerator == D("340") and isinstance(record.numerator, D)
    assert record.denominator == D("470")


@pytest.mark.parametrize(
    "raw, kind, year",
    [
        (SUBMISSION, Submission, 2),
        (VALUE_SUBMISSION, Submission, 2),
        (with_(SUBMISSION, indicator_id="shared-decisions.documented", period="2025-Q2"), Submission, 1),
        (with_(SUBMISSION, numerator="470"), Submission, 2),  # numerator equal to denominator
        (with_(SUBMISSION, provider_id="physio", period="2028-Q1"), Submission, 3),
        (COST, CostReport, 2),
        (with_(COST, high_cost_cases=...), CostReport, 2),
        (with_(COST, high_cost_cases=None, total_cost="0"), CostReport, 2),
        (with_(COST, total_cost=4700000), CostReport, 2),
    ],
)
def test_valid_records_are_accepted_with_their_contract_year(raw, kind, year):
    record = check(raw)
    assert isinstance(record, kind)
    assert record.year == year


def test_an_accepted_cost_report_carries_its_cases_as_decimals():
    record = check(COST)
    assert record.total_cost == D("4700000.00")
    assert record.high_cost_cases == (("HC-1", D("26000.00")),)


def test_a_population_count_is_accepted_on_a_capitation_contract():
    record = check(with_(POPULATION, count="4302"), capitation_definition())
    assert isinstance(record, PopulationCount)
    assert (record.year, record.segment_id, record.count) == (2, "hips", 4302)


def test_a_period_in_an_extension_year_is_accepted_only_with_the_extended_calendar():
    doc = document()
    doc["contract"]["extension_years"] = 1
    defn = parse_definition(doc)
    late = with_(SUBMISSION, period="2028-Q2")
    assert refusal(late, defn).code == "period_outside_term"
    record = check_record(envelope(late), defn, defn.calendar(extended=True))
    assert record.year == 4


# --- duplicate detection -------------------------------------------------------------


def digest_of(raw, defn=None):
    return check(raw, defn).digest


@pytest.mark.parametrize("base, field", [(SUBMISSION, "numerator"), (VALUE_SUBMISSION, "value")])
def test_the_digest_treats_300_and_the_text_300_and_300_point_0_as_the_same_content(base, field):
    record = with_(base, **{field: "300", **({"denominator": "470"} if field == "numerator" else {})})
    digests = {
        digest_of(with_(record, **{field: "300"})),
        digest_of(with_(record, **{field: 300})),
        digest_of(with_(record, **{field: "300.0"})),
        digest_of(with_(record, **{field: "300.00"})),
        digest_of(json.dumps(with_(record, **{field: None})).replace("null", "300.0")),
    }
    assert len(digests) == 1
    assert digest_of(with_(record, **{field: "301"})) not in digests


def test_the_digest_of_cost_reports_and_counts_ignores_how_numbers_are_written():
    assert digest_of(COST) == digest_of(
        with_(COST, total_cost=4700000, high_cost_cases=[{"case_ref": "HC-1", "cost": "26000"}])
    )
    assert digest_of(with_(POPULATION, count="4302"), capitation_definition()) == digest_of(
        POPULATION, capitation_definition()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"submission_id": "s-2"},
        {"provider_id": "physio"},
        {"period": "2026-Q3"},
        {"denominator": "471"},
    ],
)
def test_the_digest_changes_with_any_content(change):
    assert digest_of(SUBMISSION) != digest_of(with_(SUBMISSION, **change))


@pytest.mark.parametrize("text", ["\x1c12", "12\x85", "\u200312", "\t12"])
def test_a_whole_number_with_odd_whitespace_around_it_is_refused(text):
    from ledger.domain.records import RecordRefused, whole_value

    assert whole_value(" 12 ", "count", low=0, high=100) == 12
    with pytest.raises(RecordRefused) as caught:
        whole_value(text, "count", low=0, high=100)
    assert caught.value.refusal.code == "non_numeric" and caught.value.refusal.field == "count"
