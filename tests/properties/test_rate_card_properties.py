"""Invariants of the rate card (payment rules §8) and the what-if, on random claims."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.definition import RateCard, RateOutcome
from ledger.domain.numbers import ZERO
from ledger.domain.periods import Calendar
from ledger.domain.rules.ratecard import Claim, evaluate, rate_card_year

SETTINGS = settings(max_examples=150, deadline=None)
CAL = Calendar(date(2026, 4, 1), "quarterly", 3)
PERIODS = [p for y in (1, 2, 3) for p in CAL.periods(y)]
OUTCOMES = ("engaged", "job", "sustained")

cards = st.builds(
    lambda prices, most, caps, requires: RateCard(
        tuple(
            RateOutcome(o, None, D(p) / 100, m, (OUTCOMES[i - 1],) if requires and i else ())
            for i, (o, p, m) in enumerate(zip(OUTCOMES, prices, most, strict=True))
        ),
        participant_cap=caps[0],
        contract_cap=caps[1],
    ),
    st.lists(st.integers(1, 500_000), min_size=3, max_size=3),
    st.lists(st.integers(1, 3), min_size=3, max_size=3),
    st.tuples(
        st.none() | st.integers(0, 1_000_000).map(lambda n: D(n) / 100),
        st.none() | st.integers(0, 3_000_000).map(lambda n: D(n) / 100),
    ),
    st.booleans(),
)

claim_rows = st.lists(
    st.tuples(
        st.integers(0, 7),
        st.sampled_from(OUTCOMES),
        st.integers(0, len(PERIODS) - 1),
        st.sampled_from(("p1", "p2")),
    ),
    max_size=60,
)


def claims_of(rows):
    out = []
    for i, (participant, outcome, period, provider) in enumerate(rows):
        p = PERIODS[period]
        out.append(Claim(f"c{i}", provider, f"P{participant}", outcome, p, CAL.year_of(p), (i,)))
    return out


@SETTINGS
@given(cards, claim_rows)
def test_payments_never_exceed_the_contract_cap_nor_a_participant_the_participant_cap(card, rows):
    results = evaluate(card, claims_of(rows))
    paid = sum((r.amount for r in results if r.payable), ZERO)
    if card.contract_cap is not None:
        assert paid <= card.contract_cap
    per: dict[str, D] = {}
    for r in results:
        assert r.amount >= ZERO and (r.amount > ZERO) == r.payable
        per[r.claim.participant_id] = per.get(r.claim.participant_id, ZERO) + r.amount
    if card.participant_cap is not None:
        assert all(v <= card.participant_cap for v in per.values())
    # the years' payments add up to the term's
    assert sum((rate_card_year(card, y, claims_of(rows)).payment for y in (1, 2, 3)), ZERO) == paid


@SETTINGS
@given(cards, claim_rows, st.randoms(use_true_random=False))
def test_shuffling_the_arrival_of_claims_of_different_participants_in_different_periods_changes_nothing(
    card, rows, rnd
):
    # keep one claim per (participant, period) so any two claims differ in participant or period;
    # claims of different participants in one period compete only for the contract cap: drop it
    card = RateCard(card.outcomes, card.participant_cap, None, card.paid_from_year)
    seen, unique = set(), []
    for row in rows:
        if (row[0], row[2]) not in seen:
            seen.add((row[0], row[2]))
            unique.append(row)
    claims = claims_of(unique)
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    relabelled = [
        Claim(c.claim_id, c.provider_id, c.participant_id, c.outcome_id, c.period, c.year, (i,))
        for i, c in enumerate(shuffled)
    ]
    before = {r.claim.claim_id: (r.amount, r.reason) for r in evaluate(card, claims)}
    after = {r.claim.claim_id: (r.amount, r.reason) for r in evaluate(card, relabelled)}
    assert before == after


@SETTINGS
@given(cards, claim_rows, st.randoms(use_true_random=False))
def test_with_every_cap_set_shuffling_arrival_across_periods_changes_nothing(card, rows, rnd):
    # one claim per period: arrival never decides between two of them, so even the contract cap cannot move
    seen, unique = set(), []
    for row in rows:
        if row[2] not in seen:
            seen.add(row[2])
            unique.append(row)
    claims = claims_of(unique)
    order = list(range(len(claims)))
    rnd.shuffle(order)
    relabelled = [
        Claim(c.claim_id, c.provider_id, c.participant_id, c.outcome_id, c.period, c.year, (order[i],))
        for i, c in enumerate(claims)
    ]
    assert {r.claim.claim_id: (r.amount, r.reason) for r in evaluate(card, claims)} == {
        r.claim.claim_id: (r.amount, r.reason) for r in evaluate(card, relabelled)
    }
