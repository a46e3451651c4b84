"""Tamper evidence against an insider with write access to the database (issue 11).

Each test tampers for real, with SQL against the real SQLite file or PostgreSQL
server, as someone holding the database's credentials but not the auditor's
signing key would, and shows the command catching it and naming what changed.
"""

import csv
import io
import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import ConnectionPoolClosedError

from ledger.adapters.audit import GENESIS, global_hash, stream_hash
from ledger.domain.aggregates import year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from ledger.usecases.checks import replayed
from tests.support.cli import EXAMPLES, Cli, worked_example_ledger

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())


class Insider:
    """Direct SQL on the ledger's tables, and the chain's public arithmetic to reseal with."""

    def __init__(self, url):
        if url.startswith("sqlite:///"):
            self.conn = sqlite3.connect(url[len("sqlite:///") :])
            self.events, self.id, self.mark, self.snapshots = (
                "stored_events",
                "rowid",
                "?",
                "stored_snapshots",
            )
        else:
            self.conn = psycopg.connect(url, autocommit=False)
            self.events, self.id, self.mark, self.snapshots = (
                "ledger_events",
                "notification_id",
                "%s",
                "ledger_snapshots",
            )

    def q(self, sql, *params):
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self.mark), params)
        return cur

    def commit(self):
        self.conn.commit()

    def ids(self):
        return [r[0] for r in self.q(f"SELECT {self.id} FROM {self.events} ORDER BY {self.id}").fetchall()]

    def edit(self, nid, old: bytes, new: bytes):
        state = bytes(self.q(f"SELECT state FROM {self.events} WHERE {self.id} = ?", nid).fetchone()[0])
        assert old in state
        self.q(f"UPDATE {self.events} SET state = ? WHERE {self.id} = ?", state.replace(old, new), nid)

    def reseal(self):
        """Recompute every seal from the stored events, as the chain uses no key."""
        rows = self.q(
            f"SELECT {self.id}, originator_id, originator_version, topic, state FROM {self.events} "
            f"ORDER BY {self.id}"
        ).fetchall()
        self.q("DELETE FROM event_hashes")
        previous, streams = GENESIS, {}
        for nid, oid, version, topic, state in rows:
            oid = oid.hex if hasattr(oid, "hex") and not isinstance(oid, str) else str(oid)
            sh = stream_hash(streams.get(oid, GENESIS), oid, version, topic, bytes(state))
            previous = global_hash(previous, nid, sh)
            streams[oid] = sh
            self.q("INSERT INTO event_hashes VALUES (?, ?, ?, ?, ?)", nid, oid, version, sh, previous)
        self.commit()


@pytest.fixture
def keys(tmp_path):
    out = tmp_path / "keys"
    Cli("sqlite:///unused.db").ok("keys", "generate", "--out", out)
    return out / "ledger-signing.key", out / "ledger-signing.pub"


def _verify(url, *args):
    result = Cli(url)("verify", "--json", *args)
    return result.code, (json.loads(result.out) if result.out else json.loads(result.err))


# ----------------------------------------------------------------- keys and signed digests


