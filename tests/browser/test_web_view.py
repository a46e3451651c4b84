"""The web view in a real browser, as each kind of user would use it."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import expect

CONTRACT = "beds-msk"


def sign_in(page, service, token: str) -> None:
    page.goto(service.url + "/signin")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/contracts")


def test_a_provider_uploads_a_csv_and_sees_its_bad_line_refused(page, example_service, shot, tmp_path):
    sign_in(page, example_service, example_service.token("provider:circle", "Circle data team"))
    page.get_by_role("link", name=CONTRACT).click()
    page.get_by_role("link", name="Upload records").click()
    assert page.get_by_role("link", name="year 3 (CSV)").is_visible()
    csv = tmp_path / "q2.csv"
    csv.write_text(
        "type,submission_id,contract_id,provider_id,indicator_id,period,numerator,denominator,value\n"
        "submission,web-1,beds-msk,circle,proms-improved,2027-Q2,300,480,\n"
        "submission,web-2,beds-msk,circle,proms-improved,2027-Q3,lots,480,\n"
    )
    page.get_by_label("File (CSV, xlsx or JSON lines)").set_input_files(str(csv))
    page.get_by_role("button", name="Upload").click()
    summary = page.locator("#upload-summary")
    expect(summary).to_be_visible()
    assert "Accepted 1" in summary.inner_text() and "refused 1" in summary.inner_text()
    refused = page.locator("#refused tbody tr")
    assert refused.count() == 1
    assert "3" in refused.first.locator("td").first.inner_text()  # the CSV's line 3
    assert "numerator" in refused.first.inner_text()
    shot(page, "upload-refused")
    page.goto(example_service.url + f"/contracts/{CONTRACT}/submissions")
    assert "web-1" in page.content()
    shot(page, "submissions")


def test_markup_in_an_uploaded_file_is_shown_as_text_and_never_runs(page, example_service, tmp_path):
    """A provider's file is the most hostile text the pages show back to other users: it is escaped
    (the page fixture also fails the test if the policy had to block an inline script or handler),
    and the pages' policy would run no script even if escaping failed."""
    sign_in(page, example_service, example_service.token("provider:circle", "Circle data team"))
    page.goto(example_service.url + f"/contracts/{CONTRACT}/upload")
    csv = tmp_path / "hostile.csv"
    script_id = "<script>window.pwned=1</script>"  # an id is opaque printable text: accepted
    img = "<img src=x onerror=window.pwned=2>"  # not an indicator: refused, the reason quoting it
    csv.write_text(
        "type,submission_id,contract_id,provider_id,indicator_id,period,numerator,denominator,value\n"
        f'submission,"{script_id}",beds-msk,circle,proms-improved,2027-Q2,1,2,\n'
        f'submission,web-x,beds-msk,circle,"{img}",2027-Q2,1,2,\n'
    )
    page.get_by_label("File (CSV, xlsx or JSON lines)").set_input_files(str(csv))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-summary")).to_be_visible()
    assert page.locator("#refused tbody tr").count() == 1
    assert img in page.locator("#refused").inner_text()  # shown as text
    assert page.locator("main img, main script").count() == 0  # not as markup
    page.goto(example_service.url + f"/contracts/{CONTRACT}/submissions")
    assert script_id in page.locator("main").inner_text()
    assert page.locator("main script").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_the_commissioner_previews_then_closes_a_year(page, example_service, shot):
    sign_in(page, example_service, example_service.token("commissioner:bccg", "Finance manager"))
    page.goto(example_service.url + f"/contracts/{CONTRACT}")
    shot(page, "contract")
    page.get_by_role("link", name="Close year 1").click()
    page.wait_for_url("**/years/1/close")
    assert "preview" in page.get_by_role("heading", level=1).inner_text()
    assert "24,000,000.00" in page.locator("table.statement").inner_text()  # thousands separators
    assert "19,200,000.00" in page.content()  # what circle would be paid: the close it would decide
    shot(page, "close-preview")
    page.get_by_role("button", name="Confirm: close year 1").click()
    expect(page.locator("#closed")).to_be_visible()
    shot(page, "closed")
    page.goto(example_service.url + f"/contracts/{CONTRACT}")
    row = page.locator("tbody tr", has=page.locator("th", has_text="1")).first
    assert "closed" in row.inner_text()


def test_an_auditor_opens_a_statement_as_of_a_date_and_follows_a_figure(page, example_service, shot):
    sign_in(page, example_service, example_service.token("auditor:nao", "NAO auditor"))
    page.goto(example_service.url + "/audit")
    assert "Every seal verifies" in page.locator("#verification").inner_text()
    page.get_by_label("Contract").select_option(CONTRACT)
    page.get_by_label("Year").fill("1")
    page.get_by_label("As of (date or ISO 8601 instant)").fill(datetime.now(UTC).date().isoformat())
    page.get_by_role("button", name="Show statement").click()
    expect(page.get_by_text("As recorded at")).to_be_visible()
    shot(page, "statement-as-of")
    download = page.get_by_role("link", name="Download the auditor's report (HTML)")
    assert download.is_visible() and "as_of=" in (download.get_attribute("href") or "")
    with page.expect_download() as caught:
        download.click()
    assert caught.value.suggested_filename.startswith(f"{CONTRACT}-report-as-of-")
    page.locator("table.statement a", has_text="24,000,000.00").last.click()
    page.wait_for_url("**/explain*")
    assert "Why the figures" in page.get_by_role("heading", level=1).inner_text()
    assert "24,000,000.00" in page.content()
    shot(page, "explanation")


def test_another_provider_cannot_see_the_contract(page, example_service, shot):
    sign_in(page, example_service, example_service.token("provider:elsewhere", "Another provider"))
    assert "No contracts you may read" in page.content()
    response = page.goto(example_service.url + f"/contracts/{CONTRACT}")
    assert response is not None and response.status == 404  # not told the contract exists
    assert "Not found" in page.get_by_role("heading", level=1).inner_text()
    seen = page.locator("main").inner_text()
    shot(page, "forbidden")
    response = page.goto(example_service.url + "/contracts/no-such-contract")
    assert response is not None and response.status == 404
    assert page.locator("main").inner_text() == seen.replace(CONTRACT, "no-such-contract")
    response = page.goto(example_service.url + f"/contracts/{CONTRACT}/years/1/statement")
    assert response is not None and response.status == 404
