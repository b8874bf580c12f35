"""Real browser: open a client from the directory, send an SMS from its detail through
the local Twilio-speaking server, and see it sent in the client's history."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.grid import tick
from tests.seed_history import add_client
from tests.servers import TwilioServer

pytestmark = pytest.mark.browser


def seed(store) -> None:
    add_client(store, name="Jana Nováková", phone="+420601123456", phone_kind="mobile")


def wait_until(check, what: str, tries: int = 240) -> None:
    """Poll a condition (the dispatcher thread sends on its own schedule)."""
    for _ in range(tries):
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def test_sms_from_client_detail_through_twilio(run_app, page):
    twilio = TwilioServer().start()
    try:
        url = run_app(seed=seed, env=twilio.env())
        page.goto(url)
        page.get_by_role("link", name="Clients").click()
        page.get_by_text("1 matching client", exact=True).wait_for()
        tick(page, "Jana Nováková", key="dir_table")
        page.get_by_text("Selected: 1 client", exact=True).wait_for()
        open_btn = page.get_by_role("button", name="Open client detail")
        expect(open_btn).to_be_enabled(timeout=20_000)
        open_btn.click()

        # The client's detail page, compose an SMS
        page.get_by_role("heading", name="Jana Nováková", exact=True).wait_for()
        page.get_by_text("SMS", exact=True).first.click()
        page.get_by_text("To: +420601123456").wait_for()
        text = page.get_by_role("textbox", name="Text")
        text.fill("Dobrý den, {{ name }}! Váš balík je připraven.")
        text.press("Tab")  # commit the value (Streamlit sends text areas on blur)
        page.get_by_text(re.compile(r"characters · UCS-2 · 1 segment")).wait_for()
        page.get_by_text("Replace diacritics and typographic marks", exact=True).click()
        page.get_by_text(re.compile(r"characters · GSM-7 · 1 segment")).wait_for()
        send = page.get_by_role("button", name="Send now")
        expect(send).to_have_count(1, timeout=20_000)  # the rerun has replaced stale elements
        send.click()
        page.get_by_text(re.compile(r"Message \d+ to \+420601123456 queued to send now")).wait_for()
        # the text just sent is gone from the browser too, so it is not sent twice by mistake
        expect(page.get_by_role("textbox", name="Text")).to_have_value("")

        # The app's dispatcher thread sends it through the local Twilio server
        wait_until(lambda: len(twilio.messages) == 1, "the SMS to reach the Twilio server")
        got = twilio.messages[0]
        assert got["to"] == "+420601123456"
        assert got["form"]["Body"] == "Dobry den, Jana Novakova! Vas balik je pripraven."
        sid = got["sid"]

        # The client's history shows it sent, with Twilio's SID
        page.goto(url + "/client?client=1")
        page.get_by_role("heading", name=re.compile(r"Communication \(1\)")).wait_for()
        tick(page, "Dobry den", key="cd_history")
        page.get_by_text(f"Provider id: {sid}").wait_for()
        # the locale's date and time (English: "Dec 1, 2026, 14:05")
        expect(
            page.get_by_text(re.compile(r"Sent: \w{3} \d{1,2}, \d{4}, \d\d:\d\d"))
        ).to_be_visible()
        expect(page.get_by_text("Source: client detail")).to_be_visible()
    finally:
        twilio.stop()
