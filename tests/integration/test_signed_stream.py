"""Signed records over the real broker: produce --sign-key, the real consumer, forged ones dead-lettered."""

from __future__ import annotations

import json
from collections import Counter

from consumers.codec import encode_record
from consumers.dead_letters import decode_dead_letter, dlq_topic
from consumers.kafka import producer
from ledger.domain.aggregates import YearData, year_data_uuid
from ledger.domain.signatures import KAFKA_HEADER
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.integration.test_streaming import consume, read_topic
from tests.support.cli import EXAMPLES

DATA = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()


def test_signed_records_are_accepted_and_forged_or_unsigned_ones_dead_lettered_with_their_codes(
    kafka_broker, kafka_topic, cli, sqlite_url, tmp_path
):
    bootstrap = kafka_broker.bootstrap
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    for party in ("circle", "physio"):
        cli.ok("keys", "generate", "--out", tmp_path / party)
        cli.ok("provider", "key", "add", "beds-msk", party, tmp_path / party / "ledger-signing.pub")
    cli.ok("provider", "require-signatures", "beds-msk", "--as", "commissioner:bccg")

    circle = [line for line in DATA if '"provider_id": "circle"' in line][:5]
    path = tmp_path / "circle.jsonl"
    path.write_text("\n".join(circle) + "\n")
    sent = cli.ok(
        "produce",
        path,
        "--bootstrap",
        bootstrap,
        "--topic",
        kafka_topic,
        "--sign-key",
        tmp_path / "circle" / "ledger-signing.key",
        "--json",
    ).json()
    assert sent["sent"] == 5
    messages = read_topic(bootstrap, kafka_topic)
    headers = [dict(m.headers) for m in messages]
    assert all(h[KAFKA_HEADER].decode().count(":") == 1 for h in headers)

    # a forger replays circle's genuine signature on altered figures, another sends no signature,
    # and physio signs a record claiming to be circle's
    genuine = next(m for m in messages if b"s-0001" in m.value)
    forged = json.loads(circle[0]) | {"submission_id": "s-9001"}
    physio_signed = tmp_path / "physio.jsonl"
    physio_signed.write_text(json.dumps(json.loads(circle[1]) | {"submission_id": "s-9003"}) + "\n")
    client = producer(bootstrap)
    key, value = encode_record(forged)
    client.send(
        kafka_topic, key=key, value=value, headers=[(KAFKA_HEADER, dict(genuine.headers)[KAFKA_HEADER])]
    )
    key, value = encode_record(json.loads(circle[2]) | {"submission_id": "s-9002"})
    client.send(kafka_topic, key=key, value=value)
    client.flush()
    client.close()
    cli.ok(
        "produce",
        physio_signed,
        "--bootstrap",
        bootstrap,
        "--topic",
        kafka_topic,
        "--sign-key",
        tmp_path / "physio" / "ledger-signing.key",
    )

    report = consume(sqlite_url, bootstrap, kafka_topic)
    assert (report.consumed, report.accepted, report.dead_lettered) == (8, 5, 3)
    letters = [decode_dead_letter(m.value) for m in read_topic(bootstrap, dlq_topic(kafka_topic))]
    assert Counter(d["code"] for d in letters) == {
        "bad_signature": 1,
        "unsigned_record": 1,
        "provider_mismatch": 1,
    }
    assert {d["record_id"] for d in letters} == {"s-9001", "s-9002", "s-9003"}
    assert all(
        r["source"].startswith(f"kafka:{kafka_topic}:")
        for r in services_for(Ledger.from_url(sqlite_url)).ingest.rejected()
    )

    app = Ledger.from_url(sqlite_url)
    kept = [e for e in app.events.get(year_data_uuid("beds-msk", 1)) if isinstance(e, YearData.RecordSigned)]
    assert {e.party for e in kept} == {"circle"} and len(kept) == 5
    proof = cli.ok("provider", "signatures", "beds-msk", "--json", "--as", "auditor").json()
    assert (proof["signed"], proof["verified"], proof["failed"]) == (5, 5, 0)


def test_a_provider_scoped_consumer_dead_letters_a_strangers_record_as_for_an_unregistered_contract(
    kafka_broker, kafka_topic, cli, sqlite_url
):
    """The dead letters are the sender's to read: a record for a contract the topic's provider is not
    party to reads there exactly as one for an id nobody registered; the ledger keeps the reason."""
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    probe = json.loads(DATA[0]) | {"provider_id": "stranger", "indicator_id": "no-such-indicator"}
    client = producer(kafka_broker.bootstrap)
    for contract, record_id in (("beds-msk", "p-1"), ("no-such-contract", "p-2")):
        key, value = encode_record(probe | {"contract_id": contract, "submission_id": record_id})
        client.send(kafka_topic, key=key, value=value)
    client.flush()
    client.close()

    report = consume(sqlite_url, kafka_broker.bootstrap, kafka_topic, actor="provider:stranger")
    assert (report.consumed, report.dead_lettered) == (2, 2)
    letters = {
        d["record_id"]: d
        for d in map(
            decode_dead_letter, (m.value for m in read_topic(kafka_broker.bootstrap, dlq_topic(kafka_topic)))
        )
    }
    seen = [
        (d["code"], d["field"], d["message"].replace(d["contract_id"], "ID"))
        for d in (letters["p-1"], letters["p-2"])
    ]
    assert seen[0] == seen[1] == ("unknown_contract", "contract_id", "no contract 'ID' is registered")
    kept = {r["record_id"]: r for r in services_for(Ledger.from_url(sqlite_url)).ingest.rejected()}
    assert kept["p-1"]["code"] == "not_authorized" and "not a provider party" in kept["p-1"]["message"]
    assert kept["p-2"]["code"] == "unknown_contract"
