"""Signed provider submissions through the CLI: keys, a contract requiring signatures, the proof."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3

import pytest
from cryptography.hazmat.primitives import serialization

from ledger.domain.aggregates import YearData, year_data_uuid
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

DATA = (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()


@pytest.fixture
def signing(cli, tmp_path):
    """The worked example with circle's and physio's keys registered and signatures required."""
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    for party in ("circle", "physio"):
        cli.ok("keys", "generate", "--out", tmp_path / party)
    refused = cli(
        "provider",
        "key",
        "add",
        "beds-msk",
        "circle",
        tmp_path / "circle" / "ledger-signing.pub",
        "--as",
        "provider:circle",
    )
    assert refused.code == 1 and "not_authorized" in refused.err
    for party in ("circle", "physio"):
        cli.ok(
            "provider",
            "key",
            "add",
            "beds-msk",
            party,
            tmp_path / party / "ledger-signing.pub",
            "--as",
            "commissioner:bccg",
        )
    assert cli("provider", "require-signatures", "beds-msk", "--as", "provider:circle").code == 1
    cli.ok("provider", "require-signatures", "beds-msk", "--as", "commissioner:bccg")
    return tmp_path


def _sign(cli, tmp_path, lines, party, name):
    plain = tmp_path / f"{name}.jsonl"
    plain.write_text("\n".join(lines) + "\n")
    out = tmp_path / f"{name}.signed.jsonl"
    cli.ok("provider", "sign", plain, "--sign-key", tmp_path / party / "ledger-signing.key", "--out", out)
    return out.read_text().splitlines()


def _ingest(cli, tmp_path, lines, name):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return cli("ingest", path, "--json")


def test_keys_are_listed_with_their_party_and_the_requirement(cli, signing):
    listed = cli.ok("provider", "key", "list", "beds-msk", "--json", "--as", "auditor").json()
    assert listed["require_signatures"] is True
    assert [k["party"] for k in listed["keys"]] == ["circle", "physio"]
    assert all(len(k["key_id"]) == 16 and k["revoked_at"] is None for k in listed["keys"])
    assert cli("provider", "key", "list", "beds-msk", "--as", "provider:stranger").code == 1


def test_good_unsigned_tampered_and_other_partys_records_on_a_contract_requiring_signatures(cli, signing):
    tmp = signing
    circle = [line for line in DATA if '"provider_id": "circle"' in line]
    physio = [line for line in DATA if '"provider_id": "physio"' in line]
    good = _sign(cli, tmp, circle, "circle", "circle") + _sign(cli, tmp, physio, "physio", "physio")
    report = _ingest(cli, tmp, good, "good")
    assert report.code == 0, report.err
    assert report.json()["rejected"] == 0 and report.json()["accepted"] == len(DATA) - 1  # one duplicate line

    fresh = [line.replace('"s-0001"', '"s-7001"').replace('"c-0001"', '"c-7001"') for line in circle[:1]]
    signed = _sign(cli, tmp, fresh, "circle", "fresh")[0]
    tampered = signed.replace('"300"', '"301"', 1)  # one byte of the figures changed after signing
    assert tampered != signed
    other = _sign(cli, tmp, [fresh[0].replace("s-7001", "s-7002")], "physio", "forged")[
        0
    ]  # physio signs circle's
    unsigned = fresh[0].replace("s-7001", "s-7003")
    result = _ingest(cli, tmp, [tampered, other, unsigned, signed], "mixed")
    assert result.code == 3
    assert result.json()["accepted"] == 1
    assert result.json()["rejected_by_reason"] == {
        "bad_signature": 1,
        "provider_mismatch": 1,
        "unsigned_record": 1,
    }
    rejected = {r["record_id"]: r for r in cli.ok("rejected", "list", "--json").json()}
    assert rejected["s-7001"]["code"] == "bad_signature" and rejected["s-7001"]["field"] == "signature"
    assert rejected["s-7002"]["code"] == "provider_mismatch"
    assert rejected["s-7003"]["code"] == "unsigned_record"
    assert '"signature"' in rejected["s-7001"]["raw"], "the refused record is kept with its signature"

    check = cli("ingest", tmp / "mixed.jsonl", "--check", "--json")  # the dry run judges the same way
    assert check.code == 3


def test_an_auditor_proves_from_the_stored_events_who_sent_a_record(cli, signing, sqlite_url):
    tmp = signing
    circle = [line for line in DATA if '"provider_id": "circle"' in line][:3]
    assert _ingest(cli, tmp, _sign(cli, tmp, circle, "circle", "c"), "c").code == 0

    proof = cli.ok("provider", "signatures", "beds-msk", "--json", "--as", "auditor").json()
    assert (proof["signed"], proof["verified"], proof["failed"]) == (3, 3, 0)
    row = next(r for r in proof["records"] if r["record_id"] == "s-0001")
    assert row["party"] == "circle" and row["provider_id"] == "circle"

    # the auditor's own check, with nothing but the stored events and the provider's public key file
    app = Ledger.from_url(sqlite_url)
    events = list(app.events.get(year_data_uuid("beds-msk", 1)))
    signed = next(e for e in events if isinstance(e, YearData.RecordSigned) and e.record_id == "s-0001")
    accepted = next(
        e for e in events if type(e).__name__ == "SubmissionAccepted" and e.submission_id == "s-0001"
    )
    assert hashlib.sha256(signed.canonical.encode()).hexdigest()[:32] == accepted.digest == signed.digest
    public = serialization.load_pem_public_key((tmp / "circle" / "ledger-signing.pub").read_bytes())
    public.verify(base64.b64decode(signed.signature), signed.canonical.encode())  # raises if forged
    kind, content = json.loads(signed.canonical)
    assert kind == "submission" and content["numerator"] == "300" and content["provider_id"] == "circle"

    # an insider who edits the accepted figures in the database cannot keep the proof
    conn = sqlite3.connect(sqlite_url[len("sqlite:///") :])
    rows = conn.execute(
        "SELECT rowid, state FROM stored_events WHERE topic LIKE '%SubmissionAccepted'"
    ).fetchall()
    rowid, state = next((r, bytes(s)) for r, s in rows if b'"s-0001"' in bytes(s))
    assert b'"300"' in state
    conn.execute(
        "UPDATE stored_events SET state = ? WHERE rowid = ?", (state.replace(b'"300"', b'"301"'), rowid)
    )
    conn.commit()
    conn.close()
    broken = cli("provider", "signatures", "beds-msk", "--record", "s-0001", "--json")
    assert broken.code == 1
    assert broken.json()["records"][0]["problems"] == [
        "the accepted record's figures are not the signed ones"
    ]


def test_a_revoked_key_signs_nothing_more_but_what_it_signed_before_stays_proven(cli, signing):
    tmp = signing
    circle = [line for line in DATA if '"provider_id": "circle"' in line]
    assert _ingest(cli, tmp, _sign(cli, tmp, circle[:1], "circle", "a"), "a").code == 0
    key_id = cli.ok("provider", "key", "list", "beds-msk", "--json").json()["keys"][0]["key_id"]
    cli.ok(
        "provider",
        "key",
        "revoke",
        "beds-msk",
        key_id,
        "--reason",
        "laptop lost",
        "--as",
        "commissioner:bccg",
    )
    late = _ingest(cli, tmp, _sign(cli, tmp, circle[1:2], "circle", "b"), "b")
    assert late.code == 3 and late.json()["rejected_by_reason"] == {"bad_signature": 1}
    proof = cli.ok("provider", "signatures", "beds-msk", "--json").json()
    assert (proof["signed"], proof["verified"]) == (1, 1)


def test_a_contract_not_requiring_signatures_accepts_unsigned_records_and_keeps_a_present_signature(
    cli, tmp_path
):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("keys", "generate", "--out", tmp_path / "circle")
    cli.ok("provider", "key", "add", "beds-msk", "circle", tmp_path / "circle" / "ledger-signing.pub")
    signed = _sign(cli, tmp_path, DATA[:1], "circle", "one")
    result = _ingest(cli, tmp_path, signed + DATA[1:2], "mixed")
    assert result.code == 0 and result.json()["accepted"] == 2
    proof = cli.ok("provider", "signatures", "beds-msk", "--json").json()
    assert (proof["signed"], proof["verified"], proof["unsigned_accepted"]) == (1, 1, 1)
    bad = _ingest(cli, tmp_path, [signed[0].replace("s-0001", "s-0901")], "bad")
    assert bad.code == 3 and bad.json()["rejected_by_reason"] == {"bad_signature": 1}


def test_a_csv_upload_carries_each_rows_signature_in_a_signature_column(cli, signing):
    tmp = signing
    line = next(line for line in DATA if '"provider_id": "circle"' in line)
    record = json.loads(_sign(cli, tmp, [line], "circle", "row")[0])
    columns = list(record)
    forged = {**record, "submission_id": "s-8001"}
    csv = tmp / "upload.csv"
    csv.write_text(
        ",".join(columns)
        + "\n"
        + "\n".join(",".join(str(r[c]) for c in columns) for r in (record, forged))
        + "\n"
    )
    result = cli("ingest", csv, "--json")
    assert result.code == 3, result.err
    assert result.json()["accepted"] == 1 and result.json()["rejected_by_reason"] == {"bad_signature": 1}


def test_provider_sign_fills_a_csv_uploads_signature_column(cli, signing):
    tmp = signing
    rows = [json.loads(line) for line in DATA if '"provider_id": "circle"' in line and "submission" in line][
        :3
    ]
    columns = [
        "type",
        "submission_id",
        "contract_id",
        "provider_id",
        "indicator_id",
        "period",
        "numerator",
        "denominator",
        "value",
    ]
    plain = tmp / "plain.csv"
    plain.write_text(
        ",".join(columns)
        + "\n"
        + "\n".join(",".join(str(r.get(c, "")) for c in columns) for r in rows)
        + "\n"
    )
    cli.ok(
        "provider",
        "sign",
        plain,
        "--sign-key",
        tmp / "circle" / "ledger-signing.key",
        "--out",
        tmp / "signed.csv",
    )
    signed = (tmp / "signed.csv").read_text().splitlines()
    assert signed[0].endswith(",signature") and all(line.count(":") == 1 for line in signed[1:])
    result = cli("ingest", tmp / "signed.csv", "--json")
    assert result.code == 0, result.err
    assert result.json()["accepted"] == 3
    assert cli("ingest", plain, "--json").json()["rejected_by_reason"] == {"unsigned_record": 3}


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_provider_sign_never_writes_over_its_input_and_writes_its_output_whole(cli, signing, suffix):
    """`--out` naming the input (directly or through a link) is refused with the input intact: opening
    it for writing would have emptied it before a line was read ("signed 0 record(s)", exit 0). A link
    at --out is replaced, never written through, and a failed run leaves --out as it was."""
    tmp = signing
    key = tmp / "circle" / "ledger-signing.key"
    plain = tmp / f"plain.{suffix}"
    if suffix == "jsonl":
        plain.write_text(DATA[0] + "\n")
    else:
        plain.write_text("type,submission_id\nsubmission,s-1\n")
    before = plain.read_bytes()
    link = tmp / f"link.{suffix}"
    link.symlink_to(plain)
    for out in (plain, link):
        refused = cli("provider", "sign", plain, "--sign-key", key, "--out", out, "--json")
        assert refused.code == 1, refused.err
        assert json.loads(refused.err.splitlines()[-1])["error"] == "same_file", refused.err
        assert plain.read_bytes() == before

    elsewhere = tmp / "elsewhere.txt"
    elsewhere.write_text("not to be touched\n")
    pointer = tmp / f"pointer.{suffix}"
    pointer.symlink_to(elsewhere)
    cli("provider", "sign", plain, "--sign-key", key, "--out", pointer)
    assert elsewhere.read_text() == "not to be touched\n" and not pointer.is_symlink()
    assert "signature" in pointer.read_text()

    kept = tmp / f"kept.{suffix}"
    kept.write_text("earlier output\n")
    failed = cli("provider", "sign", tmp / "missing.jsonl", "--sign-key", key, "--out", kept)
    assert failed.code == 1 and kept.read_text() == "earlier output\n"
    assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")], "no temporary file left behind"
