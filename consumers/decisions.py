"""Payment decisions out to finance systems: ``obc-ledger publish-decisions``.

Reads ``InstalmentDecided``, ``YearClosed`` and ``TrueUpDecided`` from the ledger's
event log after a tracked position and publishes each to ``ledger.decisions`` (Avro,
``decision`` schema), keyed by contract id, with headers ``notification-id``,
``decision-id`` (stable: ``contract:year:kind[:period|:version]``) and
``decision-digest`` (SHA-256 of the decision's money and reasons: everything but the
notification id, decision time and actor). After each page is acknowledged, the
position and the last offset written to each partition are saved in one transaction.
A publisher that crashed between the acknowledgement and that save finds, on restart,
the decisions already sent by reading each partition past its saved offset, and does
not send them again: exactly once in effect, for one publisher at a time.

Already-sent decisions are recognised by (decision id, digest), not by notification
id: after a restore that lost events, the ledger reuses notification ids for new
events, and a decision re-made with *different* figures must reach the finance
system, while one re-made identically must not be sent twice. (Messages from before
these headers existed are recognised by notification id, as they were then.)

With a signing key (``publish-decisions --sign-key FILE``) every message also carries
``decision-signature``: Ed25519 (base64) over :func:`signed_message` (a label, the
message key and its value bytes, as sent), and ``decision-key-id``; a consumer in
finance checks it with the public key (:func:`check_decision`), so a decision written
to the topic by anyone without the key is told apart. The unkeyed digest header only
identifies a decision; it proves nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic
from kafka import TopicPartition

from ledger.adapters.signing import check, signature_text
from ledger.domain.aggregates import Settlement
from ledger.usecases.application import Ledger

from .codec import FIXED_IDS, Codec
from .consumer import install_stop_handlers, tracked_position
from .kafka import StreamError, ensure_topic, producer, read_tail

DEFAULT_DECISIONS_TOPIC = "ledger.decisions"
DECISION_SCHEMA_ID = 6
HEADER = "notification-id"
ID_HEADER = "decision-id"
DIGEST_HEADER = "decision-digest"
SIGNATURE_HEADER = "decision-signature"
KEY_ID_HEADER = "decision-key-id"
NOT_CONTENT = ("notification_id", "decided_at", "actor")
PAGE = 500
CENT = Decimal("0.01")
# Settlement.InstalmentDecided is made by eventsourcing's @event("InstalmentDecided"), which mypy
# cannot see (eventsourcing has no mypy plugin); YearClosed and TrueUpDecided are declared classes.
INSTALMENT_DECIDED = Settlement.InstalmentDecided
KINDS = {
    get_topic(INSTALMENT_DECIDED): "instalment",
    get_topic(Settlement.YearClosed): "year_close",
    get_topic(Settlement.TrueUpDecided): "true_up",
}


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def content_digest(value: dict[str, Any]) -> str:
    """SHA-256 of what a decision decides: its ids, money, reasons and figures."""
    content = {k: v for k, v in value.items() if k not in NOT_CONTENT}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def signed_message(key: bytes | None, value: bytes) -> bytes:
    """What a decision's signature covers: the message key and value bytes exactly as sent."""
    key = key or b""
    return b"obc-ledger decision v1\n" + str(len(key)).encode() + b"\n" + key + value


def check_decision(message: Any, public_key: Any) -> bool:
    """Whether a consumed decision message (``key``, ``value``, ``headers``) is signed by ``public_key``."""
    headers = dict(message.headers or [])
    signature = headers.get(SIGNATURE_HEADER)
    if signature is None:
        return False
    try:
        text = signature.decode("ascii")
    except UnicodeDecodeError:
        return False
    return check(public_key, text, signed_message(message.key, message.value))


@dataclass
class PublishReport:
    topic: str
    published: int = 0
    already_published: int = 0
    position: int | None = None
    seconds: float = 0.0  # float-ok: seconds, not money

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "published": self.published,
            "already_published": self.already_published,
            "position": self.position,
            "seconds": round(self.seconds, 3),
        }


