"""whatif equals vary-then-restate, on random variations of the worked example (payment rules §7)."""

from __future__ import annotations

import tempfile
from decimal import Decimal as D
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

VARIATION = """\
variation: {{id: cv-p, contract_id: beds-msk, effective_from_year: {e}, reason: property}}
changes:
  payment:
    schedule:
      - {{from_year: {e}, core: "{core}", outcomes: "{outcomes}", risk_share: standard}}
  budget: {{efficiency: "{efficiency}"}}
"""


def _net(statement):
    total = D(statement["total"]) + sum(D(t["amount"]) for t in statement["true_ups"])
    parties = {p: D(v) for p, v in statement["by_party"].items()}
    for t in statement["true_ups"]:
        for p, v in t["by_party"].items():
            parties[p] = parties.get(p, D(0)) + D(v)
    return total, parties


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 3), st.integers(60, 100), st.integers(0, 80))
def test_whatif_equals_what_vary_with_restate_records(e, core_pct, efficiency_thousandths):
    core = D(core_pct) / 100
    text = VARIATION.format(e=e, core=core, outcomes=1 - core, efficiency=D(efficiency_thousandths) / 1000)
    with tempfile.TemporaryDirectory() as tmp:
        app = Ledger.from_url(f"sqlite:///{Path(tmp) / 'l.db'}")
        services_for(app).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
        services_for(app).ingest.ingest_lines(
            (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "data"
        )
        for year in (1, 2):
            services_for(app).settlement.close_year("beds-msk", year)
        events = app.recorder.max_notification_id()
        result = services_for(app).registration.whatif("beds-msk", text, (e, 3))
        assert app.recorder.max_notification_id() == events
        services_for(app).registration.vary_contract("beds-msk", text, restate=True)
        services_for(app).settlement.close_year("beds-msk", 3)
        for y in result["years"]:
            total, parties = _net(services_for(app).settlement.statement("beds-msk", y["year"]))
            assert total == D(y["whatif"]["total"])
            assert parties == {p: D(v) for p, v in y["whatif"]["by_party"].items()}
        app.close()
