"""Witnesses: signed digests published outside the database, each one a later head must extend.

A witness is append-only by convention and lives where the ledger's operator cannot
rewrite it: a directory of files (one per digest, never overwritten: on the
auditor's machine, an object store with retention lock, a git repository) or the
Kafka topic ``ledger.digests`` (keyed by ledger id; a topic with a long retention,
its copies read by the commissioner). ``verify --witness DIR`` checks that the log
extends every digest there and names the first one it does not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from ledger.adapters.audit import load_digest
from ledger.domain.errors import LedgerError

DIGESTS_TOPIC = "ledger.digests"
MAX_FILES = 100_000


class KafkaWitness(Protocol):
    """A witness topic (consumers.witness.KafkaWitness, built by the wiring when --bootstrap is given)."""

    def append(self, topic: str, key: bytes, text: str) -> None: ...

    def messages(self, topic: str) -> Iterable[tuple[str, bytes]]: ...


def publish(digest: dict[str, Any], target: str, kafka: KafkaWitness | None = None) -> str:
    """Append ``digest`` to the witness ``target`` (a directory, or ``kafka:TOPIC``); where it went."""
    text = json.dumps(digest, sort_keys=True)
    if target.startswith("kafka:"):
        return _publish_kafka(digest, text, target[len("kafka:") :] or DIGESTS_TOPIC, kafka)
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = digest["issued_at"].replace(":", "").replace("-", "")
    for n in range(1000):  # two digests in one second: a suffix, never an overwrite
        path = directory / f"digest-{digest['position']:020d}-{stamp}{f'-{n}' if n else ''}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return str(path)
    raise LedgerError(
        f"cannot add a digest to {directory}: too many at one instant", code="witness_unwritable"
    )


def _publish_kafka(digest: dict[str, Any], text: str, topic: str, kafka: KafkaWitness | None) -> str:
    if kafka is None:
        raise LedgerError(
            "publishing a digest to Kafka needs --bootstrap (or $OBC_LEDGER_BOOTSTRAP)",
            code="configuration_error",
        )
    kafka.append(topic, digest["ledger_id"].encode(), text)
    return f"kafka:{topic}"


def read(directory: str | Path, kafka: KafkaWitness | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every digest a witness holds (a directory, or ``kafka:TOPIC``), each with its name (file, or
    ``topic:partition:offset``), in the order they were issued."""
    if str(directory).startswith("kafka:"):
        return _sorted(_read_kafka(str(directory)[len("kafka:") :] or DIGESTS_TOPIC, kafka))
    folder = Path(directory)
    if not folder.is_dir():
        raise LedgerError(f"witness {folder} is not a directory", code="file_not_found")
    names = sorted(p for p in folder.iterdir() if p.suffix == ".json")
    if len(names) > MAX_FILES:
        raise LedgerError(f"witness {folder} holds more than {MAX_FILES:,} digests", code="invalid_digest")
    out = []
    for path in names:
        try:
            out.append((path.name, load_digest(str(path))))
        except LedgerError as exc:
            raise LedgerError(f"{path.name}: {exc.message}", code=exc.code) from None
    return _sorted(out)


def _sorted(out: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    out.sort(key=lambda item: (item[1].get("issued_at", ""), item[1]["position"], item[0]))
    return out


def _read_kafka(topic: str, kafka: KafkaWitness | None) -> list[tuple[str, dict[str, Any]]]:
    if kafka is None:
        raise LedgerError(
            "reading a witness topic needs --bootstrap (or $OBC_LEDGER_BOOTSTRAP)", code="configuration_error"
        )
    out = []
    for name, value in kafka.messages(topic):
        try:
            text = value.decode("utf-8")
            out.append((name, load_digest(text if text.lstrip()[:1] == "{" else "{}")))
        except (UnicodeDecodeError, LedgerError) as exc:
            message_text = exc.message if isinstance(exc, LedgerError) else "not UTF-8 text"
            raise LedgerError(f"{name}: {message_text}", code="invalid_digest") from None
    return out


def order_problem(digests: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The first digest whose position is before an earlier-issued one's (a log cut and regrown)."""
    best: tuple[str, int] | None = None
    for name, d in digests:
        if best is not None and d["position"] < best[1]:
            return {
                "file": name,
                "position": d["position"],
                "issued_at": d.get("issued_at"),
                "ok": False,
                "kind": "reordered",
                "message": f"{name} (issued {d.get('issued_at')}) is at #{d['position']}, "
                f"before {best[0]} issued earlier at #{best[1]}: the log was "
                f"cut back and grown again",
            }
        best = (name, d["position"]) if best is None or d["position"] >= best[1] else best
    return None
