"""Contract definition validation: each broken rule reported with its exact path."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal as D

import pytest

from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import from_document, parse_definition, to_document
from ledger.domain.errors import ValidationFailed
from tests.unit.worked_example import document

RS = ("payment", "risk_share", "standard")


def at(doc, *path):
    for key in path:
        doc = doc[key]
    return doc


def put(*path_and_value):
    """A breakage: set the value at a path of the document (creating nothing else)."""
    *path, value = path_and_value

    def apply(doc):
        at(doc, *path[:-1])[path[-1]] = copy.deepcopy(value)

    return apply


def drop(*path):
    def apply(doc):
        del at(doc, *path[:-1])[path[-1]]

    return apply


def both(*breakages):
    def apply(doc):
        for b in breakages:
            b(doc)

    return apply


def problems_of(doc):
    with pytest.raises(ValidationFailed) as info:
        parse_definition(doc)
    return info.value.problems


CAPITATION = {
    "rate_per_head": "850.00",
    "segments": [{"id": "hips", "weight": "1.8", "projected": [4000, 4050, 4100]}],
}
YAML_NAN = load_yaml("x: .nan")["x"]
YAML_INF = load_yaml("x: -.inf")["x"]

BROKEN = [
    # (what is broken, breakage, the one path reported)
    ("indicator weight zero", put("indicators", 0, "weight", "0"), "indicators[0].weight"),
    ("indicator weight negative", put("indicators", 0, "weight", "-0.5"), "indicators[0].weight"),
    (
        "subcomponent weight zero",
        put("indicators", 2, "subcomponents", 1, "weight", "0"),
        "indicators[2].subcomponents[1].weight",
    ),
    (
        "segment weight zero",
        both(
            drop("budget", "year1"),
            put(
                "budget",
                "capitation",
                {**CAPITATION, "segments": [{**CAPITATION["segments"][0], "weight": "0"}]},
            ),
        ),
        "budget.capitation.segments[0].weight",
    ),
    ("core_split not summing to 1", put("payment", "core_split", "physio", "0.3"), "payment.core_split"),
    (
        "core_split fraction above 1",
        put("payment", "core_split", {"circle": "1.2"}),
        "payment.core_split.circle",
    ),
    (
        "unknown party in core_split",
        put("payment", "core_split", {"circle": "0.8", "nobody": "0.2"}),
        "payment.core_split.nobody",
    ),
    (
        "commissioner in core_split",
        put("payment", "core_split", {"circle": "0.8", "bccg": "0.2"}),
        "payment.core_split.bccg",
    ),
    (
        "unknown party in attribution",
        put("indicators", 0, "attribution", {"circle": "0.7", "nobody": "0.3"}),
        "indicators[0].attribution.nobody",
    ),
    (
        "attribution not summing to 1",
        put("indicators", 0, "attribution", "physio", "0.4"),
        "indicators[0].attribution",
    ),
    ("relative threshold with no baseline", drop("baselines"), "indicators[1].scoring.target"),
    (
        "relative sliding threshold with no baseline",
        put("indicators", 0, "scoring", "zero_at", {"baseline_change": "-0.1"}),
        "indicators[0].scoring.zero_at",
    ),
    (
        "relative band threshold with no baseline",
        put(
            "indicators", 2, "subcomponents", 0, "scoring", "bands", 0, "at_least", {"baseline_change": "0.1"}
        ),
        "indicators[2].subcomponents[0].scoring.bands[0].at_least",
    ),
    (
        "baseline_change below -1",
        put("indicators", 0, "scoring", "zero_at", {"baseline_change": "-1.5"}),
        "indicators[0].scoring.zero_at.baseline_change",
    ),
    ("tiers unordered", put(*RS, "tiers", 1, "upto", "0.01"), f"{'.'.join(RS)}.tiers[1].upto"),
    ("tiers overlapping", put(*RS, "tiers", 1, "upto", "0.02"), f"{'.'.join(RS)}.tiers[1].upto"),
    ("first tier not positive", put(*RS, "tiers", 0, "upto", "0"), f"{'.'.join(RS)}.tiers[0].upto"),
    (
        "tier after the open-ended tier",
        lambda d: at(d, *RS, "tiers").append({"upto": "0.5", "provider_share": "0"}),
        f"{'.'.join(RS)}.tiers[3]",
    ),
    ("tier without upto", drop(*RS, "tiers", 2, "upto"), f"{'.'.join(RS)}.tiers[2].upto"),
    ("tier with only a gain share", drop(*RS, "tiers", 1, "provider_loss_share"), f"{'.'.join(RS)}.tiers[1]"),
    (
        "tier share above 1",
        put(*RS, "tiers", 0, "provider_share", "1.5"),
        f"{'.'.join(RS)}.tiers[0].provider_share",
    ),
    ("negative cap", put(*RS, "cap", "-0.1"), f"{'.'.join(RS)}.cap"),
    (
        "high-cost threshold with 3 places",
        put(*RS, "high_cost_threshold", "20000.001"),
        f"{'.'.join(RS)}.high_cost_threshold",
    ),
    (
        "schedule fractions not summing to 1",
        put("payment", "schedule", 1, "core", "0.80"),
        "payment.schedule[1]",
    ),
    (
        "schedule with reserve over the total",
        put("payment", "schedule", 0, "reserve", "0.05"),
        "payment.schedule[0]",
    ),
    (
        "first schedule entry not year 1",
        both(put("payment", "schedule", 0, "from_year", 2), put("payment", "schedule", 1, "from_year", 3)),
        "payment.schedule[0].from_year",
    ),
    (
        "schedule entries not increasing",
        put("payment", "schedule", 1, "from_year", 1),
        "payment.schedule[1].from_year",
    ),
    ("empty schedule", put("payment", "schedule", []), "payment.schedule"),
    (
        "unknown risk_share name",
        put("payment", "schedule", 1, "risk_share", "generous"),
        "payment.schedule[1].risk_share",
    ),
    (
        "quarterly contract not starting on a quarter",
        put("contract", "start", date(2025, 5, 1)),
        "contract.start",
    ),
    ("quarterly contract starting mid-month", put("contract", "start", date(2025, 4, 15)), "contract.start"),
    ("start not a date", put("contract", "start", "2025-02-30"), "contract.start"),
    ("contract id with capitals", put("contract", "id", "Beds-MSK"), "contract.id"),
    ("contract id with underscore", put("contract", "id", "beds_msk"), "contract.id"),
    ("contract id empty", put("contract", "id", ""), "contract.id"),
    ("unknown model", put("contract", "model", "block"), "contract.model"),
    ("unknown period", put("contract", "period", "weekly"), "contract.period"),
    ("years zero", put("contract", "years", 0), "contract.years"),
    ("years as text", put("contract", "years", "3"), "contract.years"),
    ("currency not a code", put("contract", "currency", "pounds"), "contract.currency"),
    ("party id used twice", put("contract", "commissioner", "id", "physio"), "contract"),
    ("both year1 and capitation", put("budget", "capitation", CAPITATION), "budget"),
    ("neither year1 nor capitation", drop("budget", "year1"), "budget"),
    ("year1 with 3 places", put("budget", "year1", "24000000.001"), "budget.year1"),
    ("efficiency list too short", put("budget", "efficiency", ["0.04"]), "budget.efficiency"),
    ("uplift list too short", put("budget", "uplift", []), "budget.uplift"),
    ("efficiency above 1", put("budget", "uplift", 1, "1.5"), "budget.uplift[1]"),
    (
        "population tolerance on a fixed budget",
        put("budget", "population_tolerance", "0.02"),
        "budget.population_tolerance",
    ),
    (
        "historical spend keyed by text",
        put("budget", "historical_spend", {"FY23": "100.00"}),
        "budget.historical_spend.FY23",
    ),
    (
        "capitation projection too short",
        both(
            drop("budget", "year1"),
            put(
                "budget",
                "capitation",
                {**CAPITATION, "segments": [{**CAPITATION["segments"][0], "projected": [4000, 4050]}]},
            ),
        ),
        "budget.capitation.segments[0].projected",
    ),
    (
        "sliding zero_at == full_at",
        put("indicators", 0, "scoring", "full_at", "0.60"),
        "indicators[0].scoring.full_at",
    ),
    (
        "sliding zero_at == full_at written differently",
        put("indicators", 0, "scoring", "full_at", "0.6"),
        "indicators[0].scoring.full_at",
    ),
    (
        "bands mixing at_least and at_most",
        put("indicators", 2, "subcomponents", 0, "scoring", "bands", 1, {"at_most": "0.90", "score": "1"}),
        "indicators[2].subcomponents[0].scoring.bands",
    ),
    (
        "band with both at_least and at_most",
        put(
            "indicators",
            2,
            "subcomponents",
            0,
            "scoring",
            "bands",
            0,
            {"at_least": "0.8", "at_most": "0.9", "score": "1"},
        ),
        "indicators[2].subcomponents[0].scoring.bands[0]",
    ),
    (
        "band score above 1",
        put("indicators", 2, "subcomponents", 0, "scoring", "bands", 0, "score", "2"),
        "indicators[2].subcomponents[0].scoring.bands[0].score",
    ),
    (
        "no bands",
        put("indicators", 2, "subcomponents", 0, "scoring", "bands", []),
        "indicators[2].subcomponents[0].scoring.bands",
    ),
    ("unknown scoring rule", put("indicators", 0, "scoring", "rule", "curve"), "indicators[0].scoring.rule"),
    (
        "fixed without direction",
        put("indicators", 0, "scoring", {"rule": "fixed", "target": "0.8"}),
        "indicators[0].scoring.direction",
    ),
    (
        "indicator with both scoring and subcomponents",
        put("indicators", 2, "scoring", {"rule": "fixed", "target": "0.5", "direction": "higher"}),
        "indicators[2]",
    ),
    ("indicator with neither scoring nor subcomponents", drop("indicators", 0, "scoring"), "indicators[0]"),
    ("unit beside subcomponents", put("indicators", 2, "unit", "ratio"), "indicators[2].unit"),
    (
        "duplicate indicator ids",
        lambda d: d["indicators"].append(copy.deepcopy(d["indicators"][0])),
        "indicators[3].id",
    ),
    (
        "duplicate subcomponent ids",
        put("indicators", 2, "subcomponents", 1, "id", "offered"),
        "indicators[2].subcomponents[1].id",
    ),
    ("indicator id with a dot", put("indicators", 0, "id", "proms.improved"), "indicators[0].id"),
    ("unknown unit", put("indicators", 0, "unit", "percent"), "indicators[0].unit"),
    ("unknown aggregation", put("indicators", 0, "aggregation", "median"), "indicators[0].aggregation"),
    ("paid_from_year zero", put("indicators", 0, "paid_from_year", 0), "indicators[0].paid_from_year"),
    ("baseline for no indicator", put("baselines", "nothing", "1"), "baselines.nothing"),
    ("unknown top-level field", put("extras", {}), "extras"),
    ("unknown contract field", put("contract", "colour", "blue"), "contract.colour"),
    ("unknown budget field", put("budget", "inflation", "0.02"), "budget.inflation"),
    ("unknown risk share field", put(*RS, "floor", "0.1"), f"{'.'.join(RS)}.floor"),
    ("unknown indicator field", put("indicators", 0, "target", "0.8"), "indicators[0].target"),
    ("unknown tier field", put(*RS, "tiers", 0, "share", "1"), f"{'.'.join(RS)}.tiers[0].share"),
    (
        "float-looking non-numeric text",
        put("indicators", 0, "scoring", "zero_at", "0.6O"),
        "indicators[0].scoring.zero_at",
    ),
    ("thousands separator", put("budget", "year1", "24,000,000.00"), "budget.year1"),
    ("YAML .nan", put("budget", "year1", YAML_NAN), "budget.year1"),
    ("YAML -.inf", put("indicators", 0, "weight", YAML_INF), "indicators[0].weight"),
    ("text NaN", put(*RS, "cap", "NaN"), f"{'.'.join(RS)}.cap"),
    ("a Python float", put("budget", "year1", 24000000.0), "budget.year1"),
    ("weight n/a", put("indicators", 2, "weight", "n/a"), "indicators[2].weight"),
]


@pytest.mark.parametrize("breakage, path", [pytest.param(b, p, id=name) for name, b, p in BROKEN])
def test_one_broken_rule_is_reported_at_its_exact_path(breakage, path):
    doc = document()
    breakage(doc)
    assert {p for p, _ in problems_of(doc)} == {path}


TOGETHER = [
    "indicator weight zero",
    "unknown party in attribution",
    "core_split not summing to 1",
    "tiers unordered",
    "negative cap",
    "unknown risk_share name",
    "quarterly contract not starting on a quarter",
    "contract id with capitals",
    "efficiency list too short",
    "bands mixing at_least and at_most",
    "duplicate subcomponent ids",
    "unknown contract field",
    "float-looking non-numeric text",
    "baseline for no indicator",
    "historical spend keyed by text",
]


def test_several_broken_rules_are_all_reported_together_and_nothing_else():
    doc = document()
    chosen = [case for case in BROKEN if case[0] in TOGETHER]
    assert len(chosen) == len(TOGETHER)
    for _, breakage, _ in chosen:
        breakage(doc)
    assert {p for p, _ in problems_of(doc)} == {p for _, _, p in chosen}


def test_every_problem_is_reported_not_just_the_first():
    doc = document()
    both(
        put("contract", "id", "Beds MSK"),
        put("budget", "efficiency", ["0.04"]),
        put("payment", "core_split", "physio", "0.3"),
        put("payment", "schedule", 1, "risk_share", "generous"),
        put(*RS, "tiers", 1, "upto", "0.01"),
        put("indicators", 0, "scoring", "full_at", "0.60"),
        put("indicators", 2, "subcomponents", 0, "scoring", "bands", 1, {"at_most": "0.9", "score": "1"}),
        put("indicators", 0, "colour", "red"),
    )(doc)
    assert sorted(p for p, _ in problems_of(doc)) == sorted(
        [
            "contract.id",
            "budget.efficiency",
            "payment.core_split",
            "payment.schedule[1].risk_share",
            "payment.risk_share.standard.tiers[1].upto",
            "indicators[0].scoring.full_at",
            "indicators[2].subcomponents[0].scoring.bands",
            "indicators[0].colour",
        ]
    )


def test_a_document_that_is_not_a_mapping_is_refused():
    with pytest.raises(ValidationFailed) as info:
        parse_definition(["not", "a", "contract"])
    assert [p for p, _ in info.value.problems] == ["(document)"]


def test_problems_are_listed_in_the_error_message_and_its_dict():
    doc = document()
    put("contract", "id", "Beds MSK")(doc)
    with pytest.raises(ValidationFailed) as info:
        parse_definition(doc)
    assert info.value.code == "invalid_contract"
    assert "contract.id" in str(info.value)
    assert info.value.to_dict()["problems"][0]["path"] == "contract.id"


# --- problem reporting: each problem once, at its own path ---


def test_each_problem_is_reported_exactly_once():
    doc = document()
    put("indicators", 0, "weight", "0")(doc)
    assert len(problems_of(doc)) == 1


def test_a_broken_indicator_does_not_make_its_baseline_unknown():
    doc = document()
    put("indicators", 1, "scoring", "direction", "sideways")(doc)
    assert {p for p, _ in problems_of(doc)} == {"indicators[1].scoring.direction"}


def test_a_broken_risk_share_is_not_also_reported_as_unknown_in_the_schedule():
    doc = document()
    put(*RS, "reference", "turnover")(doc)
    assert {p for p, _ in problems_of(doc)} == {"payment.risk_share.standard.reference"}


def test_sliding_thresholds_that_resolve_to_the_same_number_are_refused():
    doc = document()
    put(
        "indicators", 1, "scoring", {"rule": "sliding", "zero_at": "310", "full_at": {"baseline_change": "0"}}
    )(doc)
    assert {p for p, _ in problems_of(doc)} == {"indicators[1].scoring.full_at"}


# --- valid documents -----------------------------------------------------------------


def test_the_unbroken_worked_example_parses():
    defn = parse_definition(document())
    assert defn.id == "beds-msk"
    assert defn.start == date(2025, 4, 1)
    assert defn.providers == ("circle", "physio")
    assert defn.budget.year1 == D("24000000.00")
    assert defn.budget.uplift == (D("0.021"), D("0.019"))
    assert dict(defn.core_split) == {"circle": D("0.8"), "physio": D("0.2")}
    assert [e.from_year for e in defn.schedule] == [1, 2]
    assert defn.schedule_for(3).risk_share == "standard"
    assert defn.risk_share("standard").tiers[1].loss_share == D("0.6")
    assert [i.id for i in defn.indicators] == ["proms-improved", "readmissions", "shared-decisions"]
    assert defn.measure("shared-decisions.offered").aggregation == "sum"
    assert defn.measure("shared-decisions") is None


def test_yaml_numbers_are_read_as_decimal_from_their_text():
    doc = load_yaml("a: 0.1\nb: 2.50\nc: 3\nd: 1_000.5\n")
    assert doc == {"a": D("0.1"), "b": D("2.50"), "c": 3, "d": D("1000.5")}
    assert str(doc["b"]) == "2.50"


def test_defaults_apply_when_optional_fields_are_left_out():
    doc = document()
    for key in ("core_split",):
        del doc["payment"][key]
    del doc["indicators"][0]["attribution"]
    del doc["indicators"][0]["unit"]
    del doc["indicators"][0]["aggregation"]
    del doc["indicators"][0]["paid_from_year"]
    defn = parse_definition(doc)
    assert dict(defn.core_split) == {"circle": D(1)}
    assert dict(defn.indicators[0].attribution) == {"circle": D(1)}
    assert defn.indicators[0].measure.unit == "ratio"
    assert defn.indicators[0].measure.aggregation == "sum"
    assert defn.indicators[0].paid_from_year == 1


@pytest.mark.parametrize("variant", ["worked example", "capitation with history", "extension"])
def test_from_document_of_to_document_round_trips_to_an_equal_definition(variant):
    doc = document()
    if variant == "capitation with history":
        doc["budget"] = {
            "capitation": CAPITATION,
            "efficiency": "0.04",
            "uplift": "0.02",
            "population_tolerance": "0.02",
            "historical_spend": {2023: "1.00", 2024: "2.50"},
        }
    if variant == "extension":
        doc["contract"]["extension_years"] = 2
    original = parse_definition(doc)
    stored = to_document(doc)
    assert from_document(stored) == original
    assert from_document(original.document) == original
    assert from_document(from_document(stored).document) == original
