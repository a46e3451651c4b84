"""Property: ingesting the same records twice changes nothing (real SQLite ledger)."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.aggregates import year_data_uuid
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

CONTRACT = (EXAMPLES / "worked-example.yaml").read_text()
PERIODS = ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1", "2031-Q1"]
MEASURES = {
    "proms-improved": "ratio",
    "readmissions": "value",
    "shared-decisions.offered": "ratio",
    "nope": "ratio",
}


@st.composite
def records(draw):
    kind = draw(st.sampled_from(["submission", "submission", "submission", "cost_report", "garbage"]))
    rid = f"r-{draw(st.integers(0, 40))}"  # small id space: duplicates and conflicting duplicates arise
    if kind == "garbage":
        return draw(st.sampled_from(["{not json", "[]", json.dumps({"type": "submission"})]))
    provider = draw(st.sampled_from(["circle", "physio", "stranger"]))
    period = draw(st.sampled_from(PERIODS))
    if kind == "cost_report":
        return json.dumps(
            {
                "type": "cost_report",
                "report_id": rid,
                "contract_id": "beds-msk",
                "provider_id": provider,
                "period": period,
                "total_cost": f"{draw(st.integers(0, 10**7))}.{draw(st.integers(0, 99)):02d}",
                "high_cost_cases": [
                    {"case_ref": f"HC-{draw(st.integers(1, 3))}", "cost": f"{draw(st.integers(0, 40000))}.00"}
                ],
            }
        )
    measure = draw(st.sampled_from(list(MEASURES)))
    record = {
        "type": "submission",
        "submission_id": rid,
        "contract_id": "beds-msk",
        "provider_id": provider,
        "indicator_id": measure,
        "period": period,
    }
    if MEASURES[measure] == "ratio":
        den = draw(st.integers(-1, 500))
        record.update(numerator=str(draw(st.integers(0, 520))), denominator=str(den))
    else:
        record["value"] = str(draw(st.integers(0, 200)))
    return json.dumps(record)


def _state(app):
    years = {}
    for year in (1, 2, 3):
        data = app._maybe(year_data_uuid("beds-msk", year))
        years[year] = (data.version, data.latest_submission, data.latest_cost) if data else None
    return (
        years,
        app.recorder.max_notification_id(),
        [services_for(app).settlement.statement("beds-msk", y) for y in (1, 2)],
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(records(), min_size=1, max_size=60))
def test_ingesting_the_same_records_twice_changes_nothing(lines):
    with tempfile.TemporaryDirectory() as tmp:
        app = Ledger.from_url(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        services_for(app).registration.register_contract(CONTRACT)
        first = services_for(app).ingest.ingest_lines(lines, "batch.jsonl", batch_size=7)
        before = _state(app)
        again = services_for(app).ingest.ingest_lines(lines, "batch.jsonl", batch_size=7)
        assert first.accepted + first.duplicates + first.rejected == len(lines)
        assert again.accepted == 0
        assert again.duplicates == first.accepted + first.duplicates
        assert again.rejected == first.rejected
        # nothing new is stored: not a record, not a rejection, not a statement figure
        assert _state(app) == before
