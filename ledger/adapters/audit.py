"""Tamper evidence: every stored event is sealed into two hash chains.

* the **stream chain**: ``stream_hash = H(previous stream_hash, stream id, version, topic, stored bytes)``;
* the **global chain** over the notification log:
  ``global_hash = H(previous global_hash, notification id, stream_hash)``.

Seals are written by the recorder in the same transaction as the events
(:mod:`ledger.adapters.store`), while the store's write lock is held, so the chain has
one order. :func:`verify` recomputes every hash from the stored bytes and
reports the first broken link: an edited event, a removed one, a reordering, or
an event inserted behind the ledger's back.

The chain uses no key, so whoever can write the database can edit an event and
recompute every seal after it. What they cannot do is sign: a :func:`digest`
(ledger id, position, chain head, issued_at) is signed with an Ed25519 key the
database never holds (:mod:`ledger.adapters.signing`) and kept outside it (the auditor's
file, a witness directory or topic: :mod:`ledger.adapters.witness`). ``verify --against
DIGEST --public-key KEY`` checks the signature, then that the log still extends
the digest: the same hash at its position (a rewrite and reseal before it breaks
that), at least as long (a cut tail) and the same ledger (its event #1).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from ledger.adapters import signing
from ledger.domain.aggregates import contract_uuid, rejection_uuid, settlement_uuid, year_data_uuid
from ledger.domain.errors import LedgerError

GENESIS = "0" * 64
ALGORITHM = "sha256-chain-v1"
SIGNED_FIELDS = ("algorithm", "ledger_id", "position", "hash", "issued_at")
MAX_POSITION = 2**63 - 1  # a bigint notification id
MAX_DIGEST_BYTES = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ISSUED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class LogRow(NamedTuple):
    """One stored event as the log holds it: what the recorders' ``select_log`` returns, as tuples."""

    id: int
    originator_id: str  # the stream id's 32 hex digits
    originator_version: int
    topic: str
    state: bytes


def stream_text(originator_id: UUID | str) -> str:
    """A stream id as text, as the seals and the log's rows hold it (a UUID's 32 hex digits)."""
    if type(originator_id) is str:
        return originator_id
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def stream_hash(previous: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    h = hashlib.sha256(f"{previous}\n{stream_text(originator_id)}\n{version}\n{topic}\n".encode())
    h.update(
        state
        if isinstance(state, (bytes, bytearray, memoryview))
        else str(state).encode("utf-8", "surrogatepass")
    )
    return h.hexdigest()  # (a state an intruder rewrote as text still hashes: it is reported as altered)


def global_hash(previous: str, notification_id: int, stream: str) -> str:
    return hashlib.sha256(f"{previous}\n{notification_id}\n{stream}".encode()).hexdigest()


def seal_rows(
    events: Sequence[Any], ids: Sequence[int], last_global: str, last_of_stream: Any
) -> list[tuple[int, str, int, str, str]]:
    """Seal rows (notification id, stream id, version, stream hash, global hash) for a batch.

    ``last_of_stream(stream_id)`` returns the stream's latest stored stream hash (or None).
    """
    rows = []
    previous_by_stream: dict[str, str] = {}
    previous = last_global
    for event, nid in zip(events, ids, strict=True):  # one notification id per event
        oid = stream_text(event.originator_id)
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
    bound: int | None = None  # the walk covered notification ids up to this one (the log when it began)
    problem: dict[str, Any] | None = None
    digest_checked: dict[str, Any] | None = field(default=None)
    witness: list[dict[str, Any]] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "events_checked": self.checked,
            "position": self.position,
            "head_hash": self.head_hash,
            "first_broken_link": self.problem,
            "against_digest": self.digest_checked,
        }
        if self.witness is not None:
            out["witness"] = self.witness
        return out


