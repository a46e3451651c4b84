"""Late data never edits a decision: restate records a true-up for the difference."""

import json
from decimal import Decimal

from tests.support.cli import EXAMPLES

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())


def _closed_example(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "2")


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_correction_after_close_is_accepted_and_flagged_but_the_decision_stands(cli, tmp_path):
    _closed_example(cli)
    late = _write(
        tmp_path,
        "late.jsonl",
        [
            {
                "type": "submission",
                "submission_id": "s-0419",
                "contract_id": "beds-msk",
                "provider_id": "circle",
                "indicator_id": "readmissions",
                "period": "2027-Q1",
                "value": "80",
            }
        ],
    )
    report = cli.ok("ingest", late, "--json").json()
    assert report["accepted"] == 1 and report["corrections"] == 1
    assert report["late_for_closed_years"] == [{"contract_id": "beds-msk", "year": 2, "records": 1}]
    assert cli.ok("statement", "beds-msk", "--year", "2", "--json").json() == EXPECTED[1]


def test_restating_after_a_correction_records_a_true_up_for_the_difference(cli, tmp_path):
    _closed_example(cli)
    # readmissions 70+69+66+80 = 285 > target 279: the indicator's 882144.00 is no longer earned
    late = _write(
        tmp_path,
        "late.jsonl",
        [
            {
                "type": "submission",
                "submission_id": "s-0419",
                "contract_id": "beds-msk",
                "provider_id": "circle",
                "indicator_id": "readmissions",
                "period": "2027-Q1",
                "value": "80",
            }
        ],
    )
    cli.ok("ingest", late)
    true_up = cli.ok("restate", "beds-msk", "2", "--json").json()["true_up"]
    assert true_up["amount"] == "-882144.00"
    assert true_up["by_party"] == {"circle": "-882144.00", "physio": "0.00"}
    assert "correction s-0419" in true_up["reason"]
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    original = {k: v for k, v in statement.items() if k != "true_ups"}
    assert original == {k: v for k, v in EXPECTED[1].items() if k != "true_ups"}
    assert [(t["amount"], t["reason"]) for t in statement["true_ups"]] == [
        (true_up["amount"], true_up["reason"])
    ]
    assert statement["true_ups"][0]["decided_at"].endswith("Z")


def test_restating_again_without_new_data_records_nothing(cli, tmp_path):
    _closed_example(cli)
    assert cli.ok("restate", "beds-msk", "2", "--json").json()["true_up"] is None
    late = _write(
        tmp_path,
        "late.jsonl",
        [
            {
                "type": "cost_report",
                "report_id": "c-0099",
                "contract_id": "beds-msk",
                "provider_id": "physio",
                "period": "2027-Q1",
                "total_cost": "620000.00",
                "high_cost_cases": [],
            }
        ],
    )
    cli.ok("ingest", late)
    first = cli.ok("restate", "beds-msk", "2", "--json").json()["true_up"]
    # 100,000 more cost: the gain 2,356,840 falls to 2,256,840, below the 10% tier (2,352,384), so
    # the commissioner loses its 100% top slice (4,456) and half of the remaining 95,544 (47,772)
    assert first["amount"] == "52228.00"
    assert "cost correction c-0099" in first["reason"]
    assert cli.ok("restate", "beds-msk", "2", "--json").json()["true_up"] is None
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert len(statement["true_ups"]) == 1


def test_successive_true_ups_each_record_only_the_new_difference(cli, tmp_path):
    _closed_example(cli)
    for n, value in enumerate(["80", "66"], start=1):
        cli.ok(
            "ingest",
            _write(
                tmp_path,
                f"late{n}.jsonl",
                [
                    {
                        "type": "submission",
                        "submission_id": f"s-late-{n}",
                        "contract_id": "beds-msk",
                        "provider_id": "circle",
                        "indicator_id": "readmissions",
                        "period": "2027-Q1",
                        "value": value,
                    }
                ],
            ),
        )
        cli.ok("restate", "beds-msk", "2")
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    amounts = [t["amount"] for t in statement["true_ups"]]
    assert amounts == ["-882144.00", "882144.00"]
    assert sum(Decimal(a) for a in amounts) == 0
