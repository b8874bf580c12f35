"""The Communication page under AppTest: filters, paging, one message, actions, the
client view with its timeline, and the whole journey draft -> list -> sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms.i18n import set_language
from comms.messages import history
from comms.sending import dispatcher
from tests.grid import select_rows
from tests.seed_history import add_client, add_message

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "communication.py")
CLIENT_PAGE = str(ROOT / "pages" / "client.py")


def run(obj) -> AppTest:
    """Run the app (or a widget's app after an interaction) and check it did not raise."""
    at = obj.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ids_shown(at: AppTest) -> list[int]:
    return at.dataframe[0].value["ID"].tolist()


@pytest.fixture
def data(store):
    jana = add_client(store)
    petr = add_client(store, name="Petr Svoboda", email="petr@example.com", phone="+420602000111")
    batch = store.scalar(
        "INSERT INTO batches (channel, name) VALUES ('email', 'Spring sale') RETURNING id"
    )
    ids = {
        "old": add_message(
            store, jana, subject="January news", created_at=dt.datetime(2026, 1, 5, 10)
        ),
        "bulk": add_message(
            store,
            petr,
            batch_id=batch,
            subject="Spring sale",
            status="failed",
            reason="rejected by server",
            error="550 no such user",
        ),
        "sms": add_message(
            store,
            jana,
            channel="sms",
            source="client detail",
            subject=None,
            body_text="Parcel ready " + "x" * 150,
            status="draft",
            to_address="+420601123456",
        ),
        "cli": add_message(store, petr, source="cli", subject="Invoice 42", status="queued"),
    }
    store.cursor().execute(
        "INSERT INTO message_attempts (message_id, attempt, outcome, detail)"
        " VALUES (?, 1, 'permanent', '550 no such user')",
        [ids["bulk"]],
    )
    return store, jana, petr, batch, ids


def test_every_message_newest_first(data):
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert ids_shown(at) == [ids["cli"], ids["sms"], ids["bulk"], ids["old"]]
    assert "**4 messages**" in at.markdown[0].value
    assert at.dataframe[0].value["Client"].tolist()[0] == "Petr Svoboda"


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("comm_f_channel", "sms", ["sms"]),
        ("comm_f_status", ["failed", "queued"], ["cli", "bulk"]),
        ("comm_f_source", "cli", ["cli"]),
        ("comm_f_client", "svoboda", ["cli", "bulk"]),
        ("comm_f_text", "parcel", ["sms"]),
        ("comm_f_dates", (dt.date(2026, 1, 1), dt.date(2026, 1, 31)), ["old"]),
    ],
)
def test_filters(data, key, value, expected):
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    widget = next(w for w in at.main if getattr(w, "key", None) == key)
    run(widget.set_value(value))
    assert ids_shown(at) == [ids[k] for k in expected]


def test_batch_filter_and_nothing_found(data):
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    run(at.selectbox(key="comm_f_batch").set_value(batch))
    assert ids_shown(at) == [ids["bulk"]]
    run(at.text_input(key="comm_f_text").set_value("no such words"))
    assert not at.dataframe and "No message matches" in at.info[0].value
    run(at.button[0].click())  # Clear filters
    assert len(ids_shown(at)) == 4


def test_paging_in_duckdb(store):
    cid = add_client(store)
    store.cursor().execute(
        "INSERT INTO messages (client_id, channel, source, subject, status)"
        " SELECT ?, 'email', 'bulk', 'm' || i, 'sent' FROM range(120) t(i)",
        [cid],
    )
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert len(at.dataframe[0].value) == 50 and "3 pages of 50 messages" in at.markdown[0].value
    run(at.number_input(key="comm_page").set_value(3))
    assert len(at.dataframe[0].value) == 20


def test_open_failed_message_shows_attempts_and_retry(data):
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    run(select_rows(at, "comm_table", [2]))
    shown = " ".join(m.value for m in at.markdown)
    assert f"E-mail {ids['bulk']}: Spring sale" in shown and "Spring sale (" in shown
    assert "550 no such user" in at.error[0].value
    attempts = at.dataframe[1].value
    assert attempts["Outcome"].tolist() == ["permanent"]
    run(at.button(key="comm_retry").click())
    assert history.get_message(store, ids["bulk"])["status"] == "queued"
    assert "Queued again: 1" in at.success[0].value


