"""Contract variations (payment rules §7): each part, the order they apply in, and every validation error."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger.adapters.yamlio import load_yaml
from ledger.domain.definition import parse_definition
from ledger.domain.rules.budget import budget_for_year
from ledger.domain.variations import ContractTerms, InvalidVariation, parse_variation
from tests.support.cli import EXAMPLES

REGISTERED = parse_definition(load_yaml((EXAMPLES / "worked-example.yaml").read_text()))  # beds-msk, 3 years


def variation(changes: str, e: int = 2, vid: str = "cv-1"):
    return parse_variation(
        load_yaml(
            f"variation: {{id: {vid}, contract_id: beds-msk, effective_from_year: {e}, reason: test}}\n"
            f"changes:\n{changes}"
        )
    )


def terms(*variations):
    held = ContractTerms(REGISTERED)
    for v in variations:
        held.validate(v, 3)
        held = ContractTerms(REGISTERED, [*held.variations, v])
    return held


def problems(v, *held):
    with pytest.raises(InvalidVariation) as caught:
        ContractTerms(REGISTERED, held).validate(v, 3)
    return dict(caught.value.problems)


def test_a_removed_indicator_is_not_part_of_the_terms_from_the_effective_year():
    t = terms(variation("  indicators: {remove: [readmissions]}"))
    assert t.for_year(1).indicator("readmissions") is not None
    assert t.for_year(2).indicator("readmissions") is None and t.for_year(3).indicator("readmissions") is None
    assert "readmissions" not in dict(t.for_year(2).baselines)  # its baseline goes with it


def test_an_added_indicator_paid_before_the_effective_year_is_linked_from_it():
    t = terms(
        variation(
            '  indicators:\n    add: [{id: waits, weight: "0.1", paid_from_year: 1, unit: value,\n'
            '            scoring: {rule: fixed, direction: lower, target: "18"}}]'
        )
    )
    assert t.for_year(1).indicator("waits") is None
    assert t.for_year(2).indicator("waits").paid_from_year <= 2


def test_an_amendment_replaces_each_field_it_gives_whole_and_keeps_the_others():
    t = terms(
        variation(
            '  indicators:\n    amend: [{id: proms-improved, weight: "0.6",\n'
            '      scoring: {rule: fixed, direction: higher, target: "0.7"}}]'
        )
    )
    amended = t.for_year(2).indicator("proms-improved")
    assert amended.weight == D("0.6") and amended.measure.scoring.rule == "fixed"
    assert amended.measure.scoring.zero_at is None  # nothing of the old sliding scale is merged in
    assert amended.attribution == REGISTERED.indicator("proms-improved").attribution
    assert t.for_year(1).indicator("proms-improved") == REGISTERED.indicator("proms-improved")


def test_giving_scoring_to_an_indicator_with_subcomponents_replaces_them():
    t = terms(
        variation(
            "  indicators:\n    amend: [{id: shared-decisions,\n"
            '      scoring: {rule: fixed, direction: higher, target: "0.8"}}]'
        )
    )
    assert t.for_year(2).measure("shared-decisions") is not None
    assert t.for_year(2).measure("shared-decisions.offered") is None


def test_remove_then_add_within_one_variation_replaces_an_indicator():
    t = terms(
        variation(
            '  indicators:\n    remove: [readmissions]\n    add: [{id: readmissions, weight: "0.3",\n'
            '      unit: value, scoring: {rule: fixed, direction: lower, target: "250"}}]'
        )
    )
    assert t.for_year(2).indicator("readmissions").measure.scoring.target.absolute == D("250")


def test_baselines_are_added_or_replaced():
    t = terms(variation('  baselines: {readmissions: "290"}'))
    assert dict(t.for_year(2).baselines)["readmissions"] == D("290")
    assert dict(t.for_year(1).baselines)["readmissions"] == D("310")


def test_a_later_baseline_record_wins_over_an_earlier_variation_and_a_later_variation_over_it():
    t = terms(variation('  baselines: {readmissions: "290"}'))
    assert t.baselines(2, [("readmissions", D("300"), 1)])["readmissions"] == D("300")  # recorded after cv-1
    assert t.baselines(2, [("readmissions", D("300"), 0)])["readmissions"] == D("290")  # recorded before it
    assert t.baselines(1, [("readmissions", D("300"), 0)])["readmissions"] == D("300")  # cv-1 not in force


def test_schedule_entries_replace_those_from_the_effective_year_and_earlier_years_inherit_until_the_first():
    t = terms(
        variation(
            '  payment:\n    schedule: [{from_year: 3, core: "0.8", outcomes: "0.2", risk_share: standard}]'
        )
    )
    assert t.for_year(2).schedule_for(2).core == D(
        "1.00"
    )  # year 2's own entry was replaced; year 1's is inherited
    assert t.for_year(3).schedule_for(3).core == D("0.8")
    assert terms().for_year(2).schedule_for(2).core == D("0.90")


def test_core_split_risk_share_terms_and_parties_are_replaced_from_the_effective_year():
    t = terms(
        variation(
            "  subcontractors: {add: [{id: gp, name: GP federation}]}\n"
            '  payment:\n    core_split: {circle: "0.7", physio: "0.2", gp: "0.1"}\n'
            '    risk_share:\n      pooled: {tiers: [{upto: null, provider_share: "0.5"}], split: {circle: "0.5", gp: "0.5"}}\n'
            '    schedule: [{from_year: 2, core: "0.9", outcomes: "0.1", risk_share: pooled}]'
        )
    )
    year2 = t.for_year(2)
    assert year2.providers == ("circle", "physio", "gp") and REGISTERED.providers == ("circle", "physio")
    assert dict(year2.core_split) == {"circle": D("0.7"), "physio": D("0.2"), "gp": D("0.1")}
    assert year2.risk_share("pooled").split == (("circle", D("0.5")), ("gp", D("0.5")))
    assert year2.risk_share("standard") == REGISTERED.risk_share("standard")
    assert t.providers_ever() == ("circle", "physio", "gp")


def test_a_party_leaving_is_no_longer_a_provider_from_the_effective_year():
    t = terms(
        variation(
            '  subcontractors: {remove: [physio]}\n  payment:\n    core_split: {circle: "1"}\n'
            '  indicators:\n    amend: [{id: proms-improved, attribution: {circle: "1"}}]',
            e=3,
        )
    )
    assert t.for_year(2).providers == ("circle", "physio") and t.for_year(3).providers == ("circle",)
    assert "from year 3" in t.not_in_force("provider 'physio'", t.provider_years("physio", 3), 3)


def test_budget_factors_are_set_for_years_from_e_and_chain_into_the_budget():
    t = terms(variation('  budget: {efficiency: "0.03", uplift: ["0.02"]}', e=3))
    # B_3 = round(24,000,000 × (1 − 0.04)(1 + 0.021) × (1 − 0.03)(1 + 0.02))
    expected = (D("24000000.00") * D("0.96") * D("1.021") * D("0.97") * D("1.02")).quantize(D("0.01"))
    assert budget_for_year(t.for_year(3), 3).amount == expected
    assert budget_for_year(t.for_year(2), 2).amount == D("23523840.00")  # year 2 keeps its factors


def test_a_later_recorded_variation_with_an_earlier_year_overrides_from_its_own_year():
    late = variation('  budget: {efficiency: "0.01"}', e=3, vid="cv-late")
    early = variation('  budget: {efficiency: "0.02"}', e=2, vid="cv-early")
    t = terms(late, early)
    assert t.for_year(3).budget.efficiency_for(3) == D("0.02")  # cv-early recorded last, e = 2 ≤ 3
    t2 = terms(early, late)
    assert t2.for_year(3).budget.efficiency_for(3) == D("0.01") and t2.for_year(2).budget.efficiency_for(
        2
    ) == D("0.02")


def test_every_validation_error_is_listed_with_its_path_in_the_variation_document():
    found = problems(
        variation(
            "  indicators:\n    remove: [nope]\n"
            '    add: [{id: proms-improved, weight: "0.1", scoring: {rule: fixed, direction: higher, target: "1"}},\n'
            '          {id: fresh, weight: "-1", scoring: {rule: sliding, zero_at: "1", full_at: "1"}}]\n'
            '    amend: [{id: readmissions, scoring: {rule: fixed, direction: lower, target: {baseline_change: "-0.1"}},\n'
            '             attribution: {circle: "0.5", ghost: "0.5"}}, {id: missing, weight: "1"}]\n'
            "  subcontractors: {remove: [circle, physio, other], add: [{id: bccg, name: again}]}\n"
            '  payment:\n    core_split: {circle: "0.5"}\n'
            '    schedule: [{from_year: 1, core: "1", outcomes: "0"}, {from_year: 3, core: "0.5", outcomes: "0.2"}]\n'
            '  budget: {efficiency: ["0.01"], population_tolerance: "0.02"}'
        )
    )
    for path in (
        "changes.indicators.remove[0]",
        "changes.indicators.add[0].id",
        "changes.indicators.add[1].weight",
        "changes.indicators.add[1].scoring.full_at",
        "changes.indicators.amend[0].attribution.ghost",
        "changes.indicators.amend[1].id",
        "changes.subcontractors.remove[0]",
        "changes.subcontractors.remove[2]",
        "changes.subcontractors.add[0].id",
        "changes.payment.core_split",
        "changes.payment.schedule[0].from_year",
        "changes.payment.schedule[1]",
        "changes.budget.efficiency",
        "changes.budget.population_tolerance",
    ):
        assert path in found, (path, found)


def test_a_relative_threshold_needs_a_baseline_in_the_terms_of_the_year():
    found = problems(
        variation(
            '  indicators:\n    add: [{id: waits, weight: "0.1", unit: value,\n'
            '      scoring: {rule: fixed, direction: lower, target: {baseline_change: "-0.1"}}}]'
        )
    )
    assert "changes.indicators.add[0].scoring.target" in found
    ok = variation(
        '  baselines: {waits: "20"}\n  indicators:\n    add: [{id: waits, weight: "0.1", unit: value,\n'
        '      scoring: {rule: fixed, direction: lower, target: {baseline_change: "-0.1"}}}]'
    )
    terms(ok)


def test_a_removed_party_still_named_in_a_split_it_does_not_replace_is_refused():
    found = problems(
        variation('  subcontractors: {remove: [physio]}\n  payment:\n    core_split: {circle: "1"}')
    )
    assert "still named in indicators[0].attribution" in found["changes.subcontractors.remove[0]"]


def test_a_variation_is_checked_against_the_terms_of_every_later_year_too():
    held = variation("  indicators: {remove: [readmissions]}", e=3, vid="cv-held")
    found = problems(variation('  indicators:\n    amend: [{id: readmissions, weight: "0.5"}]', e=2), held)
    assert "year 3" in found["changes.indicators.amend[0].id"]


def test_the_variation_documents_own_shape_is_checked_first():
    with pytest.raises(InvalidVariation) as caught:
        parse_variation(load_yaml("variation: {id: Bad_Id, effective_from_year: 0}\nchanges: {colour: red}"))
    paths = {p for p, _ in caught.value.problems}
    assert {
        "variation.id",
        "variation.contract_id",
        "variation.effective_from_year",
        "variation.reason",
        "changes.colour",
    } <= paths


def test_budget_factors_cannot_change_from_year_1_and_a_year_outside_the_term_is_refused():
    assert "changes.budget.efficiency" in problems(variation('  budget: {efficiency: "0.01"}', e=1))
    assert "variation.effective_from_year" in problems(variation('  baselines: {readmissions: "1"}', e=4))
