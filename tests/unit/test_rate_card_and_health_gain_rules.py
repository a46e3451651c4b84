"""The rate-card (payment rules §8) and health-gain (§9) rules, and their contract sections' validation."""

from datetime import date
from decimal import Decimal

import pytest

from ledger.domain.definition import HealthGainEntry, RateCard, RateOutcome, parse_definition
from ledger.domain.errors import ValidationFailed
from ledger.domain.periods import Calendar
from ledger.domain.rules.healthgain import Episode, health_gain_year
from ledger.domain.rules.ratecard import Claim, evaluate, rate_card_year

D = Decimal
CAL = Calendar(date(2026, 4, 1), "quarterly", 3)
CARD = RateCard(
    (RateOutcome("a", None, D("100.00")), RateOutcome("b", None, D("300.00"), 2, ("a",))),
    participant_cap=D("600.00"),
    contract_cap=D("1000.00"),
)


def claim(cid, participant, outcome, period, arrival, provider="p1"):
    p = CAL.period(period)
    return Claim(cid, provider, participant, outcome, p, CAL.year_of(p), (arrival,))


def test_a_prerequisite_must_have_an_earlier_payable_claim_in_period_then_arrival_order():
    results = evaluate(CARD, [claim("c2", "x", "a", "2026-Q3", 1), claim("c1", "x", "b", "2026-Q3", 0)])
    assert [(r.claim.claim_id, r.reason) for r in results] == [("c1", "prerequisite_missing"), ("c2", None)]
    # in an earlier period it counts, whatever the arrival
    results = evaluate(CARD, [claim("c2", "x", "a", "2026-Q2", 9), claim("c1", "x", "b", "2026-Q3", 0)])
    assert [r.payable for r in results] == [True, True]


def test_max_per_participant_counts_only_payable_claims():
    claims = [claim("a1", "x", "a", "2026-Q2", 0)] + [
        claim(f"b{i}", "x", "b", "2026-Q3", i) for i in range(3)
    ]
    results = evaluate(CARD, claims)
    assert [r.reason for r in results] == [None, None, None, "already_paid"]


def test_the_participant_cap_binds_mid_claim_and_then_reaches_zero():
    card = RateCard(CARD.outcomes, participant_cap=D("450.00"))
    claims = [
        claim("a1", "x", "a", "2026-Q2", 0),
        claim("b1", "x", "b", "2026-Q3", 0),
        claim("b2", "x", "b", "2026-Q4", 0),
    ]
    results = evaluate(card, claims)
    assert [(r.amount, r.capped, r.reason) for r in results] == [
        (D("100.00"), False, None),
        (D("300.00"), False, None),
        (D("50.00"), True, None),
    ]
    card = RateCard(CARD.outcomes, participant_cap=D("400.00"))
    assert evaluate(card, claims)[2].reason == "cap_reached"


def test_the_contract_cap_binds_across_participants_and_years():
    claims = [claim(f"a{i}", f"x{i}", "a", "2026-Q2", i) for i in range(9)]
    claims += [claim("late", "y", "a", "2027-Q2", 0), claim("b", "x0", "b", "2027-Q2", 1)]
    year2 = rate_card_year(CARD, 2, claims)
    # 900 paid in year 1; year 2: "late" 100 (1000) → "b" gets min(300, 600 − 100, 0) = 0 → cap_reached
    assert year2.payment == D("100.00")
    assert [r.reason for r in year2.results] == [None, "cap_reached"]
    assert year2.to_statement()["not_payable"] == {"cap_reached": 1}
    # a year's figures ignore later years' claims
    assert rate_card_year(CARD, 1, claims).payment == D("900.00")


def test_claims_before_paid_from_year_are_not_payable_and_do_not_count():
    card = RateCard(CARD.outcomes, paid_from_year=2)
    results = evaluate(card, [claim("a1", "x", "a", "2027-Q1", 0), claim("b1", "x", "b", "2027-Q2", 0)])
    assert [r.reason for r in results] == ["before_payment_years", "prerequisite_missing"]


def test_the_statement_counts_capped_amounts_per_outcome_and_by_provider():
    card = RateCard(CARD.outcomes, contract_cap=D("350.00"))
    claims = [claim("a1", "x", "a", "2026-Q2", 0, "p1"), claim("b1", "x", "b", "2026-Q3", 0, "p2")]
    year = rate_card_year(card, 1, claims)
    assert year.by_party == {"p1": D("100.00"), "p2": D("250.00")}
    assert year.to_statement() == {
        "claims": 2,
        "payable": 2,
        "payment": "350.00",
        "capped": "50.00",
        "outcomes": [
            {"id": "a", "claims": 1, "payable": 1, "payment": "100.00"},
            {"id": "b", "claims": 1, "payable": 1, "payment": "250.00"},
        ],
        "not_payable": {},
    }


HIP = HealthGainEntry(
    "hip",
    "Oxford Hip Score",
    D("0"),
    D("48"),
    D("150.00"),
    target_gain=D("21.5"),
    min_episodes=2,
    floor=D("0.00"),
    cap=D("1000.00"),
)


def ep(eid, pre, post, expected, provider="p1", year=1, entry="hip"):
    return Episode(eid, provider, entry, year, D(pre), D(post), D(expected))