def _upto(rows: list[Any], bound: int | None) -> list[Any]:
    """The page's rows at or below notification id ``bound`` (``None``: every row)."""
    if bound is None or not rows or not (type(rows[-1][0]) is int and rows[-1][0] > bound):
        return rows
    return [r for r in rows if not (type(r[0]) is int and r[0] > bound)]


def _pairs(
    app: Any, bound: int | None = None, page: int = 5000
) -> Iterator[tuple[Any | None, tuple[Any, ...] | None]]:
    """Events (the recorder's ``select_log`` rows) and seals merged by notification id (either side may
    be missing), a page of each at a time, up to notification id ``bound`` (``None``: to the end)."""
    recorder = app.recorder
    # no lower bound: a row an intruder stored with an id ≤ 0 is read (and reported) like any other
    events: list[Any] = _upto(recorder.select_log(None, page), bound)
    seals: list[tuple[Any, ...]] = _upto(recorder.select_seals(None, page), bound)
    i = j = 0
    while True:
        if i == len(events) and events:  # a page read: the next (an empty one ends that side)
            events, i = _upto(recorder.select_log(events[-1][0], page), bound), 0
        if j == len(seals) and seals:
            seals, j = _upto(recorder.select_seals(seals[-1][0], page), bound), 0
        if i == len(events) and j == len(seals):
            return
        if j == len(seals) or (i < len(events) and events[i][0] < seals[j][0]):
            yield events[i], None
            i += 1
        elif i == len(events) or seals[j][0] < events[i][0]:
            yield None, seals[j]
            j += 1
        else:
            yield events[i], seals[j]
            i += 1
            j += 1


_KINDS = {
    "Contract": "contract",
    "YearData": "year data",
    "Settlement": "settlement",
    "Rejection": "rejection",
    "AccessRefused": "access refusal",
}


class StreamNames:
    """Names a stream by what it is — the contract, year and kind — rather than by its hex id.

    Stream ids are name-based UUIDs (:mod:`ledger.domain.aggregates`), so a name is proved by recomputing the
    uuid5 from candidate contract ids and years; the candidates come from the first event of each
    stream seen so far. A stored state only suggests names (it may be the altered one): only
    recomputation decides, except for access refusals, whose ids are random (named by what they say).
    """

    def __init__(self, recorded: Callable[[str], tuple[str, str, int | None] | None] | None = None) -> None:
        self.recorded = (
            recorded  # last resort: what the read models recorded of a stream (kind, contract, year)
        )
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
            self.claimed[stream_text(event.originator_id).replace("-", "")] = (
                kind,
                cid if isinstance(cid, str) else None,
                year if isinstance(year, int) else None,
            )
        if kind == "rejection" and isinstance(state.get("key"), str):
            self.rejection_keys[stream_text(event.originator_id).replace("-", "")] = state["key"]

    def describe(self, oid: str) -> dict[str, Any]:

        oid = oid.replace("-", "").lower()
        if self.recorded is not None:  # the read models name the contract (e.g. its first event was altered)
            try:
                found = self.recorded(oid)
            except Exception:
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
        claim: tuple[str | None, str | None, int | None] = self.claimed.get(oid, (None, None, None))
        kind, claimed_cid = claim[0], claim[1]
        if key is not None and rejection_uuid(key).hex == oid:
            return {"stream_kind": "rejection", "contract_id": claimed_cid, "year": None}
        recorded = _recorded_kind(self.recorded, oid) if self.recorded is not None else None
        if recorded is not None:
            return {"stream_kind": recorded[0], "contract_id": recorded[1], "year": None}
        if kind == "access refusal":
            return {"stream_kind": kind, "contract_id": claimed_cid, "year": None}
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
    except Exception:
        return None
    if found and found[0] in ("rejection", "refusal"):
        return ("rejection" if found[0] == "rejection" else "access refusal"), found[1] or None
    return None


