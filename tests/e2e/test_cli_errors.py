"""User mistakes give one clear line (or JSON) and a non-zero exit, never a traceback."""

import json

import pytest

from tests.support.cli import EXAMPLES


def test_an_invalid_contract_lists_every_problem_and_registers_nothing(cli, tmp_path):
    text = (EXAMPLES / "worked-example.yaml").read_text()
    text = text.replace(
        'core_split: {circle: "0.8", physio: "0.2"}', 'core_split: {circle: "0.8", physio: "0.3"}'
    )
    text = text.replace(
        'scoring: {rule: sliding, zero_at: "0.60", full_at: "0.85"}',
        'scoring: {rule: sliding, zero_at: "0.60", full_at: "0.60"}',
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = cli("contract", "register", bad)
    assert result.code == 1
    lines = result.err.splitlines()
    assert "nothing was registered" in lines[0]
    assert any(line.strip().startswith("payment.core_split:") for line in lines)
    assert any(line.strip().startswith("indicators[0].scoring.full_at:") for line in lines)
    assert "Traceback" not in result.err
    assert cli.ok("contract", "list", "--json").json() == []


def test_json_errors_carry_the_problem_paths(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("contract: {id: BAD ID}\n")
    result = cli("contract", "register", bad, "--json")
    assert result.code == 1
    error = json.loads(result.err)
    paths = {p["path"] for p in error["problems"]}
    assert {"contract.id", "contract.start", "budget", "payment"} <= paths


@pytest.mark.parametrize(
    "args, code",
    [
        (("statement", "nope", "--year", "1"), "unknown_contract"),
        (("statement", "beds-msk", "--year", "7"), "year_outside_term"),
        (("pay", "beds-msk", "--through", "2025-13"), "invalid_period"),
        (("pay", "beds-msk", "--through", "2031-Q1"), "period_outside_term"),
        (("restate", "beds-msk", "1"), "year_not_closed"),
        (("ingest", "/no/such/file.jsonl"), "file_not_found"),
    ],
)
def test_mistakes_are_one_line_with_a_stable_code(cli, args, code):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    result = cli(*args, "--json")
    assert result.code == 1
    assert json.loads(result.err)["error"] == code
    plain = cli(*args)
    assert plain.err.count("\n") == 1 and plain.err.startswith(f"error: {code}:")


def test_closing_a_year_twice_is_refused(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("close-year", "beds-msk", "1")
    result = cli("close-year", "beds-msk", "1")
    assert result.code == 1 and "year_closed" in result.err


def test_registering_the_same_contract_twice_is_harmless_but_a_different_one_is_refused(cli, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert "already registered" in cli.ok("contract", "register", EXAMPLES / "worked-example.yaml").out
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        (EXAMPLES / "worked-example.yaml").read_text().replace('"24000000.00"', '"25000000.00"')
    )
    result = cli("contract", "register", changed)
    assert result.code == 1 and "already_exists" in result.err


def test_usage_errors_are_one_line(cli):
    result = cli("statement", "beds-msk")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--year" in result.err


def test_a_log_level_from_the_environment_is_checked_like_the_option(cli, monkeypatch):
    monkeypatch.setenv("OBC_LEDGER_LOG_LEVEL", "loud")
    result = cli("contract", "list")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--log-level" in result.err and "'loud'" in result.err
    monkeypatch.setenv("OBC_LEDGER_LOG_LEVEL", "INFO")
    assert cli("contract", "list").code == 0
    wrong = cli("--log-level", "loud", "contract", "list")
    assert wrong.code == 2 and "--log-level" in wrong.err
