"""An event the read models cannot hold is quarantined, never a block on reads: on SQLite and PostgreSQL."""

import json
from decimal import Decimal

import pytest

from ledger.domain.aggregates import YearData, contract_uuid, year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from projections.bootstrap import Projections
from projections.projector import Projector, table_rows
from tests.support.cli import EXAMPLES, Cli

CONTRACT = (EXAMPLES / "worked-example.yaml").read_text()
DATA = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()


def _two_contracts(url):
    """beds-msk and a twin, other-msk, each with the worked example's data and year 1 closed."""
    app = Ledger.from_url(url)
    services_for(app).registration.register_contract(CONTRACT)
    services_for(app).registration.register_contract(CONTRACT.replace("id: beds-msk", "id: other-msk"))
    services_for(app).ingest.ingest_lines(DATA, "example.jsonl")
    services_for(app).ingest.ingest_lines(
        [line.replace('"beds-msk"', '"other-msk"') for line in DATA], "other.jsonl"
    )
    for cid in ("beds-msk", "other-msk"):
        services_for(app).settlement.close_year(cid, 1)
    return app


def _poison(app, submission_id, value):
    """A submission stored through the recorder as a buggy or older writer could have stored it."""
    data = app.repository.get(year_data_uuid("beds-msk", 2))
    data.trigger_event(
        YearData.SubmissionAccepted,
        submission_id=submission_id,
        provider_id="circle",
        indicator_id="readmissions",
        period="2026-Q3",
        numerator=None,
        denominator=None,
        value=value,
        digest="0" * 64,
        supersedes=None,
        actor="system",
    )
    app.save(data)
    return app.recorder.max_notification_id()


def _more_data(app):
    """Good events after the poison: other-msk's year 2 closes, beds-msk records a baseline."""
    services_for(app).settlement.close_year("other-msk", 2)
    services_for(app).registration.record_baseline("beds-msk", "readmissions", "95", "re-based")


def test_reads_of_every_other_contract_answer_the_same_figures_past_a_poison_event(ledger_url):
    app = _two_contracts(ledger_url)
    poisons = [_poison(app, "s-huge", Decimal("1E-999999999"))]  # a billion places: no read model holds it
    if ledger_url.startswith("postgresql"):
        poisons.append(_poison(app, "s-" + "x" * 198, Decimal("80")))  # 200 characters into VARCHAR(128)
    _more_data(app)

    projections = Projections.for_ledger(app, ledger_url)
    warnings = []
    read = projections.current(warn=warnings.append)
    for year in (1, 2):
        assert read.statement("other-msk", year) == services_for(app).settlement.statement("other-msk", year)
    assert read.statement("beds-msk", 1) == services_for(app).settlement.statement("beds-msk", 1)
    assert read.contract("beds-msk")["baselines"]["readmissions"] == "95"  # recorded after the poison

    status = projections.projector.status()
    assert status["lag"] == 0 and status["position"] == app.recorder.max_notification_id()
    assert [q["notification_id"] for q in status["quarantined"]] == poisons
    huge = status["quarantined"][0]
    assert (huge["event_type"], huge["error"], huge["contract_id"], huge["year"]) == (
        "YearData.SubmissionAccepted",
        "ValueError",
        "beds-msk",
        2,
    )
    assert "more than 100 digits" in huge["reason"]
    if ledger_url.startswith("postgresql"):
        assert status["quarantined"][1]["error"] == "StringDataRightTruncation"
    assert len(warnings) == 1 and "quarantined" in warnings[0]
    stored = {s["submission_id"] for s in read.submissions("beds-msk", None, None, True)}
    sent = {json.loads(line)["submission_id"] for line in DATA if '"submission"' in line}
    refused = {r["record_id"] for r in read.rejected() if r["contract_id"] == "beds-msk"}
    assert stored == sent - refused  # every good submission once; the poison not at all

    before = dict(table_rows(projections.engine))
    assert projections.projector.rebuild() > 0  # a rebuild tries the quarantined events again ...
    assert dict(table_rows(projections.engine)) == before  # ... (still unwritable) and projects the same rows
    assert [q["notification_id"] for q in projections.projector.quarantined()] == poisons


class _BuggyProjector(Projector):
    """A projector release whose baseline handler has a bug."""

    def _baseline(self, b, n, s, stream):
        raise KeyError("indicator")


def test_an_event_a_bug_could_not_project_is_projected_once_the_bug_is_fixed(ledger_url):
    app = _two_contracts(ledger_url)
    _more_data(app)
    projections = Projections.for_ledger(app, ledger_url)
    buggy = _BuggyProjector(app, projections.engine)
    buggy.run()
    assert [q["event_type"] for q in buggy.quarantined()] == ["Contract.BaselineRecorded"]
    assert buggy.quarantined()[0]["error"] == "KeyError"
    assert projections.read.contract("beds-msk")["baselines"] == {"readmissions": "310"}  # the contract's own
    assert projections.read.statement("other-msk", 2) == services_for(app).settlement.statement(
        "other-msk", 2
    )

    fixed = projections.projector
    fixed.run()
    assert fixed.quarantined()  # catching up does not retry: the position is past the event
    fixed.rebuild()
    assert fixed.quarantined() == []
    assert projections.read.contract("beds-msk")["baselines"] == {"readmissions": "95"}


def test_projections_status_lists_the_quarantined_events(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = _two_contracts(url)
    poison = _poison(app, "s-huge", Decimal("1E+999999999"))
    cli = Cli(url)
    statement = cli("statement", "other-msk", "--year", "1", "--json")
    assert statement.code == 0 and json.loads(statement.out) == services_for(app).settlement.statement(
        "other-msk", 1
    )
    warning = statement.err.splitlines()[-1]  # after the projector's log line of the quarantine
    assert warning.startswith("warning: 1 event(s) quarantined") and f"#{poison}" in warning
    again = cli("statement", "other-msk", "--year", "1")
    assert again.code == 0 and [line for line in again.err.splitlines() if line.startswith("warning")] == [
        warning
    ]
    status = cli.ok("projections", "status", "--json").json()
    assert [(q["notification_id"], q["event_type"]) for q in status["quarantined"]] == [
        (poison, "YearData.SubmissionAccepted")
    ]
    text = cli.ok("projections", "status").out.splitlines()
    assert text[1].startswith("quarantined 1 event(s)")
    assert text[2].split()[:4] == ["event", "#", "event", "contract"], "a table with a header row"
    row = next(line for line in text if line.startswith(f"{poison} "))
    assert row.split()[:5] == [str(poison), "YearData.SubmissionAccepted", "beds-msk", "2", "ValueError"]
    assert "decimal" in row
    assert contract_uuid("beds-msk").hex not in "\n".join(text)


def test_a_batch_another_projector_wrote_first_is_not_quarantined(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = _two_contracts(url)
    first, second = Projections.for_ledger(app, url), Projections.for_ledger(app, url)
    page = app.recorder.select_notifications(start=0, limit=5000, inclusive_of_start=False)
    second.projector.create_tables()
    first.projector.run()  # the worker got there first; `second` had read position 0 and now writes the same rows
    with pytest.raises(Exception) as raised:
        second.projector._isolating(page, None, None)
    assert type(raised.value).__name__ == "_Overtaken"
    assert second.projector.quarantined() == []
    assert second.projector.run() == 0 and second.projector.status()["lag"] == 0
