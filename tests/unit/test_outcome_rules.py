"""Outcome indicators: values, scores and earned amounts (payment rules §4)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.domain.definition import Band, Indicator, Measure, Scoring, Threshold
from ledger.domain.numbers import money
from ledger.domain.periods import QUARTERLY, parse_period
from ledger.domain.rules.outcomes import (
    MISSING,
    NOT_LINKED,
    SCORED,
    Observation,
    indicator_score,
    measure_value,
    outcomes,
    resolve,
    score,
)
from tests.unit.worked_example import definition


def T(x):
    return Threshold(absolute=D(x))


def REL(change):
    return Threshold(baseline_change=D(change))


def ob(measure_id, provider, period, num=None, den=None, value=None, sid="s-x"):
    def dec(x):
        return None if x is None else D(x)

    return Observation(
        sid, measure_id, provider, parse_period(period, QUARTERLY), dec(num), dec(den), dec(value)
    )


def measure(unit="ratio", aggregation="sum", scoring=None, mid="m", weight="1"):
    scoring = scoring or Scoring("sliding", zero_at=T("0"), full_at=T("1"))
    return Measure(mid, D(weight), unit, aggregation, scoring)


# Two periods, two providers each, listed latest period first.
RATIO_OBS = [
    ob("m", "circle", "2025-Q3", num="45", den="50"),
    ob("m", "physio", "2025-Q3", num="5", den="50"),
    ob("m", "circle", "2025-Q2", num="30", den="100"),
    ob("m", "physio", "2025-Q2", num="10", den="100"),
]
VALUE_OBS = [
    ob("m", "circle", "2025-Q3", value="7"),
    ob("m", "physio", "2025-Q3", value="3"),
    ob("m", "circle", "2025-Q2", value="10"),
    ob("m", "physio", "2025-Q2", value="5"),
]


@pytest.mark.parametrize(
    "unit, aggregation, observations, expected",
    [
        ("ratio", "sum", RATIO_OBS, "0.3"),  # Σnum / Σden = 90 / 300
        ("ratio", "mean", RATIO_OBS, "0.35"),  # periods combined first: (40/200 + 50/100) / 2
        ("ratio", "latest", RATIO_OBS, "0.5"),  # 2025-Q3 combined: 50 / 100
        ("value", "sum", VALUE_OBS, "25"),
        ("value", "mean", VALUE_OBS, "12.5"),  # (15 + 10) / 2
        ("value", "latest", VALUE_OBS, "10"),  # 2025-Q3 combined: 7 + 3
    ],
)
def test_each_aggregation_combines_providers_per_period_first(unit, aggregation, observations, expected):
    value, _ = measure_value(measure(unit, aggregation), observations)
    assert value == D(expected)


def test_mean_of_combined_periods_differs_from_a_mean_of_provider_ratios():
    observations = [
        ob("m", "circle", "2025-Q2", num="9", den="10"),
        ob("m", "physio", "2025-Q2", num="1", den="90"),
    ]
    value, _ = measure_value(measure("ratio", "mean"), observations)
    assert value == D("0.1")  # one period: 10 / 100, not the providers' (0.9 + 0.0111…) / 2


@pytest.mark.parametrize("aggregation", ["sum", "mean", "latest"])
@pytest.mark.parametrize("unit", ["ratio", "value"])
def test_a_measure_with_no_submission_in_the_year_is_missing(unit, aggregation):
    value, _ = measure_value(measure(unit, aggregation), [])
    assert value is None


@pytest.mark.parametrize("aggregation", ["sum", "mean", "latest"])
def test_a_ratio_whose_denominators_sum_to_zero_is_missing(aggregation):
    observations = [
        ob("m", "circle", "2025-Q2", num="0", den="0"),
        ob("m", "physio", "2025-Q2", num="0", den="0"),
    ]
    value, _ = measure_value(measure("ratio", aggregation), observations)
    assert value is None


def test_a_missing_linked_indicator_scores_zero_and_earns_nothing():
    results = outcomes(
        definition(),
        2,
        D("1000.00"),
        [ob("proms-improved", "circle", "2026-Q2", num="0", den="0")],
        dict(definition().baselines),
    )
    proms = results[0]
    assert (proms.status, proms.value, proms.score, proms.earned) == (MISSING, None, D(0), D("0.00"))


def test_the_measure_trace_lists_combined_periods_and_submissions():
    _, trace = measure_value(measure("ratio", "sum"), RATIO_OBS)
    assert trace["periods"] == [
        {"period": "2025-Q2", "numerator": "40", "denominator": "200"},
        {"period": "2025-Q3", "numerator": "50", "denominator": "100"},
    ]


# --- scoring rules -------------------------------------------------------------------

FIXED_HIGHER = Scoring("fixed", target=T("0.80"), direction="higher")
FIXED_LOWER = Scoring("fixed", target=T("310"), direction="lower")
BANDS_AT_LEAST = Scoring("bands", bands=(Band(T("0.80"), D("0.5"), True), Band(T("0.90"), D("1"), True)))
BANDS_AT_LEAST_UNORDERED = Scoring(
    "bands", bands=(Band(T("0.90"), D("1"), True), Band(T("0.80"), D("0.5"), True))
)
BANDS_LOWER_BAND_PAYS_MORE = Scoring(
    "bands", bands=(Band(T("0.50"), D("1"), True), Band(T("0.80"), D("0.5"), True))
)
BANDS_AT_MOST = Scoring("bands", bands=(Band(T("100"), D("0.5"), False), Band(T("80"), D("1"), False)))
SLIDING_HIGHER = Scoring("sliding", zero_at=T("0.60"), full_at=T("0.85"))
SLIDING_LOWER = Scoring("sliding", zero_at=T("100"), full_at=T("50"))


@pytest.mark.parametrize(
    "scoring, value, expected",
    [
        (FIXED_HIGHER, "0.80", "1"),
        (FIXED_HIGHER, "0.95", "1"),
        (FIXED_HIGHER, "0.7999", "0"),
        (FIXED_LOWER, "310", "1"),
        (FIXED_LOWER, "200", "1"),
        (FIXED_LOWER, "310.01", "0"),
        (BANDS_AT_LEAST, "0.79", "0"),
        (BANDS_AT_LEAST, "0.80", "0.5"),
        (BANDS_AT_LEAST, "0.85", "0.5"),
        (BANDS_AT_LEAST, "0.90", "1"),
        (BANDS_AT_LEAST, "0.99", "1"),
        (BANDS_AT_LEAST_UNORDERED, "0.85", "0.5"),
        (BANDS_AT_LEAST_UNORDERED, "0.95", "1"),
        (BANDS_LOWER_BAND_PAYS_MORE, "0.90", "1"),  # the largest score among the bands met
        (BANDS_LOWER_BAND_PAYS_MORE, "0.40", "0"),
        (BANDS_AT_MOST, "120", "0"),
        (BANDS_AT_MOST, "100", "0.5"),
        (BANDS_AT_MOST, "90", "0.5"),
        (BANDS_AT_MOST, "80", "1"),
        (BANDS_AT_MOST, "10", "1"),
        (SLIDING_HIGHER, "0.50", "0"),
        (SLIDING_HIGHER, "0.60", "0"),
        (SLIDING_HIGHER, "0.725", "0.5"),
        (SLIDING_HIGHER, "0.85", "1"),
        (SLIDING_HIGHER, "0.99", "1"),
        (SLIDING_LOWER, "150", "0"),
        (SLIDING_LOWER, "100", "0"),
        (SLIDING_LOWER, "75", "0.5"),
        (SLIDING_LOWER, "60", "0.8"),
        (SLIDING_LOWER, "50", "1"),
        (SLIDING_LOWER, "0", "1"),
    ],
)
def test_each_scoring_rule_gives_the_spec_score(scoring, value, expected):
    result, _ = score(scoring, D(value), {}, "m")
    assert result == D(expected)


def test_a_sliding_score_is_exact_and_unrounded():
    result, _ = score(SLIDING_HIGHER, D("0.7171296296296296296296296296"), {}, "m")
    assert result == D("0.4685185185185185185185185184")


BASELINES = {"readmissions": D("310")}


@pytest.mark.parametrize(
    "scoring, value, expected",
    [
        (Scoring("fixed", target=REL("-0.10"), direction="lower"), "279", "1"),  # 310 × 0.9 = 279
        (Scoring("fixed", target=REL("-0.10"), direction="lower"), "279.5", "0"),
        (Scoring("fixed", target=REL("0.10"), direction="higher"), "341", "1"),  # 310 × 1.1 = 341
        (Scoring("fixed", target=REL("0.10"), direction="higher"), "340", "0"),
        (Scoring("sliding", zero_at=REL("0"), full_at=REL("-0.20")), "279", "0.5"),  # from 310 down to 248
        (Scoring("sliding", zero_at=REL("0"), full_at=REL("-0.20")), "248", "1"),
        (
            Scoring("bands", bands=(Band(REL("-0.05"), D("0.5"), False), Band(REL("-0.10"), D("1"), False))),
            "290",
            "0.5",
        ),  # ≤ 294.5 but > 279
    ],
)
def test_thresholds_relative_to_the_baseline_are_baseline_times_one_plus_change(scoring, value, expected):
    result, _ = score(scoring, D(value), BASELINES, "readmissions")
    assert result == D(expected)


@pytest.mark.parametrize(
    "baselines, expected",
    [
        ({"shared-decisions.offered": D("0.5")}, "0.55"),  # by its full key
        ({"offered": D("0.8")}, "0.88"),  # by the sub-indicator's own id
        ({"shared-decisions.offered": D("0.5"), "offered": D("0.8")}, "0.55"),  # the full key wins
    ],
)
def test_a_subcomponent_baseline_is_found_by_full_key_or_own_id(baselines, expected):
    assert resolve(REL("0.10"), baselines, "shared-decisions.offered") == D(expected)


def test_resolving_a_relative_threshold_with_no_baseline_fails_loudly():
    with pytest.raises(LookupError):
        resolve(REL("0.10"), {}, "m")


# --- subcomponents -------------------------------------------------------------------


def indicator_with_subcomponents():
    first = measure(
        "ratio", "sum", Scoring("fixed", target=T("0.5"), direction="higher"), mid="ind.a", weight="3"
    )
    second = measure(
        "ratio", "sum", Scoring("sliding", zero_at=T("0"), full_at=T("1")), mid="ind.b", weight="1"
    )
    return Indicator("ind", "Indicator", "process", D("1"), 1, None, (first, second), (("circle", D(1)),))


A_MET = [ob("ind.a", "circle", "2025-Q2", num="6", den="10")]  # 0.6 ≥ 0.5: score 1
B_HALF = [ob("ind.b", "circle", "2025-Q2", num="5", den="10")]  # sliding 0..1: score 0.5


@pytest.mark.parametrize(
    "a, b, expected_score, missing",
    [
        (A_MET, B_HALF, "0.875", False),  # 3/4 × 1 + 1/4 × 0.5: subweights are normalised
        (A_MET, [], "0.75", False),  # a missing subcomponent scores 0
        ([], B_HALF, "0.125", False),
        ([], [], "0", True),  # missing only when every subcomponent is
    ],
)
def test_an_indicator_with_subcomponents_scores_their_weighted_sum(a, b, expected_score, missing):
    value, result, is_missing, measures = indicator_score(
        indicator_with_subcomponents(), {"ind.a": a, "ind.b": b}, {}
    )
    assert value is None
    assert result == D(expected_score)
    assert is_missing is missing
    assert [m.measure_id for m in measures] == ["ind.a", "ind.b"]


def shared_decisions_documented_only():
    return [ob("shared-decisions.documented", "circle", "2027-Q2", num="625", den="1000")]


def test_the_worked_example_subcomponent_indicator_is_scored_when_only_one_part_reports():
    results = outcomes(
        definition(), 3, D("1000.00"), shared_decisions_documented_only(), dict(definition().baselines)
    )
    shared = results[2]
    # offered missing → 0; documented 0.625 on 0.50..0.75 → 0.5; 0.4 × 0.5 = 0.2
    assert shared.status == SCORED
    assert shared.score == D("0.2")
    assert shared.earned == money(D("1000.00") * D("0.2") * D("0.2"))


# --- linking, normalised weights and earned amounts ---------------------------------------

YEAR3_OBS = [
    ob("proms-improved", "circle", "2027-Q2", num="725", den="1000"),  # sliding 0.60..0.85 → 0.5
    ob("readmissions", "circle", "2027-Q2", value="279"),  # ≤ 310 × 0.9 → 1
]


@pytest.mark.parametrize(
    "year, normalised, statuses",
    [
        (1, ["0", "0", "0"], [NOT_LINKED, NOT_LINKED, NOT_LINKED]),
        (2, ["0.625", "0.375", "0"], [SCORED, SCORED, NOT_LINKED]),  # 0.5 / 0.8 and 0.3 / 0.8
        (3, ["0.5", "0.3", "0.2"], [SCORED, SCORED, MISSING]),
    ],
)
def test_weights_are_normalised_over_the_indicators_linked_that_year(year, normalised, statuses):
    results = outcomes(definition(), year, D("1000.00"), YEAR3_OBS, dict(definition().baselines))
    assert [r.normalised_weight for r in results] == [D(n) for n in normalised]
    assert [r.status for r in results] == statuses


def test_an_unlinked_indicator_is_scored_and_reported_but_earns_nothing():
    results = outcomes(definition(), 1, D("1000.00"), YEAR3_OBS, dict(definition().baselines))
    proms = results[0]
    assert proms.status == NOT_LINKED
    assert proms.score == D("0.5")
    assert proms.earned == D("0.00")
    assert sum(r.earned for r in results) == D("0.00")  # the pot stays with the commissioner


@pytest.mark.parametrize(
    "pot, observations, earned",
    [
        ("1000.00", YEAR3_OBS, ["250.00", "300.00", "0.00"]),  # pot × w' × score
        ("999.99", YEAR3_OBS, ["250.00", "300.00", "0.00"]),  # 249.9975 → 250.00; 299.997 → 300.00
        # 1.00 × 0.5 × 0.01 = 0.005 → 0.01: earned is rounded half up, once, per indicator
        (
            "1.00",
            [ob("proms-improved", "circle", "2027-Q2", num="6025", den="10000")],
            ["0.01", "0.00", "0.00"],
        ),
        ("0.00", YEAR3_OBS, ["0.00", "0.00", "0.00"]),
    ],
)
def test_earned_is_the_pot_times_normalised_weight_times_score_rounded_to_pence(pot, observations, earned):
    results = outcomes(definition(), 3, D(pot), observations, dict(definition().baselines))
    assert [r.earned for r in results] == [D(e) for e in earned]
    for r in results:
        assert r.earned == money(D(pot) * r.normalised_weight * r.score)


@pytest.mark.parametrize(
    "pot, proms_split, readmissions_split",
    [
        ("1000.00", {"circle": "175.00", "physio": "75.00"}, {"circle": "300.00"}),
        # 250.01 × 0.3 = 75.003 → 75.00 to physio; circle takes 175.01
        ("1000.04", {"circle": "175.01", "physio": "75.00"}, {"circle": "300.01"}),
    ],
)
def test_earned_amounts_are_split_by_attribution_with_the_lead_taking_the_remainder(
    pot, proms_split, readmissions_split
):
    results = outcomes(definition(), 3, D(pot), YEAR3_OBS, dict(definition().baselines))
    assert dict(results[0].by_party) == {k: D(v) for k, v in proms_split.items()}
    assert dict(results[1].by_party) == {k: D(v) for k, v in readmissions_split.items()}
    for r in results:
        assert sum(r.by_party.values()) == r.earned


def test_the_statement_line_of_an_indicator_is_text():
    results = outcomes(definition(), 2, D("1000.00"), YEAR3_OBS, dict(definition().baselines))
    assert results[2].to_statement() == {
        "id": "shared-decisions",
        "status": NOT_LINKED,
        "value": None,
        "score": "0",
        "weight": "0.2",
        "normalised_weight": "0",
        "earned": "0.00",
    }
