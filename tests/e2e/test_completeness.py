"""Data completeness: a close says which cost reports and indicator periods were never sent,
and a contract may make the close wait for every cost report."""

import json

from tests.support.cli import EXAMPLES

DATA = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()


def _without(tmp_path, report_id):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(line for line in DATA if f'"report_id": "{report_id}"' not in line) + "\n")
    return path


def test_a_close_warns_of_each_missing_cost_report_and_lists_it_in_its_output(cli, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", _without(tmp_path, "c-0002"))
    gaps = cli.ok("completeness", "beds-msk", "--year", "2", "--json").json()
    assert gaps == [
        {
            "year": 2,
            "complete": False,
            "submissions_missing": [],
            "cost_reports_missing": [{"provider_id": "circle", "period": "2026-Q3"}],
        }
    ]
    cli.ok("close-year", "beds-msk", "1")
    closed = cli.ok("close-year", "beds-msk", "2")
    assert "warning: year 2 of beds-msk: no cost report from circle for 2026-Q3" in closed.err
    assert "1 cost report(s) and 0 indicator period(s) missing" in closed.out


def test_a_complete_year_closes_without_warnings(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "1")
    closed = cli.ok("close-year", "beds-msk", "2")
    assert "warning" not in closed.err and "every cost report and indicator period is in" in closed.out


def test_a_contract_requiring_cost_reports_refuses_the_close_until_they_are_in(cli, tmp_path):
    contract = tmp_path / "contract.yaml"
    contract.write_text(
        (EXAMPLES / "worked-example.yaml").read_text() + "\nclosing:\n  require_cost_reports: true\n"
    )
    cli.ok("contract", "register", contract)
    cli.ok("ingest", _without(tmp_path, "c-0002"))
    cli.ok("close-year", "beds-msk", "1")  # no risk share in year 1: no cost report is needed
    refused = cli("close-year", "beds-msk", "2", "--json")
    assert refused.code == 1 and json.loads(refused.err)["error"] == "incomplete_data"
    assert "circle 2026-Q3" in json.loads(refused.err)["message"]
    late = tmp_path / "late.jsonl"
    late.write_text(next(line for line in DATA if '"report_id": "c-0002"' in line) + "\n")
    cli.ok("ingest", late)
    assert cli.ok("close-year", "beds-msk", "2", "--json").json()["year"] == 2
