"""Dead letters always fit the broker: long originals cut with their length and digest, text made UTF-8."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from consumers.codec import encode
from consumers.dead_letters import KEY_LIMIT, VALUE_LIMIT, DeadLetter, decode_dead_letter


def test_a_dead_letter_of_a_message_over_the_brokers_limit_is_cut_and_keeps_its_length_and_sha256():
    value, key = b"\x00" + b"v" * (2 * 1024 * 1024), b"\xff" * 50_000
    letter = DeadLetter("ledger.records", 1, 9, key, value, "message_too_large", None, "m" * 100_000)
    data = letter.encode()
    assert len(data) < 1024 * 1024 - VALUE_LIMIT, "far below the producer's 1 MiB request limit"
    decoded = decode_dead_letter(data)
    assert decoded["value"] == value[:VALUE_LIMIT] and decoded["value_truncated"]
    assert (
        decoded["value_length"] == len(value) and decoded["value_sha256"] == hashlib.sha256(value).hexdigest()
    )
    assert decoded["key"] == key[:KEY_LIMIT] and decoded["key_truncated"] and decoded["key_length"] == 50_000
    assert decoded["message"].startswith("m" * 100) and decoded["message"].endswith("(100,000 characters)")


def test_a_small_original_is_kept_whole_and_text_that_is_not_utf8_is_escaped():
    letter = DeadLetter(
        "ledger.records",
        0,
        3,
        None,
        b"\x07",
        "unsupported_framing",
        "a\ud800b",
        "why \udcff",
        record_id="\ud800",
    )
    decoded = decode_dead_letter(letter.encode())
    assert decoded["value"] == b"\x07" and not decoded["value_truncated"] and decoded["value_length"] == 1
    assert decoded["key"] is None and decoded["key_length"] is None and not decoded["key_truncated"]
    assert (decoded["field"], decoded["message"], decoded["record_id"]) == (
        "a\\ud800b",
        "why \\udcff",
        "\\ud800",
    )


def test_a_dead_letter_written_with_v1_reads_with_the_newest_reader():
    at = datetime(2026, 12, 1, tzinfo=UTC)
    v1 = encode(
        5,
        {
            "topic": "t",
            "partition": 0,
            "offset": 1,
            "key": None,
            "value": b"x",
            "code": "truncated",
            "field": None,
            "message": "short",
            "schema_id": None,
            "record_type": None,
            "record_id": None,
            "contract_id": None,
            "dead_lettered_at": at,
        },
    )
    decoded = decode_dead_letter(v1)
    assert decoded["code"] == "truncated" and decoded["value"] == b"x"
    assert (decoded["value_length"], decoded["value_sha256"], decoded["value_truncated"]) == (
        None,
        None,
        False,
    )
