"""What a consumer logs after each assignment, and reading it back (deploy/local_cluster.py does)."""

from kafka import TopicPartition

from consumers.consumer import assignment_text, parse_assignment


def test_an_assignment_is_logged_by_topic_with_sorted_partitions_and_read_back():
    text = assignment_text(
        [
            TopicPartition("ledger.records", 3),
            TopicPartition("ledger.records", 0),
            TopicPartition("other", 1),
        ]
    )
    assert text == "ledger.records:0,3 other:1"
    log = "\n".join(
        [
            "2026-11-22 10:00:00,000 INFO obc_ledger.consumer: assigned ledger.records:0,1,2",
            "2026-11-22 10:00:05,000 WARNING kafka.coordinator: heartbeat failed",
            f"2026-11-22 10:00:09,000 INFO obc_ledger.consumer: assigned {text}",
        ]
    )
    assert parse_assignment(log) == {"ledger.records": [0, 3], "other": [1]}


def test_an_empty_assignment_and_no_assignment_differ():
    assert parse_assignment("x INFO obc_ledger.consumer: assigned no partitions") == {}
    assert parse_assignment("x INFO someone.else: assigned ledger.records:1") is None
    assert parse_assignment("") is None
