"""A CLI user proves who is acting with an issued token (`--token`, or $OBC_LEDGER_TOKEN): the actor is
the token's, its id is recorded as the principal on every event the command saves, and a token that
is unknown or revoked, or one used to claim another actor, is refused (the latter recorded)."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import EXAMPLES, stored_states


def _events(cli, topic_part):
    return stored_states(cli.db_url, topic_part)


@pytest.fixture
def commissioner_token(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    issued = cli.ok(
        "token", "issue", "--actor", "commissioner:bccg", "--name", "Finance manager", "--json"
    ).json()
    return issued


def _adjust(cli, *extra):
    return cli(
        "budget", "adjust", "beds-msk", "--year", "2", "--amount", "24100000.00", "--reason", "uplift", *extra
    )


def test_a_token_proves_the_actor_and_its_id_is_recorded_on_the_event(cli, commissioner_token):
    done = _adjust(cli, "--token", commissioner_token["token"])
    assert done.code == 0, done.err
    adjusted = _events(cli, "BudgetSet")[-1]
    assert adjusted["actor"] == "commissioner:bccg"
    assert adjusted["principal"] == f"token:{commissioner_token['token_id']}"

    unproven = _adjust(cli, "--as", "commissioner:bccg")  # a claim, as before: no principal
    assert unproven.code == 0, unproven.err
    assert "principal" not in _events(cli, "BudgetSet")[-1]


def test_a_token_from_the_environment_proves_the_actor_too(cli, commissioner_token, monkeypatch):
    monkeypatch.setenv("OBC_LEDGER_TOKEN", commissioner_token["token"])
    done = cli("--json", "budget", "show", "beds-msk")
    assert done.code == 0, done.err
    assert _adjust(cli).code == 0
    assert _events(cli, "BudgetSet")[-1]["principal"] == f"token:{commissioner_token['token_id']}"


def test_a_token_claiming_another_actor_is_refused_and_recorded_with_the_token(cli, commissioner_token):
    before = len(_events(cli, "BudgetSet"))
    refused = _adjust(cli, "--token", commissioner_token["token"], "--as", "provider:circle", "--json")
    assert refused.code == 1
    assert json.loads(refused.err.splitlines()[-1])["error"] == "actor_mismatch"
    assert len(_events(cli, "BudgetSet")) == before
    recorded = _events(cli, "AccessRefused")[-1]
    assert recorded["actor"] == "commissioner:bccg" and recorded["action"] == "act_as"
    assert recorded["principal"] == f"token:{commissioner_token['token_id']}"


def test_an_unknown_or_revoked_token_is_refused_and_nothing_is_saved(cli, commissioner_token):
    before = len(_events(cli, ""))
    forged = _adjust(cli, "--token", "obc_" + "A" * 43, "--json")
    assert forged.code == 1 and json.loads(forged.err.splitlines()[-1])["error"] == "invalid_token"
    cli.ok("token", "revoke", commissioner_token["token_id"])
    revoked = _adjust(cli, "--token", commissioner_token["token"], "--json")
    assert revoked.code == 1 and json.loads(revoked.err.splitlines()[-1])["error"] == "invalid_token"
    assert len(_events(cli, "")) == before
