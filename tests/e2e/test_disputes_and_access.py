"""Who may do what, and disputes from raising to resolution — every step an event."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.errors import InvalidCommand
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

COMMISSIONER, LEAD, SUB = "commissioner:bccg", "provider:circle", "provider:physio"
GOOD = {
    "type": "submission",
    "submission_id": "s-x1",
    "contract_id": "beds-msk",
    "provider_id": "circle",
    "indicator_id": "proms-improved",
    "period": "2025-Q2",
    "numerator": "300",
    "denominator": "480",
}


@pytest.fixture
def ledger(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml", "--as", COMMISSIONER)
    cli.refused("ingest", EXAMPLES / "worked-example-data.jsonl", "--as", LEAD)
    return cli


def _write(tmp_path, *records):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("close-year", "beds-msk", "1"),
        ("pay", "beds-msk", "--through", "2025-Q3"),
        ("budget", "adjust", "beds-msk", "--year", "2", "--amount", "1.00", "--reason", "uplift"),
        ("baseline", "record", "beds-msk", "readmissions", "300"),
        ("contract", "extend", "beds-msk"),
    ],
)
@pytest.mark.parametrize("who", [LEAD, "auditor", "commissioner:another-ccg"])
def test_only_the_contracts_commissioner_decides(ledger, args, who):
    result = ledger(*args, "--as", who, "--json")
    assert result.code == 1
    assert json.loads(result.err)["error"] == "not_authorized"


def test_only_the_commissioner_named_in_the_contract_registers_it(cli):
    result = cli(
        "contract", "register", EXAMPLES / "worked-example.yaml", "--as", "commissioner:someone-else"
    )
    assert result.code == 1 and "not_authorized" in result.err
    assert cli.ok("contract", "list", "--json").json() == []


def test_refusals_are_recorded_with_the_actor(ledger, sqlite_url):
    ledger("close-year", "beds-msk", "1", "--as", "auditor")
    app = Ledger.from_url(sqlite_url)
    from sqlalchemy import select

    from projections import schema as t
    from projections.bootstrap import Projections

    projections = Projections.for_ledger(app, sqlite_url)
    projections.projector.run()
    with projections.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(t.access_refusals.c.actor, t.access_refusals.c.action))]
    assert rows == [("auditor", "close_year")]


def test_a_provider_submits_only_its_own_records_on_its_own_contracts(ledger, tmp_path):
    data = _write(tmp_path, GOOD, {**GOOD, "submission_id": "s-x2", "provider_id": "physio"})
    report = ledger.refused("ingest", data, "--as", LEAD, "--json").json()
    assert (report["accepted"], report["rejected"]) == (1, 1)
    refused = ledger.ok("rejected", "list", "--code", "not_authorized", "--json").json()
    assert refused[0]["field"] == "provider_id" and "own records" in refused[0]["message"]
    assert ledger.refused("ingest", data, "--as", "provider:stranger", "--json").json()["rejected"] == 2


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


READS = [
    ("statement", "beds-msk", "--year", "1"),
    ("history", "beds-msk", "--year", "1"),
    ("submissions", "beds-msk"),
    ("decisions", "beds-msk"),
    ("explain", "beds-msk", "--year", "1"),
    ("costs", "beds-msk", "--year", "1"),
    ("reconcile", "beds-msk", "--year", "1"),
    ("payments", "beds-msk"),
    ("contract", "show", "beds-msk"),
    ("budget", "show", "beds-msk"),
    ("dispute", "list", "beds-msk"),
    ("replay", "--as-of", "2100-01-01T00:00:00Z", "--contract", "beds-msk"),
    ("rejected", "list", "--contract", "beds-msk"),
]


def test_a_contract_is_read_by_its_parties_and_auditors_only_and_refusals_are_recorded(
    ledger, sqlite_url, tmp_path
):
    ledger.ok("close-year", "beds-msk", "1", "--as", COMMISSIONER)
    for args in READS:
        for who in ("auditor", "auditor:kpmg", COMMISSIONER, LEAD, SUB):
            assert ledger(*args, "--as", who).code in (0, 3), (args, who)  # reconcile: 3 = not reconciled
        for who in ("provider:stranger", "commissioner:another-icb"):
            refused = ledger(*args, "--as", who, "--json")
            assert refused.code == 1 and json.loads(refused.err)["error"] == "not_authorized", (args, who)
            assert "not a party to beds-msk" in json.loads(refused.err)["message"]
    assert ledger("report", "beds-msk", "--out", tmp_path / "r.html", "--as", "provider:stranger").code == 1
    assert not (tmp_path / "r.html").exists()

    from sqlalchemy import func, select

    from projections import schema as t
    from projections.bootstrap import Projections

    projections = Projections.for_ledger(Ledger.from_url(sqlite_url), sqlite_url)
    projections.projector.run()
    with projections.engine.connect() as conn:
        refusals = dict(
            conn.execute(
                select(t.access_refusals.c.actor, func.count())
                .where(t.access_refusals.c.action == "read")
                .group_by(t.access_refusals.c.actor)
            ).all()
        )
    assert refusals == {"provider:stranger": len(READS) + 1, "commissioner:another-icb": len(READS)}


def test_lists_show_an_actor_only_the_contracts_it_may_read(ledger, tmp_path):
    other = (EXAMPLES / "worked-example.yaml").read_text().replace("beds-msk", "herts-msk")
    (tmp_path / "other.yaml").write_text(other)
    ledger.ok("contract", "register", tmp_path / "other.yaml")
    bad = {**GOOD, "submission_id": "s-bad", "numerator": "999"}  # numerator > denominator: rejected
    ledger.refused(
        "ingest",
        _write(tmp_path, bad, {**bad, "contract_id": "herts-msk"}, {**GOOD, "contract_id": "nowhere"}),
    )

    def listed(who: str) -> set[str]:
        return {r["contract_id"] for r in ledger.ok("contract", "list", "--as", who, "--json").json()}

    assert listed("auditor") == listed("system") == {"beds-msk", "herts-msk"}
    assert listed(LEAD) == listed(COMMISSIONER) == {"beds-msk", "herts-msk"}, "herts-msk has the same parties"
    assert listed("provider:stranger") == set()

    def rejected(who: str) -> set[str]:
        return {r["contract_id"] for r in ledger.ok("rejected", "list", "--as", who, "--json").json()}

    assert rejected("auditor") == {"beds-msk", "herts-msk", "nowhere"}
    assert rejected(LEAD) == {"beds-msk", "herts-msk"}, "a record for no registered contract is not a party's"
    assert rejected("provider:stranger") == set()
    replayed = ledger.ok(
        "replay", "--as-of", "2100-01-01T00:00:00Z", "--as", "provider:stranger", "--json"
    ).json()
    assert replayed["contracts"] == {}


def test_an_unknown_kind_of_actor_is_a_usage_mistake(ledger):
    result = ledger("close-year", "beds-msk", "1", "--as", "mayor:bob")
    assert result.code == 1 and "invalid_actor" in result.err


def test_a_dispute_upheld_with_an_adjustment_moves_money_and_is_in_the_history(ledger):
    ledger.ok("close-year", "beds-msk", "2", "--as", COMMISSIONER)
    raised = ledger.ok(
        "dispute",
        "raise",
        "beds-msk",
        "--year",
        "2",
        "--reason",
        "readmissions miscounted",
        "--as",
        SUB,
        "--json",
    ).json()
    assert raised["dispute_id"] == "D2-1" and raised["decision"] == "close"
    refused = ledger(
        "dispute", "resolve", "beds-msk", "D2-1", "--year", "2", "--upheld", "--note", "ok", "--as", LEAD
    )
    assert refused.code == 1 and "not_authorized" in refused.err
    out = ledger.ok(
        "dispute",
        "resolve",
        "beds-msk",
        "D2-1",
        "--year",
        "2",
        "--upheld",
        "--note",
        "agreed recount",
        "--adjust",
        "12500.00",
        "--party",
        "physio",
        "--as",
        COMMISSIONER,
        "--json",
    ).json()
    assert out["adjustment"] == {"amount": "12500.00", "party": "physio"}
    statement = ledger.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert statement["true_ups"][-1]["amount"] == "12500.00"
    assert statement["true_ups"][-1]["by_party"] == {"physio": "12500.00"}
    assert statement["true_ups"][-1]["reason"] == "dispute D2-1 upheld: agreed recount"
    events = [h["event"] for h in ledger.ok("history", "beds-msk", "--year", "2", "--json").json()]
    assert events[-3:] == ["dispute_raised", "dispute_upheld", "adjustment_decided"]
    again = ledger(
        "dispute",
        "resolve",
        "beds-msk",
        "D2-1",
        "--year",
        "2",
        "--rejected",
        "--note",
        "x",
        "--as",
        COMMISSIONER,
    )
    assert again.code == 1 and "dispute_closed" in again.err


def test_a_dispute_upheld_without_an_adjustment_restates_the_year(ledger, tmp_path):
    ledger.ok("close-year", "beds-msk", "2", "--as", COMMISSIONER)
    ledger.ok(
        "dispute", "raise", "beds-msk", "--year", "2", "--reason", "Q1 readmissions were 80", "--as", LEAD
    )
    ledger.ok(
        "ingest",
        _write(
            tmp_path,
            {
                "type": "submission",
                "submission_id": "s-0419",
                "contract_id": "beds-msk",
                "provider_id": "circle",
                "indicator_id": "readmissions",
                "period": "2027-Q1",
                "value": "80",
            },
        ),
        "--as",
        LEAD,
    )
    out = ledger.ok(
        "dispute",
        "resolve",
        "beds-msk",
        "D2-1",
        "--year",
        "2",
        "--upheld",
        "--note",
        "recount",
        "--as",
        COMMISSIONER,
        "--json",
    ).json()
    assert out["true_up"]["amount"] == "-882144.00"
    assert out["true_up"]["reason"].startswith(
        "dispute D2-1 upheld: recount; restated after correction s-0419"
    )


def test_a_rejected_dispute_moves_nothing(ledger):
    ledger.ok("close-year", "beds-msk", "1", "--as", COMMISSIONER)
    ledger.ok("dispute", "raise", "beds-msk", "--year", "1", "--reason", "too low", "--as", LEAD)
    ledger.ok(
        "dispute",
        "resolve",
        "beds-msk",
        "D1-1",
        "--year",
        "1",
        "--rejected",
        "--note",
        "figures stand",
        "--as",
        COMMISSIONER,
    )
    assert ledger.ok("statement", "beds-msk", "--year", "1", "--json").json()["true_ups"] == []
    listed = ledger.ok("dispute", "list", "beds-msk", "--json").json()
    assert [(d["dispute_id"], d["status"]) for d in listed] == [("D1-1", "rejected")]


def test_disputes_after_the_time_bar_are_refused(tmp_path):
    now = [datetime(2027, 5, 1, 12, tzinfo=UTC)]
    app = Ledger.from_url(f"sqlite:///{tmp_path / 'l.db'}", clock=lambda: now[0])
    text = (EXAMPLES / "worked-example.yaml").read_text() + "\ndisputes: {time_bar_days: 14}\n"
    services_for(app).registration.register_contract(text)
    services_for(app).settlement.close_year("beds-msk", 1)
    now[0] += timedelta(days=14)
    assert (
        services_for(app).disputes.raise_dispute("beds-msk", 1, "within the bar", actor=LEAD)["dispute_id"]
        == "D1-1"
    )
    now[0] += timedelta(seconds=1)
    with pytest.raises(InvalidCommand) as refused:
        services_for(app).disputes.raise_dispute("beds-msk", 1, "too late", actor=LEAD)
    assert refused.value.code == "time_barred" and "14 days" in refused.value.message


def test_a_dispute_needs_a_decision(ledger):
    result = ledger("dispute", "raise", "beds-msk", "--year", "1", "--reason", "x", "--as", LEAD)
    assert result.code == 1 and "nothing_to_dispute" in result.err
