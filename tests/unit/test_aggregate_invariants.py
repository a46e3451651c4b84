"""The aggregates keep their own invariants (``check_*``), and every event class has a version."""

from decimal import Decimal as D

import pytest

from ledger.domain import aggregates
from ledger.domain.aggregates import Contract, LedgerAggregate, Settlement, YearData
from ledger.domain.errors import InvalidCommand, NotFound, YearClosed, YearNotClosed


def _instalment(s: Settlement, period: str = "2025-Q1") -> None:
    s.decide_instalment(
        period=period,
        index=1,
        count=4,
        amount=D("10.00"),
        budget=D("40.00"),
        core_annual=D("40.00"),
        paid_before=D("0"),
        by_party={"lead": D("10.00")},
        decided_at="2025-07-01T00:00:00Z",
        actor="system",
    )


def _close(s: Settlement) -> None:
    s.close(
        figures={"total": "40.00", "by_party": {"lead": "40.00"}},
        trace={},
        decided_at="2026-04-01T00:00:00Z",
        actor="system",
        variations=[],
    )


def test_an_instalment_period_is_decided_once():
    s = Settlement(contract_id="c", year=1)
    _instalment(s)
    with pytest.raises(InvalidCommand) as refused:
        _instalment(s)
    assert refused.value.code == "instalment_decided"


def test_a_closed_year_takes_no_instalment_and_no_second_close():
    s = Settlement(contract_id="c", year=1)
    _close(s)
    with pytest.raises(YearClosed):
        _instalment(s)
    with pytest.raises(YearClosed):
        _close(s)


def test_only_a_closed_year_is_restated():
    s = Settlement(contract_id="c", year=1)
    with pytest.raises(YearNotClosed):
        s.true_up(
            amount=D("1"),
            by_party={},
            reason="r",
            figures={},
            trace={},
            decided_at="t",
            actor="a",
            variations=[],
        )


def test_a_dispute_needs_a_decision_and_is_resolved_once():
    s = Settlement(contract_id="c", year=1)
    with pytest.raises(InvalidCommand) as nothing:
        s.check_decided()
    assert nothing.value.code == "nothing_to_dispute"
    _close(s)
    s.raise_dispute(
        dispute_id="D1-1",
        raised_by="provider:lead",
        reason="r",
        decision="close",
        decision_at="2026-04-01T00:00:00Z",
        raised_at="2026-04-02T00:00:00Z",
        actor="provider:lead",
    )
    with pytest.raises(NotFound):
        s.resolve_dispute(dispute_id="D1-9", upheld=False, note="n", resolved_at="t", actor="a")
    s.resolve_dispute(dispute_id="D1-1", upheld=False, note="n", resolved_at="t", actor="a")
    with pytest.raises(InvalidCommand) as twice:
        s.resolve_dispute(dispute_id="D1-1", upheld=True, note="n", resolved_at="t", actor="a")
    assert twice.value.code == "dispute_closed"


def test_a_contract_is_extended_once():
    c = Contract(contract_id="c", definition={}, source_sha256="s", actor="a")
    c.record_extension(years=2, actor="a")
    with pytest.raises(InvalidCommand):
        c.record_extension(years=2, actor="a")


def test_every_event_class_has_a_version_and_the_upcasts_to_reach_it():
    seen = 0
    for aggregate in (getattr(aggregates, n) for n in dir(aggregates)):
        if not (isinstance(aggregate, type) and issubclass(aggregate, LedgerAggregate)):
            continue
        for event in (getattr(aggregate, n) for n in dir(aggregate)):
            if (
                isinstance(event, type)
                and issubclass(event, LedgerAggregate.Event)
                and event.__name__ not in ("Event", "Created")  # the bases, at version 1 in LedgerAggregate
            ):
                # declared on the class itself (eventsourcing subclasses it under the same name)
                declared = [c for c in event.__mro__ if c.__qualname__ == event.__qualname__]
                assert any("class_version" in vars(c) for c in declared), event
                for v in range(1, event.class_version):
                    assert callable(getattr(event, f"upcast_v{v}_v{v + 1}")), event
                seen += 1
    assert seen >= 20  # 20 event classes on the five aggregates


def test_year_data_state_is_named():
    from types import SimpleNamespace as NS

    y = YearData(contract_id="c", year=1)
    y.accept_population(NS(record_id="p1", segment_id="adults", count=120, digest="d"), "a")
    y.accept_population(NS(record_id="p2", segment_id="adults", count=130, digest="d"), "a")
    assert y.population["adults"].record_id == "p2" and y.population["adults"].supersedes == "p1"
    assert y.population_counts() == {"adults": 130}


@pytest.mark.parametrize("numerator", [None, D("3")])
@pytest.mark.parametrize("value", [None, D("0.5")])
@pytest.mark.parametrize("supersedes", [None, "s-0"])
def test_a_submission_row_leaves_off_only_trailing_nones_and_gives_every_field_back(
    numerator, value, supersedes
):
    fields = ("s-1", numerator, D("4"), value, supersedes)
    row = aggregates.submission_row(*fields)
    assert aggregates.row_fields(row) == fields
    assert len(row) == (5 if supersedes else 4 if value is not None else 3)


def test_a_corrected_submission_keeps_its_slot_and_the_view_names_every_field():
    data = YearData(contract_id="c", year=1)
    for sid, supersedes in (("s-1", None), ("s-2", "s-1")):
        data._submission_accepted(
            submission_id=sid, provider_id="lead", indicator_id="i1", period="2025-04", numerator=D("1"),
            denominator=D("2"), value=None, digest="d", supersedes=supersedes, actor="system",
        )  # fmt: skip
    assert data.submitted == {"i1": {"lead": {"2025-04": ("s-2", D("1"), D("2"), None, "s-1")}}}
    (state,) = data.latest_submission.values()
    assert (state.submission_id, state.indicator_id, state.provider_id, state.period) == (
        "s-2",
        "i1",
        "lead",
        "2025-04",
    )
    assert (state.numerator, state.denominator, state.value, state.supersedes) == (
        D("1"),
        D("2"),
        None,
        "s-1",
    )
