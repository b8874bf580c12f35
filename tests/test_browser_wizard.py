"""A real-browser journey through the bulk send wizard (Playwright + Debian chromium)."""

import pytest
from playwright.sync_api import expect

from comms import templates as tpl
from comms.store import open_store
from tests.grid import settle

pytestmark = pytest.mark.browser
# The app reruns on every click; on a busy machine a step can take a few seconds.
expect.set_options(timeout=20_000)


def seed(store):
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (name, email, email_valid, city, lists) VALUES"
            " ('Jana Nová', 'jana@example.com', true, 'Brno', ['Spring']),"
            " ('Petr Malý', 'petr@@bad', false, 'Praha', ['Spring']),"
            " ('Eva Veselá', 'eva@example.com', true, 'Ostrava', ['Spring'])"
        )
    )
    tpl.create_template(
        store,
        name="Spring offer",
        channel="email",
        subject="Spring news for {{ first_name }}",
        body="Dear **{{ name }}**,\n\nour shop in {{ city }} has news.",
    )


def click(page, name):
    settle(page)
    page.get_by_role("button", name=name).click()


def test_generate_edit_and_keep_for_later(run_app, page, db_path):
    url = run_app(seed=seed)
    page.goto(url)
    page.get_by_role("link", name="Bulk send").click()
    expect(page.get_by_text("No recipients chosen yet")).to_be_visible()
    click(page, "Use this list")  # "All clients": the three seeded clients

    # 1. the template
    expect(
        page.get_by_text("3 selected clients").or_(page.get_by_text("all 3 matching"))
    ).to_be_visible()
    expect(page.get_by_text("Spring news for {{ first_name }}")).to_be_visible()
    click(page, "Next")
    expect(page.get_by_role("heading", name="2. Content for this send")).to_be_visible()
    # 2. content, 3. attachments
    expect(page.get_by_text("Preview for Jana Nová")).to_be_visible()
    expect(page.get_by_test_id("stHtml").get_by_text("our shop in Brno has news.")).to_be_visible()
    click(page, "Next")
    expect(page.get_by_role("heading", name="3. Attachments")).to_be_visible()
    click(page, "Next")
    # 4. recipients, checked before generating: Petr's address is flagged
    expect(page.get_by_role("heading", name="4. Recipients")).to_be_visible()
    expect(page.get_by_text("invalid e-mail 1")).to_be_visible()
    click(page, "Generate 3 messages")
    # 5. review: one invalid address
    expect(page.get_by_text("Why messages cannot be sent")).to_be_visible()
    expect(page.get_by_text("invalid e-mail 1")).to_be_visible()

    page.get_by_role("combobox", name="Open message").click()
    page.get_by_role("option", name="Jana Nová").click()
    expect(page.get_by_text("Subject: Spring news for Jana")).to_be_visible()
    expect(
        page.get_by_test_id("stHtml").get_by_text("our shop in Brno has news.")
    ).to_be_visible()  # rendered HTML
    body = page.get_by_label("Body")
    body.fill("Dear Jana, a personal note just for you.")
    click(page, "Save changes")
    expect(page.get_by_text("saved: ready to send")).to_be_visible()

    # 6. finish: keep for later
    click(page, "Continue to sending")
    expect(page.get_by_role("heading", name="6. Finish")).to_be_visible()
    expect(page.get_by_text("messages are ready to send")).to_be_visible()
    click(page, "Keep for later")
    expect(page.get_by_text("2 messages kept as drafts")).to_be_visible()
    assert "batch=" in page.url

    run_app.stop()
    store = open_store(db_path)
    try:
        rows = store.rows(
            "SELECT c.name, m.status, m.reason, m.body_text FROM messages m"
            " JOIN clients c ON c.id = m.client_id ORDER BY m.id"
        )
        assert [(r["name"], r["status"], r["reason"]) for r in rows] == [
            ("Jana Nová", "draft", None),
            ("Petr Malý", "invalid", "invalid e-mail"),
            ("Eva Veselá", "draft", None),
        ]
        assert rows[0]["body_text"] == "Dear Jana, a personal note just for you."
        assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'edit'") == 1
        assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'keep for later'") == 1
    finally:
        store.close()