def test_health_gain_pays_price_per_point_of_excess_with_floor_and_cap_rounded_half_up():
    (gain,) = health_gain_year([HIP], 1, [ep("e1", "10", "33", "21.5"), ep("e2", "10", "31.003", "21")])
    # excess 1.5 + 0.003 = 1.503 → 225.45
    (p,) = gain.providers
    assert (p.status, p.excess, p.payment) == ("scored", D("1.503"), D("225.45"))
    assert p.mean_gain == D("22.0015") and p.mean_expected == D("21.25")
    (gain,) = health_gain_year([HIP], 1, [ep("e1", "0", "48", "10"), ep("e2", "0", "48", "10")])
    assert gain.payment == D("1000.00")  # 76 × 150 capped
    (gain,) = health_gain_year([HIP], 1, [ep("e1", "20", "21", "21.5"), ep("e2", "20", "21", "21")])
    assert gain.payment == D("0.00")  # floor


def test_without_a_floor_a_negative_payment_claws_back_and_half_pennies_round_away_from_zero():
    entry = HealthGainEntry("knee", "OKS", D("0"), D("48"), D("0.05"))
    (gain,) = health_gain_year([entry], 1, [ep("e1", "20", "21", "2", entry="knee")])
    assert gain.payment == D("-0.05")
    entry = HealthGainEntry("knee", "OKS", D("0"), D("48"), D("0.01"))
    (gain,) = health_gain_year([entry], 1, [ep("e1", "20", "20", "0.5", entry="knee")])
    assert gain.payment == D("-0.01")  # −0.005 rounds half up (away from zero)


def test_too_few_episodes_and_unlinked_years_pay_nothing_and_not_linked_comes_first():
    (gain,) = health_gain_year([HIP], 1, [ep("e1", "0", "48", "1")])
    assert gain.providers[0].status == "insufficient_data" and gain.payment == D("0.00")
    later = HealthGainEntry("hip", "OHS", D("0"), D("48"), D("150.00"), min_episodes=5, paid_from_year=2)
    (gain,) = health_gain_year([later], 1, [ep("e1", "0", "48", "1")])
    assert gain.providers[0].status == "not_linked"


def test_only_providers_with_episodes_in_the_year_are_listed():
    (gain,) = health_gain_year(
        [HIP],
        2,
        [
            ep("e1", "0", "48", "1", year=1),
            ep("e2", "0", "40", "1", "p2", 2),
            ep("e3", "0", "40", "1", "p2", 2),
        ],
    )
    assert [p.provider_id for p in gain.providers] == ["p2"]


BASE = {
    "contract": {
        "id": "c",
        "name": "C",
        "model": "pathway",
        "commissioner": {"id": "cm", "name": "Cm"},
        "lead_provider": {"id": "lp", "name": "L"},
        "start": "2026-04-01",
        "years": 2,
        "period": "quarterly",
    },
    "budget": {"year1": "0.00"},
    "payment": {"schedule": [{"from_year": 1, "core": "1.00", "outcomes": "0.00"}]},
}


def problems(extra):
    with pytest.raises(ValidationFailed) as info:
        parse_definition({**BASE, **extra})
    return dict(info.value.problems)


def test_a_rate_card_and_health_gain_entries_parse_from_the_contract():
    d = parse_definition(
        {
            **BASE,
            "rate_card": {
                "outcomes": [
                    {"id": "a", "price": "10.00"},
                    {"id": "b", "price": 20, "requires": ["a"], "max_per_participant": 2},
                ],
                "participant_cap": "25.00",
            },
            "health_gain": [
                {
                    "id": "hip",
                    "measure": "OHS",
                    "scale": {"min": 0, "max": 48},
                    "price_per_point": "150.00",
                    "floor": "-500.00",
                }
            ],
        }
    )
    assert d.rate_card.outcome("b").requires == ("a",) and d.rate_card.participant_cap == D("25.00")
    assert d.health_gain_entry("hip").floor == D("-500.00") and d.health_gain_entry("hip").cap is None


def test_rate_card_problems_are_listed_with_their_paths():
    found = problems(
        {
            "rate_card": {
                "outcomes": [
                    {"id": "a", "price": "0"},
                    {"id": "b", "price": "1.005", "requires": ["zz", "b"]},
                    {"id": "c", "price": "1", "max_per_participant": 0},
                    {"id": "d", "price": "1", "requires": ["e"]},
                    {"id": "e", "price": "1", "requires": ["d"]},
                ],
                "contract_cap": "-1",
                "paid_from_year": 3,
                "extra": 1,
            }
        }
    )
    assert set(found) >= {
        "rate_card.outcomes[0].price",
        "rate_card.outcomes[1].price",
        "rate_card.outcomes[2].max_per_participant",
        "rate_card.outcomes[3].requires",
        "rate_card.contract_cap",
        "rate_card.paid_from_year",
        "rate_card.extra",
    }
    found = problems({"rate_card": {"outcomes": [{"id": "a", "price": "1", "requires": ["zz", "a"]}]}})
    assert "rate_card.outcomes[0].requires[0]" in found and "rate_card.outcomes[0].requires[1]" in found


def test_health_gain_problems_are_listed_with_their_paths():
    found = problems(
        {
            "health_gain": [
                {"id": "hip", "measure": "OHS", "scale": {"min": 48, "max": 0}, "price_per_point": "150.00"},
                {
                    "id": "hip",
                    "scale": {"min": 0, "max": 48},
                    "price_per_point": "-1",
                    "target_gain": "60",
                    "min_episodes": 0,
                    "floor": "10.00",
                    "cap": "5.00",
                },
            ]
        }
    )
    assert set(found) >= {
        "health_gain[0].scale.max",
        "health_gain[1].measure",
        "health_gain[1].price_per_point",
        "health_gain[1].target_gain",
        "health_gain[1].min_episodes",
        "health_gain[1].cap",
    }
