"""A provider's side: ``obc-ledger produce FILE.jsonl`` validates, encodes, then sends.

Every line is checked first (JSON, the record envelope, required fields, numbers that
are numbers, money with at most two places: what needs no contract) and the refused
lines are reported, with reasons, before anything is sent. The rest are sent Avro-
encoded and Confluent-framed, keyed by contract id so a contract's records stay in
order on one partition. What only the ledger can judge (is the provider a party, is
the period in the term, …) goes to the dead-letter topic when consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.adapters.framing import text_lines
from ledger.adapters.signing import Signer, signature_text
from ledger.domain.records import RecordRefused, Refusal, parse_json_line
from ledger.domain.signatures import KAFKA_HEADER, SIGNATURE_FIELD, canonical_bytes_of, signature_value

from .codec import FIXED_IDS, Codec, check_record
from .kafka import StreamError, ensure_topic, producer


@dataclass
class Refused:
    line: int
    refusal: Refusal

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "code": self.refusal.code,
            "field": self.refusal.field,
            "message": self.refusal.message,
        }


@dataclass
class ProduceReport:
    topic: str
    lines: int = 0
    sent: int = 0
    failed: int = 0
    refused: list[Refused] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "lines": self.lines,
            "sent": self.sent,
            "failed": self.failed,
            "refused": [r.to_dict() for r in self.refused],
        }


def encode_line(text: str, codec: Codec = FIXED_IDS) -> tuple[bytes, bytes]:
    """(key, framed Avro value) of one JSON line; raises RecordRefused."""
    return codec.encode_record(parse_json_line(text))


def signature_headers(obj: Any, signer: Signer | None) -> list[tuple[str, bytes]]:
    """The ``obc-signature`` header of a record: signed here with ``signer`` over the record's
    canonical bytes (ledger.domain.signatures), else the line's own ``signature`` field, if any."""
    if signer is not None:
        signature = signer.sign(canonical_bytes_of(obj))
        return [(KAFKA_HEADER, signature_value(signer.key_id, signature_text(signature)).encode())]
    given = obj.get(SIGNATURE_FIELD) if isinstance(obj, dict) else None
    return [(KAFKA_HEADER, str(given).encode("utf-8"))] if given is not None else []


def check_lines(lines: Iterable[str], signer: Signer | None = None) -> tuple[int, list[Refused]]:
    """Validate every line without sending: (number of records, refused lines)."""
    count, refused = 0, []
    for line in text_lines(lines):
        count += 1
        if line.refusal is not None:  # not UTF-8, a byte-order mark, over the line limit
            refused.append(Refused(line.number, line.refusal))
            continue
        try:
            obj = parse_json_line(line.text or "")
            check_record(obj)
            if signer is not None:
                canonical_bytes_of(obj)
        except RecordRefused as exc:
            refused.append(Refused(line.number, exc.refusal))
    return count, refused


def send_lines(
    bootstrap: str,
    topic: str,
    lines: Iterable[str],
    skip: set[int] = frozenset(),  # type: ignore[assignment]
    report: ProduceReport | None = None,
    create_topic: bool = False,
    signer: Signer | None = None,
    codec: Codec = FIXED_IDS,
) -> ProduceReport:
    """Encode and send every line not in ``skip``; wait for all acknowledgements. With ``signer``
    each record carries its signature in the ``obc-signature`` header."""
    report = report or ProduceReport(topic)
    ensure_topic(bootstrap, topic, create=create_topic)
    client = producer(bootstrap)
    failures: list[BaseException] = []
    try:
        for line in text_lines(lines):
            number = line.number
            if number in skip:
                continue
            if line.refusal is not None:
                report.refused.append(Refused(number, line.refusal))
                continue
            try:
                obj = parse_json_line(line.text or "")
                key, value = codec.encode_record(obj)
                headers = signature_headers(obj, signer)
            except RecordRefused as exc:  # the file changed since it was checked
                report.refused.append(Refused(number, exc.refusal))
                continue
            client.send(topic, key=key, value=value, headers=headers).add_errback(failures.append)
            report.sent += 1
        client.flush()
    finally:
        client.close(timeout=10)
    report.failed = len(failures)
    report.sent -= len(failures)
    if failures:
        raise StreamError(
            f"{len(failures)} record(s) were not acknowledged by the broker "
            f"(first: {failures[0]}); sending again is safe: the ledger acknowledges duplicates",
            code="send_failed",
        )
    return report


def produce(
    bootstrap: str,
    topic: str,
    open_lines: Callable[[], Iterator[str]],
    check_only: bool = False,
    on_refused: Callable[[list[Refused]], None] | None = None,
    create_topic: bool = False,
    signer: Signer | None = None,
    codec: Codec = FIXED_IDS,
) -> ProduceReport:
    """Check every line, report refusals (``on_refused``), then send the rest.

    ``open_lines`` is called once per pass (twice unless ``check_only``), so a file is
    streamed rather than held in memory.
    """
    count, refused = check_lines(open_lines(), signer)
    report = ProduceReport(topic, lines=count, refused=refused)
    if on_refused is not None:
        on_refused(refused)
    if check_only:
        return report
    return send_lines(
        bootstrap, topic, open_lines(), {r.line for r in refused}, report, create_topic, signer, codec
    )
