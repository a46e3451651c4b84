"""Ed25519 signing of digests and the digest grammar, without a database."""

import json

import pytest

from ledger.adapters.audit import ALGORITHM, check_signature, parse_digest, signed_bytes
from ledger.adapters.signing import check, generate, key_id, load_public_key, load_signer, signature_text
from ledger.adapters.witness import order_problem
from ledger.domain.errors import LedgerError


def _digest(signer, **fields):
    value = {
        "algorithm": ALGORITHM,
        "ledger_id": "a" * 32,
        "position": 41,
        "hash": "b" * 64,
        "issued_at": "2026-12-01T20:00:00Z",
        **fields,
    }
    value["signature"] = {
        "algorithm": "ed25519",
        "key_id": signer.key_id,
        "value": signature_text(signer.sign(signed_bytes(value))),
    }
    return value


def test_a_signature_covers_every_signed_field_and_nothing_else(tmp_path):
    private, public = generate(tmp_path)
    signer, pub = load_signer(private), load_public_key(public)
    digest = _digest(signer)
    check_signature(digest, pub)
    check_signature(dict(digest, note="unsigned extra fields do not matter"), pub)
    for field, value in (
        ("position", 42),
        ("hash", "c" * 64),
        ("issued_at", "2026-12-01T20:00:01Z"),
        ("ledger_id", "d" * 32),
    ):
        with pytest.raises(LedgerError) as caught:
            check_signature(dict(digest, **{field: value}), pub)
        assert caught.value.code == "digest_signature_invalid"


def test_signed_bytes_are_canonical_whatever_the_key_order():
    a = {"algorithm": ALGORITHM, "ledger_id": "a" * 32, "position": 1, "hash": "b" * 64, "issued_at": "x"}
    b = dict(reversed(list(a.items())))
    assert signed_bytes(a) == signed_bytes(b)
    assert json.loads(signed_bytes(a).split(b"\n", 1)[1]) == a


def test_a_garbled_signature_value_is_refused_not_raised(tmp_path):
    _, public = generate(tmp_path)
    pub = load_public_key(public)
    assert not check(pub, "not base64!", b"x")
    assert not check(pub, "AAAA", b"x")  # valid base64, wrong length
    assert key_id(pub) == key_id(load_public_key(public))


def test_a_key_file_of_the_wrong_kind_is_an_error_with_a_code(tmp_path):
    private, public = generate(tmp_path)
    for loader, path in ((load_signer, public), (load_public_key, private)):
        with pytest.raises(LedgerError) as caught:
            loader(path)
        assert caught.value.code == "invalid_key"
    with pytest.raises(LedgerError) as caught:
        load_signer(tmp_path / "missing.key")
    assert caught.value.code == "key_unreadable"


@pytest.mark.parametrize(
    "value",
    [
        None,
        3,
        "x",
        [],
        {"algorithm": ALGORITHM},
        {"algorithm": ALGORITHM, "position": 2**63, "hash": "b" * 64},
        {"algorithm": ALGORITHM, "position": 1, "hash": "B" * 64},
        {"algorithm": ALGORITHM, "position": 1, "hash": "b" * 64, "ledger_id": 5},
        {
            "algorithm": ALGORITHM,
            "position": 1,
            "hash": "b" * 64,
            "signature": {"algorithm": "ed25519", "key_id": "k", "value": "v"},
        },
    ],
)
def test_malformed_digests_are_refused_with_invalid_digest(value):
    with pytest.raises(LedgerError) as caught:
        parse_digest(value)
    assert caught.value.code == "invalid_digest"


def test_a_witness_digest_issued_later_at_a_lower_position_is_named():
    digests = [
        ("a.json", {"position": 10, "issued_at": "1"}),
        ("b.json", {"position": 20, "issued_at": "2"}),
        ("c.json", {"position": 15, "issued_at": "3"}),
    ]
    problem = order_problem(digests)
    assert problem["file"] == "c.json" and problem["kind"] == "reordered"
    assert order_problem(digests[:2]) is None
