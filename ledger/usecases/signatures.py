"""Signed provider submissions: provider keys, the check every ingested record passes, the proof.

* :class:`ProviderKeys` — the commissioner registers (``add``) and revokes a provider party's
  Ed25519 public key for a contract, and requires (or stops requiring) signed records; each is
  an event on the contract's stream. Anyone who may read the contract lists the keys.
* :func:`check_signatures` — the one check, applied by :class:`ledger.usecases.ingest.IngestSession`
  to every record (file ingest, ``ingest --check``, HTTP upload, Kafka consume): a record's
  ``signature`` field (``"<key_id>:<base64>"``, ledger.domain.signatures) is verified over the
  record's canonical bytes with the contract's registered key. Refusals: ``unsigned_record``
  (the contract requires signatures and there is none), ``bad_signature`` (malformed, unknown
  or revoked key, or not verifying), ``provider_mismatch`` (a verifying signature by a key of a
  party other than the record's ``provider_id``). A contract that does not require signatures
  accepts unsigned records as before; a signature present is verified all the same.
* :meth:`ProviderKeys.proofs` — an auditor's later proof from the stored events alone: each
  ``RecordSigned`` event's canonical bytes hash to the accepted record's digest, its signature
  verifies with the key the contract's stream registered for that party, and the key was
  registered (and not revoked) when the record was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.adapters.signing import check as verify_signature
from ledger.adapters.signing import key_id as key_id_of
from ledger.domain.aggregates import Contract, YearData, contract_uuid, year_data_uuid
from ledger.domain.errors import AlreadyExists, InvalidCommand, NotFound
from ledger.domain.ids import check_note
from ledger.domain.records import Record, canonical_text, refuse
from ledger.domain.signatures import (
    CONTENT_FIELDS,
    MAX_SIGNATURE_TEXT,
    SIGNATURE_FIELD,
    Signed,
    canonical_bytes,
    content_digest,
    parse_signature,
)
from ledger.usecases.access import Access

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger

ACCEPTED_EVENTS = {
    "SubmissionAccepted": ("submission", "submission_id"),
    "CostReported": ("cost_report", "report_id"),
    "PopulationCounted": ("population", "record_id"),
    "OutcomeClaimed": ("outcome_claim", "claim_id"),
    "PromEpisodeRecorded": ("prom_episode", "episode_id"),
}


@dataclass(frozen=True)
class KeyRing:
    """A contract's provider keys and whether it requires signed records."""

    required: bool
    keys: Mapping[str, dict[str, Any]]  # key id -> {party, public_key, added_at, revoked_at}

    @classmethod
    def of(cls, contract: Contract) -> KeyRing:
        return cls(
            bool(getattr(contract, "signatures_required", False)), dict(contract.provider_keys_state())
        )


_public_keys: dict[str, Ed25519PublicKey] = {}


def public_key(pem: str) -> Ed25519PublicKey:
    key = _public_keys.get(pem)
    if key is None:
        loaded = serialization.load_pem_public_key(pem.encode("ascii"))
        assert isinstance(loaded, Ed25519PublicKey)  # checked when registered
        key = _public_keys[pem] = loaded
    return key


def check_signatures(record: Record, fields: Mapping[str, Any], ring: KeyRing) -> Signed | None:
    """The verified signature of ``record`` (whose raw fields are ``fields``), None when it is
    unsigned and may be; raises :class:`ledger.domain.records.RecordRefused` with
    ``unsigned_record``, ``bad_signature`` or ``provider_mismatch``."""
    value = fields.get(SIGNATURE_FIELD)
    if value is None or value == "":
        if ring.required:
            raise refuse(
                "unsigned_record",
                SIGNATURE_FIELD,
                f"contract {record.contract_id!r} requires records signed with a registered provider key",
            )
        return None
    key_id, signature = parse_signature(value)
    key = ring.keys.get(key_id)
    if key is None:
        raise refuse(
            "bad_signature",
            SIGNATURE_FIELD,
            f"signed with key {key_id}, which is not registered for contract {record.contract_id!r}",
        )
    if key["revoked_at"] is not None:
        raise refuse(
            "bad_signature", SIGNATURE_FIELD, f"signed with key {key_id}, revoked on {key['revoked_at']}"
        )
    data = canonical_bytes(record)
    if not verify_signature(public_key(key["public_key"]), signature, data):
        raise refuse(
            "bad_signature",
            SIGNATURE_FIELD,
            f"does not verify with key {key_id} ({key['party']}) over the record's canonical bytes: "
            f"the record was altered after signing, or signed with another key",
        )
    provider = getattr(record, "provider_id", None)
    if provider is not None and provider != key["party"]:
        raise refuse(
            "provider_mismatch",
            "provider_id",
            f"the record is {provider}'s but signed with key {key_id}, registered for {key['party']}",
        )
    return Signed(key_id, key["party"], signature.strip(), data.decode("utf-8"))