def test_sms_shows_segments_and_cancel_queued_and_copy(data):
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    run(select_rows(at, "comm_table", [1]))
    captions = [c.value for c in at.caption]
    assert "163 characters · GSM-7 · 2 segments" in captions and "Segment 2 of 2" in captions
    run(at.button(key="comm_copy").click())
    assert "Copied into a new draft" in at.success[0].value
    # rows moved down by one, so the selection is cleared rather than pointing elsewhere
    assert any("Select messages in the table" in c.value for c in at.caption)
    assert history.count_messages(store) == 5
    new = history.list_messages(store, limit=1).iloc[0]
    assert (new["status"], new["channel"]) == ("draft", "sms")
    # select the queued CLI message and cancel it
    run(select_rows(at, "comm_table", [1]))
    run(at.button(key="comm_cancel").click())
    assert history.get_message(store, ids["cli"])["status"] == "cancelled"


def test_client_view_has_timeline(data):
    store, jana, petr, batch, ids = data
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["comms_comm_client_id"] = jana
    run(at)
    assert at.subheader[0].value.startswith("Jana Nováková")
    assert ids_shown(at) == [ids["sms"], ids["old"]]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = charts[0].proto.spec
    assert '"status"' in spec and '"channel"' in spec
    assert "%Y-%m-%d %H:%M" in spec  # 24-hour axis labels with the date
    assert "Client" not in at.dataframe[0].value.columns  # the name is in the header
    assert at.query_params["client"] == str(jana)
    run(at.button[0].click())  # Show every client
    assert len(ids_shown(at)) == 4
    assert "Client" in at.dataframe[0].value.columns


def test_client_via_query_param(data):
    store, jana, petr, batch, ids = data
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["client"] = str(petr)
    run(at)
    assert ids_shown(at) == [ids["cli"], ids["bulk"]]


def test_journey_draft_from_detail_to_sent(store, db_path, tmp_path):
    """Compose in the client detail, save a draft, find it in the list, send it, see it sent."""
    cid = add_client(store)
    detail = AppTest.from_file(CLIENT_PAGE, default_timeout=60)
    detail.session_state["comms_client_id"] = cid
    run(detail)
    detail.text_input(key="cd_email_subject").set_value("Your appointment")
    detail.text_area(key="cd_email_body").set_value("Dear {{ name }}, see you on *Monday*.")
    run(detail.button(key="cd_save_draft").click())
    mid = history.client_history(store, cid)[0]["id"]

    comm = run(AppTest.from_file(PAGE, default_timeout=60))
    assert ids_shown(comm) == [mid]
    assert comm.dataframe[0].value["Status"].tolist() == ["draft"]
    run(select_rows(comm, "comm_table", [0]))
    run(comm.button(key="comm_send_drafts").click())
    assert history.get_message(store, mid)["status"] == "queued"

    dispatcher.send_now(store, [mid])  # the app's background thread does this in production
    run(comm)
    assert comm.dataframe[0].value["Status"].tolist() == ["sent"]
    msg = history.get_message(store, mid)
    assert msg["provider_id"] and msg["sent_at"] is not None
    files = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(files) == 1 and "Your appointment" in files[0].read_text(errors="replace")


def test_upload_suppression_list_reports_bad_lines(store):
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    data = "email\nann@example.com\nnot an address\n+420 602 111 222\nann@example.com\n"
    uploader = at.get("file_uploader")[0]
    run(uploader.upload("optout.csv", data.encode("cp1250"), "text/csv"))
    text = " ".join(m.value for m in at.markdown)
    assert "2 address(es): 1 e-mail, 1 phone" in text and "header line was skipped" in text
    assert "1 line(s) are not an e-mail or phone number" in at.warning[0].value
    bad = at.dataframe[-1].value
    assert bad["Line"].tolist() == [3] and bad["Text"].tolist() == ["not an address"]
    run(at.button(key="supp_import").click())
    assert "2 address(es) added" in at.success[0].value
    rows = store.rows("SELECT address, channel, reason FROM suppressions ORDER BY address")
    assert rows == [
        {"address": "+420602111222", "channel": "sms", "reason": "uploaded list"},
        {"address": "ann@example.com", "channel": "email", "reason": "uploaded list"},
    ]
    # remove one by selecting it in the list
    run(select_rows(at, "supp_table", [0]))
    run(at.button(key="supp_remove").click())
    assert store.scalar("SELECT count(*) FROM suppressions") == 1


