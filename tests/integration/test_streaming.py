"""Providers' records through a real Kafka-protocol broker (Tansu) into the ledger, and decisions out."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from kafka import KafkaAdminClient, TopicPartition

from consumers.codec import Codec, decode
from consumers.consumer import LedgerConsumer, parse_assignment, records_saved
from consumers.dead_letters import decode_dead_letter, dlq_topic, parse_key
from consumers.decisions import HEADER, ID_HEADER, DecisionPublisher
from consumers.kafka import ensure_topic, producer, read_tail
from deploy.servers import RegistryServer
from deploy.streams import contract_ids, make_stream, register
from ledger.domain.aggregates import year_data_uuid
from ledger.domain.records import ID_FIELDS
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from ledger.usecases.ingest import IngestSession
from tests.support.cli import EXAMPLES, IDLE_S, OBC_LEDGER, SESSION_MS, consume_args

WIRE_CODES = {
    "empty_message",
    "truncated",
    "unsupported_framing",
    "unknown_schema_id",
    "undecodable",
    "unexpected_schema",
}


# ------------------------------------------------------------------ helpers


def send(bootstrap, topic, messages):
    """Send (key, value, is_bad) in order; return the 'topic:partition:offset' keys of the bad ones."""
    client = producer(bootstrap)
    bad = []
    for key, value, is_bad in messages:
        future = client.send(topic, key=key, value=value)
        if is_bad:
            bad.append(future)
    client.flush()
    keys = set()
    for future in bad:
        md = future.get(timeout=30)
        keys.add(f"{topic}:{md.partition}:{md.offset}")
    client.close()
    return keys


def read_topic(bootstrap, topic):
    out = []
    for p in range(ensure_topic(bootstrap, topic)):
        out.extend(read_tail(bootstrap, TopicPartition(topic, p), 0))
    return out


def consume(url, bootstrap, topic, **kwargs):
    kwargs.setdefault("until_idle", IDLE_S)
    return LedgerConsumer(
        Ledger.from_url(url), bootstrap, [topic], group=topic, session_timeout_ms=SESSION_MS, **kwargs
    ).run()


def record_keys(lines):
    """contract id -> "type:id" of every record in ``lines``."""
    keys = {}
    for line in lines:
        r = json.loads(line)
        keys.setdefault(r["contract_id"], set()).add(f"{r['type']}:{r[ID_FIELDS[r['type']]]}")
    return keys


def ledger_view(url, contracts, keys, years=(1, 2, 3)):
    """What must be equal however the records arrived: accepted ids and content, latest data per slot,
    statements, rejections."""
    app = Ledger.from_url(url)
    data, statements = {}, {}
    for cid in contracts:
        data[cid] = app.recorder.lookup_records(cid, sorted(keys.get(cid, ())))
        for year in years:
            agg = app._maybe(year_data_uuid(cid, year))
            data[(cid, year)] = (
                None
                if agg is None
                else (dict(agg.latest_submission), dict(agg.latest_cost), dict(agg.population))
            )
            statements[(cid, year)] = services_for(app).settlement.statement(cid, year)
    rejected = {
        (r["code"], r["contract_id"], r["record_id"])
        for r in services_for(app).ingest.rejected()
        if r["code"] not in WIRE_CODES
    }
    return data, statements, rejected


def dlq_keys(bootstrap, topic):
    messages = read_topic(bootstrap, dlq_topic(topic))
    return [m.key.decode() for m in messages], messages


def ledger(url, contracts):
    app = Ledger.from_url(url)
    register(app, contracts)
    return app


# ------------------------------------------------------------------ round trip


def test_a_providers_file_produced_then_consumed_gives_the_statements_of_ingest(
    kafka_broker, kafka_topic, cli, tmp_path, monkeypatch
):
    reference = tmp_path / "reference.db"

    def ref(*a):
        return cli.__class__(f"sqlite:///{reference}").ok(*a)

    for run in (cli.ok, ref):
        run("contract", "register", EXAMPLES / "worked-example.yaml")
    ref("ingest", EXAMPLES / "worked-example-data.jsonl")

    sent = cli.ok(
        "produce",
        EXAMPLES / "worked-example-data.jsonl",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--topic",
        kafka_topic,
        "--json",
    ).json()
    assert sent["sent"] == 34 and sent["refused"] == []
    monkeypatch.setattr("consumers.consumer.PROGRESS_S", 0.0)  # a progress line after every batch
    run = cli.ok(
        *consume_args(kafka_broker.bootstrap, kafka_topic),
        "--log-level",
        "info",
    )
    consumed = run.json()
    assert (
        consumed["consumed"],
        consumed["accepted"],
        consumed["duplicates"],
        consumed["dead_lettered"],
    ) == (34, 33, 1, 0)
    assert consumed["reconciles"]
    assert f"INFO obc_ledger.consumer: assigned {kafka_topic}:0,1,2" in run.err
    assert "INFO obc_ledger.consumer: consumed 34: accepted 33, duplicates 1, dead-lettered 0" in run.err

    for run in (cli.ok, ref):
        run("close-year", "beds-msk", "1")
        run("close-year", "beds-msk", "2")
    for year in (1, 2, 3):
        assert (
            cli.ok("statement", "beds-msk", "--year", str(year), "--json").json()
            == ref("statement", "beds-msk", "--year", str(year), "--json").json()
        )

    again = cli.ok(
        *consume_args(kafka_broker.bootstrap, kafka_topic, idle="1"),
    ).json()
    assert again["consumed"] == 0, "stored offsets: nothing is consumed twice"


@pytest.fixture
def schema_registry():
    with RegistryServer() as server:
        yield server


def test_with_a_schema_registry_the_ids_on_the_wire_are_the_registrys(
    kafka_broker, kafka_topic, cli, schema_registry
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    wire = ("--bootstrap", kafka_broker.bootstrap, "--registry", schema_registry.url)
    sent = cli.ok(
        "produce", EXAMPLES / "worked-example-data.jsonl", *wire, "--topic", kafka_topic, "--json"
    ).json()
    assert sent["sent"] == 34
    ids = {m.value[1:5] for m in read_topic(kafka_broker.bootstrap, kafka_topic)}
    assert {int.from_bytes(i, "big") for i in ids} <= set(schema_registry.schemas), (
        "the registry's ids, not ours"
    )

    consumed = cli.ok(
        *consume_args(kafka_broker.bootstrap, kafka_topic, "--registry", schema_registry.url)
    ).json()
    assert (
        consumed["consumed"],
        consumed["accepted"],
        consumed["duplicates"],
        consumed["dead_lettered"],
    ) == (34, 33, 1, 0)
    cli.ok("close-year", "beds-msk", "1")
    decisions = f"{kafka_topic}.decisions"
    published = cli.ok("publish-decisions", *wire, "--topic", decisions, "--until-idle", "1", "--json").json()
    assert published["published"] > 0
    messages = read_topic(kafka_broker.bootstrap, decisions)
    assert len(messages) == published["published"]
    assert all(int.from_bytes(m.value[1:5], "big") in schema_registry.schemas for m in messages)
    registry_codec = Codec.for_registry(schema_registry.url)  # what the CLI's --registry builds
    assert all(registry_codec.decode(m.value, ("decision",))[0].subject == "decision" for m in messages)

    # a consumer not told about the registry cannot resolve its ids: dead letters, with the reason
    other = f"{kafka_topic}-no-registry"
    cli.ok("produce", EXAMPLES / "worked-example-data.jsonl", *wire, "--topic", other, "--create-topics")
    lost = cli.ok(
        *consume_args(kafka_broker.bootstrap, other),
    ).json()
    assert lost["dead_lettered"] == 34 and lost["dead_lettered_by_reason"] == {"unknown_schema_id": 34}


def test_a_missing_records_topic_is_an_error_unless_asked_to_create_it(kafka_broker, kafka_topic, cli):
    typo = f"{kafka_topic}-typo"
    for args in (
        ("produce", EXAMPLES / "worked-example-data.jsonl", "--topic", typo),
        ("consume", "--topic", typo, "--until-idle", "1"),
    ):
        result = cli(*args, "--bootstrap", kafka_broker.bootstrap, "--json")
        assert result.code == 1 and json.loads(result.err)["error"] == "topic_not_found"
        assert (
            typo in json.loads(result.err)["message"]
            and "--create-topics" in json.loads(result.err)["message"]
        )
    with KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap) as admin:
        assert typo not in admin.list_topics(), "nothing was created"
    sent = cli.ok(
        "produce",
        EXAMPLES / "worked-example-data.jsonl",
        "--topic",
        typo,
        "--create-topics",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--json",
    ).json()
    assert sent["sent"] == 34 and len(read_topic(kafka_broker.bootstrap, typo)) == 34


def test_produce_reports_refused_lines_with_reasons_before_sending_the_rest(
    kafka_broker, kafka_topic, cli, tmp_path
):
    good = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()[:3]
    bad = [
        '{"type": "submission", "submission_id": "s-9", "contract_id": "beds-msk", "provider_id": "circle", '
        '"indicator_id": "readmissions", "period": "2025-Q2", "value": "lots"}',
        '{"broken',
        '{"type": "cost_report", "report_id": "c-9", "contract_id": "beds-msk", '
        '"provider_id": "circle", "period": "2025-Q2", "total_cost": "10.001"}',
    ]
    path = tmp_path / "provider.jsonl"
    path.write_text("\n".join([good[0], bad[0], good[1], bad[1], bad[2], good[2]]) + "\n")
    result = cli.ok("produce", path, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic)
    lines = result.out.splitlines()
    assert lines[0] == "refused 3 line(s), not sent:"
    assert lines[1].startswith("  line 2: non_numeric: value:")
    assert lines[2].startswith("  line 4: invalid_json:")
    assert lines[3].startswith("  line 5: invalid_amount: total_cost:")
    assert lines[-1] == f"sent 3 record(s) to {kafka_topic}; refused 3"
    messages = read_topic(kafka_broker.bootstrap, kafka_topic)
    assert len(messages) == 3 and {m.key for m in messages} == {b"beds-msk"}
    checked = cli.ok(
        "produce", path, "--bootstrap", kafka_broker.bootstrap, "--topic", kafka_topic, "--check"
    )
    assert "nothing sent (--check)" in checked.out
    assert len(read_topic(kafka_broker.bootstrap, kafka_topic)) == 3


# ------------------------------------------------------------------ dead letters


def test_malformed_bytes_wrong_schemas_and_invalid_records_are_dead_lettered_with_reasons(
    kafka_broker, kafka_topic, sqlite_url
):
    app = ledger(sqlite_url, ["msk-00"])
    from consumers.codec import encode, encode_record, frame

    good = {
        "type": "submission",
        "submission_id": "s-1",
        "contract_id": "msk-00",
        "provider_id": "circle",
        "indicator_id": "readmissions",
        "period": "2025-Q2",
        "value": "80",
    }
    _, body = encode_record(good)
    bad_records = {
        "unknown_contract": {**good, "submission_id": "s-2", "contract_id": "nowhere"},
        "provider_not_party": {**good, "submission_id": "s-3", "provider_id": "stranger"},
        "period_outside_term": {**good, "submission_id": "s-4", "period": "2031-Q1"},
        "numerator_exceeds_denominator": {
            **good,
            "submission_id": "s-5",
            "indicator_id": "proms-improved",
            "value": None,
            "numerator": "9",
            "denominator": "8",
        },
        "conflicting_duplicate": {**good, "value": "81"},
    }
    wire = {
        "unsupported_framing": b"\x01" + bytes(16) + body[5:],
        "unknown_schema_id": frame(77, body[5:]),
        "truncated": b"\x00\x00\x01",
        "undecodable": body[:-4],
        "unexpected_schema": encode(
            6,
            {
                "decision_id": "x",
                "notification_id": 1,
                "kind": "instalment",
                "contract_id": "msk-00",
                "year": 1,
                "amount": Decimal(0),
                "by_party": {},
                "decided_at": "",
                "actor": "",
            },
        ),
    }
    messages = [(b"msk-00", body, False), (b"msk-00", body, False)]  # a record and its duplicate
    messages += [
        (b"msk-00", encode_record({k: v for k, v in r.items() if v is not None})[1], True)
        for r in bad_records.values()
    ]
    messages += [(b"msk-00", value, True) for value in wire.values()]
    messages += [(None, b"plain text, not Avro", True)]
    expected = send(kafka_broker.bootstrap, kafka_topic, messages)

    report = consume(sqlite_url, kafka_broker.bootstrap, kafka_topic)
    assert (report.consumed, report.accepted, report.duplicates, report.dead_lettered) == (13, 1, 1, 11)
    assert report.reconciles
    keys, letters = dlq_keys(kafka_broker.bootstrap, kafka_topic)
    assert sorted(keys) == sorted(expected)
    decoded = [decode_dead_letter(m.value) for m in letters]
    codes = Counter(d["code"] for d in decoded)
    assert codes == Counter(
        {**dict.fromkeys(bad_records, 1), **dict.fromkeys(wire, 1), "unsupported_framing": 2}
    )
    originals = {(m[0], m[1]) for m in messages}
    for d in decoded:
        assert (d["key"], d["value"]) in originals, "the original bytes are kept unchanged"
        assert d["message"] and f"{d['topic']}:{d['partition']}:{d['offset']}" in expected
    by_code = {d["code"]: d for d in decoded}
    assert by_code["numerator_exceeds_denominator"]["field"] == "numerator"
    assert by_code["unknown_contract"]["record_id"] == "s-2"
    assert "magic byte 1" in next(d for d in decoded if d["value"].startswith(b"\x01"))["message"]

    rejected = services_for(app).ingest.rejected()
    assert Counter(r["code"] for r in rejected) == codes
    assert all(r["source"].startswith(f"kafka:{kafka_topic}:") for r in rejected)


def test_a_crash_after_dead_letters_are_sent_but_before_the_commit_does_not_send_them_twice(
    kafka_broker, kafka_topic, sqlite_url, monkeypatch
):
    contracts = contract_ids(3)
    ledger(sqlite_url, contracts)
    stream = make_stream(3000, contracts, seed=11, bad_rate=0.03, garbage_rate=0.01)
    expected = send(kafka_broker.bootstrap, kafka_topic, stream.messages())

    real_flush = IngestSession.flush
    calls = {"n": 0}

    def crash_on_second_flush(self, trackings=()):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("simulated crash between sending dead letters and the commit")
        return real_flush(self, trackings)

    monkeypatch.setattr(IngestSession, "flush", crash_on_second_flush)
    with pytest.raises(SystemExit):
        consume(sqlite_url, kafka_broker.bootstrap, kafka_topic, batch=500)
    monkeypatch.setattr(IngestSession, "flush", real_flush)
    sent_before_restart = len(dlq_keys(kafka_broker.bootstrap, kafka_topic)[0])
    assert sent_before_restart > 0

    report = consume(sqlite_url, kafka_broker.bootstrap, kafka_topic, batch=500)
    assert report.reconciles
    keys, _ = dlq_keys(kafka_broker.bootstrap, kafka_topic)
    assert len(keys) == len(set(keys)) == stream.bad_count
    assert set(keys) == expected
    assert report.dead_letters_already_sent > 0


def test_positions_are_the_ledgers_a_consumer_in_another_group_resumes_where_the_first_stopped(
    kafka_broker, kafka_topic, sqlite_url, tmp_path
):
    """Kafka's committed offsets are never used: a consumer in a group of its own (an operator's
    remedy when a broker holds a group) reads on from the ledger's stored positions."""
    contracts = contract_ids(2)
    ledger(sqlite_url, contracts)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    stream = make_stream(900, contracts, seed=5, bad_rate=0.03, garbage_rate=0.01)
    services_for(ledger(reference, contracts)).ingest.ingest_lines(stream.lines, "reference.jsonl")
    expected = send(kafka_broker.bootstrap, kafka_topic, stream.messages())

    first = LedgerConsumer(
        Ledger.from_url(sqlite_url),
        kafka_broker.bootstrap,
        [kafka_topic],
        group=f"{kafka_topic}-a",
        session_timeout_ms=SESSION_MS,
        batch=200,
    )
    first.on_batch = lambda report: first.stop()  # stop after one saved batch
    stopped = first.run()
    assert 0 < stopped.consumed < stream.total
    rest = consume(sqlite_url, kafka_broker.bootstrap, kafka_topic, batch=200)  # group = the topic's name
    assert rest.consumed == stream.total - stopped.consumed  # nothing read twice, nothing skipped
    assert rest.dead_letters_already_sent == 0
    keys, _ = dlq_keys(kafka_broker.bootstrap, kafka_topic)
    assert sorted(keys) == sorted(expected)  # each dead letter sent once
    keys_of = record_keys(stream.lines)
    assert ledger_view(sqlite_url, contracts, keys_of) == ledger_view(reference, contracts, keys_of)


