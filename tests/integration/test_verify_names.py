"""verify names the contract, year and kind of stream of a broken link, not the stream's hex id."""

import json

from sqlalchemy import select

from ledger.domain.aggregates import contract_uuid, settlement_uuid, year_data_uuid
from projections import schema as t
from projections.bootstrap import Projections
from tests.integration.test_tamper_evidence import Store
from tests.support.cli import Cli, worked_example_ledger


def _events_of(app, url, stream, year):
    """Notification ids of beds-msk's events of one stream kind and year, from the read models."""
    projections = Projections.for_ledger(app, url)
    projections.current()
    with projections.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(t.audit_trail.c.notification_id)
                .where(
                    t.audit_trail.c.stream == stream,
                    t.audit_trail.c.contract_id == "beds-msk",
                    t.audit_trail.c.year == year,
                )
                .order_by(t.audit_trail.c.notification_id)
            )
        ]


def _verify(url):
    cli = Cli(url)
    as_json, plain = cli("verify", "--json"), cli("verify")
    assert as_json.code == plain.code == 1
    return json.loads(as_json.out)["first_broken_link"], plain.out


def test_an_altered_settlement_event_is_named_by_contract_and_year(ledger_url):
    app = worked_example_ledger(ledger_url)
    target = _events_of(app, ledger_url, "settlement", 1)[1]
    store = Store(ledger_url)
    store.set_state(target, store.state(target) + b" ")
    link, text = _verify(ledger_url)
    assert (link["kind"], link["notification_id"]) == ("altered", target)
    assert (link["stream_kind"], link["contract_id"], link["year"]) == ("settlement", "beds-msk", 1)
    assert f"event #{target} (the settlement of beds-msk year 1, version 2, Settlement." in text
    assert settlement_uuid("beds-msk", 1).hex not in text


def test_a_removed_year_data_event_is_named_by_contract_and_year(ledger_url):
    app = worked_example_ledger(ledger_url)
    target = _events_of(app, ledger_url, "data", 2)[3]
    Store(ledger_url).delete(target)
    link, text = _verify(ledger_url)
    assert (link["kind"], link["stream_kind"], link["contract_id"], link["year"]) == (
        "removed",
        "year data",
        "beds-msk",
        2,
    )
    assert "the year data of beds-msk year 2" in text and year_data_uuid("beds-msk", 2).hex not in text


def test_a_contract_whose_first_event_was_rewritten_is_still_named(ledger_url):
    app = worked_example_ledger(ledger_url)
    projections = Projections.for_ledger(app, ledger_url)
    projections.current()  # the read models saw the log intact
    with projections.engine.connect() as conn:
        target = conn.execute(
            select(t.audit_trail.c.notification_id).where(t.audit_trail.c.event_type == "Contract.Registered")
        ).scalar()
    store = Store(ledger_url)
    store.set_state(target, store.state(target).replace(b"beds-msk", b"evil-msk"))
    link, text = _verify(ledger_url)
    assert (link["kind"], link["stream_kind"], link["contract_id"]) == ("altered", "contract", "beds-msk")
    assert "contract beds-msk's stream" in text and contract_uuid("beds-msk").hex not in text
