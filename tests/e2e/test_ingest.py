"""Ingest: bad records are kept with a reason, duplicates acknowledged, nothing half-applied."""

import json

import pytest

from ledger.usecases import services_for
from tests.support.cli import EXAMPLES

GOOD = {
    "type": "submission",
    "submission_id": "s-0001",
    "contract_id": "beds-msk",
    "provider_id": "circle",
    "indicator_id": "proms-improved",
    "period": "2025-Q2",
    "numerator": "300",
    "denominator": "480",
}

BAD_LINES = [
    ("{not json", "invalid_json", None),
    ('["a", "list"]', "not_an_object", None),
    (json.dumps({**GOOD, "submission_id": "b1", "contract_id": "nope"}), "unknown_contract", "contract_id"),
    (
        json.dumps({**GOOD, "submission_id": "b2", "provider_id": "stranger"}),
        "provider_not_party",
        "provider_id",
    ),
    (
        json.dumps({**GOOD, "submission_id": "b3", "indicator_id": "nope"}),
        "unknown_indicator",
        "indicator_id",
    ),
    (json.dumps({**GOOD, "submission_id": "b4", "period": "2031-Q1"}), "period_outside_term", "period"),
    (
        json.dumps({**GOOD, "submission_id": "b5", "numerator": "500"}),
        "numerator_exceeds_denominator",
        "numerator",
    ),
    (json.dumps({**GOOD, "submission_id": "b6", "denominator": "0"}), "invalid_denominator", "denominator"),
    (json.dumps({**GOOD, "submission_id": "b7", "numerator": "n/a"}), "non_numeric", "numerator"),
    (
        json.dumps({k: v for k, v in GOOD.items() if k != "period"} | {"submission_id": "b8"}),
        "missing_field",
        "period",
    ),
    (json.dumps({**GOOD, "numerator": "301"}), "conflicting_duplicate", "submission_id"),
]


@pytest.fixture
def registered(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    return cli


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_bad_record_is_rejected_with_its_reason_and_kept(registered, tmp_path):
    data = _write(tmp_path / "mixed.jsonl", [json.dumps(GOOD)] + [line for line, _, _ in BAD_LINES])
    report = registered.refused("ingest", data, "--json").json()
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (1, 0, len(BAD_LINES))
    kept = registered.ok("rejected", "list", "--json").json()
    assert [(r["line"], r["code"], r["field"]) for r in kept] == [
        (n, code, field) for n, (_, code, field) in enumerate(BAD_LINES, start=2)
    ]
    assert all(r["source"] == "mixed.jsonl" and r["message"] for r in kept)
    assert kept[0]["raw"] == "{not json"


def test_re_ingesting_a_file_with_bad_records_keeps_each_rejection_once(registered, tmp_path):
    data = _write(tmp_path / "mixed.jsonl", [json.dumps(GOOD)] + [line for line, _, _ in BAD_LINES])
    registered.refused("ingest", data)
    again = registered.refused("ingest", data, "--json").json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 1, len(BAD_LINES))
    assert len(registered.ok("rejected", "list", "--json").json()) == len(BAD_LINES)


def test_rejected_list_filters_by_code_and_reads_well(registered, tmp_path):
    registered.refused("ingest", _write(tmp_path / "mixed.jsonl", [line for line, _, _ in BAD_LINES]))
    only = registered.ok("rejected", "list", "--code", "non_numeric", "--json").json()
    assert [r["record_id"] for r in only] == ["b7"]
    text = registered.ok("rejected", "list").out
    row = next(line for line in text.splitlines() if line.startswith("mixed.jsonl:9 "))
    assert row.split()[1:3] == ["non_numeric", "numerator"], "a table: source:line, code, field, reason"
    assert text.splitlines()[0].split() == ["source:line", "code", "field", "reason"]


def test_blank_lines_are_not_records(registered, tmp_path):
    data = tmp_path / "blank.jsonl"
    data.write_text("\n" + json.dumps(GOOD) + "\n\n   \n")
    report = registered.ok("ingest", data, "--json").json()
    assert (report["accepted"], report["rejected"]) == (1, 0)


def test_ingest_reads_standard_input(registered, tmp_path, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(GOOD) + "\n"))
    report = registered.ok("ingest", "-", "--json").json()
    assert report["accepted"] == 1


def test_check_reports_what_ingest_would_do_and_records_nothing(registered, tmp_path, sqlite_url):
    from ledger.usecases.application import Ledger

    data = _write(tmp_path / "mixed.jsonl", [json.dumps(GOOD)] + [line for line, _, _ in BAD_LINES])
    app = Ledger.from_url(sqlite_url)
    head = app.recorder.max_notification_id()
    checked = registered.refused("ingest", data, "--check", "--json").json()
    assert app.recorder.max_notification_id() == head, "nothing was recorded"
    assert registered.ok("rejected", "list", "--json").json() == []
    assert checked["checked_only"] is True
    assert [(r["line"], r["code"], r["field"]) for r in checked["refused"]] == [
        (n, code, field) for n, (_, code, field) in enumerate(BAD_LINES, start=2)
    ]
    ingested = registered.refused("ingest", data, "--json").json()
    assert {k: v for k, v in checked.items() if k not in ("checked_only", "refused")} == ingested
    plain = registered.refused("ingest", data, "--check").out
    assert plain.startswith(f"would accept 0, duplicates 1, reject {len(BAD_LINES)}")
    assert "line 2: invalid_json" in plain and "nothing was recorded" in plain


def test_check_finds_duplicates_and_corrections_within_the_file_across_batches(sqlite_url):
    from ledger.usecases.application import Ledger

    app = Ledger.from_url(sqlite_url)
    services_for(app).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    lines = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()
    checked, refused = services_for(app).ingest.check_lines(lines, "example", batch_size=3)
    head = app.recorder.max_notification_id()
    ingested = services_for(app).ingest.ingest_lines(lines, "example", batch_size=3)
    assert checked.to_dict() == ingested.to_dict() and refused == []
    assert (checked.accepted, checked.duplicates, checked.corrections) == (33, 1, 1)
    assert app.recorder.max_notification_id() > head
