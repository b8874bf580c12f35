"""The Outbox page under AppTest, on a real DuckDB file; actions change the database."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from comms import outbox
from comms.sending import dispatcher
from tests.claiming import wait_settled
from tests.grid import select_rows, settle, table_of

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "outbox.py")


def seed(store):
    """Batch 1: mixed states; batch 2: scheduled tomorrow; batch 3: finished; loose messages."""
    tomorrow = datetime.now().replace(microsecond=0) + timedelta(days=1)

    def fill(cur):
        cur.execute(
            "INSERT INTO clients (id, name, email) VALUES (1, 'Jana', 'jana@example.com'),"
            " (2, 'Petr', 'petr@example.com')"
        )
        cur.execute(
            "INSERT INTO batches (id, channel, name, created_by) VALUES"
            " (1, 'email', 'Spring offer', 'alice'), (2, 'sms', 'Reminder', 'bob'),"
            " (3, 'email', 'Done', 'alice')"
        )
        rows = [
            # id, client, batch, status, scheduled_at, error
            (1, 1, 1, "sent", None, None),
            (2, 2, 1, "sent", None, None),
            (3, 1, 1, "queued", None, None),
            (4, 2, 1, "queued", None, None),
            (5, 1, 1, "failed", None, "550 no such user"),
            (6, 2, 1, "interrupted", None, "the sending process stopped"),
            (7, 1, 1, "draft", None, None),
            (8, 1, 2, "queued", tomorrow, None),
            (9, 2, 2, "queued", tomorrow, None),
            (10, 1, 3, "sent", None, None),
            (11, 1, None, "failed", None, "21211 invalid number"),
            (12, 2, None, "interrupted", None, "connection dropped"),
            (13, 2, None, "queued", tomorrow, None),
        ]
        for mid, client, batch, status, when, error in rows:
            cur.execute(
                "INSERT INTO messages (id, client_id, channel, source, batch_id, to_address,"
                " subject, body_text, status, scheduled_at, error) VALUES"
                " (?, ?, 'email', ?, ?, ?, 'Hello', 'Hi there', ?, ?, ?)",
                [
                    mid,
                    client,
                    "bulk" if batch else "client detail",
                    batch,
                    f"c{client}@example.com",
                    status,
                    when,
                    error,
                ],
            )
        # Nothing moved lately: recently changed batches stay visible even when finished.
        cur.execute("UPDATE messages SET updated_at = updated_at - INTERVAL 1 DAY")

    store.write(fill)
    return tomorrow


def status_of(store, *ids):
    rows = store.rows(
        "SELECT id, status FROM messages WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
        [list(ids)],
    )
    return [r["status"] for r in rows]


@pytest.fixture
def app(store):
    seed(store)
    return AppTest.from_file(PAGE, default_timeout=30).run()


def card_text(at, bid):
    return " ".join(
        str(getattr(e, "value", "")) for e in at.get("markdown") + at.get("caption")
    ) + " ".join(p.proto.text for p in at.get("progress"))


def test_batches_show_counts_progress_and_schedule(app, store):
    assert not app.exception
    text = card_text(app, 1)
    assert "Batch #1: Spring offer" in text
    assert "Batch #2: Reminder" in text
    assert "Batch #3" not in text  # finished batches hidden by default
    assert ":blue-badge[queued 2]" in text and ":green-badge[sent 2]" in text
    assert ":orange-badge[interrupted 1]" in text and ":gray-badge[draft 1]" in text
    # 2 sent + 1 failed finished of 7 sendable
    assert "2 of 7 sent, 1 failed, 4 to go" in text
    assert "Scheduled for" in text and "(in 2" in text  # tomorrow: "in 24.0 h"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Scheduled"] == "3" and metrics["Interrupted"] == "2"
    assert metrics["Due now"] == "2"
    app.toggle(key="outbox_show_all").set_value(True).run()
    assert "Batch #3: Done" in card_text(app, 3)


def test_a_batch_that_just_finished_stays_visible(store):
    seed(store)
    store.write(lambda cur: cur.execute("UPDATE messages SET updated_at = now() WHERE id = 10"))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert "Batch #3: Done" in card_text(at, 3)
    assert "1 of 1 sent, finished" in card_text(at, 3)


def test_cancel_queued_asks_first_then_cancels(app, store):
    # it cancels drafts too, and says so
    assert app.button(key="cancel_1").label == "Cancel unsent"
    app.button(key="cancel_1").click().run()
    assert status_of(store, 3, 4, 7) == ["queued", "queued", "draft"]  # nothing yet
    assert any("Cancel 3 unsent message(s) of batch #1" in w.value for w in app.warning)
    app.button(key="cancel_1_yes").click().run()
    assert not app.exception
    assert status_of(store, 3, 4, 7) == ["cancelled", "cancelled", "cancelled"]
    assert status_of(store, 1, 5) == ["sent", "failed"]
    assert any("3 message(s) of batch #1 cancelled" in s.value for s in app.success)


def test_cancel_can_be_called_off(app, store):
    app.button(key="cancel_1").click().run()
    app.button(key="cancel_1_no").click().run()
    assert status_of(store, 3, 4) == ["queued", "queued"]
    assert not any("unsent message" in w.value for w in app.warning)


def test_retry_failed_requeues(app, store):
    app.button(key="retry_1").click().run()
    assert status_of(store, 5) == ["queued"]
    assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'retry'") == 1


def test_pause_and_resume(app, store):
    app.button(key="pause_1").click().run()
    assert store.scalar("SELECT paused FROM batches WHERE id = 1") is True
    assert ":orange-badge[:material/pause: Paused]" in card_text(app, 1)
    app.button(key="resume_1").click().run()
    assert store.scalar("SELECT paused FROM batches WHERE id = 1") is False


def test_resolve_interrupted_needs_a_decision(app, store):
    apply = app.button(key="resolve_1_apply")
    assert apply.disabled  # no decision yet
    assert any("Nobody can know whether they arrived" in m.value for m in app.markdown)
    app.radio(key="resolve_1_decision").set_value("sent").run()
    app.button(key="resolve_1_apply").click().run()
    assert status_of(store, 6) == ["sent"]


def test_resend_interrupted_needs_acknowledgement(app, store):
    app.radio(key="resolve_1_decision").set_value("resend").run()
    assert app.button(key="resolve_1_apply").disabled
    app.checkbox(key="resolve_1_sure").check().run()
    app.button(key="resolve_1_apply").click().run()
    assert status_of(store, 6) == ["queued"]


def test_single_messages_selection_actions(app, store):
    df = table_of(app, "loose_table").value
    assert list(df["id"]) == [12, 11, 13]  # interrupted first
    select_rows(app, "loose_table", [1])
    app.button(key="loose_retry").click().run()
    assert status_of(store, 11) == ["queued"]
    # interrupted ones wait for a decision whether selected or not
    app.radio(key="loose_resolve_decision").set_value("cancel").run()
    app.button(key="loose_resolve_apply").click().run()
    assert status_of(store, 12) == ["cancelled"]


def test_empty_outbox(store):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("No batch is waiting or sending." in c.value for c in at.caption)


def test_send_now_delivers_a_scheduled_batch_to_the_outbox_folder(app, store, db_path):
    """Batch 2 is scheduled for tomorrow and paused: Send now resumes it, makes both due
    and the background sender (not the page) sends them."""
    outbox_dir = Path(db_path).parent / "outbox"
    store.write(lambda cur: cur.execute("UPDATE batches SET paused = true WHERE id = 2"))
    # batch 1's due messages are cancelled first, so only what Send now made due can go
    store.write(
        lambda cur: cur.execute("UPDATE messages SET status = 'cancelled' WHERE id IN (3, 4)")
    )
    app.run()
    app.button(key="send_2").click().run()
    assert not app.exception
    # the page returned before anything was sent: it only made them due
    assert status_of(store, 8, 9) == ["queued", "queued"]
    assert any("Batch #2: 2 message(s) are due now." in s.value for s in app.success)
    assert store.scalar("SELECT paused FROM batches WHERE id = 2") is False
    bg = dispatcher.start_background(store, poll_seconds=0.05)
    try:
        assert wait_settled(store, 8, 9) == ["sent", "sent"]
    finally:
        dispatcher.stop_background(store)
    files = sorted(p.name for p in outbox_dir.glob("*.eml"))
    assert [f.split("-")[0] for f in files] == ["8", "9"]
    assert bg.last_error is None
    # the other messages were not touched
    assert status_of(store, 13) == ["queued"]


def test_send_now_queues_drafts_first(app, store, db_path, sender):
    """With the background sender running, batch 1's due messages go out on their own;
    Send now queues its draft and wakes the sender for it."""
    assert wait_settled(store, 3, 4) == ["sent", "sent"]
    # AppTest keeps only a live fragment's own last rerun, which would hide the page's flash
    app.toggle(key="outbox_live").set_value(False).run()
    app.button(key="send_1").click().run()
    assert not app.exception
    assert [s.value for s in app.success] == [
        "Batch #1: 1 message(s) are going out now; progress shows below."
    ]
    # drafts and due queued messages went out; failed / interrupted stay for a person
    assert wait_settled(store, 3, 4, 7) == ["sent", "sent", "sent"]
    assert status_of(store, 5, 6) == ["failed", "interrupted"]
    assert len(list((Path(db_path).parent / "outbox").glob("*.eml"))) == 3
    app.run()
    assert not app.exception


def test_send_selected_single_message_now(app, store, db_path, sender):
    select_rows(app, "loose_table", [2])
    assert app.button(key="loose_send").label == "Send 1 now"
    app.button(key="loose_send").click().run()
    assert wait_settled(store, 13) == ["sent"]
    assert not app.exception
    # 13 went out; so did batch 1's due messages (the background sender sends what is due)
    sent = {p.name.split("-")[0] for p in (Path(db_path).parent / "outbox").glob("*.eml")}
    assert sent == {"3", "4", "13"}
    app.run()  # the list no longer holds 13, and the old selection points at nothing else
    assert not app.exception
    assert app.button(key="loose_send").label == "Send 0 now"


@pytest.mark.browser
def test_send_now_in_a_real_browser(run_app, page, db_path):
    """Journey: open the Outbox, Send now a scheduled batch, see it finish; files are written."""
    url = run_app(seed=seed)
    page.goto(url + "/outbox")
    card = page.locator(".st-key-batch_card_2")
    card.get_by_text("Scheduled for").wait_for()
    card.get_by_role("button", name="Send now").click()
    page.get_by_text("Batch #2: 2 message(s) are going out now").wait_for()
    # A live refresh may show the old and the new progress line for a moment.
    card.get_by_text("2 of 2 sent, finished").first.wait_for()
    settle(page)
    expect(card.get_by_text("2 of 2 sent, finished")).to_have_count(1)
    run_app.stop()
    # Batch 1's due messages may leave too: the app's background dispatcher sends them.
    files = {p.name.split("-")[0] for p in (Path(db_path).parent / "outbox").glob("*.eml")}
    assert {"8", "9"} <= files
    assert not files & {"5", "6", "7", "11", "12", "13"}  # failed, interrupted, draft, later


def test_batch_counts_leave_out_empty_statuses_and_say_why_nothing_is_sendable():
    """A batch card shows the statuses it has, and an all-invalid batch says so."""
    from comms.ui.outbox import counts_markdown, progress_of

    text = counts_markdown({"sent": 5, "queued": 0, "failed": 0, "invalid": 2})
    assert text == ":green-badge[sent 5] :gray-badge[invalid 2]"
    assert progress_of({"invalid": 7})[1] == (
        "No sendable messages: all 7 are invalid (see the reasons in Communication)."
    )
    assert progress_of({})[1] == "No sendable messages."


def test_send_now_on_a_100k_draft_batch_returns_at_once_and_leaves_sending_to_the_sender(
    store, db_path
):
    """The journey that once froze the page for 153 s and ended in a conflict error."""
    n = 100_000

    def fill(cur):
        cur.execute("INSERT INTO batches (id, channel, name) VALUES (1, 'email', 'Big')")
        cur.execute(
            "INSERT INTO messages (channel, source, batch_id, to_address, subject, body_text,"
            " status) SELECT 'email', 'bulk', 1, 'c' || range || '@example.com', 'Hello',"
            " 'Hi', 'draft' FROM range(?)",
            [n],
        )

    store.write(fill)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["outbox_live"] = False
    at.run()
    assert "100,000 draft(s) kept to send later" in card_text(at, 1)
    at.button(key="send_1").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == [
        "Batch #1: 100,000 message(s) are due now. The background sender is not running in "
        "this process, so they go out when it runs (or with `comms send`)."
    ]
    assert not at.error
    # the page sent nothing itself: every message is queued and due now, none sending
    counts = store.rows("SELECT status, count(*) AS n FROM messages GROUP BY ALL")
    assert counts == [{"status": "queued", "n": n}]
    assert outbox.due_count(store, batch_id=1) == n
    entry = store.rows("SELECT detail->>'count' AS n FROM action_log WHERE action = 'send now'")
    assert entry == [{"n": str(n)}]
    at.run()
    assert not at.exception
    assert "Due now" in card_text(at, 1)


@pytest.fixture
def navigation_only(monkeypatch):
    """Keep st.navigation mode across AppTest runs of app.py (see tests/test_auth.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def drafts_batch(store, *statuses):
    """Batch 9: one message per status given (client 1), nothing moved lately."""

    def fill(cur):
        cur.execute("INSERT INTO clients (id, name) VALUES (1, 'Jana')")
        cur.execute("INSERT INTO batches (id, channel, name) VALUES (9, 'email', 'Kept')")
        for n, status in enumerate(statuses, start=900):
            cur.execute(
                "INSERT INTO messages (id, client_id, channel, source, batch_id, to_address,"
                " subject, body_text, status) VALUES (?, 1, 'email', 'bulk', 9,"
                " 'jana@example.com', 'Hi', 'Hi', ?)",
                [n, status],
            )

    store.write(fill)


def test_excluded_messages_are_out_of_the_batch_work(store):
    drafts_batch(store, "draft", "excluded", "invalid")
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["outbox_live"] = False
    at.run()
    text = card_text(at, 9)
    assert "0 of 1 sent, 1 to go" in text  # the excluded and invalid ones are not work
    assert ":gray-badge[excluded 1]" in text and ":gray-badge[invalid 1]" in text
    assert "1 draft(s) kept to send later" in text
    at.button(key="send_9").click().run()
    assert any("Batch #9: 1 message(s) are due now" in s.value for s in at.success)
    assert status_of(store, 900, 901, 902) == ["queued", "excluded", "invalid"]
    at.run()
    assert "1 draft(s) kept" not in card_text(at, 9)


def test_a_discarded_batch_is_not_called_finished(store):
    drafts_batch(store, "cancelled", "cancelled", "invalid")
    store.write(lambda cur: cur.execute("UPDATE messages SET updated_at = now()"))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    text = card_text(at, 9)
    assert "Discarded: 2 messages cancelled, nothing sent." in text
    assert "finished" not in text


def test_review_is_offered_for_a_batch_not_yet_sent(store, navigation_only):
    seed(store)
    store.write(lambda cur: cur.execute("DELETE FROM clients WHERE id = 1"))
    drafts_batch(store, "draft", "invalid")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert at.button(key="review_9").label == "Review"
    assert not any(b.key == "review_1" for b in at.button)  # batch 1 is sending
    # From the app: Review opens the batch in Bulk send, at its review step.
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    app.switch_page("pages/outbox.py").run()
    app.button(key="review_9").click().run()
    assert not app.exception
    assert app.query_params["batch"] == "9"
    assert any(s.value.endswith("Review batch 9") for s in app.subheader)


def test_a_sending_batch_shows_its_rate_and_time_left(store):
    drafts_batch(store, *["queued"] * 40, *["sent"] * 20)
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO message_attempts (message_id, attempt, ts, outcome)"
            " SELECT id, 1, now() - INTERVAL 10 SECOND, 'sent' FROM messages"
            " WHERE batch_id = 9 AND status = 'sent'"
        )
    )
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["outbox_live"] = False
    at.run()
    text = card_text(at, 9)
    # 20 sent over the last 10 s: 2 per second, 40 to go: about 20 s
    assert "20 of 60 sent, 40 to go · 2.0/s · about 20 s left" in text


