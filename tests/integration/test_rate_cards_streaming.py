"""Outcome claims and PROM episodes through a real Kafka-protocol broker (Avro subjects outcome_claim and
prom_episode) settle exactly as ingested from JSON lines."""

from __future__ import annotations

from tests.e2e.test_rate_cards_and_health_gain import DATA, RATE_CARD_YEAR1, RATE_CARD_YEAR2
from tests.support.cli import consume_args


def test_claims_and_episodes_produced_then_consumed_give_the_statements_of_ingest(
    kafka_broker, kafka_topic, cli, tmp_path
):
    for yaml in ("employ.yaml", "msk-gain.yaml"):
        cli.ok("contract", "register", DATA / yaml)
    combined = tmp_path / "records.jsonl"
    combined.write_text(
        (DATA / "employ-claims.jsonl").read_text() + (DATA / "msk-gain-episodes.jsonl").read_text()
    )
    sent = cli.ok(
        "produce", combined, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--json"
    ).json()
    assert sent["sent"] == 27 and sent["refused"] == []
    consumed = cli.ok(
        *consume_args(kafka_broker.bootstrap, kafka_topic),
    ).json()
    assert (consumed["consumed"], consumed["accepted"], consumed["dead_lettered"]) == (27, 27, 0)
    assert cli.ok("close-year", "ldn-employ", "1", "--json").json()["rate_card"] == RATE_CARD_YEAR1
    assert cli.ok("close-year", "ldn-employ", "2", "--json").json()["rate_card"] == RATE_CARD_YEAR2
    assert cli.ok("close-year", "msk-gain", "1", "--json").json()["total"] == "1000750.00"
