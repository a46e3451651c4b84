"""The contract's finance section and the financial-year arithmetic behind due dates and accruals."""

from datetime import date

import pytest

from ledger.domain.finance import (
    DEFAULT,
    FinanceTerms,
    decided_on,
    financial_year,
    financial_year_bounds,
    last_day_of_period,
)


@pytest.mark.parametrize(
    "day, label",
    [
        (date(2027, 3, 31), "2026/27"),
        (date(2027, 4, 1), "2027/28"),
        (date(2028, 1, 15), "2027/28"),
        (date(2099, 12, 31), "2099/00"),
    ],
)
def test_a_day_belongs_to_the_financial_year_running_from_1_april_to_31_march(day, label):
    assert financial_year(day) == label


def test_a_financial_year_label_gives_its_first_and_last_day_and_a_malformed_one_is_refused():
    assert financial_year_bounds("2027/28") == (date(2027, 4, 1), date(2028, 3, 31))
    for bad in ("2027-28", "2027/29", "27/28", "2027/2028", ""):
        with pytest.raises(ValueError):
            financial_year_bounds(bad)


def test_due_dates_follow_the_payment_terms_with_the_defaults_a_commissioner_expects():
    assert last_day_of_period(date(2026, 10, 1), 3) == date(2026, 12, 31)
    assert last_day_of_period(date(2028, 2, 1), 1) == date(2028, 2, 29)
    assert DEFAULT.instalment_due(date(2026, 12, 31)) == date(2026, 12, 31)
    assert DEFAULT.settlement_due("2027-05-20T10:00:00Z") == date(2027, 6, 19)  # 30 days after the decision
    terms = FinanceTerms(10, 14, {"circle": {"supplier_code": "S1"}})
    assert terms.instalment_due(date(2026, 12, 31)) == date(2027, 1, 10)
    assert terms.settlement_due("2027-05-20T23:59:59+00:00") == date(2027, 6, 3)
    assert terms.codes("circle") == {"supplier_code": "S1", "cost_centre": None, "purchase_order": None}
    assert terms.codes("physio") == {"supplier_code": None, "cost_centre": None, "purchase_order": None}
    assert decided_on("2027-05-20T00:00:00Z") == date(2027, 5, 20)