class SignatureCheck:
    """:func:`check_signatures` for an ingest session: each contract's key ring, re-read when the
    contract's stream has moved on (a key added or revoked while a consumer runs), at most once a batch."""

    def __init__(self, app: Ledger) -> None:
        self.app = app
        self._rings: dict[str, tuple[int, KeyRing]] = {}
        self._fresh: set[str] = set()

    def new_batch(self) -> None:
        self._fresh.clear()

    def ring(self, contract: Contract) -> KeyRing:
        cid = contract.contract_id
        held = self._rings.get(cid)
        if held is None or held[0] < contract.version:
            held = self._rings[cid] = (contract.version, KeyRing.of(contract))
            self._fresh.add(cid)
        elif cid not in self._fresh:
            newer = self.app.recorder.select_events(contract.id, gt=held[0], limit=1)
            if newer:
                latest: Contract = self.app.repository.get(contract.id)
                held = self._rings[cid] = (latest.version, KeyRing.of(latest))
            self._fresh.add(cid)
        return held[1]

    def check(self, record: Record, fields: Mapping[str, Any], contract: Contract) -> Signed | None:
        return check_signatures(record, fields, self.ring(contract))


def read_public_key(data: bytes) -> tuple[str, str]:
    """(key id, PEM text) of an Ed25519 public key in PEM; raises InvalidCommand."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidCommand(
            "not a PEM public key (made by `obc-ledger keys generate`)", code="invalid_key"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidCommand("not an Ed25519 public key", code="invalid_key")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_id_of(key), pem.decode("ascii")


class ProviderKeys:
    """The commissioner's provider keys of a contract, and the auditor's proof of signed records."""

    def __init__(self, app: Ledger) -> None:
        self.app = app

    def add(self, contract_id: str, party: str, public_pem: bytes, actor: str = "system") -> dict[str, Any]:
        key_id, pem = read_public_key(public_pem)

        def attempt() -> dict[str, Any]:
            contract, definition = self.app.load_contract(contract_id)
            Access(self.app).authorize(actor, "register_provider_key", definition)
            if party not in definition.providers_ever:
                raise NotFound(
                    f"{party!r} is not a provider party to {contract_id!r} "
                    f"(parties: {', '.join(definition.providers_ever)})",
                    code="provider_not_party",
                )
            held = contract.provider_keys_state().get(key_id)
            if held is not None:
                if held["party"] == party and held["revoked_at"] is None:
                    return self._row(key_id, held) | {"added": False}
                raise AlreadyExists(
                    f"key {key_id} is already registered for {held['party']} on {contract_id!r}"
                    + (" (revoked: a revoked key is never reinstated)" if held["revoked_at"] else "")
                )
            contract.add_provider_key(party=party, key_id=key_id, public_key=pem, actor=actor)
            self.app.save(contract)
            return self._row(key_id, contract.provider_keys_state()[key_id]) | {"added": True}

        return self.app._retrying(attempt)

    def revoke(self, contract_id: str, key_id: str, reason: str, actor: str = "system") -> dict[str, Any]:
        check_note(reason, "reason")

        def attempt() -> dict[str, Any]:
            contract, definition = self.app.load_contract(contract_id)
            Access(self.app).authorize(actor, "revoke_provider_key", definition)
            held = contract.provider_keys_state().get(key_id)
            if held is None:
                raise NotFound(f"no key {key_id!r} is registered for {contract_id!r}", code="unknown_key")
            if held["revoked_at"] is None:
                contract.revoke_provider_key(key_id=key_id, reason=reason, actor=actor)
                self.app.save(contract)
            return self._row(key_id, contract.provider_keys_state()[key_id])

        return self.app._retrying(attempt)

    def require(self, contract_id: str, required: bool, actor: str = "system") -> bool:
        def attempt() -> bool:
            contract, definition = self.app.load_contract(contract_id)
            Access(self.app).authorize(actor, "require_signatures", definition)
            if bool(getattr(contract, "signatures_required", False)) != required:
                contract.require_signatures(required=required, actor=actor)
                self.app.save(contract)
            return required

        return self.app._retrying(attempt)

    def list(self, contract_id: str) -> dict[str, Any]:
        contract, _ = self.app.load_contract(contract_id)
        ring = KeyRing.of(contract)
        return {
            "contract_id": contract_id,
            "require_signatures": ring.required,
            "keys": [self._row(k, v) for k, v in sorted(ring.keys.items(), key=lambda kv: kv[1]["added_at"])],
        }

    @staticmethod
    def _row(key_id: str, key: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "key_id": key_id,
            "party": key["party"],
            "added_at": key["added_at"],
            "revoked_at": key["revoked_at"],
            "public_key": key["public_key"],
        }

    # -- the auditor's proof --------------------------------------------------

    def proofs(
        self, contract_id: str, year: int | None = None, record_id: str | None = None
    ) -> dict[str, Any]:
        """Every signed record of the contract, re-verified from the stored events alone."""
        contract, definition = self.app.load_contract(contract_id)
        keys = self._key_history(contract)
        years = (
            [year] if year is not None else list(range(1, definition.calendar(contract.extended).years + 1))
        )
        rows: list[dict[str, Any]] = []
        unsigned = 0
        for y in years:
            last: dict[tuple[str, str], Any] = {}  # the latest accepted event of each record id
            held: list[tuple[str, str, str]] = []  # (type, id, digest) of each accepted event
            signed: set[tuple[str, str, str]] = set()
            for event in self.app.events.get(year_data_uuid(contract_id, y)):
                name = type(event).__name__
                if name in ACCEPTED_EVENTS:
                    kind, id_field = ACCEPTED_EVENTS[name]
                    rid = getattr(event, id_field)
                    if record_id is None or rid == record_id:
                        last[(kind, rid)] = event
                        held.append((kind, rid, getattr(event, "digest")))  # noqa: B009
                elif isinstance(event, YearData.RecordSigned):
                    if record_id is not None and event.record_id != record_id:
                        continue
                    signed.add((event.record_type, event.record_id, event.digest))
                    accepted = last.get((event.record_type, event.record_id))
                    rows.append(self._proof(contract_id, y, event, accepted, keys))
            unsigned += sum(1 for h in held if h not in signed)
        return {
            "contract_id": contract_id,
            "require_signatures": bool(getattr(contract, "signatures_required", False)),
            "signed": len(rows),
            "verified": sum(1 for r in rows if r["verified"]),
            "failed": sum(1 for r in rows if not r["verified"]),
            "unsigned_accepted": unsigned,
            "records": rows,
        }

    def _key_history(self, contract: Contract) -> dict[str, dict[str, Any]]:
        """key id -> {party, public_key, added (datetime), revoked (datetime or None)} from the events."""
        keys: dict[str, dict[str, Any]] = {}
        for event in self.app.events.get(contract_uuid(contract.contract_id)):
            if isinstance(event, Contract.ProviderKeyAdded):
                keys[event.key_id] = {
                    "party": event.party,
                    "public_key": event.public_key,
                    "added": event.timestamp,
                    "revoked": None,
                }
            elif isinstance(event, Contract.ProviderKeyRevoked) and event.key_id in keys:
                keys[event.key_id]["revoked"] = event.timestamp
        return keys

    @staticmethod
    def _proof(
        contract_id: str, year: int, signed: Any, accepted: Any, keys: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        problems = []
        data = signed.canonical.encode("utf-8")
        if accepted is None or accepted.digest != signed.digest:
            problems.append("no accepted record with this digest precedes the signature")
        if content_digest(data) != signed.digest:
            problems.append("the signed bytes do not hash to the accepted record's digest")
        if (
            accepted is not None
            and _event_canonical(signed.record_type, accepted, contract_id, year) != signed.canonical
        ):
            problems.append("the accepted record's figures are not the signed ones")
        key = keys.get(signed.key_id)
        if key is None:
            problems.append(f"key {signed.key_id} was never registered for {contract_id}")
        else:
            if key["party"] != signed.party:
                problems.append(f"key {signed.key_id} is {key['party']}'s, not {signed.party}'s")
            if key["added"] > signed.timestamp:
                problems.append("the key was registered after the record was accepted")
            if key["revoked"] is not None and key["revoked"] <= signed.timestamp:
                problems.append("the key was revoked before the record was accepted")
            if not verify_signature(public_key(key["public_key"]), signed.signature, data):
                problems.append("the signature does not verify over the signed bytes")
        provider = getattr(accepted, "provider_id", None) if accepted is not None else None
        if provider is not None and provider != signed.party:
            problems.append(f"the record is {provider}'s, signed as {signed.party}")
        return {
            "year": year,
            "record_type": signed.record_type,
            "record_id": signed.record_id,
            "provider_id": provider,
            "digest": signed.digest,
            "key_id": signed.key_id,
            "party": signed.party,
            "accepted_at": signed.timestamp.isoformat(),
            "signature": signed.signature,
            "canonical": signed.canonical,
            "verified": not problems,
            "problems": problems,
        }


def _event_canonical(kind: str, event: Any, contract_id: str, year: int) -> str:
    """The canonical text of the record an accepted event holds (ledger.domain.signatures)."""
    content: dict[str, Any] = {}
    for name in CONTENT_FIELDS[kind]:
        if name == "contract_id":
            content[name] = contract_id
        elif name == "year":
            content[name] = year
        else:
            content[name] = getattr(event, name, None)
    return canonical_text(kind, content)


def signature_header(value: bytes | None) -> str | None:
    """A Kafka ``obc-signature`` header's value as text (None when absent; bytes that are not
    ASCII become text that fails as ``bad_signature``)."""
    if value is None:
        return None
    return value[: MAX_SIGNATURE_TEXT + 1].decode("ascii", errors="replace")  # longer fails anyway
