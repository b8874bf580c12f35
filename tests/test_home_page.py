"""The Home page under AppTest: metrics, the next step for a new user, recent batches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.seed_history import add_client, add_message, add_template

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "home.py")


def run() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_new_user_is_sent_to_clients(store):
    at = run()
    assert metrics(at)["Clients"] == "0"
    assert "First step" in at.markdown[0].value
    assert at.button(key="home_go_clients").label == "Go to Clients and upload a list"
    assert not at.get("vega_lite_chart")


def test_clients_without_templates_are_sent_to_templates(store):
    add_client(store)
    at = run()
    assert "Next step: write a template" in at.markdown[0].value
    assert at.button(key="home_go_templates")


def test_figures_and_batch_chart(store):
    cid = add_client(store)
    add_template(store, "t", "email", "hi", subject="s")
    batch = store.scalar(
        "INSERT INTO batches (channel, name) VALUES ('email', 'May news') RETURNING id"
    )
    now = dt.datetime.now()
    for _ in range(3):
        add_message(store, cid, batch_id=batch, sent_at=now)
    add_message(store, cid, batch_id=batch, status="failed", sent_at=None)
    add_message(store, cid, status="sent", sent_at=now - dt.timedelta(days=45))  # too old
    add_message(store, cid, status="draft", sent_at=None)
    at = run()
    assert metrics(at) == {
        "Clients": "1",
        "Sent, last 30 days": "3",
        "Failed, last 30 days": "1",
        "Waiting to send": "0",
        "Drafts": "1",
    }
    assert "Ready" in at.markdown[0].value
    assert "1 message failed" in at.warning[0].value
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "May news" in spec and '"sum"' in spec  # one bar per batch, stacked by status


@pytest.fixture
def navigation_only(monkeypatch):
    """Keep st.navigation mode across AppTest runs of app.py (see tests/test_auth.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def test_show_failed_messages_opens_the_filtered_list(store, navigation_only):
    cid = add_client(store)
    add_template(store, "t", "email", "hi", subject="s")
    add_message(store, cid, status="failed", subject="Bounced")
    add_message(store, cid, status="sent", subject="Fine")
    app = str(Path(PAGE).parent.parent / "app.py")  # switch_page needs the navigation
    at = AppTest.from_file(app, default_timeout=60).run()
    at.button(key="home_show_failed").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Communication"
    assert at.multiselect(key="comm_f_status").value == ["failed"]
    assert at.dataframe[0].value["Subject / text"].tolist() == ["Bounced"]


def test_excluded_messages_are_not_drafts_and_figures_have_separators(store):
    cid = add_client(store)
    add_template(store, "t", "email", "hi", subject="s")
    add_message(store, cid, status="draft", sent_at=None)
    add_message(store, cid, status="excluded", sent_at=None)
    store.write(
        lambda cur: cur.execute("INSERT INTO clients (name) SELECT 'c' || i FROM range(1500) t(i)")
    )
    at = run()
    assert metrics(at)["Drafts"] == "1"
    assert metrics(at)["Clients"] == "1,501"


def banner_app():
    from comms.ui.widgets.banners import demo_banner

    demo_banner()


def test_demo_banner_tells_the_truth_per_channel(store, monkeypatch, db_path):
    folder = Path(db_path).parent / "outbox"
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    assert at.info[0].value.startswith(
        f"Demo mode: nothing leaves this machine — messages are written to {folder}"
    )
    # E-mail through a real SMTP server, SMS still in demo mode: no "nothing leaves".
    monkeypatch.setenv("COMMS_SMTP_HOST", "mail.example.com")
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    text = at.info[0].value
    assert "nothing leaves this machine" not in text
    assert f"Demo mode (SMS only): SMS messages are written to {folder} and not sent" in text
    assert "E-mail really goes out through SMTP (mail.example.com:" in text


def test_demo_banner_warns_about_settings_that_do_not_work(store, monkeypatch):
    monkeypatch.setenv("COMMS_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "carrier-pigeon")
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    assert "E-mail really goes out" not in " ".join(i.value for i in at.info)
    assert at.warning[0].value.startswith("E-mail is set to go out through SMTP, but its settings")


def test_sms_hint_names_the_real_cause():
    from comms.ui.widgets.sms_counter import ucs2_hint

    assert ucs2_hint("Plain text") is None
    dots = ucs2_hint("Wait for it…")
    assert "because of …" in dots and "… → ..." in dots and "diacritics" not in dots
    letters = ucs2_hint("Dobrý den")
    assert "ý → y" in letters
    emoji = ucs2_hint("Hi 😀")
    assert "😀 has no GSM-7 form" in emoji


def test_recent_batches_say_what_became_of_what_was_sent(store):
    """Per batch: delivered, bounced and unsubscribed, from the delivery reports."""
    from comms.outbox.delivery import Report, apply

    cid = add_client(store)
    batch = store.scalar(
        "INSERT INTO batches (channel, name) VALUES ('email', 'June news') RETURNING id"
    )
    now = dt.datetime.now()
    ids = [add_message(store, cid, batch_id=batch, sent_at=now) for _ in range(4)]
    apply(
        store,
        [
            Report("bounced", ids[0], "file", code="5.1.1", reason="bounced: 5.1.1 user unknown"),
            Report("unsubscribed", ids[1], "web"),
            Report("complaint", ids[2], "imap"),
        ],
    )
    at = run()
    (table,) = [t for t in at.dataframe if "unsubscribed" in t.value.columns]
    row = table.value.iloc[0]
    assert (row["sent"], row["bounced"], row["unsubscribed"], row["complained"]) == (4, 1, 1, 1)
