"""Ed25519 keys for what the ledger's operator must not be able to forge: digests and decisions.

The private key signs; it never lives in the ledger's database nor, by default, in a
worker's environment. It is a file on the auditor's (or commissioner's) machine, made
by ``obc-ledger keys generate`` with mode 0600; a KMS or HSM fits behind :class:`Signer`
(anything with ``key_id`` and ``sign(bytes) -> bytes``). The public key is what
``verify --public-key`` and a consumer of decisions check with.

``key_id`` is the first 16 hex digits of sha256 over the raw 32-byte public key: a
digest names the key it was signed with, so a signature by another key is told apart
from an altered digest.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.domain.errors import LedgerError

PRIVATE_NAME = "ledger-signing.key"
PUBLIC_NAME = "ledger-signing.pub"
MAX_KEY_BYTES = 16 * 1024
ALG = "ed25519"


class Signer(Protocol):
    key_id: str

    def sign(self, data: bytes) -> bytes: ...


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class FileSigner:
    """A private key read from a PEM file (PKCS#8, unencrypted)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def _read(path: str | Path, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise LedgerError(f"cannot read {what} {path}: {exc.strerror}", code="key_unreadable") from None
    if len(data) > MAX_KEY_BYTES:
        raise LedgerError(
            f"{what} {path} is larger than {MAX_KEY_BYTES:,} bytes; a key is far smaller", code="invalid_key"
        )
    return data


def load_signer(path: str | Path) -> FileSigner:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise LedgerError(
            f"{path} is not an unencrypted PEM private key (made by `obc-ledger keys generate`)",
            code="invalid_key",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"{path} is not an Ed25519 private key", code="invalid_key")
    return FileSigner(key)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise LedgerError(
            f"{path} is not a PEM public key (made by `obc-ledger keys generate`)", code="invalid_key"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError(f"{path} is not an Ed25519 public key", code="invalid_key")
    return key


def generate(out: str | Path) -> tuple[Path, Path]:
    """A new key pair in directory ``out``: the private key mode 0600, the public key beside it.
    An existing private key is never overwritten."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LedgerError(
            f"{private_path} exists; a signing key is never overwritten", code="already_exists"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(private_path, 0o600)  # whatever the umask
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def signature_text(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def check(public: Ed25519PublicKey, signature: str | bytes, data: bytes) -> bool:
    """Whether ``signature`` (raw bytes or base64 text) is ``public``'s over ``data``."""
    try:
        raw = signature if isinstance(signature, bytes) else base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        return False
    if len(raw) != 64:
        return False
    try:
        public.verify(raw, data)
    except InvalidSignature:
        return False
    return True
