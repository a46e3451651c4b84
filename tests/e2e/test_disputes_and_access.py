"""Who may do what, and disputes from raising to resolution — every step an event."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidCommand
from tests.support.cli import EXAMPLES

COMMISSIONER, LEAD, SUB = "commissioner:bccg", "provider:circle", "provider:physio"
GOOD = {"type": "submission", "submission_id": "s-x1", "contract_id": "beds-msk", "provider_id": "circle",
        "indicator_id": "proms-improved", "period": "2025-Q2", "numerator": "300", "denominator": "480"}


@pytest.fixture
def ledger(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml", "--as", COMMISSIONER)
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl", "--as", LEAD)
    return cli


def _write(tmp_path, *records):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("args", [
    ("close-year", "beds-msk", "1"),
    ("pay", "beds-msk", "--through", "2025-Q3"),
    ("budget", "adjust", "beds-msk", "--year", "2", "--amount", "1.00", "--reason", "uplift"),
    ("baseline", "record", "beds-msk", "readmissions", "300"),
    ("contract", "extend", "beds-msk"),
])
@pytest.mark.parametrize("who", [LEAD, "auditor", "commissioner:another-ccg"])
def test_only_the_contracts_commissioner_decides(ledger, args, who):
    result = ledger(*args, "--as", who, "--json")
    assert result.code == 1
    assert json.loads(result.err)["error"] == "not_authorized"


def test_only_the_commissioner_named_in_the_contract_registers_it(cli):
    result = cli("contract", "register", EXAMPLES / "worked-example.yaml", "--as", "commissioner:someone-else")
    assert result.code == 1 and "not_authorized" in result.err
    assert cli.ok("contract", "list", "--json").json() == []


def test_refusals_are_recorded_with_the_actor(ledger, sqlite_url):
    ledger("close-year", "beds-msk", "1", "--as", "auditor")
    app = Ledger.from_url(sqlite_url)
    from projections.bootstrap import Projections
    from projections import schema as t
    from sqlalchemy import select

    projections = Projections.for_ledger(app, sqlite_url)
    projections.projector.run()
    with projections.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(t.access_refusals.c.actor, t.access_refusals.c.action))]
    assert rows == [("auditor", "close_year")]


def test_a_provider_submits_only_its_own_records_on_its_own_contracts(ledger, tmp_path):
    data = _write(tmp_path, GOOD, {**GOOD, "submission_id": "s-x2", "provider_id": "physio"})
    report = ledger.ok("ingest", data, "--as", LEAD, "--json").json()
    assert (report["accepted"], report["rejected"]) == (1, 1)
    refused = ledger.ok("rejected", "list", "--code", "not_authorized", "--json").json()
    assert refused[0]["field"] == "provider_id" and "own records" in refused[0]["message"]
    assert ledger("ingest", data, "--as", "provider:stranger", "--json").json()["rejected"] == 2


def test_auditors_and_commissioners_do_not_submit_data(ledger, tmp_path):
    for who in ("auditor", COMMISSIONER):
        result = ledger("ingest", _write(tmp_path, GOOD), "--as", who)
        assert result.code == 1 and "not_authorized" in result.err


def test_everyone_reads_and_events_carry_the_actor(ledger):
    ledger.ok("close-year", "beds-msk", "1", "--as", COMMISSIONER)
    for who in ("auditor", LEAD, COMMISSIONER):
        assert ledger.ok("statement", "beds-msk", "--year", "1", "--as", who, "--json").json()["total"]
    history = ledger.ok("history", "beds-msk", "--year", "1", "--json").json()
    assert {h["actor"] for h in history} == {COMMISSIONER}


def test_an_unknown_kind_of_actor_is_a_usage_mistake(ledger):
    result = ledger("close-year", "beds-msk", "1", "--as", "mayor:bob")
    assert result.code == 1 and "invalid_actor" in result.err


def test_a_dispute_upheld_with_an_adjustment_moves_money_and_is_in_the_history(ledger):
    ledger.ok("close-year", "beds-msk", "2", "--as", COMMISSIONER)
    raised = ledger.ok("dispute", "raise", "beds-msk", "--year", "2", "--reason", "readmissions miscounted",
                       "--as", SUB, "--json").json()
    assert raised["dispute_id"] == "D2-1" and raised["decision"] == "close"
    refused = ledger("dispute", "resolve", "beds-msk", "D2-1", "--year", "2", "--upheld", "--note", "ok",
                     "--as", LEAD)
    assert refused.code == 1 and "not_authorized" in refused.err
    out = ledger.ok("dispute", "resolve", "beds-msk", "D2-1", "--year", "2", "--upheld", "--note",
                    "agreed recount", "--adjust", "12500.00", "--party", "physio", "--as", COMMISSIONER,
                    "--json").json()
    assert out["adjustment"] == {"amount": "12500.00", "party": "physio"}
    statement = ledger.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert statement["true_ups"][-1]["amount"] == "12500.00"
    assert statement["true_ups"][-1]["by_party"] == {"physio": "12500.00"}
    assert "dispute D2-1 upheld: agreed recount" == statement["true_ups"][-1]["reason"]
    events = [h["event"] for h in ledger.ok("history", "beds-msk", "--year", "2", "--json").json()]
    assert events[-3:] == ["dispute_raised", "dispute_upheld", "adjustment_decided"]
    again = ledger("dispute", "resolve", "beds-msk", "D2-1", "--year", "2", "--rejected", "--note", "x",
                   "--as", COMMISSIONER)
    assert again.code == 1 and "dispute_closed" in again.err


def test_a_dispute_upheld_without_an_adjustment_restates_the_year(ledger, tmp_path):
    ledger.ok("close-year", "beds-msk", "2", "--as", COMMISSIONER)
    ledger.ok("dispute", "raise", "beds-msk", "--year", "2", "--reason", "Q1 readmissions were 80", "--as", LEAD)
    ledger.ok("ingest", _write(tmp_path, {"type": "submission", "submission_id": "s-0419", "contract_id": "beds-msk",
                                          "provider_id": "circle", "indicator_id": "readmissions",
                                          "period": "2027-Q1", "value": "80"}), "--as", LEAD)
    out = ledger.ok("dispute", "resolve", "beds-msk", "D2-1", "--year", "2", "--upheld", "--note", "recount",
                    "--as", COMMISSIONER, "--json").json()
    assert out["true_up"]["amount"] == "-882144.00"
    assert out["true_up"]["reason"].startswith("dispute D2-1 upheld: recount; restated after correction s-0419")


def test_a_rejected_dispute_moves_nothing(ledger):
    ledger.ok("close-year", "beds-msk", "1", "--as", COMMISSIONER)
    ledger.ok("dispute", "raise", "beds-msk", "--year", "1", "--reason", "too low", "--as", LEAD)
    ledger.ok("dispute", "resolve", "beds-msk", "D1-1", "--year", "1", "--rejected", "--note", "figures stand",
              "--as", COMMISSIONER)
    assert ledger.ok("statement", "beds-msk", "--year", "1", "--json").json()["true_ups"] == []
    listed = ledger.ok("dispute", "list", "beds-msk", "--json").json()
    assert [(d["dispute_id"], d["status"]) for d in listed] == [("D1-1", "rejected")]


def test_disputes_after_the_time_bar_are_refused(tmp_path):
    now = [datetime(2027, 5, 1, 12, tzinfo=timezone.utc)]
    app = Ledger.from_url(f"sqlite:///{tmp_path / 'l.db'}", clock=lambda: now[0])
    text = (EXAMPLES / "worked-example.yaml").read_text() + "\ndisputes: {time_bar_days: 14}\n"
    app.register_contract(text)
    app.close_year("beds-msk", 1)
    now[0] += timedelta(days=14)
    assert app.raise_dispute("beds-msk", 1, "within the bar", actor=LEAD)["dispute_id"] == "D1-1"
    now[0] += timedelta(seconds=1)
    with pytest.raises(InvalidCommand) as refused:
        app.raise_dispute("beds-msk", 1, "too late", actor=LEAD)
    assert refused.value.code == "time_barred" and "14 days" in refused.value.message


def test_a_dispute_needs_a_decision(ledger):
    result = ledger("dispute", "raise", "beds-msk", "--year", "1", "--reason", "x", "--as", LEAD)
    assert result.code == 1 and "nothing_to_dispute" in result.err
