"""Money, decimal helpers and the contract calendar (payment rules §1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from ledger.domain.numbers import NotANumber, fmt, fmt_money, money, split, to_decimal
from ledger.domain.periods import (
    MONTHLY,
    QUARTERLY,
    Calendar,
    PeriodError,
    add_years,
    parse_period,
    stored_period,
)
from tests.unit.worked_example import definition

# --- reading numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("12.50", D("12.50")),
        (" 7 ", D("7")),
        (300, D("300")),
        (D("0.1"), D("0.1")),
        ("1e3", D("1000")),
        ("-0.04", D("-0.04")),
    ],
)
def test_to_decimal_reads_numbers_from_their_text(raw, expected):
    assert to_decimal(raw) == expected
    assert isinstance(to_decimal(raw), D)


def test_to_decimal_keeps_the_written_places():
    assert str(to_decimal("2.50")) == "2.50"


@pytest.mark.parametrize(
    "raw",
    [
        0.1,
        1.0,
        True,
        False,
        None,
        "",
        "   ",
        "n/a",
        "1,000",
        "NaN",
        "Infinity",
        "-inf",
        D("NaN"),
        D("Infinity"),
        [1],
        "0.6O",
        "1_000.25",  # Decimal() reads these four; the ledger's grammar is ASCII digits only
        "\u0661\u0662",  # Arabic-Indic 12
        "\uff11\uff12",  # full-width 12
        "\x1c12",
        "12\x85",
        "\t12",
        "12\n",
        "\xa012",
    ],
)
def test_to_decimal_refuses_floats_bools_and_non_numbers(raw):
    with pytest.raises(NotANumber):
        to_decimal(raw)


# --- rounding to pence, half up ------------------------------------------------------


@pytest.mark.parametrize(
    "amount, pence",
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("2.675", "2.68"),  # 2.675 is exact in Decimal: half up, not banker's rounding
        ("2.665", "2.67"),  # half-even would give 2.66
        ("1.125", "1.13"),
        ("33.335", "33.34"),
        ("-0.005", "-0.01"),  # half away from zero for negative amounts
        ("-2.675", "-2.68"),
        ("-1.124", "-1.12"),
        ("100", "100.00"),
        ("23523840", "23523840.00"),
    ],
)
def test_money_rounds_to_pence_half_up(amount, pence):
    result = money(D(amount))
    assert result == D(pence)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value, text",
    [
        (D("0.625"), "0.625"),
        (D("1E+2"), "100"),
        (D("-0"), "0"),
        (D("0.0000001"), "0.0000001"),
        (None, None),
    ],
)
def test_fmt_writes_plain_decimal_text_without_exponent(value, text):
    assert fmt(value) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (D("1570978.666"), "1570978.67"),
        (D("5"), "5.00"),
        (D("-0.001"), "0.00"),
        (D("-945409.6"), "-945409.60"),
    ],
)
def test_fmt_money_writes_exactly_two_places_and_no_negative_zero(value, text):
    assert fmt_money(value) == text


# --- splitting among parties ---------------------------------------------------------


def test_split_in_thirds_gives_the_lead_the_rounding_remainder():
    third = D(1) / D(3)
    parts = split(D("100.00"), {"lead": third, "a": third, "b": third}, "lead")
    assert parts == {"a": D("33.33"), "b": D("33.33"), "lead": D("33.34")}


@pytest.mark.parametrize(
    "amount, fractions, expected",
    [
        (
            "24000000.00",
            {"circle": "0.8", "physio": "0.2"},
            {"circle": "19200000.00", "physio": "4800000.00"},
        ),
        ("688834.67", {"circle": "0.7", "physio": "0.3"}, {"circle": "482184.27", "physio": "206650.40"}),
        ("0.05", {"circle": "0.5", "physio": "0.5"}, {"circle": "0.02", "physio": "0.03"}),
        ("-0.05", {"circle": "0.5", "physio": "0.5"}, {"circle": "-0.02", "physio": "-0.03"}),
        ("10.00", {"physio": "1"}, {"circle": "0.00", "physio": "10.00"}),
        ("10.00", {"circle": "1"}, {"circle": "10.00"}),
    ],
)
def test_split_rounds_each_other_party_and_the_lead_takes_the_remainder(amount, fractions, expected):
    parts = split(D(amount), {k: D(v) for k, v in fractions.items()}, "circle")
    assert parts == {k: D(v) for k, v in expected.items()}
    assert sum(parts.values()) == D(amount)


# --- periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, first_day",
    [
        ("2025-04", MONTHLY, date(2025, 4, 1)),
        ("2025-12", MONTHLY, date(2025, 12, 1)),
        ("2025-Q1", QUARTERLY, date(2025, 1, 1)),
        ("2025-Q2", QUARTERLY, date(2025, 4, 1)),
        ("2026-Q4", QUARTERLY, date(2026, 10, 1)),
    ],
)
def test_a_period_starts_on_its_first_day(text, kind, first_day):
    period = parse_period(text, kind)
    assert period.first_day == first_day
    assert period.label == text
    assert period.kind == kind
    assert period == parse_period(period.label, kind)  # the label is the one canonical spelling


@pytest.mark.parametrize(
    "text, kind",
    [
        ("2025-13", MONTHLY),
        ("2025-00", MONTHLY),
        ("2025-4", MONTHLY),
        ("25-04", MONTHLY),
        ("2025/04", MONTHLY),
        ("2025-04-01", MONTHLY),
        (" 2025-04", MONTHLY),
        ("", MONTHLY),
        ("2025-Q2", MONTHLY),  # a quarter on a monthly contract
        ("2025-04", QUARTERLY),  # a month on a quarterly contract
        ("2025-Q0", QUARTERLY),
        ("2025-Q5", QUARTERLY),
        ("2025-q2", QUARTERLY),
        ("2025Q2", QUARTERLY),
        (202504, MONTHLY),
        ("\u0662\u0660\u0662\u0665-Q3", QUARTERLY),  # Arabic-Indic digits
        ("\uff12\uff10\uff12\uff15-Q3", QUARTERLY),  # full-width digits
        ("2025-\uff10\uff14", MONTHLY),
        ("2025-Q3\n", QUARTERLY),  # a trailing newline
        ("2025-04\n", MONTHLY),
        ("0000-Q3", QUARTERLY),  # year 0 does not exist: a PeriodError, not a bare ValueError
        ("0000-01", MONTHLY),
    ],
)
def test_malformed_periods_are_refused(text, kind):
    with pytest.raises(PeriodError):
        parse_period(text, kind)


def test_periods_are_ordered_by_their_first_day():
    labels = ["2026-Q1", "2025-Q3", "2025-Q4", "2025-Q2"]
    ordered = sorted(parse_period(t, QUARTERLY) for t in labels)
    assert [p.label for p in ordered] == ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]


def test_the_period_after_december_is_january_and_after_q4_is_q1():
    assert parse_period("2025-12", MONTHLY).next().label == "2026-01"
    assert parse_period("2025-Q4", QUARTERLY).next().label == "2026-Q1"


@pytest.mark.parametrize(
    "day, years, expected",
    [
        (date(2025, 4, 1), 1, date(2026, 4, 1)),
        (date(2024, 2, 29), 1, date(2025, 2, 28)),
        (date(2024, 2, 29), 4, date(2028, 2, 29)),
    ],
)
def test_add_years_keeps_the_calendar_day_and_29_february_falls_back(day, years, expected):
    assert add_years(day, years) == expected


def labels(periods):
    return [p.label for p in periods]


def test_a_quarterly_contract_from_april_has_year_one_from_q2_to_the_next_q1():
    cal = Calendar(date(2025, 4, 1), QUARTERLY, 3)
    assert labels(cal.periods(1)) == ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]
    assert labels(cal.periods(3)) == ["2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"]


def test_a_monthly_contract_from_april_has_twelve_months_per_year():
    cal = Calendar(date(2025, 4, 1), MONTHLY, 2)
    assert labels(cal.periods(1)) == [f"2025-{m:02d}" for m in range(4, 13)] + [
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert cal.periods(2)[0].label == "2026-04"


def test_a_monthly_contract_starting_mid_month_begins_with_the_first_whole_month():
    # A period belongs to the year containing its first day: 1 April is before the start.
    cal = Calendar(date(2025, 4, 15), MONTHLY, 2)
    assert labels(cal.periods(1)) == [f"2025-{m:02d}" for m in range(5, 13)] + [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    assert cal.year_of(parse_period("2025-04", MONTHLY)) is None
    assert cal.year_of(parse_period("2026-04", MONTHLY)) == 1
    assert cal.year_of(parse_period("2026-05", MONTHLY)) == 2


def test_a_contract_starting_on_29_february_has_twelve_months_every_year():
    cal = Calendar(date(2024, 2, 29), MONTHLY, 5)
    assert labels(cal.periods(1))[0] == "2024-03"
    assert labels(cal.periods(1))[-1] == "2025-02"
    assert labels(cal.periods(2))[0] == "2025-03"
    for year in range(1, 6):
        assert len(cal.periods(year)) == 12
    assert cal.year_of(parse_period("2025-02", MONTHLY)) == 1
    assert cal.year_of(parse_period("2028-02", MONTHLY)) == 4
    assert cal.year_of_date(date(2025, 2, 28)) == 2
    assert cal.year_of_date(date(2025, 2, 27)) == 1


@pytest.mark.parametrize(
    "label, year",
    [
        ("2025-Q1", None),  # before the start
        ("2025-Q2", 1),
        ("2026-Q1", 1),
        ("2026-Q2", 2),
        ("2028-Q1", 3),
        ("2028-Q2", None),  # after the term
        ("2030-Q4", None),
    ],
)
def test_year_of_is_none_for_periods_outside_the_term(label, year):
    cal = Calendar(date(2025, 4, 1), QUARTERLY, 3)
    assert cal.year_of(parse_period(label, QUARTERLY)) == year


def test_an_extension_brings_later_periods_into_the_term():
    cal = Calendar(date(2025, 4, 1), QUARTERLY, 5)
    assert cal.year_of(parse_period("2028-Q2", QUARTERLY)) == 4
    assert labels(cal.periods(5)) == ["2029-Q2", "2029-Q3", "2029-Q4", "2030-Q1"]


def test_the_worked_example_contract_calendar_is_quarterly_from_april_2025():
    cal = definition().calendar()
    assert cal.kind == QUARTERLY and cal.years == 3
    assert labels(cal.periods(2)) == ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"]
    assert cal.period("2026-Q3").first_day == date(2026, 7, 1)


@pytest.mark.parametrize(
    "text, kind, first_day",
    [
        ("٢٠٢٥-Q3", QUARTERLY, date(2025, 7, 1)),
        ("２０２５-07", MONTHLY, date(2025, 7, 1)),
        ("2025-Q3\n", QUARTERLY, date(2025, 7, 1)),
    ],
)
def test_a_stored_label_of_the_old_grammar_reads_back_as_it_did_but_new_input_is_refused(
    text, kind, first_day
):
    """Records accepted before periods were held to ASCII digits keep their label and first day, so
    an existing ledger's figures do not change; the same text as new input is refused."""
    stored = stored_period(text, kind)
    assert (stored.first_day, stored.label) == (first_day, text)
    with pytest.raises(PeriodError):
        parse_period(text, kind)
    assert stored_period("2025-Q3", QUARTERLY) == parse_period("2025-Q3", QUARTERLY)
    with pytest.raises(PeriodError):
        stored_period("2025-Q5", QUARTERLY)
