"""An OBC_LEDGER_* variable that changes what `verify` checks is never taken silently."""

import json
import os

from tests.support.cli import Cli, worked_example_ledger


def test_seals_only_from_the_environment_is_announced_on_stderr_and_in_json(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    cli = Cli(url)
    plain = cli.ok("verify", "--json")
    assert json.loads(plain.out)["from_environment"] == [] and "note:" not in plain.err
    monkeypatch.setenv("OBC_LEDGER_SEALS_ONLY", "1")
    result = cli.ok("verify")
    assert "note: --seals-only from $OBC_LEDGER_SEALS_ONLY" in result.err
    assert "snapshot(s) replayed" not in result.out  # it did narrow the check: and says so
    as_json = cli.ok("verify", "--json")
    assert json.loads(as_json.out)["from_environment"] == ["OBC_LEDGER_SEALS_ONLY"]
    assert "note: --seals-only from $OBC_LEDGER_SEALS_ONLY" in as_json.err


def test_a_witness_from_the_environment_is_announced(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    cli = Cli(url)
    witness = tmp_path / "witness"
    cli.ok("digest", "--publish", witness)
    monkeypatch.setenv("OBC_LEDGER_WITNESS", str(witness))
    result = cli.ok("verify", "--json")
    assert "note: --witness from $OBC_LEDGER_WITNESS" in result.err
    assert json.loads(result.out)["from_environment"] == ["OBC_LEDGER_WITNESS"]


def test_the_broker_a_kafka_witness_is_read_from_is_announced_when_it_comes_from_the_environment(
    tmp_path, monkeypatch, kafka_broker
):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    cli = Cli(url)
    monkeypatch.setenv("OBC_LEDGER_BOOTSTRAP", kafka_broker.bootstrap)
    directory, topic = tmp_path / "witness", f"kafka:ledger.digests.env.{os.getpid()}"
    cli.ok("digest", "--publish", directory, "--publish", topic)
    quiet = cli.ok("verify", "--json", "--witness", directory)  # a directory witness: the broker unused
    assert json.loads(quiet.out)["from_environment"] == [] and "note:" not in quiet.err
    result = cli.ok("verify", "--json", "--witness", topic)
    assert "note: --bootstrap from $OBC_LEDGER_BOOTSTRAP" in result.err
    assert json.loads(result.out)["from_environment"] == ["OBC_LEDGER_BOOTSTRAP"]