def test_open_client_detail_from_a_message(data, monkeypatch):
    """Through app.py's navigation: the message's client opens in the client detail."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # keep st.navigation mode (see tests/test_auth.py)
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    store, jana, petr, batch, ids = data
    at = run(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60))
    run(at.switch_page("pages/communication.py"))
    run(select_rows(at, "comm_table", [0]))
    run(at.button(key="comm_msg_open_client").click())
    assert at.session_state["comms_client_id"] == petr
    assert at.title[0].value == "Petr Svoboda"


def test_empty_desk_says_how_messages_arrive(store):
    """With no message at all the page explains where messages come from, not "no match"."""
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert not at.exception and not at.dataframe
    assert "No messages yet" in at.info[0].value
    assert not any("Select messages" in c.value for c in at.caption)


def test_invalid_message_says_why_it_cannot_be_sent_without_blaming_a_server(store):
    """An invalid message never reached a server; empty facts (not sent) are left out."""
    jana = add_client(store)
    add_message(
        store,
        jana,
        status="invalid",
        reason="missing field: points",
        error="this client has no value for “points”",
    )
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    run(select_rows(at, "comm_table", [0]))
    assert "Cannot be sent: this client has no value for “points”" in at.warning[0].value
    assert not at.error
    shown = " ".join(m.value for m in at.markdown)
    assert "**Reason:** missing field: points" in shown
    assert "**Sent:**" not in shown and "**Provider id:**" not in shown
    assert "**Batch:**" not in shown  # a message outside any batch
    # nothing to send, retry or cancel: the buttons say what they do, not "0 draft(s)"
    assert at.button(key="comm_send_drafts").label == "Send drafts"
    assert at.button(key="comm_retry").label == "Retry failed"


def test_a_message_sent_after_a_retry_shows_no_old_failure(store):
    cid = add_client(store)
    mid = add_message(
        store, cid, subject="Retried", status="sent", reason="rejected by server", error=None
    )
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    assert at.dataframe[0].value["Reason / error"].tolist() == [""]
    run(select_rows(at, "comm_table", [0]))
    shown = " ".join(m.value for m in at.markdown)
    assert f"E-mail {mid}: Retried" in shown and "rejected by server" not in shown
    assert not at.error


def test_source_column_is_wide_enough_for_client_detail(data):
    at = run(AppTest.from_file(PAGE, default_timeout=60))
    config = at.dataframe[0].proto.columns
    assert '"Source"' in config and '"medium"' in config.split('"Source"')[1][:80]


def test_count_on_its_way(store):
    cid = add_client(store)
    add_message(store, cid, status="queued")  # due now
    add_message(store, cid, status="queued", scheduled_at=dt.datetime.now() + dt.timedelta(days=1))
    add_message(store, cid, status="sent")
    assert history.count_on_its_way(store, history.MessageFilter(client_id=cid)) == 1
    assert history.on_its_way(history.client_history_df(store, cid))


@pytest.fixture
def czech():
    """Czech in this thread too: AppTest calls a widget's format_func here, not in the page."""
    set_language("cs")
    yield
    set_language("en")


def test_the_communication_page_speaks_czech(data, czech):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["ui_language"] = "cs"
    run(at)
    assert at.title[0].value == "Komunikace"
    table = at.dataframe[0].value
    assert {"Klient", "Stav", "Předmět / text", "Důvod / chyba"} <= set(table.columns)
    assert "zprávy**, od nejnovější" in at.markdown[0].value
