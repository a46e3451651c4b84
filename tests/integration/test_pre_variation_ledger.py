"""A ledger recorded by the release before contract variations still loads and gives the same figures.

``tests/data/worked-example-pre-variations.db`` was recorded by that release (the worked example
registered and ingested, years 1-2 closed, year 3 paid to 2027-Q3); its statements, as that release
printed them, are beside it.
"""

import json
import shutil

from ledger.domain.aggregates import Settlement, settlement_uuid
from ledger.usecases.application import Ledger
from tests.support.cli import ROOT, Cli

DATA = ROOT / "tests" / "data"


def _copy(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(DATA / "worked-example-pre-variations.db", db)
    return f"sqlite:///{db}"


def test_old_year_closes_are_upcast_to_the_current_event_version(tmp_path):
    app = Ledger.from_url(_copy(tmp_path))
    settlement = app.repository.get(settlement_uuid("beds-msk", 2))
    assert settlement.closed["variations"] == []
    ((_, event),) = [(n, e) for n, e in app.recorded(Settlement.YearClosed)][1:]
    assert type(event).class_version == 2 and event.variations == []
    app.close()


def test_the_old_ledger_prints_the_statements_it_printed_then_plus_the_terms(tmp_path):
    cli = Cli(_copy(tmp_path))
    then = json.loads((DATA / "worked-example-pre-variations-statements.json").read_text())
    for old in then:
        now = cli.ok("statement", "beds-msk", "--year", str(old["year"]), "--json").json()
        assert now.pop("terms") == {"variations": []}
        # statements now carry the rate card and health gain (payment rules §8, §9): null without them
        assert (now.pop("rate_card"), now.pop("health_gain")) == (None, None)
        assert now == old


def test_the_old_ledger_takes_a_variation_and_closes_its_open_year_on_the_new_terms(tmp_path):
    cli = Cli(_copy(tmp_path))
    variation = tmp_path / "cv.yaml"
    variation.write_text("""
variation: {id: cv-y3, contract_id: beds-msk, effective_from_year: 3, reason: readmissions dropped}
changes:
  indicators: {remove: [readmissions]}
""")
    cli.ok("contract", "vary", "beds-msk", variation)
    year3 = cli.ok("close-year", "beds-msk", "3", "--json").json()
    assert [i["id"] for i in year3["outcomes"]["indicators"]] == ["proms-improved", "shared-decisions"]
    assert year3["terms"] == {"variations": ["cv-y3"]}
    # years 1-2 keep their decisions (the variation is effective from year 3)
    then = json.loads((DATA / "worked-example-pre-variations-statements.json").read_text())
    for old in then[:2]:
        now = cli.ok("statement", "beds-msk", "--year", str(old["year"]), "--json").json()
        now.pop("terms")
        assert (now.pop("rate_card"), now.pop("health_gain")) == (None, None)
        assert now == old
