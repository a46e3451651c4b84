"""Budget for a contract year and core instalments (payment rules §2-§3)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.domain.definition import parse_definition
from ledger.domain.numbers import money
from ledger.domain.rules.budget import adjustment_factor, budget_for_year, core_for_year, instalment
from tests.unit.worked_example import definition, document, expected_statements


def fixed_contract(**budget):
    doc = document()
    doc["budget"].update(budget)
    return parse_definition(doc)


CAPITATION = {
    "rate_per_head": "850.00",
    "segments": [
        {"id": "hips", "name": "Hips", "weight": "1.8", "projected": [4000, 4050, 4100]},
        {"id": "knees", "name": "Knees", "weight": "1.0", "projected": [10000, 10200, 10400]},
    ],
}


def capitation_contract(tolerance="0.02", extension_years=0):
    doc = document()
    doc["contract"]["extension_years"] = extension_years
    doc["budget"] = {
        "capitation": CAPITATION,
        "efficiency": "0.04",
        "uplift": "0.02",
        "population_tolerance": tolerance,
    }
    return parse_definition(doc)


# --- fixed budgets -------------------------------------------------------------------


@pytest.mark.parametrize(
    "year, amount",
    [
        (1, "24000000.00"),
        (2, "23523840.00"),  # 24m × 0.96 × 1.021
        (3, "23011961.24"),  # 24m × 0.96 × 1.021 × 0.96 × 1.019 = 23011961.2416
    ],
)
def test_the_worked_example_budget_follows_efficiency_and_uplift(year, amount):
    assert budget_for_year(definition(), year).amount == D(amount)


def test_the_worked_example_year_two_budget_matches_the_expected_statement():
    assert budget_for_year(definition(), 2).amount == D(expected_statements()[2]["budget"])


def test_the_adjustment_factor_is_the_unrounded_product_of_the_yearly_factors():
    assert adjustment_factor(definition(), 1) == D(1)
    assert adjustment_factor(definition(), 3) == D("0.96") * D("1.021") * D("0.96") * D("1.019")


def test_a_fixed_budget_is_rounded_once_from_the_unrounded_product_not_year_by_year():
    defn = fixed_contract(year1="100.00", efficiency="0", uplift="0.00125")
    assert budget_for_year(defn, 2).amount == D("100.13")  # 100.125 half up
    # 100 × 1.00125² = 100.25015625 → 100.25; rounding year by year would give 100.26.
    assert budget_for_year(defn, 3).amount == D("100.25")
    assert money(D("100.13") * D("1.00125")) == D("100.26")


@pytest.mark.parametrize(
    "efficiency, uplift, year, amount",
    [
        ("0.04", "0.021", 2, "23523840.00"),  # scalars apply every year
        ("0.04", "0.021", 3, money(D(24000000) * (D("0.96") * D("1.021")) ** 2)),
        (["0.04", "0.05"], "0", 2, "23040000.00"),  # list entry 0 is year 2
        (["0.04", "0.05"], "0", 3, "21888000.00"),  # list entry 1 is year 3
        ("0", ["0.01", "-0.01"], 3, "23997600.00"),  # 24m × 1.01 × 0.99
    ],
)
def test_efficiency_and_uplift_may_be_scalars_or_per_year_lists(efficiency, uplift, year, amount):
    defn = fixed_contract(efficiency=efficiency, uplift=uplift)
    assert budget_for_year(defn, year).amount == D(amount)


@pytest.mark.parametrize(
    "year, amount",
    [
        (4, "22511220.96"),  # year 3 × 0.96 × 1.019: the last uplift entry repeats
        (5, "22021376.80"),
    ],
)
def test_extension_years_repeat_the_last_list_entry(year, amount):
    doc = document()
    doc["contract"]["extension_years"] = 2
    defn = parse_definition(doc)
    assert defn.budget.uplift_for(year) == D("0.019")
    assert budget_for_year(defn, year).amount == D(amount)


def test_the_budget_trace_names_its_inputs():
    trace = budget_for_year(definition(), 3).trace
    assert trace["method"] == "fixed"
    assert trace["efficiency"] == ["0.04", "0.04"]
    assert trace["uplift"] == ["0.021", "0.019"]


# --- capitation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "year, amount",
    [
        (1, "14620000.00"),  # 850 × (1.8 × 4000 + 10000)
        (2, "14557276.80"),  # 850 × 0.96 × 1.02 = 832.32 per head × 17490
        (3, money(D(850) * (D("0.96") * D("1.02")) ** 2 * (D("1.8") * 4100 + 10400))),
    ],
)
def test_a_capitation_budget_is_rate_times_weighted_projected_counts(year, amount):
    figure = budget_for_year(capitation_contract(), year)
    assert figure.amount == D(amount)
    assert figure.trace["counts_used"] == "projected"


def test_a_capitation_extension_year_repeats_the_last_projection():
    defn = capitation_contract(extension_years=1)
    expected = money(D(850) * (D("0.96") * D("1.02")) ** 3 * (D("1.8") * 4100 + 10400))
    assert budget_for_year(defn, 4).amount == expected


@pytest.mark.parametrize(
    "counts, used, amount",
    [
        ({}, "projected", "14620000.00"),
        ({"hips": 4000, "knees": 10000}, "projected", "14620000.00"),  # same as projected
        ({"hips": 4100}, "projected", "14620000.00"),  # 17380 / 17200: +1.05 %
        ({"knees": 10344}, "projected", "14620000.00"),  # exactly +2 %: not beyond
        ({"knees": 10345}, "actual", "14913250.00"),  # just beyond: 850 × 17545
        ({"hips": 4000, "knees": 10500}, "actual", "15045000.00"),  # +2.9 %: 850 × 17700
        ({"knees": 9000}, "actual", "13770000.00"),  # −5.8 %: 850 × 16200
        ({"hips": 4500}, "actual", "15385000.00"),  # knees keeps its projection
        ({"hips": 4500, "elbows": 1}, "actual", "15385000.00"),  # unknown segment ignored
    ],
)
def test_actual_population_replaces_the_projection_only_beyond_the_tolerance(counts, used, amount):
    figure = budget_for_year(capitation_contract(), 1, counts)
    assert figure.trace["counts_used"] == used
    assert figure.amount == D(amount)


def test_with_no_tolerance_any_different_count_uses_the_actual_counts():
    figure = budget_for_year(capitation_contract(tolerance="0"), 1, {"hips": 4001})
    assert figure.trace["counts_used"] == "actual"
    assert figure.amount == money(D(850) * (D("1.8") * 4001 + 10000))


def test_actual_counts_in_a_later_year_use_that_years_rate():
    figure = budget_for_year(capitation_contract(), 2, {"knees": 11000})
    assert figure.trace["counts_used"] == "actual"
    assert figure.amount == money(D("832.32") * (D("1.8") * 4050 + 11000))


# --- core and instalments ------------------------------------------------------------


def test_the_worked_example_year_two_core_is_ninety_percent_of_the_budget():
    expected = expected_statements()[2]["core"]
    assert core_for_year(D("23523840.00"), D("0.90")) == D(expected["annual"])


def test_the_worked_example_instalments_match_the_expected_statements():
    defn = definition()
    for year in (1, 2):
        expected = expected_statements()[year]["core"]
        core = D(expected["annual"])
        periods = defn.calendar().periods(year)
        paid = D(0)
        got = []
        for index, period in enumerate(periods, start=1):
            amount = instalment(core, paid, index, len(periods))
            paid += amount
            got.append({"period": period.label, "amount": format(amount, "f")})
        assert got == expected["instalments"]


def pay_all(core, count, changes=None):
    """Instalments 1..count; ``changes`` maps an instalment index to the core known from then."""
    changes = changes or {}
    paid, out = D(0), []
    for index in range(1, count + 1):
        core = changes.get(index, core)
        amount = instalment(core, paid, index, count)
        paid += amount
        out.append(amount)
    return out


@pytest.mark.parametrize(
    "core, count, expected",
    [
        # round(100/3) = 33.33; round(66.67/2) = round(33.335) = 33.34 half up; the last takes 33.33.
        ("100.00", 3, ["33.33", "33.34", "33.33"]),
        ("100.00", 4, ["25.00"] * 4),
        ("0.10", 4, ["0.03", "0.02", "0.03", "0.02"]),
        # 666.68/8 = 83.335 → 83.34, 500.01/6 = 83.335 → 83.34, …: half pennies round up.
        (
            "1000.00",
            12,
            [
                "83.33",
                "83.33",
                "83.33",
                "83.33",
                "83.34",
                "83.33",
                "83.34",
                "83.33",
                "83.34",
                "83.33",
                "83.34",
                "83.33",
            ],
        ),
        ("0.00", 4, ["0.00"] * 4),
    ],
)
def test_instalments_follow_the_remaining_balance_rule(core, count, expected):
    amounts = pay_all(D(core), count)
    assert amounts == [D(a) for a in expected]
    assert sum(amounts) == D(core)


def test_the_last_instalment_takes_the_exact_remainder():
    assert instalment(D("100.00"), D("66.67"), 3, 3) == D("33.33")
    assert instalment(D("100.00"), D("66.66"), 3, 3) == D("33.34")


def test_a_mid_year_budget_change_is_spread_over_the_remaining_instalments():
    # Core 1200.00 over 12 months; from month 4 the core is 1500.00.
    amounts = pay_all(D("1200.00"), 12, {4: D("1500.00")})
    assert amounts[:3] == [D("100.00")] * 3
    assert amounts[3:] == [
        D("133.33"),
        D("133.33"),
        D("133.33"),
        D("133.34"),
        D("133.33"),
        D("133.34"),
        D("133.33"),
        D("133.34"),
        D("133.33"),
    ]
    assert sum(amounts) == D("1500.00")


def test_a_budget_cut_below_what_was_paid_makes_the_remaining_instalments_negative():
    amounts = pay_all(D("400.00"), 4, {4: D("250.00")})
    assert amounts == [D("100.00"), D("100.00"), D("100.00"), D("-50.00")]


@pytest.mark.parametrize("index, count", [(0, 4), (5, 4), (-1, 12), (13, 12)])
def test_an_instalment_index_outside_the_year_is_refused(index, count):
    with pytest.raises(ValueError):
        instalment(D("100.00"), D(0), index, count)
