"""Real browser: open a client from the directory, send an SMS from its detail through
the local Twilio-speaking server, and see it sent in the client's history."""

from __future__ import annotations

import re
import time

import pytest

from tests.seed_history import add_client
from tests.servers import TwilioServer

pytestmark = pytest.mark.browser


def seed(store) -> None:
    add_client(store, name="Jana Nováková", phone="+420601123456", phone_kind="mobile")


def select_first_row(page, grid) -> None:
    """Tick the first data row of an st.dataframe (its row-selection column)."""
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    # The checkbox column is at the far left; the header row is ~35 px high.
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)


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
        page.goto(url + "/clients")
        select_first_row(page, page.get_by_test_id("stDataFrame").first)
        open_btn = page.get_by_role("button", name="Open client detail")
        open_btn.wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('button')].some("
            "b => b.innerText.includes('Open client detail') && !b.disabled)"
        )
        open_btn.first.click()

        # The client's detail page, compose an SMS
        page.get_by_role("heading", name="Jana Nováková").wait_for()
        page.get_by_text("SMS", exact=True).first.click()
        page.get_by_text("To: +420601123456").wait_for()
        text = page.get_by_label("Text")
        text.fill("Dobrý den, {{ name }}! Váš balík je připraven.")
        text.press("Tab")  # commit the value (Streamlit sends text areas on blur)
        page.get_by_text(re.compile(r"characters · UCS-2 · 1 segment")).wait_for()
        page.get_by_text("Replace diacritics").click()
        page.get_by_text(re.compile(r"characters · GSM-7 · 1 segment")).wait_for()
        page.get_by_role("button", name="Send now").click()
        page.get_by_text(re.compile(r"Message \d+ to \+420601123456 queued to send now")).wait_for()

        # The app's dispatcher thread sends it through the local Twilio server
        wait_until(lambda: len(twilio.messages) == 1, "the SMS to reach the Twilio server")
        got = twilio.messages[0]
        assert got["to"] == "+420601123456"
        assert got["form"]["Body"] == "Dobry den, Jana Novakova! Vas balik je pripraven."
        sid = got["sid"]

        # The client's history shows it sent, with Twilio's SID
        page.goto(url + "/client?client=1")
        page.get_by_role("heading", name=re.compile(r"Communication \(1\)")).wait_for()
        select_first_row(page, page.get_by_test_id("stDataFrame").last)
        page.get_by_text(f"Provider id: {sid}").wait_for()
        assert page.get_by_text("sent", exact=True).first.is_visible()
    finally:
        twilio.stop()
