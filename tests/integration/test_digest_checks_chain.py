"""`obc-ledger digest` signs only a head whose seal chain verifies (and that extends its witness)."""

import json
import os
import sqlite3

from consumers.witness import KafkaWitness
from ledger.adapters import witness
from tests.support.cli import Cli, worked_example_ledger
from tests.support.service import start_service


def _keys(tmp_path):
    out = tmp_path / "keys"
    Cli("sqlite:///unused.db").ok("keys", "generate", "--out", out)
    return out / "ledger-signing.key"


def test_digest_refuses_to_sign_a_forged_seal_head(tmp_path):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    private = _keys(tmp_path)
    conn = sqlite3.connect(db)
    state = conn.execute("SELECT state FROM stored_events WHERE rowid = 2").fetchone()[0]
    conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 2", (state + b" ",))
    conn.execute("INSERT INTO event_hashes VALUES (500, 'x', 1, ?, ?)", ("a" * 64, "b" * 64))
    conn.commit()
    conn.close()
    result = Cli(url)("digest", "--sign-key", private)
    assert result.code != 0 and result.out == ""
    assert "log_broken" in result.err and len(result.err.strip().splitlines()) == 1


def test_digest_refuses_a_log_that_no_longer_extends_its_witness(tmp_path):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    private = _keys(tmp_path)
    witness = tmp_path / "witness"
    cli = Cli(url)
    first = json.loads(cli.ok("digest", "--sign-key", private, "--publish", witness).out)
    assert first["position"] > 0
    conn = sqlite3.connect(db)  # the last event and its seal removed: a cut tail the chain alone cannot see
    (last,) = conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
    conn.execute("DELETE FROM stored_events WHERE rowid = ?", (last,))
    conn.execute("DELETE FROM event_hashes WHERE notification_id = ?", (last,))
    conn.commit()
    conn.close()
    assert cli("digest", "--sign-key", private).code == 0  # no witness given: the chain itself is whole
    result = cli("digest", "--sign-key", private, "--publish", witness)
    assert result.code != 0 and "log_broken" in result.err and "witness" in result.err
    assert len(list(witness.iterdir())) == 1


def test_digest_refuses_a_log_that_no_longer_extends_its_kafka_witness(tmp_path, kafka_broker):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    private = _keys(tmp_path)
    topic = f"ledger.digests.cut.{os.getpid()}"
    publish = ("--publish", f"kafka:{topic}", "--bootstrap", kafka_broker.bootstrap)
    cli = Cli(url)
    first = json.loads(cli.ok("digest", "--sign-key", private, *publish).out)  # the topic made by it
    assert first["position"] > 0
    conn = sqlite3.connect(db)
    (last,) = conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
    conn.execute("DELETE FROM stored_events WHERE rowid = ?", (last,))
    conn.execute("DELETE FROM event_hashes WHERE notification_id = ?", (last,))
    conn.commit()
    conn.close()
    result = cli("digest", "--sign-key", private, *publish)
    assert result.code != 0 and "log_broken" in result.err and f"{topic}:0:0" in result.err, result.err
    held = witness.read(f"kafka:{topic}", KafkaWitness(kafka_broker.bootstrap))
    assert [name for name, _ in held] == [f"{topic}:0:0"]  # nothing published for the cut log


def test_the_services_digest_of_a_broken_log_is_refused_too(tmp_path):
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    worked_example_ledger(url)
    service = start_service(url, tmp_path / "service.log")
    try:
        token = service.token("auditor:nao", "Auditor")
        with service.client(token) as c:
            whole = c.get("/api/v1/digest")
            assert whole.status_code == 200 and whole.json()["position"] > 0
            conn = sqlite3.connect(db)
            conn.execute("INSERT INTO event_hashes VALUES (500, 'x', 1, ?, ?)", ("a" * 64, "b" * 64))
            conn.commit()
            conn.close()
            forged = c.get("/api/v1/digest")
        assert forged.status_code == 409 and forged.json()["error"] == "log_broken", forged.text
    finally:
        service.stop()
