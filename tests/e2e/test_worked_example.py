"""The public worked example, reproduced to the penny through the CLI on SQLite and PostgreSQL."""

import json

from tests.support.cli import EXAMPLES

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())


def _load_example(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    return cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl", "--json").json()


def test_worked_example_statements_match_the_published_figures_to_the_penny(any_cli):
    counts = _load_example(any_cli)
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (33, 1, 0)
    for expected in EXPECTED:
        any_cli.ok("close-year", "beds-msk", str(expected["year"]))
        statement = any_cli.ok("statement", "beds-msk", "--year", str(expected["year"]), "--json").json()
        assert statement == expected


def test_close_year_prints_the_same_statement_it_records(cli):
    _load_example(cli)
    closed = cli.ok("close-year", "beds-msk", "2", "--json").json()
    assert closed == EXPECTED[1]


def test_the_installed_entry_point_runs_the_example(cli):
    assert cli.subprocess("contract", "register", EXAMPLES / "worked-example.yaml").code == 0
    assert cli.subprocess("ingest", EXAMPLES / "worked-example-data.jsonl").code == 0
    result = cli.subprocess("close-year", "beds-msk", "1", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == EXPECTED[0]


def test_ingesting_the_example_twice_changes_nothing(cli):
    _load_example(cli)
    again = cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl", "--json").json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 34, 0)
    for expected in EXPECTED:
        cli.ok("close-year", "beds-msk", str(expected["year"]))
        assert cli.ok("statement", "beds-msk", "--year", str(expected["year"]), "--json").json() == expected


def test_instalments_paid_early_are_the_ones_the_close_keeps(cli):
    _load_example(cli)
    paid = cli.ok("pay", "beds-msk", "--through", "2026-Q3", "--json").json()
    assert [p["period"] for p in paid] == ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]
    assert cli.ok("pay", "beds-msk", "--through", "2026-Q3", "--json").json() == []
    open_statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert open_statement["total"] == "10585728.00"
    assert open_statement["outcomes"]["payment"] is None and open_statement["risk_share"] is None
    cli.ok("close-year", "beds-msk", "2")
    assert cli.ok("statement", "beds-msk", "--year", "2", "--json").json() == EXPECTED[1]