def test_keys_generate_writes_a_private_key_only_its_owner_can_read_and_never_overwrites_it(tmp_path):
    cli = Cli("sqlite:///unused.db")
    out = cli.ok("keys", "generate", "--out", tmp_path / "k", "--json").json()
    assert os.stat(out["private_key"]).st_mode & 0o777 == 0o600
    assert Path(out["public_key"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = Path(out["private_key"]).read_text()
    again = cli("keys", "generate", "--out", tmp_path / "k")
    assert again.code == 1 and "already_exists" in again.err
    assert Path(out["private_key"]).read_text() == before


def test_an_edited_and_resealed_event_passes_the_chain_but_not_a_signed_digest(ledger_url, keys, tmp_path):
    worked_example_ledger(ledger_url)
    private, public = keys
    kept = tmp_path / "digest.json"
    kept.write_text(Cli(ledger_url).ok("digest", "--sign-key", private).out)
    insider = Insider(ledger_url)
    target = insider.ids()[12]
    insider.edit(target, b'"actor":"system"', b'"actor":"systen"')
    insider.reseal()
    assert _verify(ledger_url)[0] == 0  # the keyless chain alone cannot see a reseal
    code, report = _verify(ledger_url, "--against", kept, "--public-key", public)
    assert code == 1 and report["against_digest"]["kind"] == "rewritten"
    assert report["against_digest"]["position"] == json.loads(kept.read_text())["position"]


def test_a_digest_with_its_signature_stripped_is_refused_when_a_public_key_is_given(ledger_url, keys):
    worked_example_ledger(ledger_url)
    private, public = keys
    signed = json.loads(Cli(ledger_url).ok("digest", "--sign-key", private).out)
    assert _verify(ledger_url, "--against", json.dumps(signed), "--public-key", public)[0] == 0
    stripped = {k: v for k, v in signed.items() if k != "signature"}
    code, error = _verify(ledger_url, "--against", json.dumps(stripped), "--public-key", public)
    assert code == 1 and error["error"] == "digest_unsigned"


@pytest.mark.parametrize(
    "field, value",
    [("hash", "0" * 64), ("issued_at", "2030-01-01T00:00:00Z"), ("position", 1), ("ledger_id", "f" * 32)],
)
def test_a_signed_digest_with_any_field_altered_is_refused(tmp_path, keys, field, value):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    private, public = keys
    signed = json.loads(Cli(url).ok("digest", "--sign-key", private).out)
    code, error = _verify(
        url, "--against", json.dumps(dict(signed, **{field: value})), "--public-key", public
    )
    assert code == 1 and error["error"] == "digest_signature_invalid"


def test_a_digest_signed_with_the_insiders_own_key_is_refused(tmp_path, keys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    _, public = keys
    Cli(url).ok("keys", "generate", "--out", tmp_path / "insider")
    forged = Cli(url).ok("digest", "--sign-key", tmp_path / "insider" / "ledger-signing.key").out
    code, error = _verify(url, "--against", forged, "--public-key", public)
    assert code == 1 and error["error"] == "digest_wrong_key"
    # ...and a forged key id with the insider's signature
    value = json.loads(forged)
    value["signature"]["key_id"] = json.loads(Cli(url).ok("digest", "--sign-key", keys[0]).out)["signature"][
        "key_id"
    ]
    code, error = _verify(url, "--against", json.dumps(value), "--public-key", public)
    assert code == 1 and error["error"] == "digest_signature_invalid"


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda d: {k: v for k, v in d.items() if k != "algorithm"}, "invalid_digest"),
        (lambda d: {k: v for k, v in d.items() if k != "position"}, "invalid_digest"),
        (lambda d: dict(d, position=str(d["position"])), "invalid_digest"),
        (lambda d: dict(d, position=10**30), "invalid_digest"),
        (lambda d: dict(d, position=-1), "invalid_digest"),
        (lambda d: dict(d, position=True), "invalid_digest"),
        (lambda d: dict(d, position=39.0), "invalid_digest"),
        (lambda d: dict(d, hash=12345), "invalid_digest"),
        (lambda d: dict(d, hash="XYZ"), "invalid_digest"),
        (lambda d: dict(d, issued_at=None), "invalid_digest"),
        (lambda d: dict(d, signature="abc"), "invalid_digest"),
        (lambda d: dict(d, algorithm="md5-chain"), "digest_algorithm_unknown"),
        (lambda d: [d], "invalid_digest"),
        (lambda d: "x" * 70_000, "invalid_digest"),
    ],
)
def test_a_malformed_digest_is_one_error_line_with_its_code(tmp_path, mutate, code):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    digest = json.loads(Cli(url).ok("digest").out)
    bad = mutate(digest)
    text = json.dumps(bad) if not isinstance(bad, str) else '{"a": "' + bad + '"}'
    result = Cli(url)("verify", "--against", text)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith(f"error: {code}: ") and result.err.count("\n") == 1, result.err


