"""Tamper evidence: every stored event is sealed into two hash chains.

* the **stream chain**: ``stream_hash = H(previous stream_hash, stream id, version, topic, stored bytes)``;
* the **global chain** over the notification log:
  ``global_hash = H(previous global_hash, notification id, stream_hash)``.

Seals are written by the recorder in the same transaction as the events
(:mod:`ledger.store`), while the store's write lock is held, so the chain has
one order. :func:`verify` recomputes every hash from the stored bytes and
reports the first broken link: an edited event, a removed one, a reordering, or
an event inserted behind the ledger's back. A :func:`digest` (position + hash,
optionally HMAC-signed) is the checkpoint an auditor keeps: ``verify --against``
proves the log still extends it, which also catches a truncated tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence
from uuid import UUID

from .errors import LedgerError

GENESIS = "0" * 64
ALGORITHM = "sha256-chain-v1"
KEY_ENV = "OBC_LEDGER_DIGEST_KEY"


def _id(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def stream_hash(previous: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    h = hashlib.sha256()
    h.update(f"{previous}\n{_id(originator_id)}\n{version}\n{topic}\n".encode())
    h.update(state if isinstance(state, (bytes, bytearray, memoryview)) else str(state).encode("utf-8", "surrogatepass"))
    return h.hexdigest()  # (a state an intruder rewrote as text still hashes: it is reported as altered)


def global_hash(previous: str, notification_id: int, stream: str) -> str:
    return hashlib.sha256(f"{previous}\n{notification_id}\n{stream}".encode()).hexdigest()


def seal_rows(events: Sequence[Any], ids: Sequence[int], last_global: str,
              last_of_stream: Any) -> list[tuple[int, str, int, str, str]]:
    """Seal rows (notification id, stream id, version, stream hash, global hash) for a batch.

    ``last_of_stream(stream_id)`` returns the stream's latest stored stream hash (or None).
    """
    rows = []
    previous_by_stream: dict[str, str] = {}
    previous = last_global
    for event, nid in zip(events, ids):
        oid = _id(event.originator_id)
        if oid not in previous_by_stream:
            previous_by_stream[oid] = last_of_stream(oid) or GENESIS
        sh = stream_hash(previous_by_stream[oid], oid, event.originator_version, event.topic, event.state)
        previous = global_hash(previous, nid, sh)
        previous_by_stream[oid] = sh
        rows.append((nid, oid, event.originator_version, sh, previous))
    return rows


@dataclass
class Verification:
    ok: bool
    checked: int
    position: int
    head_hash: str
    problem: dict[str, Any] | None = None
    digest_checked: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events_checked": self.checked, "position": self.position,
                "head_hash": self.head_hash, "first_broken_link": self.problem,
                "against_digest": self.digest_checked}


def _pairs(app: Any, page: int = 5000) -> Iterator[tuple[Any | None, tuple[Any, ...] | None]]:
    """Events and seals merged by notification id (either side may be missing)."""
    recorder = app.recorder
    last_event = last_seal = 0
    events: list[Any] = []
    seals: list[tuple[Any, ...]] = []
    exhausted_events = exhausted_seals = False
    while True:
        if not events and not exhausted_events:
            events = list(recorder.select_notifications(start=last_event, limit=page, inclusive_of_start=False))
            exhausted_events = not events
            if events:
                last_event = events[-1].id
        if not seals and not exhausted_seals:
            seals = list(recorder.select_seals(last_seal, page))
            exhausted_seals = not seals
            if seals:
                last_seal = seals[-1][0]
        if not events and not seals:
            return
        e_id = events[0].id if events else None
        s_id = seals[0][0] if seals else None
        if s_id is None or (e_id is not None and e_id < s_id):
            yield events.pop(0), None
        elif e_id is None or s_id < e_id:
            yield None, seals.pop(0)
        else:
            yield events.pop(0), seals.pop(0)


_KINDS = {"Contract": "contract", "YearData": "year data", "Settlement": "settlement", "Rejection": "rejection",
          "AccessRefused": "access refusal"}


class StreamNames:
    """Names a stream by what it is — the contract, year and kind — rather than by its hex id.

    Stream ids are name-based UUIDs (:mod:`ledger.domain`), so a name is proved by recomputing the
    uuid5 from candidate contract ids and years; the candidates come from the first event of each
    stream seen so far. A stored state only suggests names (it may be the altered one): only
    recomputation decides, except for access refusals, whose ids are random (named by what they say).
    """

    def __init__(self, recorded: Callable[[str], tuple[str, str, int | None] | None] | None = None) -> None:
        self.recorded = recorded  # last resort: what the read models recorded of a stream (kind, contract, year)
        self.contracts: set[str] = set()
        self.years = 1
        self.claimed: dict[str, tuple[str, str | None, int | None]] = {}  # oid -> what its first event says
        self.rejection_keys: dict[str, str] = {}

    def see(self, event: Any) -> None:
        if event.originator_version != 1:
            return
        try:
            state = json.loads(event.state)
            cid, year = state.get("contract_id"), state.get("year")
        except (ValueError, TypeError, AttributeError):
            return
        kind = _KINDS.get(event.topic.rpartition(":")[2].split(".")[0])
        if isinstance(cid, str):
            self.contracts.add(cid)
        if isinstance(year, int) and 0 < year < 1000:
            self.years = max(self.years, year)
        if kind:
            self.claimed[_id(event.originator_id).replace("-", "")] = (kind, cid if isinstance(cid, str) else None,
                                                      year if isinstance(year, int) else None)
        if kind == "rejection" and isinstance(state.get("key"), str):
            self.rejection_keys[_id(event.originator_id).replace("-", "")] = state["key"]

    def describe(self, oid: str) -> dict[str, Any]:
        from .domain import contract_uuid, rejection_uuid, settlement_uuid, year_data_uuid

        oid = oid.replace("-", "").lower()
        if self.recorded is not None:  # the read models name the contract (e.g. its first event was altered)
            try:
                found = self.recorded(oid)
            except Exception:  # noqa: BLE001 - no read models, or unreadable: name what the log proves
                found = None
            if found is not None and found[1]:
                self.contracts.add(found[1])
                if isinstance(found[2], int):
                    self.years = max(self.years, found[2])
        for cid in sorted(self.contracts):
            if contract_uuid(cid).hex == oid:
                return {"stream_kind": "contract", "contract_id": cid, "year": None}
            for year in range(1, self.years + 11):
                if year_data_uuid(cid, year).hex == oid:
                    return {"stream_kind": "year data", "contract_id": cid, "year": year}
                if settlement_uuid(cid, year).hex == oid:
                    return {"stream_kind": "settlement", "contract_id": cid, "year": year}
        key = self.rejection_keys.get(oid)
        kind, cid, _ = self.claimed.get(oid, (None, None, None))
        if key is not None and rejection_uuid(key).hex == oid:
            return {"stream_kind": "rejection", "contract_id": cid, "year": None}
        recorded = _recorded_kind(self.recorded, oid) if self.recorded is not None else None
        if recorded is not None:
            return {"stream_kind": recorded[0], "contract_id": recorded[1], "year": None}
        if kind == "access refusal":
            return {"stream_kind": kind, "contract_id": cid, "year": None}
        return {"stream_kind": None, "contract_id": None, "year": None}

    def text(self, oid: str) -> str:
        d = self.describe(oid)
        kind, cid, year = d["stream_kind"], d["contract_id"], d["year"]
        if kind is None:
            return f"stream {oid}, which names no contract of this ledger"
        if kind == "contract":
            return f"contract {cid}'s stream"
        if year is not None:
            return f"the {kind} of {cid} year {year}"
        return f"a {kind} stream" + (f" of {cid}" if cid else "")


def _recorded_kind(recorded: Callable[[str], Any], oid: str) -> tuple[str, str | None] | None:
    """A rejection or access-refusal stream as the read models recorded it (their ids name nothing)."""
    try:
        found = recorded(oid)
    except Exception:  # noqa: BLE001
        return None
    if found and found[0] in ("rejection", "refusal"):
        return ("rejection" if found[0] == "rejection" else "access refusal"), found[1] or None
    return None


def verify(app: Any, against: dict[str, Any] | None = None, names: StreamNames | None = None) -> Verification:
    """Recompute every seal from the stored events; stop at the first broken link."""
    previous = GENESIS
    streams: dict[str, tuple[str, int]] = {}
    names = names or StreamNames()
    checked = 0
    position = 0
    hashes_at: dict[int, str] = {}
    want = int(against["position"]) if against else None

    def broken(kind: str, message: str, nid: int, stream: str | None = None, version: int | None = None) -> Verification:
        named = names.describe(stream) if stream else {"stream_kind": None, "contract_id": None, "year": None}
        return Verification(False, checked, position, previous, {
            "kind": kind, "notification_id": nid, "stream": stream, "version": version, **named,
            "message": message})

    for event, seal in _pairs(app):
        if event is None:
            assert seal is not None
            return broken("removed", f"event #{seal[0]} ({names.text(seal[1])}, version {seal[2]}) has been "
                                     f"removed from the log; its seal remains", seal[0], seal[1], seal[2])
        oid = _id(event.originator_id)
        names.see(event)
        if seal is None:
            return broken("unsealed", f"event #{event.id} ({names.text(oid)}, version {event.originator_version}) "
                                      f"has no seal: it was written behind the ledger's back", event.id, oid,
                          event.originator_version)
        last_hash, last_version = streams.get(oid, (GENESIS, 0))
        if event.originator_version != last_version + 1:
            return broken("stream_gap", f"{names.text(oid)} jumps from version {last_version} to "
                                        f"{event.originator_version} at event #{event.id}: an event was removed "
                                        f"or reordered", event.id, oid, event.originator_version)
        sh = stream_hash(last_hash, oid, event.originator_version, event.topic, event.state)
        if (seal[1], seal[2]) != (oid, event.originator_version) or sh != seal[3]:
            return broken("altered", f"event #{event.id} ({names.text(oid)}, version {event.originator_version}, "
                                     f"{event.topic.rpartition(':')[2]}) does not match its seal: its stored "
                                     f"content was altered, or events were swapped", event.id, oid,
                          event.originator_version)
        gh = global_hash(previous, event.id, sh)
        if gh != seal[4]:
            return broken("chain", f"the log's chain breaks at event #{event.id} ({names.text(oid)}, version "
                                   f"{event.originator_version}): an earlier event was removed or the log was "
                                   f"reordered", event.id, oid, event.originator_version)
        previous = gh
        streams[oid] = (sh, event.originator_version)
        checked += 1
        position = event.id
        if want is not None and event.id == want:
            hashes_at[want] = gh
    result = Verification(True, checked, position, previous)
    if against is not None:
        result.digest_checked = _check_digest(against, hashes_at.get(want or -1), position)
        result.ok = result.digest_checked["ok"]
    return result


def _check_digest(digest: dict[str, Any], found: str | None, position: int) -> dict[str, Any]:
    want = int(digest["position"])
    out: dict[str, Any] = {"position": want, "hash": digest.get("hash")}
    if "hmac" in digest:
        key = os.environ.get(KEY_ENV)
        if not key:
            out.update(ok=False, message=f"the digest is signed; set {KEY_ENV} to check its signature")
            return out
        if not hmac.compare_digest(_sign(digest, key), digest["hmac"]):
            out.update(ok=False, message="the digest's signature does not match: it was not issued with this key")
            return out
    if want > position:
        out.update(ok=False, message=f"the log ends at #{position}, before the digest's position #{want}: "
                                     f"events were removed from its end")
    elif found is None:
        out.update(ok=False, message=f"event #{want} named by the digest is no longer in the log")
    elif found != digest.get("hash"):
        out.update(ok=False, message=f"the log at #{want} does not match the digest: history before it was rewritten")
    else:
        out.update(ok=True, message=f"the log extends the digest (#{want} → #{position})")
    return out


def _sign(digest: dict[str, Any], key: str) -> str:
    body = json.dumps({k: digest[k] for k in ("algorithm", "position", "hash")}, sort_keys=True)
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


def digest(app: Any) -> dict[str, Any]:
    """A checkpoint of the log: position and global hash (HMAC-signed when a key is set)."""
    head = app.recorder.last_seal()
    out: dict[str, Any] = {
        "algorithm": ALGORITHM, "position": head[0] if head else 0, "hash": head[1] if head else GENESIS,
        "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    key = os.environ.get(KEY_ENV)
    if key:
        out["hmac"] = _sign(out, key)
    return out


def load_digest(text: str) -> dict[str, Any]:
    """A digest from its JSON text or from a file holding it."""
    candidate = text
    if not text.lstrip().startswith("{"):
        try:
            with open(text, encoding="utf-8") as handle:
                candidate = handle.read()
        except OSError as exc:
            raise LedgerError(f"cannot read digest {text}: {exc.strerror}", code="file_not_found") from None
    try:
        value = json.loads(candidate)
        int(value["position"])
        str(value["hash"])
    except (ValueError, KeyError, TypeError):
        raise LedgerError("the digest must be the JSON printed by `obc-ledger digest`", code="invalid_digest") from None
    return value
