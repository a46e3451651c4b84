"""Properties of contract variations (payment rules §7), on the worked example and random variations.

* a variation effective after the last closed year never changes a closed year's figures;
* the terms of year y are the same however the variations before y are grouped (the same parts
  recorded as one variation per part, or merged into fewer variations with the same effective year).
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import parse_definition
from ledger.domain.rules.budget import budget_for_year
from ledger.domain.rules.settlement import settle_year
from ledger.domain.variations import ContractTerms, parse_variation
from tests.support.cli import EXAMPLES
from tests.unit.worked_example import latest_for_year

SETTINGS = settings(max_examples=60, deadline=None)
REGISTERED = parse_definition(load_yaml((EXAMPLES / "worked-example.yaml").read_text()))
KINDS = ("efficiency", "uplift", "baseline", "core_split", "weight", "schedule", "tiers", "add")


def fraction(low: int, high: int, places: int = 3):
    return st.integers(low, high).map(lambda n: str(D(n) / D(10**places)))


@st.composite
def part(draw, e: int):
    """One change (its YAML under ``changes:``), valid for the worked example from year e."""
    kind = draw(st.sampled_from(KINDS if e > 1 else KINDS[2:]))
    if kind in ("efficiency", "uplift"):
        return kind, f'  budget: {{{kind}: "{draw(fraction(0, 80))}"}}\n'
    if kind == "baseline":
        return kind, f'  baselines: {{readmissions: "{draw(st.integers(200, 400))}"}}\n'
    if kind == "core_split":
        circle = draw(st.integers(1, 99))
        return (
            kind,
            f'  payment:\n    core_split: {{circle: "0.{circle:02d}", physio: "0.{100 - circle:02d}"}}\n',
        )
    if kind == "weight":
        return (
            kind,
            f'  indicators:\n    amend: [{{id: proms-improved, weight: "{draw(fraction(1, 900))}"}}]\n',
        )
    if kind == "schedule":
        core = draw(st.integers(50, 100))
        return kind, (
            f'  payment:\n    schedule: [{{from_year: {e}, core: "{core / 100}", '
            f'outcomes: "{(100 - core) / 100}", risk_share: standard}}]\n'
        )
    if kind == "tiers":
        share = draw(fraction(0, 1000))
        return kind, (
            f'  payment:\n    risk_share:\n      standard: {{tiers: [{{upto: "0.05", provider_share: "{share}"}}, '
            f'{{upto: null, provider_share: "0"}}], high_cost_threshold: "20000.00"}}\n'
        )
    return kind, (
        f'  indicators:\n    add: [{{id: added-{e}, weight: "{draw(fraction(1, 900))}", unit: value, '
        f'scoring: {{rule: fixed, direction: higher, target: "1"}}}}]\n'
    )


def _merge(texts: list[str]) -> str:
    """Several parts of different kinds as one ``changes`` document (merged by their top-level key)."""
    merged: dict = {}
    for text in texts:
        for key, value in load_yaml(text).items():
            target = merged.setdefault(key, {})
            for k, v in value.items():
                target.setdefault(k, v) if not isinstance(v, dict) else target.setdefault(k, {}).update(v)
    return merged


def _variation(vid: str, e: int, changes: dict):
    return parse_variation(
        {
            "variation": {
                "id": vid,
                "contract_id": "beds-msk",
                "effective_from_year": e,
                "reason": "property",
            },
            "changes": changes,
        }
    )


@st.composite
def parts_by_year(draw):
    """A few parts per effective year 1..3, at most one of each kind per year."""
    out = []
    for e in (1, 2, 3):
        chosen = draw(st.lists(part(e), max_size=3, unique_by=lambda p: p[0]))
        out += [(e, kind, text) for kind, text in chosen]
    return out


@SETTINGS
@given(parts=parts_by_year(), cuts=st.lists(st.booleans(), min_size=12, max_size=12))
def test_the_terms_of_a_year_do_not_depend_on_how_the_variations_before_it_are_grouped(parts, cuts):
    one_each = [_variation(f"v-{i}", e, load_yaml(text)) for i, (e, _, text) in enumerate(parts)]
    grouped, current, n = [], [], 0
    for i, (e, _kind, text) in enumerate(parts):
        if current and (current[0][0] != e or cuts[i % len(cuts)]):
            grouped.append(_variation(f"g-{n}", current[0][0], _merge([t for _, t in current])))
            current, n = [], n + 1
        current.append((e, text))
    if current:
        grouped.append(_variation(f"g-{n}", current[0][0], _merge([t for _, t in current])))
    separate, together = ContractTerms(REGISTERED, one_each), ContractTerms(REGISTERED, grouped)
    for year in (1, 2, 3):
        assert separate.document_for(year) == together.document_for(year)
        assert separate.for_year(year) == together.for_year(year)


@SETTINGS
@given(e=st.integers(2, 3), data=st.data())
def test_a_variation_effective_after_the_last_closed_year_never_changes_a_closed_years_figures(e, data):
    chosen = data.draw(st.lists(part(e), min_size=1, max_size=4, unique_by=lambda p: p[0]))
    varied = ContractTerms(REGISTERED, [_variation("cv", e, _merge([text for _, text in chosen]))])
    for closed in range(1, e):
        observations, costs = latest_for_year(closed)
        baselines = dict(REGISTERED.baselines)
        before = settle_year(
            REGISTERED, closed, budget_for_year(REGISTERED, closed).amount, observations, costs, baselines
        )
        terms = varied.for_year(closed)
        after = settle_year(
            terms,
            closed,
            budget_for_year(terms, closed).amount,
            observations,
            costs,
            varied.baselines(closed, []),
        )
        assert after.figures() == before.figures()
