"""The directory journey in a real browser: upload a messy list, filter, tick two rows, act."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.grid import state_consent, tick

pytestmark = pytest.mark.browser

MESSY = (
    "Export z CRM;;;;\r\n"
    ";;;;\r\n"
    "Jméno;Příjmení;E-mail;Mobil;Město\r\n"
    "Šárka;Žáková;sarka@example.cz;777 123 456;Plzeň\r\n"
    "Jan;Novák;jan@example.cz;602 111 222;Praha\r\n"
    "Eva;Malá;eva@;777 000 111;Praha\r\n"
    "Petr;Dvořák;petr@example.cz;603 222 333;Praha\r\n"
    ";;;;\r\n"
).encode("cp1250")


def expect_enabled(button, enabled: bool) -> None:
    """Wait until the button is enabled (or disabled): the rerun redraws it after the caption."""
    if enabled:
        expect(button).to_be_enabled(timeout=20_000)
    else:
        expect(button).to_be_disabled(timeout=20_000)


def test_upload_filter_select_and_act(run_app, page, tmp_path):
    csv_file = tmp_path / "crm_export.csv"
    csv_file.write_bytes(MESSY)
    url = run_app()
    page.goto(url)
    page.get_by_role("link", name="Clients").click()
    page.get_by_text("No clients yet").wait_for()

    # Upload: detection shown, then Import, then the report.
    page.locator('input[type="file"]').set_input_files(str(csv_file))
    page.get_by_text(
        re.compile(r"Detected: CSV, 5 rows, header on row 3, encoding cp1250")
    ).wait_for()
    list_name = page.get_by_role("textbox", name="List name")
    list_name.fill("Jaro")
    list_name.press("Enter")
    state_consent(page)  # the file has no consent column
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("List 'Jaro': 4 imported, 0 updated, 1 skipped.").wait_for()
    page.get_by_text("4 matching clients", exact=True).wait_for()

    # Filter in DuckDB: Praha only (diacritics and case do not matter).
    search = page.get_by_placeholder("name, e-mail, phone, company, city, any value")
    search.fill("PRAHA")
    search.press("Enter")
    page.get_by_text("3 matching clients", exact=True).wait_for()

    # Before a selection every action is disabled.
    email_btn = page.get_by_role("button", name="Send e-mail to selected clients")
    sms_btn = page.get_by_role("button", name="Send SMS to selected clients")
    detail_btn = page.get_by_role("button", name="Open client detail")
    expect_enabled(email_btn, False)
    expect_enabled(detail_btn, False)

    tick(page, "Jan Novák")
    page.get_by_text("Selected: 1 client", exact=True).wait_for()
    expect_enabled(detail_btn, True)
    tick(page, "Petr Dvořák")
    page.get_by_text("Selected: 2 clients", exact=True).wait_for()
    expect_enabled(email_btn, True)
    expect_enabled(sms_btn, True)
    expect_enabled(detail_btn, False)  # two clients: detail needs exactly one

    # A new filter keeps the selection: Petr is filtered out but still selected.
    search.fill("novak")
    search.press("Enter")
    page.get_by_text("1 matching client", exact=True).wait_for()
    page.get_by_text("Selected: 2 clients (1 not on this page)").wait_for()
    expect(page.locator('tr[role="row"][aria-selected="true"]')).to_have_count(1)  # Jan
    page.get_by_role("button", name="Deselect all").click()
    page.get_by_text("Nothing selected.").wait_for()

    # The action hands the selection over to the wizard and opens it.
    tick(page, "Jan Novák")
    page.get_by_text("Selected: 1 client", exact=True).wait_for()
    expect_enabled(email_btn, True)
    email_btn.click()
    expect(page).to_have_url(re.compile(r"/wizard$"), timeout=20_000)
