"""A ledger holding a record accepted under the old period grammar (a label spelt with non-ASCII
digits, which ingest now refuses) still reads, closes, rebuilds and verifies as it did: history is
read as it was written, never reinterpreted."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from ledger.domain.aggregates import YearData, year_data_uuid
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

LEGACY = "٢٠٢٥-Q3"  # 2025-Q3 in Arabic-Indic digits, as a provider could send it before this round


def test_a_stored_legacy_period_closes_rebuilds_and_verifies(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    app = Ledger.from_url(cli.db_url)
    data = app.repository.get(year_data_uuid("beds-msk", 1))
    assert isinstance(data, YearData)
    record = SimpleNamespace(
        submission_id="legacy-1",
        provider_id="circle",
        indicator_id="proms-improved",
        period=LEGACY,
        numerator=Decimal(5000),
        denominator=Decimal(5000),
        value=None,
        digest="0" * 64,
    )
    data.accept_submission(record, actor="provider:circle")  # what the old checks let through
    app.save(data, record_index=[("beds-msk", "submission:legacy-1", "0" * 64)])

    assert _periods(cli)["legacy-1"] == LEGACY
    closed = cli.ok("close-year", "beds-msk", "1", "--json").json()
    assert closed["year"] == 1
    cli.ok("projections", "rebuild")
    assert _periods(cli)["legacy-1"] == LEGACY
    assert cli.ok("statement", "beds-msk", "--year", "1", "--json").json()["year"] == 1
    checked = cli("verify")
    assert checked.code == 0, checked.out + checked.err


def _periods(cli):
    return {r["submission_id"]: r["period"] for r in cli.ok("submissions", "beds-msk", "--json").json()}