def test_numbers_have_thousands_separators(store):
    drafts_batch(store, *["draft"] * 1200)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["outbox_live"] = False
    at.run()
    assert "1,200 draft(s) kept" in card_text(at, 9)
    assert ":gray-badge[draft 1,200]" in card_text(at, 9)


def test_outbox_reads_in_czech(store):
    """The same page in Czech: statuses, progress, figures and plurals in Czech."""
    from comms import i18n
    from comms.ui.common import LANGUAGE_KEY
    from comms.ui.outbox import progress_of

    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = "cs"
    at.run()
    assert not at.exception
    text = card_text(at, 1)
    assert "Dávka č. 1: Spring offer" in text
    assert ":blue-badge[ve frontě 2]" in text and ":orange-badge[přerušeno 1]" in text
    assert "Odesláno 2 z 7, selhalo 1, zbývá 4" in text
    assert "Naplánováno na " in text and "(za 2" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Naplánováno"] == "3" and metrics["Přerušeno"] == "2"
    assert any("Nikdo neví, jestli dorazily" in m.value for m in at.markdown)
    i18n.set_language("cs")
    try:
        assert progress_of({"cancelled": 1})[1] == "Zahozeno: 1 zpráva zrušena, nic se neodeslalo."
        assert progress_of({"cancelled": 3})[1] == "Zahozeno: 3 zprávy zrušeny, nic se neodeslalo."
        assert progress_of({"cancelled": 5})[1] == "Zahozeno: 5 zpráv zrušeno, nic se neodeslalo."
    finally:
        i18n.set_language("en")
    assert progress_of({"cancelled": 1})[1] == "Discarded: 1 message cancelled, nothing sent."