def test_seals_stored_as_text_are_reported_not_a_traceback(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    insider = Insider(url)
    target = insider.ids()[3]
    insider.q("UPDATE event_hashes SET originator_version = 'four' WHERE notification_id = ?", target)
    insider.commit()
    code, report = _verify(url)
    assert code == 1 and report["first_broken_link"]["kind"] == "malformed_seal"
    assert report["first_broken_link"]["notification_id"] == target
    last = insider.ids()[-1]
    insider.q("UPDATE event_hashes SET global_hash = 7 WHERE notification_id = ?", last)
    insider.commit()
    result = Cli(url)("digest")
    assert result.code == 1 and result.err.startswith("error: malformed_seal: ")


# ----------------------------------------------------------------- witnesses


def test_a_witness_names_the_first_digest_a_resealed_log_no_longer_extends(ledger_url, keys, tmp_path):
    app = worked_example_ledger(ledger_url)
    private, public = keys
    witness = tmp_path / "witness"
    cli = Cli(ledger_url)
    cli.ok("digest", "--sign-key", private, "--publish", witness)
    services_for(app).settlement.close_year("beds-msk", 2)
    cli.ok("digest", "--sign-key", private, "--publish", witness)
    files = sorted(p.name for p in witness.iterdir())
    assert len(files) == 2
    assert _verify(ledger_url, "--witness", witness, "--public-key", public)[0] == 0
    insider = Insider(ledger_url)
    insider.edit(insider.ids()[20], b'"actor":"system"', b'"actor":"systen"')
    insider.reseal()
    code, report = _verify(ledger_url, "--witness", witness, "--public-key", public)
    assert code == 1
    assert report["witness_first_not_extended"]["file"] == files[0]
    assert report["witness_first_not_extended"]["kind"] == "rewritten"


def test_a_witness_catches_a_log_cut_back_and_grown_again(tmp_path, keys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = worked_example_ledger(url)
    private, public = keys
    witness = tmp_path / "witness"
    Cli(url).ok("digest", "--sign-key", private, "--publish", witness)
    insider = Insider(url)
    cut = insider.ids()[-3:]
    for nid in cut:  # the year close and its instalments go, seals and all
        insider.q(f"DELETE FROM {insider.events} WHERE rowid = ?", nid)
        insider.q("DELETE FROM event_hashes WHERE notification_id = ?", nid)
    insider.commit()
    del app
    services_for(Ledger.from_url(url)).registration.record_baseline(
        "beds-msk", "proms-improved", "0.5", "regrown"
    )
    code, report = _verify(url, "--witness", witness, "--public-key", public)
    assert code == 1 and report["witness_first_not_extended"]["kind"] in ("rewritten", "truncated")


def test_a_signed_digest_can_be_published_to_the_digests_topic(tmp_path, keys, kafka_broker):
    from kafka import KafkaConsumer

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    topic = f"ledger.digests.{os.getpid()}"
    digest = (
        Cli(url)
        .ok(
            "digest",
            "--sign-key",
            keys[0],
            "--publish",
            f"kafka:{topic}",
            "--bootstrap",
            kafka_broker.bootstrap,
        )
        .out
    )
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
        group_id=None,
    )
    message = next(iter(consumer))
    consumer.close()
    assert json.loads(message.value) == json.loads(digest)
    assert message.key == json.loads(digest)["ledger_id"].encode()
    witness = ("--witness", f"kafka:{topic}", "--bootstrap", kafka_broker.bootstrap, "--public-key", keys[1])
    assert _verify(url, *witness)[0] == 0
    insider = Insider(url)
    insider.edit(insider.ids()[8], b'"actor":"system"', b'"actor":"systen"')
    insider.reseal()
    code, report = _verify(url, *witness)
    assert code == 1 and report["witness_first_not_extended"]["file"] == f"{topic}:0:0"


# ----------------------------------------------------------------- snapshots and the record index


def _snapshot_state(url, stream) -> dict:
    """The stream's latest stored snapshot, as its JSON."""
    insider = Insider(url)
    row = insider.q(
        f"SELECT originator_version, state FROM {insider.snapshots} WHERE originator_id = ? "
        f"ORDER BY originator_version DESC",
        stream.hex if url.startswith("sqlite") else stream,
    ).fetchone()
    return json.loads(bytes(row[1]))


def _set_snapshot_state(url, stream, state: bytes):
    insider = Insider(url)
    insider.q(
        f"UPDATE {insider.snapshots} SET state = ? WHERE originator_id = ?",
        state,
        stream.hex if url.startswith("sqlite") else stream,
    )
    insider.commit()


def _forge_snapshot(url, stream):
    state = _snapshot_state(url, stream)
    for entry in state["state"]["latest_cost"].values():  # every cost report's total set to 1.00
        entry[3] = {"_type_": "decimal_str", "_data_": "1.00"}
    _set_snapshot_state(url, stream, json.dumps(state).encode())


def test_a_forged_snapshot_does_not_change_a_close_and_verify_names_its_contract_and_year(ledger_url):
    app = worked_example_ledger(ledger_url)
    stream = year_data_uuid("beds-msk", 2)
    app.snapshot(app.repository.get(stream))
    _forge_snapshot(ledger_url, stream)
    code, report = _verify(ledger_url)
    assert code == 1
    [problem] = report["derived_state"]["problems"]
    assert problem["kind"] == "snapshot_forged" and problem["where"] == "contract beds-msk year 2"
    assert "latest_cost" in problem["fields"]
    closed = services_for(Ledger.from_url(ledger_url)).settlement.close_year("beds-msk", 2)
    assert closed == EXPECTED[1]  # to the penny, as if no snapshot had been forged


@pytest.mark.parametrize("damage", ["a row that is no row", "bytes that are no JSON"])
def test_a_snapshot_that_cannot_be_restored_does_not_stop_its_stream_and_verify_reports_it(
    ledger_url, damage
):
    app = worked_example_ledger(ledger_url)
    stream = year_data_uuid("beds-msk", 2)
    app.snapshot(app.repository.get(stream))
    if damage == "a row that is no row":
        stored = _snapshot_state(ledger_url, stream)
        indicator = next(iter(stored["state"]["submitted"]))
        stored["state"]["submitted"][indicator] = 5  # restoring it fails (no party -> period rows)
        _set_snapshot_state(ledger_url, stream, json.dumps(stored).encode())
    else:
        _set_snapshot_state(ledger_url, stream, b"\x00 not a snapshot")
    events_only, _ = replayed(app, stream)

    again = Ledger.from_url(ledger_url)
    loaded = again.repository.get(stream)  # the events, not the snapshot
    assert loaded.version == events_only.version and loaded.submitted == events_only.submitted
    code, report = _verify(ledger_url)
    assert code == 1
    [problem] = report["derived_state"]["problems"]
    assert problem["kind"] == "snapshot_forged" and problem["where"] == "contract beds-msk year 2"
    closed = services_for(Ledger.from_url(ledger_url)).settlement.close_year("beds-msk", 2)
    assert closed == EXPECTED[1]


def test_a_removed_record_index_row_is_reported_and_so_is_different_content_then_accepted_under_its_id(
    tmp_path,
):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    insider = Insider(url)
    key = insider.q(
        "SELECT record_key FROM record_index WHERE record_key LIKE 'cost_report:%' ORDER BY record_key"
    ).fetchone()[0]
    insider.q("DELETE FROM record_index WHERE record_key = ?", key)
    insider.commit()
    code, report = _verify(url)
    assert code == 1
    assert [(p["kind"], p["record"]) for p in report["derived_state"]["problems"]] == [
        ("record_index_missing", key)
    ]
    insider.q(
        "UPDATE record_index SET digest = ? WHERE record_key = (SELECT MIN(record_key) FROM record_index)",
        "0" * 64,
    )
    insider.commit()
    kinds = {p["kind"] for p in _verify(url)[1]["derived_state"]["problems"]}
    assert kinds == {"record_index_missing", "record_index_altered"}


def test_different_content_accepted_under_an_id_whose_index_row_was_removed_is_reported(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    insider = Insider(url)
    insider.q("DELETE FROM record_index WHERE record_key = 'cost_report:c-0001'")
    insider.commit()
    other = tmp_path / "again.jsonl"
    other.write_text(
        '{"type": "cost_report", "report_id": "c-0001", "contract_id": "beds-msk", "provider_id": '
        '"circle", "period": "2026-Q2", "total_cost": "1.00", "high_cost_cases": []}\n'
    )
    Cli(url).ok("ingest", other)  # the index no longer knows the id: the different content goes in
    code, report = _verify(url)
    assert code == 1
    reused = [p for p in report["derived_state"]["problems"] if p["kind"] == "record_id_reused"]
    assert [(p["record"], p["contract"]) for p in reused] == [("cost_report:c-0001", "beds-msk")]
    assert "accepted twice with different content" in reused[0]["message"]


# ----------------------------------------------------------------- read models and the log's end


def test_an_edited_payment_row_is_reported_by_verify_read_models_with_its_table_key_and_both_values(
    ledger_url,
):
    worked_example_ledger(ledger_url)
    cli = Cli(ledger_url)
    honest = cli.ok("payments", "beds-msk", "--csv").out
    insider = Insider(ledger_url)
    insider.q(
        "UPDATE instalment_parties SET amount = ? WHERE contract_id = 'beds-msk' AND period = '2025-Q2' "
        "AND party_id = 'physio'",
        "9999999.00" if ledger_url.startswith("sqlite") else 9999999,
    )
    insider.commit()
    assert cli.ok("payments", "beds-msk", "--csv").out != honest  # what finance would load...
    code, report = _verify(ledger_url, "--read-models")
    assert code == 1 and not report["read_models"]["ok"]
    [difference] = report["read_models"]["differences"]
    assert (difference["table"], difference["column"]) == ("instalment_parties", "amount")
    assert difference["key"] == {
        "contract_id": "beds-msk",
        "year": 1,
        "period": "2025-Q2",
        "party_id": "physio",
    }
    assert Decimal(difference["live"]) == Decimal("9999999")
    honest_rows = {(r["period"], r["party"]): r["amount"] for r in csv.DictReader(io.StringIO(honest))}
    assert Decimal(honest_rows[("2025-Q2", "physio")]) == Decimal(difference["from_events"])
    text = cli("verify", "--read-models")
    assert (
        text.code == 1
        and "instalment_parties (contract_id=beds-msk, year=1, period=2025-Q2, party_id=physio) amount: live"
        in text.out
    )


def test_a_deleted_and_an_added_read_model_row_are_both_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    Cli(url).ok("projections", "run")
    insider = Insider(url)
    insider.q("DELETE FROM cost_reports WHERE report_id = 'c-0001'")
    insider.q("INSERT INTO contract_parties VALUES ('beds-msk', 'ghost-ltd', 'subcontractor', 'Ghost Ltd')")
    insider.commit()
    report = _verify(url, "--read-models")[1]["read_models"]
    found = {(d["table"], d["live"] is None, d["from_events"] is None) for d in report["differences"]}
    assert ("cost_reports", True, False) in found and ("contract_parties", False, True) in found


def test_a_cut_log_is_an_alarm_in_projections_status_even_once_new_events_reuse_the_ids(ledger_url):
    url = ledger_url
    worked_example_ledger(url)
    cli = Cli(url)
    cli.ok("projections", "run")
    insider = Insider(url)
    cut = insider.ids()[-3:]
    for nid in cut:
        insider.q(f"DELETE FROM {insider.events} WHERE {insider.id} = ?", nid)
        insider.q("DELETE FROM event_hashes WHERE notification_id = ?", nid)
    insider.commit()
    status = cli("projections", "status", "--json")
    assert status.code == 1 and json.loads(status.out)["alarm"] == "log_truncated"
    app = Ledger.from_url(url)
    for n in range(
        3
    ):  # three new events: on SQLite they take the removed ids (PostgreSQL's sequence moves on)
        services_for(app).registration.record_baseline("beds-msk", "proms-improved", f"0.5{n}", "regrown")
    if url.startswith("sqlite"):
        assert insider.ids()[-3:] == cut
    status = cli("projections", "status", "--json")
    assert status.code == 1 and json.loads(status.out)["alarm"] == "log_truncated"
    ran = cli("projections", "run")
    assert ran.code == 1 and ran.err.startswith("error: log_truncated: ")


def test_payments_and_reconcile_state_their_event_position_and_the_report_shows_a_failed_verification(
    tmp_path,
):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = worked_example_ledger(url)
    cli = Cli(url)
    head = app.recorder.max_notification_id()
    assert f"at event #{head} " in cli.ok("payments", "beds-msk", "--csv").err
    assert cli.ok("reconcile", "beds-msk", "--year", "1", "--json").json()["position"] == head
    clean = cli.ok("report", "beds-msk", "--out", tmp_path / "clean.html", "--json").json()
    assert clean["verified"] and clean["verification_problems"] == []
    insider = Insider(url)
    insider.q("UPDATE decision_parties SET amount = '1.00' WHERE contract_id = 'beds-msk'")
    insider.commit()
    summary = cli.ok("report", "beds-msk", "--out", tmp_path / "report.html", "--json").json()
    assert not summary["verified"] and "decision_parties" in summary["verification_problems"][0]
    assert "Verification FAILED" in (tmp_path / "report.html").read_text()


# ----------------------------------------------------------------- signed decisions on Kafka


def test_published_decisions_carry_a_signature_a_consumer_checks_and_a_forged_one_fails(
    tmp_path, keys, kafka_broker, kafka_topic
):
    from kafka import TopicPartition

    from consumers.decisions import KEY_ID_HEADER, check_decision
    from consumers.kafka import ensure_topic, producer, read_tail
    from ledger.adapters.signing import key_id, load_public_key

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    private, public = keys
    Cli(url).ok(
        "publish-decisions",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--topic",
        kafka_topic,
        "--until-idle",
        "0.5",
        "--sign-key",
        private,
    )
    pub = load_public_key(public)

    def messages():
        return [
            m
            for p in range(ensure_topic(kafka_broker.bootstrap, kafka_topic))
            for m in read_tail(kafka_broker.bootstrap, TopicPartition(kafka_topic, p), 0)
        ]

    sent = messages()
    assert len(sent) == 5  # year 1: four instalments and the close
    assert all(check_decision(m, pub) for m in sent)
    assert {dict(m.headers)[KEY_ID_HEADER].decode() for m in sent} == {key_id(pub)}
    # an insider writes to the topic: the real headers copied onto a changed value, and one with none
    genuine = sent[-1]
    client = producer(kafka_broker.bootstrap)
    client.send(
        kafka_topic, key=genuine.key, value=genuine.value[:-1] + b"\x00", headers=genuine.headers
    ).get(30)
    client.send(kafka_topic, key=genuine.key, value=genuine.value).get(30)
    client.close()
    forged = [m for m in messages() if (m.partition, m.offset) not in {(s.partition, s.offset) for s in sent}]
    assert len(forged) == 2 and not any(check_decision(m, pub) for m in forged)


def test_an_unsigned_digest_slipped_into_a_witness_is_refused_naming_its_file(tmp_path, keys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    witness = tmp_path / "witness"
    Cli(url).ok("digest", "--sign-key", keys[0], "--publish", witness)
    Cli(url).ok("digest", "--publish", witness)  # the insider's: no key
    result = Cli(url)("verify", "--witness", witness, "--public-key", keys[1])
    unsigned = [p.name for p in witness.iterdir() if "signature" not in p.read_text()]
    assert result.code == 1 and result.err.startswith(f"error: digest_unsigned: witness {unsigned[0]}: ")


def test_a_store_failure_while_loading_is_raised_not_taken_for_a_bad_snapshot(tmp_path, caplog):
    app = worked_example_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    stream = year_data_uuid("beds-msk", 2)
    app.snapshot(app.repository.get(stream))
    app.close()
    with pytest.raises(ConnectionPoolClosedError):
        app.repository.get(stream)
    assert "could not be restored" not in caplog.text