class DecisionPublisher:
    def __init__(
        self,
        app: Ledger,
        bootstrap: str,
        topic: str = DEFAULT_DECISIONS_TOPIC,
        until_idle: float | None = None,  # float-ok: seconds
        poll_interval: float = 0.5,  # float-ok: seconds, not money
        signer: Any = None,
        codec: Codec = FIXED_IDS,
    ) -> None:
        self.app = app
        self.signer = signer
        self.codec = codec
        self.bootstrap = bootstrap
        self.topic = topic
        self.until_idle = until_idle
        self.poll_interval = poll_interval
        self.report = PublishReport(topic)
        self._stop = threading.Event()
        self._settlements: dict[Any, tuple[str, int]] = {}

    def stop(self) -> None:
        self._stop.set()

    def _name(self, partition: int | None = None) -> str:
        return f"publish:{self.topic}" if partition is None else f"publish:{self.topic}:{partition}"

    def _already_published(
        self, partitions: int, position: int | None
    ) -> tuple[set[tuple[str, str]], set[int], dict[int, int]]:
        """What is in the topic past each partition's saved offset: (decision id, digest) pairs,
        notification ids of messages without those headers (older publishers), last offsets."""
        seen: set[tuple[str, str]] = set()
        legacy: set[int] = set()
        last: dict[int, int] = {}
        for p in range(partitions):
            stored = tracked_position(self.app, self._name(p))
            for message in read_tail(
                self.bootstrap, TopicPartition(self.topic, p), 0 if stored is None else stored + 1
            ):
                headers = {k: v.decode() for k, v in (message.headers or [])}
                if ID_HEADER in headers and DIGEST_HEADER in headers:
                    seen.add((headers[ID_HEADER], headers[DIGEST_HEADER]))
                elif HEADER in headers and (position is None or int(headers[HEADER]) > position):
                    legacy.add(int(headers[HEADER]))
                else:
                    continue
                last[p] = max(last.get(p, -1), message.offset)
        return seen, legacy, last

    def _where(self, originator_id: Any) -> tuple[str, int]:
        found = self._settlements.get(originator_id)
        if found is None:
            settlement: Settlement = self.app.repository.get(originator_id)
            found = self._settlements[originator_id] = (settlement.contract_id, settlement.year)
        return found

    def decision(self, notification: Any) -> dict[str, Any]:
        """The ``decision`` Avro value of a decision event."""
        event = self.app.mapper.to_domain_event(notification)
        kind = KINDS[notification.topic]
        if not isinstance(event, INSTALMENT_DECIDED | Settlement.YearClosed | Settlement.TrueUpDecided):
            raise TypeError(f"notification {notification.id} ({notification.topic}) is not a decision")
        contract_id, year = self._where(event.originator_id)
        value: dict[str, Any] = {
            "notification_id": notification.id,
            "kind": kind,
            "contract_id": contract_id,
            "year": year,
            "period": None,
            "total": None,
            "reason": None,
            "figures_json": None,
            "decided_at": event.decided_at,
            "actor": event.actor,
        }
        if isinstance(event, Settlement.YearClosed | Settlement.TrueUpDecided):
            figures = event.figures
            value.update(total=_money(figures["total"]), figures_json=json.dumps(figures, default=str))
        if isinstance(event, Settlement.YearClosed):
            value.update(
                decision_id=f"{contract_id}:{year}:year_close",
                amount=_money(figures["year_close_payment"]),
                by_party={p: _money(v) for p, v in figures["by_party"].items()},
            )
        elif isinstance(event, Settlement.TrueUpDecided):
            value.update(
                decision_id=f"{contract_id}:{year}:true_up:{event.originator_version}",
                amount=_money(event.amount),
                reason=event.reason,
                by_party={p: _money(v) for p, v in event.by_party.items()},
            )
        elif isinstance(event, INSTALMENT_DECIDED):
            value.update(
                decision_id=f"{contract_id}:{year}:instalment:{event.period}",
                period=event.period,
                amount=_money(event.amount),
                by_party={p: _money(v) for p, v in event.by_party.items()},
            )
        return value

    def run(self) -> PublishReport:
        started = time.monotonic()
        restore = install_stop_handlers(self.stop)
        partitions = ensure_topic(self.bootstrap, self.topic)
        position = tracked_position(self.app, self._name())
        seen, legacy, last = self._already_published(partitions, position)
        client = producer(self.bootstrap)
        try:
            idle_since = time.monotonic()
            while not self._stop.is_set():
                page = self.app.recorder.select_notifications(
                    start=position, limit=PAGE, topics=list(KINDS), inclusive_of_start=False
                )
                if not page:
                    if self.until_idle is not None and time.monotonic() - idle_since >= self.until_idle:
                        break
                    self._stop.wait(self.poll_interval)
                    continue
                idle_since = time.monotonic()
                futures = []
                for n in page:
                    value = self.decision(n)
                    identity = (value["decision_id"], content_digest(value))
                    if identity in seen or n.id in legacy:
                        self.report.already_published += 1
                        continue
                    key, body = value["contract_id"].encode(), self.codec.encode(DECISION_SCHEMA_ID, value)
                    headers = [
                        (HEADER, str(n.id).encode()),
                        (ID_HEADER, identity[0].encode()),
                        (DIGEST_HEADER, identity[1].encode()),
                    ]
                    if self.signer is not None:
                        headers += [
                            (
                                SIGNATURE_HEADER,
                                signature_text(self.signer.sign(signed_message(key, body))).encode(),
                            ),
                            (KEY_ID_HEADER, self.signer.key_id.encode()),
                        ]
                    futures.append(client.send(self.topic, key=key, value=body, headers=headers))
                client.flush()
                for future in futures:
                    try:
                        metadata = future.get(timeout=30)
                    except Exception as exc:
                        raise StreamError(
                            f"a decision was not acknowledged by the broker: {exc}", code="send_failed"
                        ) from None
                    last[metadata.partition] = max(last.get(metadata.partition, -1), metadata.offset)
                self.report.published += len(futures)
                position = page[-1].id
                trackings = [Tracking(self._name(), position)]
                trackings += [
                    Tracking(self._name(p), off)
                    for p, off in last.items()
                    if off > (tracked_position(self.app, self._name(p)) or -1)
                ]
                self.app.save(trackings=trackings)
                legacy = {nid for nid in legacy if nid > position}
        finally:
            client.close(timeout=10)
            restore()
            self.report.position = position
            self.report.seconds = time.monotonic() - started
        return self.report


def publish_decisions(
    app: Ledger,
    bootstrap: str,
    topic: str = DEFAULT_DECISIONS_TOPIC,
    until_idle: float | None = None,  # float-ok: seconds
    on_start: Callable[[DecisionPublisher], None] | None = None,
    signer: Any = None,
    codec: Codec = FIXED_IDS,
) -> PublishReport:
    publisher = DecisionPublisher(app, bootstrap, topic, until_idle, signer=signer, codec=codec)
    if on_start is not None:
        on_start(publisher)
    return publisher.run()
