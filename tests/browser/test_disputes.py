"""Disputes in the web view: a provider raises one on a closed year (the time-bar deadline shown),
the commissioner resolves it (upheld with an adjustment, or rejected); forms carry CSRF tokens."""

from __future__ import annotations

import json
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_view import sign_in
from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service

CONTRACT = "beds-msk"


@pytest.fixture(scope="module")
def closed_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disputes-service")
    db_url = f"sqlite:///{tmp / 'ledger.db'}"
    cli = Cli(db_url)
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    assert cli("ingest", EXAMPLES / "worked-example-data.jsonl").code in (0, 3)
    cli.ok("close-year", CONTRACT, "1")
    service = start_service(db_url, tmp / "service.log")
    service.cli = cli  # type: ignore[attr-defined]
    yield service
    service.stop()


def events(service, topic_part: str) -> list[dict]:
    with sqlite3.connect(service.db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT topic, state FROM stored_events").fetchall()
    return [json.loads(state) for topic, state in rows if topic_part in topic]


def test_a_provider_raises_and_the_commissioner_resolves_a_dispute(page, browser, closed_service, shot):
    sign_in(page, closed_service, closed_service.token("provider:circle", "Circle data team"))
    page.goto(closed_service.url + f"/contracts/{CONTRACT}/disputes")
    row = page.locator("tbody tr", has=page.locator("th", has_text="1")).first
    assert "Raise it by" in row.inner_text()  # the time-bar deadline beside the form
    assert page.locator("form.resolve-dispute").count() == 0  # a provider resolves nothing
    page.get_by_label("Reason for disputing year 1's decision").fill("PROMs for Q3 were double counted")
    shot(page, "raise-form")
    page.get_by_role("button", name="Raise a dispute on year 1").click()
    expect(page.locator("#dispute-notice")).to_have_text("Dispute D1-1 is raised.")
    assert page.locator("#dispute-D1-1 .status").inner_text() == "open"
    assert "double counted" in page.locator("#dispute-D1-1").inner_text()
    page.get_by_label("Reason for disputing year 1's decision").fill("And the cost report is wrong")
    page.get_by_role("button", name="Raise a dispute on year 1").click()
    expect(page.locator("#dispute-notice")).to_have_text("Dispute D1-2 is raised.")

    commissioner = browser.new_context()
    cpage = commissioner.new_page()
    try:
        sign_in(cpage, closed_service, closed_service.token("commissioner:bccg", "Finance manager"))
        cpage.goto(closed_service.url + f"/contracts/{CONTRACT}/disputes")
        form = cpage.locator("#dispute-D1-1 form.resolve-dispute")
        form.get_by_label("Upheld", exact=True).check()
        cpage.get_by_label("Note for D1-1").fill("Agreed: Q3 counted twice")
        cpage.get_by_label(
            "Adjustment for D1-1 (£, optional; upheld only; without it the year is restated)"
        ).fill("1500.00")
        cpage.get_by_label("Party paid the adjustment (D1-1)").select_option("circle")
        shot(cpage, "resolve-form")
        cpage.get_by_role("button", name="Resolve D1-1").click()
        expect(cpage.locator("#dispute-notice")).to_have_text("Dispute D1-1 is upheld.")
        assert "Agreed: Q3 counted twice" in cpage.locator("#dispute-D1-1").inner_text()
        cpage.locator("#dispute-D1-2 form.resolve-dispute").get_by_label("Rejected", exact=True).check()
        cpage.get_by_label("Note for D1-2").fill("The cost report was checked")
        cpage.get_by_role("button", name="Resolve D1-2").click()
        expect(cpage.locator("#dispute-notice")).to_have_text("Dispute D1-2 is rejected.")
        shot(cpage, "resolved")
    finally:
        commissioner.close()

    listed = closed_service.cli.ok("dispute", "list", CONTRACT, "--json").json()
    by_id = {d["dispute_id"]: d for d in listed}
    assert by_id["D1-1"]["status"] == "upheld" and by_id["D1-2"]["status"] == "rejected"
    adjusted = [e for e in events(closed_service, "Adjust") if e.get("dispute_id") == "D1-1"]
    assert adjusted and adjusted[-1]["principal"].startswith("token:")
    raised = events(closed_service, "DisputeRaised")
    assert raised and all(e.get("principal", "").startswith("token:") for e in raised)


def test_a_dispute_form_without_its_csrf_token_is_refused(page, closed_service):
    sign_in(page, closed_service, closed_service.token("provider:circle", "Circle data team"))
    response = page.request.post(
        closed_service.url + f"/contracts/{CONTRACT}/years/1/disputes",
        form={"reason": "forged from another site"},
    )
    assert response.status == 403 and "csrf_failed" in response.text()
    listed = closed_service.cli.ok("dispute", "list", CONTRACT, "--json").json()
    assert not any("forged" in d["reason"] for d in listed)


def test_a_commissioner_cannot_raise_and_a_provider_cannot_resolve(page, closed_service):
    sign_in(page, closed_service, closed_service.token("provider:circle", "Circle data team"))
    page.goto(closed_service.url + f"/contracts/{CONTRACT}/disputes")
    csrf = page.locator("form.raise-dispute input[name=csrf]").first.get_attribute("value")
    response = page.request.post(
        closed_service.url + f"/contracts/{CONTRACT}/years/1/disputes/D1-1/resolve",
        form={"outcome": "upheld", "note": "self-approved", "csrf": csrf or ""},
    )
    assert response.status == 403
    refused = [e for e in events(closed_service, "AccessRefused") if e.get("action") == "resolve_dispute"]
    assert (
        refused
        and refused[-1]["actor"] == "provider:circle"
        and refused[-1]["principal"].startswith("token:")
    )