# ------------------------------------------------------------------ publishing decisions


def test_decisions_are_published_once_and_a_restarted_publisher_does_not_repeat_them(
    kafka_broker, kafka_topic, sqlite_url, monkeypatch
):
    app = Ledger.from_url(sqlite_url)
    services_for(app).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    services_for(app).ingest.ingest_lines(
        (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "example"
    )
    services_for(app).settlement.pay("beds-msk", "2025-Q3")
    services_for(app).settlement.close_year("beds-msk", 1)
    services_for(app).settlement.close_year("beds-msk", 2)
    decisions = 4 + 1 + 4 + 1  # each year: four quarterly instalments and the close

    real_save = Ledger.save

    def crash_when_saving_the_position(self, *objs, **kwargs):
        if "trackings" in kwargs and not objs:
            raise SystemExit("simulated crash after the broker acknowledged, before the position is saved")
        return real_save(self, *objs, **kwargs)

    monkeypatch.setattr(Ledger, "save", crash_when_saving_the_position)
    with pytest.raises(SystemExit):
        DecisionPublisher(
            Ledger.from_url(sqlite_url), kafka_broker.bootstrap, kafka_topic, until_idle=0.5
        ).run()
    monkeypatch.setattr(Ledger, "save", real_save)
    assert len(read_topic(kafka_broker.bootstrap, kafka_topic)) == decisions

    report = DecisionPublisher(
        Ledger.from_url(sqlite_url), kafka_broker.bootstrap, kafka_topic, until_idle=0.5
    ).run()
    assert (report.published, report.already_published) == (0, decisions)
    messages = read_topic(kafka_broker.bootstrap, kafka_topic)
    assert len(messages) == decisions
    values = [decode(m.value)[1] for m in messages]
    assert {m.key for m in messages} == {b"beds-msk"}
    assert sorted(int(dict(m.headers)[HEADER]) for m in messages) == sorted(
        v["notification_id"] for v in values
    )
    kinds = Counter(v["kind"] for v in values)
    assert kinds == Counter({"instalment": 8, "year_close": 2})
    closes = {v["year"]: v for v in values if v["kind"] == "year_close"}
    statement = services_for(app).settlement.statement("beds-msk", 2)
    assert str(closes[2]["total"]) == statement["total"]
    assert {p: str(a) for p, a in closes[2]["by_party"].items()} == statement["by_party"]

    services_for(app).settlement.restate("beds-msk", 2)  # nothing changed: no true-up, nothing to publish
    services_for(app).ingest.ingest_lines(
        [
            '{"type": "cost_report", "report_id": "c-late", "contract_id": "beds-msk", '
            '"provider_id": "circle", "period": "2026-Q2", "total_cost": "6900000.00"}'
        ],
        "late",
    )
    assert services_for(app).settlement.restate("beds-msk", 2) is not None
    report = DecisionPublisher(
        Ledger.from_url(sqlite_url), kafka_broker.bootstrap, kafka_topic, until_idle=0.5
    ).run()
    assert (report.published, report.already_published) == (1, 0)
    true_up = decode(read_topic(kafka_broker.bootstrap, kafka_topic)[-1].value)[1]
    assert true_up["kind"] == "true_up" and "c-late" in true_up["reason"] and true_up["amount"] != 0


def test_after_a_restore_that_lost_events_a_decision_remade_differently_is_published_and_one_remade_alike_is_not(
    kafka_broker, kafka_topic, tmp_path
):
    """A restore from a logical backup older than the last decisions: the restored ledger reuses
    notification ids for new events. Decisions are recognised by (decision id, content digest)."""
    live = tmp_path / "live.db"
    app = Ledger.from_url(f"sqlite:///{live}")
    services_for(app).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    services_for(app).ingest.ingest_lines(
        (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "example"
    )
    services_for(app).settlement.close_year("beds-msk", 1)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(live) as source, sqlite3.connect(backup) as target:
        source.backup(target)  # taken before year 2 was closed and anything published
    services_for(app).ingest.ingest_lines(
        [
            '{"type": "cost_report", "report_id": "c-y3", "contract_id": "beds-msk", '
            '"provider_id": "circle", "period": "2027-Q2", "total_cost": "5000000.00"}'
        ],
        "year 3",
    )
    services_for(app).settlement.close_year("beds-msk", 2)
    first = DecisionPublisher(app, kafka_broker.bootstrap, kafka_topic, until_idle=0.5).run()
    assert first.published == 4 + 1 + 4 + 1
    published = {
        dict(m.headers)[ID_HEADER].decode(): m for m in read_topic(kafka_broker.bootstrap, kafka_topic)
    }
    close_before = decode(published["beds-msk:2:year_close"].value)[1]

    restored = Ledger.from_url(f"sqlite:///{backup}")
    services_for(restored).ingest.ingest_lines(
        [
            '{"type": "cost_report", "report_id": "c-late", "contract_id": "beds-msk", '
            '"provider_id": "circle", "period": "2026-Q2", "total_cost": "6900000.00"}'
        ],
        "late",
    )
    services_for(restored).settlement.close_year(
        "beds-msk", 2
    )  # the same instalments, a different close: costs changed
    on_topic = {int(dict(m.headers)[HEADER]) for m in published.values()}
    remade_close = [
        n.id
        for n in restored.recorder.select_notifications(start=1, limit=10_000)
        if n.topic.endswith("YearClosed")
    ][-1]
    assert remade_close in on_topic, "the re-made close reuses a notification id already on the topic"

    again = DecisionPublisher(restored, kafka_broker.bootstrap, kafka_topic, until_idle=0.5).run()
    assert (again.published, again.already_published) == (1, 4 + 1 + 4)
    last = read_topic(kafka_broker.bootstrap, kafka_topic)[-1]
    close_after = decode(last.value)[1]
    assert dict(last.headers)[ID_HEADER] == b"beds-msk:2:year_close"
    assert close_after["total"] != close_before["total"]
    assert str(close_after["total"]) == services_for(restored).settlement.statement("beds-msk", 2)["total"]


# ------------------------------------------------------------------ processes


def _consume_process(url, bootstrap, topic, *extra, session_ms=SESSION_MS):
    return subprocess.Popen(
        [
            str(OBC_LEDGER),
            "--db",
            url,
            "--json",
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            topic,
            "--session-timeout-ms",
            str(session_ms),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_consumer_processes_in_one_group_share_the_partitions(
    kafka_broker, kafka_topic, postgres_url, tmp_path
):
    contracts = contract_ids(9)
    ledger(postgres_url, contracts)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    stream = make_stream(6000, contracts, seed=3)
    services_for(ledger(reference, contracts)).ingest.ingest_lines(stream.lines, "reference")
    expected = send(kafka_broker.bootstrap, kafka_topic, stream.messages())

    procs = [
        _consume_process(
            postgres_url,
            kafka_broker.bootstrap,
            kafka_topic,
            "--until-idle",
            "4",
            "--batch",
            "500",
            "--log-level",
            "info",
        )
        for _ in range(2)
    ]
    reports, logs = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
        logs.append(err)
    assert all(r["consumed"] > 0 for r in reports), "both processes got partitions"
    partitions = [set(r["consumed_by_partition"]) for r in reports]
    # each logged its assignments (--log-level info): it consumed only partitions it was assigned
    for consumed, log in zip(partitions, logs, strict=True):
        logged = {
            f"{t}:{p}"
            for line in log.splitlines()
            if "obc_ledger.consumer" in line
            for t, ps in (parse_assignment(line) or {}).items()
            for p in ps
        }
        assert consumed <= logged, log
    assert sum(r["consumed"] for r in reports) == stream.total
    assert all(r["reconciles"] for r in reports)
    assert sum(r["dead_lettered"] for r in reports) == stream.bad_count
    assert partitions[0] | partitions[1] == {f"{kafka_topic}:{p}" for p in range(3)}
    keys, _ = dlq_keys(kafka_broker.bootstrap, kafka_topic)
    assert sorted(keys) == sorted(expected)
    keys = record_keys(stream.lines)
    assert ledger_view(postgres_url, contracts, keys) == ledger_view(reference, contracts, keys)


def send_counting(bootstrap, topic, messages):
    """Send (key, value, is_bad) and return how many records went to each partition (from the acks)."""
    client = producer(bootstrap)
    futures = [client.send(topic, key=key, value=value) for key, value, _ in messages]
    client.flush()
    per_partition = Counter(future.get(timeout=30).partition for future in futures)
    client.close()
    return per_partition


def test_a_consumer_with_slow_saves_does_not_exit_mid_rebalance_when_the_other_member_leaves(
    kafka_broker, kafka_topic, postgres_url, monkeypatch
):
    """The bench's lost records (2 consumers on PostgreSQL). A member whose batches take longer than
    --until-idle used to count its processing time as idle: when the other member finished and left,
    the rebalance revoked its partitions inside the next poll, that poll came back empty, and it
    exited mid-rebalance with records still on the partitions it owned; no member was left to take
    them. Every produced record must be tracked in the ledger once both members have exited."""
    contracts = contract_ids(9)
    ledger(postgres_url, contracts)
    stream = make_stream(1500, contracts, seed=5)
    produced = send_counting(kafka_broker.bootstrap, kafka_topic, stream.messages())
    assert sum(produced.values()) == stream.total and len(produced) == 3

    real_flush = IngestSession.flush

    def flush(self, trackings=()):
        if threading.current_thread().name == "slow":
            time.sleep(2.5)  # a loaded database: each batch's transaction outlasts --until-idle
        return real_flush(self, trackings)

    monkeypatch.setattr(IngestSession, "flush", flush)
    members = {
        name: LedgerConsumer(
            Ledger.from_url(postgres_url),
            kafka_broker.bootstrap,
            [kafka_topic],
            group=kafka_topic,
            batch=150,
            until_idle=1.5,
            session_timeout_ms=SESSION_MS,
        )
        for name in ("slow", "fast")
    }
    reports, errors = {}, []

    def run(name):
        try:
            reports[name] = members[name].run()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,), name=name, daemon=True) for name in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    for member in members.values():
        member.stop()
    assert not any(thread.is_alive() for thread in threads), "a consumer did not exit"
    assert not errors, errors
    assert reports["slow"].consumed > 0 and reports["fast"].consumed > 0, "both members got partitions"

    app = Ledger.from_url(postgres_url)
    tracked = {p: records_saved(app, kafka_topic, p) for p in range(3)}
    assert tracked == dict(produced), "records left behind on a partition (tracked vs produced)"
    assert sum(r.consumed for r in reports.values()) == stream.total
    assert all(r.reconciles for r in reports.values())


def _progress(app, topic):
    return sum(records_saved(app, topic, p) for p in range(3))


@pytest.mark.slow
def test_kill_9_of_the_consumer_at_random_points_then_restart_equals_one_clean_ingest(
    kafka_broker, kafka_topic, tmp_path
):
    rng = random.Random()
    seed = rng.randrange(10**6)
    contracts = contract_ids(12)
    stream = make_stream(20_000, contracts, seed=seed)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    services_for(ledger(reference, contracts)).ingest.ingest_lines(stream.lines, "reference.jsonl")
    crash_url = f"sqlite:///{tmp_path / 'crash.db'}"
    app = ledger(crash_url, contracts)
    expected_dlq = send(kafka_broker.bootstrap, kafka_topic, stream.messages())

    kills = sorted(rng.uniform(lo, hi) for lo, hi in ((0.05, 0.3), (0.35, 0.6), (0.65, 0.9)))
    landed = []
    for fraction in kills:
        # a short session: the next process waits for the killed one's session to expire
        proc = _consume_process(
            crash_url, kafka_broker.bootstrap, kafka_topic, "--batch", "1000", session_ms=3000
        )
        target = int(fraction * stream.total)
        deadline = time.monotonic() + 90
        while _progress(app, kafka_topic) < target and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(rng.uniform(0.005, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        landed.append(_progress(app, kafka_topic))
    assert landed[-1] < stream.total, f"the kills must land mid-stream (seed {seed}, at {landed})"

    final = _consume_process(
        crash_url, kafka_broker.bootstrap, kafka_topic, "--until-idle", "3", session_ms=3000
    )
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    report = json.loads(out)
    assert report["reconciles"]
    assert _progress(app, kafka_topic) == stream.total

    keys = record_keys(stream.lines)
    assert ledger_view(crash_url, contracts, keys) == ledger_view(reference, contracts, keys), (
        f"seed {seed}, kills at {landed}"
    )
    keys, letters = dlq_keys(kafka_broker.bootstrap, kafka_topic)
    assert len(keys) == len(set(keys)), f"a dead letter was sent twice (seed {seed}, kills at {landed})"
    assert set(keys) == expected_dlq
    assert all(parse_key(m.key)[:2] == (kafka_topic, m.partition) for m in letters)
