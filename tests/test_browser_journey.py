"""The bulk-send journey of issue 10 in a real browser, start to end:

upload a list without a consent column (stating consent), select clients on two
pages of the directory, generate, reload in the middle of the review and go on,
exclude one message in the review table, and discard the batch after confirming.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from comms import templates as tpl
from comms.store import open_store
from tests.grid import settle, state_consent, tick, toggle_checkbox

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)

CLIENTS = 2010  # more than one server-side page of the directory (2,000 rows)


def client_list() -> bytes:
    rows = ["Jméno;E-mail;Město", "Jana Nová;jana@example.cz;Brno"]
    rows += [f"Klient {i:04d};k{i}@example.cz;Praha" for i in range(CLIENTS - 2)]
    rows.append("Zora Poslední;zora@example.cz;Plzeň")
    return ("\r\n".join(rows) + "\r\n").encode("cp1250")


def seed(store) -> None:
    tpl.create_template(
        store,
        name="Spring offer",
        channel="email",
        subject="Spring news for {{ first_name }}",
        body="Dear **{{ name }}**, our shop in {{ city }} has news.",
    )


def test_upload_select_on_two_pages_generate_reload_exclude_discard(
    run_app, page, db_path, tmp_path
):
    csv_file = tmp_path / "jaro.csv"
    csv_file.write_bytes(client_list())
    url = run_app(seed=seed)
    page.goto(url + "/directory")
    expect(page.get_by_text("No clients yet")).to_be_visible()

    # Upload a list without a consent column: the person states consent, then imports.
    page.locator('input[type="file"]').set_input_files(str(csv_file))
    expect(page.get_by_text(re.compile(r"Detected: CSV, 2,010 rows"))).to_be_visible()
    settle(page)
    state_consent(page)
    import_button = page.get_by_role("button", name="Import", exact=True)
    expect(import_button).to_be_enabled()
    import_button.click()
    expect(page.get_by_text(re.compile(r"2,010 imported, 0 updated, 0 skipped"))).to_be_visible()
    expect(page.get_by_text("2,010 matching clients (showing 1–2,000)")).to_be_visible()

    # Select one client on the first page and one on the second: both stay selected.
    tick(page, "Jana Nová", key="dir_table")
    expect(page.get_by_text("Selected: 1 client", exact=True)).to_be_visible()
    page.get_by_test_id("stPagination").get_by_role("button", name="Page 2").click()
    expect(page.get_by_text("2,010 matching clients (showing 2,001–2,010)")).to_be_visible()
    tick(page, "Zora Poslední", key="dir_table")
    expect(page.get_by_text("Selected: 2 clients (1 not on this page)")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Send e-mail to selected clients").click()

    # The wizard: template, content, attachments, the recipients checked, generate.
    expect(page.get_by_text("2 selected clients")).to_be_visible()
    for heading in ("2. Content for this send", "3. Attachments", "4. Recipients"):
        settle(page)
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_text("Pass every check")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Generate 2 messages").click()
    review = page.get_by_role("heading", name=re.compile(r"5\. Review batch \d+"))
    expect(review).to_be_visible()
    batch_id = int(re.search(r"batch=(\d+)", page.url).group(1))

    # A reload in the middle of the review lands on the same step of the same batch.
    page.reload()
    expect(page.get_by_role("heading", name=f"5. Review batch {batch_id}")).to_be_visible()
    expect(page.get_by_text("No recipients chosen yet")).to_have_count(0)

    # Exclude Jana's message with the review table's Exclude checkbox.
    toggle_checkbox(page, "Jana Nová")
    expect(page.get_by_text("1 message excluded.")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Continue to sending").click()
    expect(page.get_by_role("heading", name="6. Finish")).to_be_visible()
    expect(page.get_by_text(re.compile(r"1\s+of 2 messages is ready to send"))).to_be_visible()

    # Discard asks first, naming the count; only the confirmation cancels.
    settle(page)
    page.get_by_role("button", name="Discard this batch").click()
    expect(
        page.get_by_text(f"Discard batch {batch_id}? Its 1 draft will be cancelled")
    ).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Yes, discard 1 draft").click()
    expect(page.get_by_text(f"Batch {batch_id} discarded: 1 draft cancelled.")).to_be_visible()

    run_app.stop()
    store = open_store(db_path)
    try:
        rows = store.rows(
            "SELECT c.name, m.status FROM messages m JOIN clients c ON c.id = m.client_id"
            " WHERE m.batch_id = ? ORDER BY c.name",
            [batch_id],
        )
        assert [(r["name"], r["status"]) for r in rows] == [
            ("Jana Nová", "excluded"),
            ("Zora Poslední", "cancelled"),
        ]
        actions = {r["action"] for r in store.rows("SELECT action FROM action_log")}
        assert {"import", "generate", "exclude", "cancel"} <= actions
    finally:
        store.close()
