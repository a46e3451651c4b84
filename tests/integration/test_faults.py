"""The fault script (bench/faults.py) in its quick mode, and that its comparison sees a difference."""

from __future__ import annotations

import json

from bench import faults
from consumers.dead_letters import dlq_topic
from consumers.kafka import ensure_topic, producer
from deploy.streams import contract_ids, make_stream, register
from ledger.usecases import services_for
from ledger.usecases.application import Ledger


def test_consume_and_ingest_killed_at_random_points_end_equal_to_a_clean_ledger(capsys):
    code = faults.main(["--quick", "--json"])
    report = json.loads(capsys.readouterr().out)
    rounds = {r["what"]: r for r in report["rounds"]}
    assert rounds["consume"]["kills"] == 3 and rounds["ingest"]["kills"] == 2
    assert [r["differences"] for r in report["rounds"]] == [[], []], f"seed {report['seed']}"
    assert code == 0
    assert all(row["rounds_with_any_difference"] == 0 for row in report["summary"])


def test_the_comparison_reports_a_lost_record_a_missing_rejection_and_a_dead_letter_sent_twice(
    tmp_path, kafka_broker, kafka_topic
):
    contracts = contract_ids(2)
    stream = make_stream(300, contracts, seed=4, bad_rate=0.05)
    keys = faults.record_keys(stream.lines)
    lost = max(
        i
        for i, line in enumerate(stream.lines)
        if i not in stream.bad_lines and stream.lines.count(line) == 1 and "cost_report" in line
    )  # the last cost report of its slot: the year's latest data changes
    urls = {}
    for name, lines in (
        ("reference", stream.lines),
        ("lost", stream.lines[:lost] + stream.lines[lost + 1 :]),
    ):
        urls[name] = f"sqlite:///{tmp_path / f'{name}.db'}"
        app = Ledger.from_url(urls[name])
        register(app, contracts)
        services_for(app).ingest.ingest_lines(lines, "stream.jsonl")
    reference = faults.ledger_figures(urls["reference"], contracts, keys)
    assert faults.differences(reference, reference, 0) == []
    found = faults.differences(faults.ledger_figures(urls["lost"], contracts, keys), reference, 0)
    assert found == ["accepted records differ for 2 key(s), first [\"('msk-00', 2)\", 'msk-00']"]
    assert faults.differences(reference, reference, 1) != [], "a missing wire rejection is a difference"

    ensure_topic(kafka_broker.bootstrap, dlq_topic(kafka_topic), 3)
    client = producer(kafka_broker.bootstrap)
    for _ in range(2):
        client.send(dlq_topic(kafka_topic), key=f"{kafka_topic}:1:7".encode(), value=b"letter", partition=1)
    client.flush()
    client.close()
    found = faults.dlq_differences(kafka_broker.bootstrap, kafka_topic, {f"{kafka_topic}:1:7"})
    assert found == ["1 dead letter(s) sent more than once (2 for 1 messages)"]
    assert faults.dlq_differences(kafka_broker.bootstrap, kafka_topic, {f"{kafka_topic}:1:8"})[-1].startswith(
        "dead letters for 1 good message(s)"
    )
