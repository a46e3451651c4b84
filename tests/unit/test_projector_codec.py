"""The projector's hand-written reading of stored events (projections/codec.py) agrees with
eventsourcing's own transcoder, on real stored events of every kind the projector reads.

If the stored form changes (an eventsourcing release, the aggregates moved to another
module, another transcoding for Decimal or datetime), this fails here, not in a read model.
"""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger.usecases.application import Ledger
from projections import codec
from projections.bootstrap import Projections
from projections.schema import plain
from tests.e2e.test_contract_terms import CAPITATION  # the capitation contract of those tests
from tests.support.cli import EXAMPLES, ROOT, Cli

DATA = ROOT / "tests" / "data"
COMMISSIONER, LEAD = "commissioner:bccg", "provider:circle"


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _every_kind_of_event(cli, tmp_path) -> None:
    """A ledger holding at least one stored event of every kind the projector reads."""
    # the worked example: submissions, cost reports, instalments, a close, a refused record
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml", "--as", COMMISSIONER)
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("pay", "beds-msk", "--through", "2025-Q3")
    cli.ok("close-year", "beds-msk", "1", "--as", COMMISSIONER)
    cli("close-year", "beds-msk", "2", "--as", "auditor")  # refused, and the refusal recorded
    cli.ok("close-year", "beds-msk", "2", "--as", COMMISSIONER)
    record = {
        "type": "submission",
        "submission_id": "s-0419",
        "contract_id": "beds-msk",
        "provider_id": "circle",
        "indicator_id": "readmissions",
        "period": "2027-Q1",
        "value": "80",
    }
    cli.refused(
        "ingest", _write(tmp_path / "theirs.jsonl", [{**record, "provider_id": "physio"}]), "--as", LEAD
    )
    # a late record and the restatement's true-up (tests/e2e/test_late_data.py)
    cli.ok("ingest", _write(tmp_path / "late.jsonl", [record]))
    cli.ok("restate", "beds-msk", "2")
    # a dispute, upheld with an adjustment
    cli.ok("dispute", "raise", "beds-msk", "--year", "1", "--reason", "miscounted", "--as", LEAD)
    cli.ok(
        "dispute", "resolve", "beds-msk", "D1-1", "--year", "1", "--upheld", "--note", "recount",
        "--adjust", "125.00", "--party", "circle", "--as", COMMISSIONER,
    )  # fmt: skip
    # budgets, population counts, baselines, an extension
    (tmp_path / "cap.yaml").write_text(CAPITATION)
    cli.ok("contract", "register", tmp_path / "cap.yaml")
    count = {"type": "population", "record_id": "p-1", "contract_id": "cap-demo", "year": 1}
    cli.ok("ingest", _write(tmp_path / "count.jsonl", [{**count, "segment_id": "high", "count": 1200}]))
    cli.ok(
        "budget", "adjust", "cap-demo", "--year", "2", "--amount", "1400000.00", "--reason", "uplift",
        "--note", "pay award",
    )  # fmt: skip
    cli.ok("baseline", "record", "cap-demo", "waits", "50", "--note", "validated baseline")
    cli.ok("contract", "extend", "cap-demo")
    # a variation; rate-card outcome claims; health-gain episodes
    cli.ok("contract", "register", DATA / "variations" / "alliance.yaml")
    cli.ok("contract", "vary", "ally", DATA / "variations" / "cv-1.yaml")
    cli.ok("contract", "register", DATA / "rate_cards" / "employ.yaml")
    cli.ok("ingest", DATA / "rate_cards" / "employ-claims.jsonl")
    cli.ok("contract", "register", DATA / "rate_cards" / "msk-gain.yaml")
    cli.ok("ingest", DATA / "rate_cards" / "msk-gain-episodes.jsonl")


def _revived(raw: Any) -> Any:
    """Scanned JSON with the two stored transcodings the fast path reads made values again."""
    if isinstance(raw, dict):
        if set(raw) == {"_type_", "_data_"}:
            assert raw["_type_"] in ("decimal_str", "datetime_iso"), f"unexpected transcoding {raw}"
            data = raw["_data_"]
            return Decimal(data) if raw["_type_"] == "decimal_str" else datetime.fromisoformat(data)
        return {k: _revived(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_revived(v) for v in raw]
    return raw


def _listed(value: Any) -> Any:
    """Tuples as lists (JSON has one kind of array), recursively."""
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_listed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Ledger, list[Any], set[str]]:
    tmp_path = tmp_path_factory.mktemp("codec")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _every_kind_of_event(Cli(url), tmp_path)
    app = Ledger.from_url(url)
    notifications = list(app.recorder.select_notifications(start=None, limit=1_000_000))
    projector = Projections(app, f"sqlite:///{tmp_path / 'read.db'}").projector
    read = set(projector._handlers) | {"YearData.Opened", "Settlement.Opened"}  # streams start
    return app, notifications, read


def test_the_ledger_stores_every_kind_of_event_the_projector_reads(stored):
    _, notifications, read = stored
    assert all(n.topic.startswith(codec.TOPIC_PREFIX) for n in notifications)
    assert read <= {codec.kind(n.topic) for n in notifications}
    assert set(codec.HOT) <= read


def test_the_store_is_one_the_codec_can_read(stored):
    app, _, _ = stored
    assert codec.readable(app.mapper)


def test_every_event_scans_to_what_the_transcoder_decodes(stored):
    app, notifications, read = stored
    decode = app.mapper.transcoder.decode
    for n in notifications:
        if codec.kind(n.topic) not in read:
            continue
        decoded, raw = decode(n.state), codec.scan(n.state)
        assert codec.recorded_at(raw) == codec.when(decoded["timestamp"]), n.topic
        assert set(raw) == set(decoded), n.topic
        if codec.kind(n.topic) in codec.HOT:  # the fast path reads every field as scanned
            assert _revived(raw) == _listed(decoded), n.topic


def test_every_stored_decimal_of_the_hot_events_reads_as_its_plain_text(stored):
    app, notifications, _ = stored
    decode = app.mapper.transcoder.decode
    seen = cases = 0
    for n in notifications:
        if codec.kind(n.topic) not in codec.HOT:
            continue
        decoded, raw = decode(n.state), codec.scan(n.state)
        for key, value in decoded.items():
            if isinstance(value, Decimal):
                assert codec.decimal_text(raw[key]) == plain(value), (n.topic, key)
                seen += 1
            elif value is None:
                assert codec.decimal_text(raw[key]) is None
        for (_, raw_cost), (_, cost) in zip(
            raw.get("high_cost_cases", []), decoded.get("high_cost_cases", []), strict=True
        ):
            assert codec.decimal_text(raw_cost) == plain(cost)
            cases += 1
    assert seen and cases  # not vacuous: the worked example has both
