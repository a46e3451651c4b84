"""Invariants of the payment rules, checked on random but valid contracts and data.

Contracts are the worked example with its numbers varied (not built from scratch),
so every generated document is one a commissioner could write.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.domain.definition import Band, RiskShareTerms, Scoring, Threshold, Tier, parse_definition
from ledger.domain.numbers import money, split
from ledger.domain.periods import QUARTERLY, parse_period
from ledger.domain.rules.budget import budget_for_year, instalment
from ledger.domain.rules.outcomes import Observation, score
from ledger.domain.rules.riskshare import CostFact, risk_share
from ledger.domain.rules.settlement import settle_year
from tests.unit.worked_example import document

SETTINGS = settings(max_examples=150, deadline=None)


def pence(low=0, high=10**11):
    return st.integers(low, high).map(lambda n: D(n) / 100)


def fraction(places=4, low=0, high=None):
    top = 10**places if high is None else high
    return st.integers(low, top).map(lambda n: D(n) / D(10**places))


# --- instalments ---------------------------------------------------------------------


@SETTINGS
@given(core=pence(0, 10**12), count=st.sampled_from([4, 12]))
def test_instalments_for_a_year_sum_exactly_to_the_annual_core(core, count):
    paid = D(0)
    for index in range(1, count + 1):
        amount = instalment(core, paid, index, count)
        assert amount == money(amount)
        paid += amount
    assert paid == core


@SETTINGS
@given(core=pence(0, 10**12), count=st.sampled_from([4, 12]), data=st.data())
def test_instalments_sum_to_the_final_core_after_mid_year_changes(core, count, data):
    changes = data.draw(st.dictionaries(st.integers(1, count), pence(0, 10**12), max_size=3))
    paid = D(0)
    for index in range(1, count + 1):
        core = changes.get(index, core)
        paid += instalment(core, paid, index, count)
    assert paid == core


# --- splits --------------------------------------------------------------------------


@SETTINGS
@given(amount=pence(-(10**11), 10**11), others=st.lists(fraction(4, 0, 3000), min_size=0, max_size=3))
def test_split_parts_sum_to_the_amount_and_others_are_their_rounded_fraction(amount, others):
    fractions = {f"sub{i}": f for i, f in enumerate(others)}
    fractions["lead"] = D(1) - sum(others, D(0))
    parts = split(amount, fractions, "lead")
    assert sum(parts.values()) == amount
    for party, f in fractions.items():
        if party != "lead":
            assert parts[party] == money(amount * f)


# --- scores --------------------------------------------------------------------------

values = st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def scorings(draw):
    rule = draw(st.sampled_from(["fixed", "bands", "sliding"]))
    if rule == "fixed":
        return Scoring(
            "fixed",
            target=Threshold(absolute=draw(values)),
            direction=draw(st.sampled_from(["higher", "lower"])),
        )
    if rule == "bands":
        higher = draw(st.booleans())
        bands = draw(st.lists(st.tuples(values, fraction(2)), min_size=1, max_size=4))
        return Scoring("bands", bands=tuple(Band(Threshold(absolute=t), s, higher) for t, s in bands))
    zero, full = draw(values), draw(values)
    assume(zero != full)
    return Scoring("sliding", zero_at=Threshold(absolute=zero), full_at=Threshold(absolute=full))


@SETTINGS
@given(scoring=scorings(), value=values)
def test_scores_are_always_between_zero_and_one(scoring, value):
    result, _ = score(scoring, value, {}, "m")
    assert D(0) <= result <= D(1)


# --- random contracts from the worked example ----------------------------------------


@st.composite
def contracts(draw):
    doc = document()
    doc["budget"]["year1"] = str(draw(pence(100_00, 10**10)))
    doc["budget"]["efficiency"] = str(draw(fraction(3, 0, 100)))
    doc["budget"]["uplift"] = [str(draw(fraction(3, 0, 60))), str(draw(fraction(3, 0, 60)))]
    physio = draw(fraction(3))
    doc["payment"]["core_split"] = {"circle": str(D(1) - physio), "physio": str(physio)}
    outcomes_share, reserve = draw(fraction(2, 0, 40)), draw(fraction(2, 0, 20))
    doc["payment"]["schedule"][1].update(
        core=str(D(1) - outcomes_share - reserve), outcomes=str(outcomes_share), reserve=str(reserve)
    )
    terms = doc["payment"]["risk_share"]["standard"]
    first = draw(fraction(3, 1, 100))
    second = first + draw(fraction(3, 1, 300))
    terms["reference"] = draw(st.sampled_from(["budget", "revenue"]))
    terms["tiers"] = [
        {"upto": str(first), "provider_share": str(draw(fraction(2)))},
        {
            "upto": str(second),
            "provider_gain_share": str(draw(fraction(2))),
            "provider_loss_share": str(draw(fraction(2))),
        },
        {"upto": None, "provider_share": str(draw(fraction(2)))},
    ]
    cap = draw(st.none() | fraction(3, 0, 300))
    if cap is None:
        terms.pop("cap")
    else:
        terms["cap"] = str(cap)
    terms["high_cost_threshold"] = str(draw(pence(0, 5_000_000)))
    physio_attr = draw(fraction(3))
    doc["indicators"][0]["attribution"] = {"circle": str(D(1) - physio_attr), "physio": str(physio_attr)}
    doc["indicators"][2]["attribution"] = {"physio": "1"}
    doc["indicators"][0]["weight"] = str(draw(fraction(2, 1, 100)))
    doc["indicators"][1]["paid_from_year"] = draw(st.integers(1, 3))
    doc["baselines"]["readmissions"] = str(draw(st.integers(1, 1000)))
    return parse_definition(doc)


MEASURES = {
    "proms-improved": "ratio",
    "readmissions": "value",
    "shared-decisions.offered": "ratio",
    "shared-decisions.documented": "ratio",
}


@st.composite
def year_data(draw, defn, year):
    periods = defn.calendar().periods(year)
    observations = []
    for n in range(draw(st.integers(0, 10))):
        key = draw(st.sampled_from(sorted(MEASURES)))
        period = draw(st.sampled_from(periods))
        provider = draw(st.sampled_from(["circle", "physio"]))
        if MEASURES[key] == "ratio":
            den = draw(st.integers(1, 1000))
            observations.append(
                Observation(f"s-{n}", key, provider, period, D(draw(st.integers(0, den))), D(den))
            )
        else:
            observations.append(
                Observation(f"s-{n}", key, provider, period, value=D(draw(st.integers(0, 500))))
            )
    quarter = defn.budget.year1 / 4
    costs = []
    for n, period in enumerate(periods):
        for provider in draw(st.sets(st.sampled_from(["circle", "physio"]))):
            total = money(quarter * draw(fraction(3, 500, 1500)))
            cases = draw(
                st.lists(
                    st.tuples(st.sampled_from(["HC-1", "HC-2", "HC-3"]), pence(0, 5_000_000)),
                    max_size=3,
                    unique_by=lambda c: c[0],
                )
            )
            costs.append(CostFact(f"c-{n}-{provider}", provider, period, total, tuple(cases)))
    return observations, costs


@SETTINGS
@given(data=st.data())
def test_settlement_by_party_always_sums_to_the_total(data):
    defn = data.draw(contracts())
    year = data.draw(st.integers(1, 3))
    observations, costs = data.draw(year_data(defn, year))
    budget = budget_for_year(defn, year).amount
    settled = settle_year(defn, year, budget, observations, costs, dict(defn.baselines))
    assert sum(settled.by_party.values()) == settled.total
    assert settled.total == settled.core + settled.year_close_payment
    # earned_k = round(pot × w'_k × score_k) and the payment is their sum (payment-rules.md, outcomes):
    # each rounding may add up to half a penny, so full scores on three thirds of 41.69 pay 41.70.
    assert settled.outcome_payment <= settled.pot + D("0.005") * len(settled.indicators)
    for indicator in settled.indicators:
        assert D(0) <= indicator.score <= D(1)
        assert sum(indicator.by_party.values()) == indicator.earned
        for m in indicator.measures:
            assert D(0) <= m.score <= D(1)
    if settled.risk is not None:
        assert_risk_share_bounds(defn.risk_share("standard"), settled.risk)


def assert_risk_share_bounds(terms, result):
    if terms.cap is not None:
        # |A| ≤ cap × R, up to the half penny that rounding after capping may add (spec §5).
        assert abs(result.adjustment) <= money(terms.cap * result.reference)
    if result.variance > 0:
        assert result.adjustment <= 0  # a gain: the provider returns part of it
    elif result.variance < 0:
        assert result.adjustment >= 0  # a loss: the commissioner funds part of it
    else:
        assert result.adjustment == 0


@st.composite
def risk_terms(draw):
    count = draw(st.integers(1, 4))
    edges = sorted(draw(st.sets(fraction(3, 1, 500), min_size=count, max_size=count)))
    tiers = [Tier(edge, draw(fraction(2)), draw(fraction(2))) for edge in edges]
    if draw(st.booleans()):
        tiers.append(Tier(None, draw(fraction(2)), draw(fraction(2))))
    cap = draw(st.none() | fraction(3, 0, 500))
    threshold = draw(st.none() | pence(0, 10**7))
    return RiskShareTerms(
        "standard", draw(st.sampled_from(["budget", "revenue"])), tuple(tiers), cap, threshold
    )


@SETTINGS
@given(terms=risk_terms(), budget=pence(1, 10**10), spend=fraction(3, 0, 3000), data=st.data())
def test_the_risk_share_adjustment_is_capped_and_opposite_in_sign_to_the_variance(terms, budget, spend, data):
    period = parse_period("2026-Q2", QUARTERLY)
    cases = tuple(
        data.draw(
            st.lists(
                st.tuples(st.sampled_from(["HC-1", "HC-2"]), pence(0, 10**7)),
                max_size=2,
                unique_by=lambda c: c[0],
            )
        )
    )
    costs = [CostFact("c-1", "circle", period, money(budget * spend), cases)]
    core = money(budget * D("0.9"))
    result = risk_share(terms, budget, core, data.draw(pence(0, 10**8)), data.draw(pence(0, 10**8)), costs)
    assert result.adjustment == money(result.adjustment)
    assert_risk_share_bounds(terms, result)