def verify(
    app: Any,
    against: dict[str, Any] | None = None,
    *,
    public_key: Any = None,
    witnessed: Sequence[dict[str, Any]] = (),
    names: StreamNames | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Recompute every seal from the stored events; stop at the first broken link.

    ``against`` (one digest) and ``witnessed`` (every digest a witness holds) are checked once the
    walk is done: each must be signed by ``public_key`` when one is given (else refused with its
    code, before anything is read) and the log must still extend it. ``progress(n)`` is told of
    every event checked (a progress bar's advance)."""
    digests = ([against] if against is not None else []) + list(witnessed)
    if public_key is not None:
        for one in digests:
            check_signature(one, public_key)
    previous = GENESIS
    streams: dict[str, tuple[str, int]] = {}
    names = names or StreamNames()
    # the walk covers the log as it stood when it began: what is appended meanwhile (each batch's
    # events and seals are committed together) is the next walk's, never a "removed" or "unsealed" here
    log_bound = getattr(app.recorder, "log_bound", None)
    bound = None if log_bound is None else (log_bound() or 0)  # 0: both tables empty
    checked = 0
    position = 0
    hashes_at: dict[int, str] = {}
    wanted = {int(d["position"]) for d in digests} | {1}

    def broken(
        kind: str, message: str, nid: int, stream: str | None = None, version: int | None = None
    ) -> Verification:
        named = names.describe(stream) if stream else {"stream_kind": None, "contract_id": None, "year": None}
        return Verification(
            False,
            checked,
            position,
            previous,
            bound,
            {
                "kind": kind,
                "notification_id": nid,
                "stream": stream,
                "version": version,
                **named,
                "message": message,
            },
        )

    for event, seal in _pairs(app, bound):
        if event is not None and not (type(event[0]) is int and event[0] > 0):
            return broken(
                "unsealed",
                f"event #{event[0]} ({names.text(event[1])}, version {event[2]}) has notification id "
                f"{event[0]}, which the ledger never gives (its ids start at 1): it was written behind "
                f"the ledger's back",
                event[0],
                event[1],
                event[2],
            )
        if event is None:
            assert seal is not None
            return broken(
                "removed",
                f"event #{seal[0]} ({names.text(seal[1])}, version {seal[2]}) has been "
                f"removed from the log; its seal remains",
                seal[0],
                seal[1],
                seal[2],
            )
        nid, oid, version, topic, state = event  # the stream id is text already (the recorder's select_log)
        if version == 1:
            names.see(LogRow._make(event))
        if seal is None:
            return broken(
                "unsealed",
                f"event #{nid} ({names.text(oid)}, version {version}) "
                f"has no seal: it was written behind the ledger's back",
                nid,
                oid,
                version,
            )
        last_hash, last_version = streams.get(oid, (GENESIS, 0))
        sh = stream_hash(last_hash, oid, version, topic, state)
        gh = global_hash(previous, nid, sh)
        # a seal whose hashes are the ones recomputed is well formed (they are hex digests): the full
        # check runs only when something differs, and a malformed seal is still reported as such first
        matches = sh == seal[3] and gh == seal[4] and type(seal[0]) is int and type(seal[2]) is int
        malformed = None if matches and type(seal[1]) is str else seal_problem(seal)
        if malformed:
            return broken(
                "malformed_seal",
                f"the seal of event #{nid} ({names.text(oid)}, version {version}) is malformed: {malformed}",
                nid,
                oid,
                version,
            )
        if version != last_version + 1:
            return broken(
                "stream_gap",
                f"{names.text(oid)} jumps from version {last_version} to "
                f"{version} at event #{nid}: an event was removed "
                f"or reordered",
                nid,
                oid,
                version,
            )
        if (seal[1], seal[2]) != (oid, version) or sh != seal[3]:
            return broken(
                "altered",
                f"event #{nid} ({names.text(oid)}, version {version}, "
                f"{topic.rpartition(':')[2]}) does not match its seal: its stored "
                f"content was altered, or events were swapped",
                nid,
                oid,
                version,
            )
        if gh != seal[4]:
            return broken(
                "chain",
                f"the log's chain breaks at event #{nid} ({names.text(oid)}, version "
                f"{version}): an earlier event was removed or the log was "
                f"reordered",
                nid,
                oid,
                version,
            )
        previous = gh
        streams[oid] = (sh, version)
        checked += 1
        if progress is not None:
            progress(1)
        position = nid
        if nid in wanted or checked == 1:
            hashes_at[nid] = gh
            if checked == 1:
                hashes_at[0] = gh  # the ledger's id is its first event's hash
    hidden = _uncovered_stream(app, streams, bound)
    if hidden is not None:
        oid, (rows, highest), sealed = hidden
        return broken(
            "unsealed",
            f"{names.text(oid)} holds {rows} stored event(s) up to version {highest}, but the sealed log "
            f"covers {sealed}: an event was stored outside the log, behind the ledger's back",
            position,
            oid,
            highest,
        )
    result = Verification(True, checked, position, previous, bound)
    checks = [check_digest(d, hashes_at, position) for d in digests]
    for check in checks:
        check["signature"] = "checked" if public_key is not None else "not checked (no public key given)"
    if against is not None:
        result.digest_checked = checks[0]
        result.ok = result.digest_checked["ok"]
    if witnessed:
        result.witness = checks[1:] if against is not None else checks
        result.ok = result.ok and all(c["ok"] for c in result.witness)
    return result


def _uncovered_stream(
    app: Any, walked: dict[str, tuple[str, int]], bound: int | None
) -> tuple[str, tuple[int, int], int] | None:
    """A stream whose stored rows (count, highest version: one GROUP BY) are not the versions 1…n the walk
    of the sealed log covered: (stream id, (rows, highest version), versions covered), or None."""
    stream_versions = getattr(app.recorder, "stream_versions", None)
    if stream_versions is None:
        return None
    covered = {oid.replace("-", "").lower(): v for oid, (_, v) in walked.items()}
    for oid, (rows, highest) in sorted(stream_versions(bound).items()):
        key = oid.replace("-", "").lower()
        sealed = covered.get(key, 0)
        if rows != sealed or highest != sealed:
            return key, (rows, highest), sealed
    return None


def seal_problem(seal: Sequence[Any]) -> str | None:
    """Why a stored seal row is not one the recorder writes (None when it is)."""
    nid, oid, version, sh, gh = seal
    if type(nid) is not int or type(version) is not int:
        return f"its notification id and version must be integers, not {type(nid).__name__} and {type(version).__name__}"
    if not isinstance(oid, str):
        return f"its stream id must be text, not {type(oid).__name__}"
    for name, value in (("stream hash", sh), ("global hash", gh)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            return f"its {name} is not 64 lowercase hex digits"
    return None


def ledger_id_of(head_hash_of_first: str) -> str:
    return head_hash_of_first[:32]


def check_digest(digest: dict[str, Any], hashes_at: dict[int, str], position: int) -> dict[str, Any]:
    """Whether the log (whose hashes at the wanted positions are ``hashes_at``) extends ``digest``."""
    want = int(digest["position"])
    found = hashes_at.get(want)
    out: dict[str, Any] = {"position": want, "hash": digest.get("hash"), "issued_at": digest.get("issued_at")}
    first = hashes_at.get(0)
    if want > position:
        out.update(
            ok=False,
            kind="truncated",
            message=f"the log ends at #{position}, before the digest's "
            f"position #{want}: events were removed from its end",
        )
    elif (
        "ledger_id" in digest
        and want > 0
        and first is not None
        and ledger_id_of(first) != digest["ledger_id"]
    ):
        out.update(
            ok=False,
            kind="other_ledger",
            message=f"the digest is of ledger {digest['ledger_id']}, this log is "
            f"{ledger_id_of(first)}: its first event was rewritten, "
            f"or the digest is another ledger's",
        )
    elif want == 0:
        out.update(ok=True, kind="extends", message=f"the digest is of the empty log (#0 → #{position})")
    elif found is None:
        out.update(
            ok=False, kind="removed", message=f"event #{want} named by the digest is no longer in the log"
        )
    elif found != digest.get("hash"):
        out.update(
            ok=False,
            kind="rewritten",
            message=f"the log at #{want} does not match the digest: history "
            f"before it was rewritten (and resealed)",
        )
    else:
        out.update(ok=True, kind="extends", message=f"the log extends the digest (#{want} → #{position})")
    return out


def signed_bytes(digest: dict[str, Any]) -> bytes:
    """What a digest's signature covers: its five fields as canonical JSON, after a domain label."""
    body = json.dumps({k: digest[k] for k in SIGNED_FIELDS}, sort_keys=True, separators=(",", ":"))
    return b"obc-ledger digest v1\n" + body.encode()


def check_signature(digest: dict[str, Any], public_key: Any) -> None:
    """Refuse (raise, with its own code) a digest that is not signed by ``public_key``."""

    signature = digest.get("signature")
    where = f"the digest of #{digest.get('position')} issued {digest.get('issued_at')}"
    if signature is None:
        raise LedgerError(
            f"{where} is not signed; with --public-key only a signed digest is accepted",
            code="digest_unsigned",
        )
    if "ledger_id" not in digest:
        raise LedgerError(f"{where} has no ledger_id; it cannot have been signed", code="digest_unsigned")
    if signature["key_id"] != signing.key_id(public_key):
        raise LedgerError(
            f"{where} was signed with key {signature['key_id']}, not with the given public key "
            f"({signing.key_id(public_key)})",
            code="digest_wrong_key",
        )
    if not signing.check(public_key, signature["value"], signed_bytes(digest)):
        raise LedgerError(
            f"{where}: its signature does not match its content (altered or forged)",
            code="digest_signature_invalid",
        )


def check_head(app: Any, witnessed: Sequence[tuple[str, Any]] = (), progress: Any = None) -> Verification:
    """Refuse (``log_broken``) a log whose seal chain does not verify (the check ``verify --seals-only``
    makes), that no longer extends a witness's latest digest (``(name, digest)`` pairs), or whose seal
    table claims a head other than the verified one: a digest states that head, so it is checked first.
    The verification, for :func:`digest` to state the head it verified (not one appended since)."""
    result = verify(app, witnessed=[d for _, d in witnessed], progress=progress)
    if result.problem:
        raise LedgerError(
            f"no digest issued: the log is broken: {result.problem['message']} (run `obc-ledger verify`)",
            code="malformed_seal" if result.problem["kind"] == "malformed_seal" else "log_broken",
        )
    for (name, _), check in zip(witnessed, result.witness or [], strict=False):
        if not check["ok"]:
            raise LedgerError(
                f"no digest issued: witness {name}: {check['message']} (run `obc-ledger verify`)",
                code="log_broken",
            )
    head = app.recorder.last_seal(result.bound)
    if (head[0] if head else 0, head[1] if head else GENESIS) != (result.position, result.head_hash):
        raise LedgerError(
            f"no digest issued: the seal table's head (#{head[0] if head else 0}) is not the verified "
            f"log's (#{result.position}); run `obc-ledger verify`",
            code="log_broken",
        )
    return result


def digest(app: Any, signer: Any = None, verified: Verification | None = None) -> dict[str, Any]:
    """A checkpoint of the log: ledger id, position, chain head and time, signed when ``signer`` is given;
    of the head ``verified`` reached when given (:func:`check_head`'s), else of the seal table's last."""
    if verified is not None:
        head = (verified.position, verified.head_hash) if verified.position else None
    else:
        head = app.recorder.last_seal()
    first = app.recorder.select_seals(0, 1)
    seals: tuple[tuple[str, Any], ...] = (
        ("last", (head[0], "", 0, GENESIS, head[1]) if head else None),
        ("first", first[0] if first else None),
    )
    for where, row in seals:
        problem = seal_problem(row) if row is not None else None
        if problem and row is not None:
            raise LedgerError(
                f"the log's {where} seal (#{row[0]}) is malformed: {problem}; run `obc-ledger verify`",
                code="malformed_seal",
            )
    out: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "ledger_id": ledger_id_of(first[0][4] if first else GENESIS),
        "position": head[0] if head else 0,
        "hash": head[1] if head else GENESIS,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if signer is not None:
        out["signature"] = {
            "algorithm": signing.ALG,
            "key_id": signer.key_id,
            "value": signing.signature_text(signer.sign(signed_bytes(out))),
        }
    return out


def _invalid(message: str) -> LedgerError:
    return LedgerError(f"the digest {message}", code="invalid_digest")


def parse_digest(value: Any) -> dict[str, Any]:
    """A digest's fields checked for shape (not yet for its signature): one error naming the field."""
    if not isinstance(value, dict):
        raise _invalid(f"must be a JSON object, not {type(value).__name__}")
    for name in ("algorithm", "position", "hash"):
        if name not in value:
            raise _invalid(f"has no {name!r} field")
    if value["algorithm"] != ALGORITHM:
        raise LedgerError(
            f"the digest's algorithm {str(value['algorithm'])[:40]!r} is not {ALGORITHM!r}",
            code="digest_algorithm_unknown",
        )
    position = value["position"]
    if type(position) is not int:
        raise _invalid(f"position must be an integer, not {type(position).__name__}")
    if not 0 <= position <= MAX_POSITION:
        raise _invalid(f"position must be between 0 and {MAX_POSITION}")
    for name, pattern in (("hash", _HEX64), ("issued_at", _ISSUED)):
        if name in value and not (isinstance(value[name], str) and pattern.fullmatch(value[name])):
            raise _invalid(
                f"{name} is not "
                + ("64 lowercase hex digits" if name == "hash" else "a UTC time like 2026-01-31T12:00:00Z")
            )
    if "ledger_id" in value and not (
        isinstance(value["ledger_id"], str) and re.fullmatch(r"[0-9a-f]{32}", value["ledger_id"])
    ):
        raise _invalid("ledger_id is not 32 lowercase hex digits")
    if "signature" in value:
        signature = value["signature"]
        if not (
            isinstance(signature, dict)
            and signature.get("algorithm") == "ed25519"
            and isinstance(signature.get("key_id"), str)
            and isinstance(signature.get("value"), str)
            and len(signature["value"]) <= 128
            and len(signature["key_id"]) <= 64
        ):
            raise _invalid('signature must be {"algorithm": "ed25519", "key_id": …, "value": base64}')
        if "issued_at" not in value or "ledger_id" not in value:
            raise _invalid("is signed but lacks issued_at or ledger_id")
    return value


def load_digest(text: str) -> dict[str, Any]:
    """A digest from its JSON text or from a file holding it."""
    candidate = text
    if text.lstrip()[:1] not in ("{", "[", '"'):
        try:
            with open(text, encoding="utf-8") as handle:
                candidate = handle.read(MAX_DIGEST_BYTES + 1)
        except OSError as exc:
            raise LedgerError(f"cannot read digest {text}: {exc.strerror}", code="file_not_found") from None
        except UnicodeDecodeError:
            raise _invalid("file is not UTF-8 text") from None
    if len(candidate) > MAX_DIGEST_BYTES:
        raise _invalid(f"is longer than {MAX_DIGEST_BYTES:,} characters; a digest is a few hundred")
    try:
        value = json.loads(candidate)
    except (ValueError, RecursionError):
        raise _invalid("must be the JSON printed by `obc-ledger digest`") from None
    return parse_digest(value)
