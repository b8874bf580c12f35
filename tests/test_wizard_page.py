"""The bulk send wizard under AppTest, on a real DuckDB file."""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms import outbox
from comms import templates as tpl
from comms.i18n import format_datetime, set_language
from tests.grid import select_rows

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "wizard.py")


def seed(store):
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (id, name, email, email_valid, phone, phone_kind, city, lists)"
            " VALUES (1, 'Jana Nová', 'jana@example.com', true, '+420601123456', 'mobile', 'Brno', ['VIP']),"
            " (2, 'Petr Malý', 'petr@@bad', false, '+420601123457', 'mobile', 'Praha', ['VIP']),"
            " (3, 'Eva Veselá', 'eva@example.com', true, '+420221234567', 'fixed_line', 'Ostrava', [])"
        )
    )
    tpl.create_template(
        store,
        name="Welcome",
        channel="email",
        subject="Hello {{ first_name }}",
        body="Dear **{{ name }}** from {{ city }}.",
    )
    tpl.create_template(store, name="Reminder", channel="sms", body="Dobrý den {{ name }}, ")


def app(store, channel="email", ids=(1, 2, 3), *, seeded=False):
    if not seeded:
        seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["comms_selection"] = {"client_ids": list(ids)}
    at.session_state["comms_wizard_channel"] = channel
    return at.run()


def next_button(at):
    return next(b for b in at.button if b.key and b.key.startswith("wiz_next_"))


def to_review(at, channel="email"):
    """Template, content, (attachments), recipients: Next through to the generated batch."""
    for _ in range(4 if channel == "email" else 3):
        next_button(at).click().run()
        assert not at.exception
    return int(at.query_params["batch"])


def to_finish(at, channel="email"):
    batch_id = to_review(at, channel)
    at.button(key="wiz_next_review").click().run()
    assert at.query_params["step"] == "finish"
    return batch_id


def statuses(store, batch_id):
    return {
        r["client_id"]: r["status"]
        for r in store.rows("SELECT client_id, status FROM messages WHERE batch_id = ?", [batch_id])
    }


def test_without_selection_explains_and_offers_a_list(store):
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "No recipients chosen yet" in at.info[0].value
    at.selectbox(key="wiz_pick_list").select("VIP").run()
    next(b for b in at.button if b.label == "Use this list").click().run()
    assert at.session_state["comms_selection"] == {"filter": {"list": "VIP"}, "count": 2}
    assert r"all 2 matching clients \(list\: VIP\)" in at.markdown[0].value


def test_email_journey_generate_review_edit_keep(store):
    at = app(store)
    assert not at.exception
    assert "3 selected clients" in at.markdown[0].value
    # 1. template (the first e-mail template is preselected)
    assert at.selectbox(key="wiz_template_select").value is not None
    next_button(at).click().run()
    # 2. content: this send only
    assert at.text_input(key="wiz_subject_in").value == "Hello {{ first_name }}"
    at.text_area(key="wiz_body_in").input("Dear **{{ name }}** from {{ city }}!").run()
    assert any("Preview for Jana Nová" in m.value for m in at.markdown)
    next_button(at).click().run()
    # 3. attachments
    assert "Attachments" in at.subheader[0].value
    next_button(at).click().run()
    # 4. recipients, checked before generating
    assert "4. Recipients" in at.subheader[0].value
    assert [m.value for m in at.metric][:4] == ["3", "2", "1", "0"]
    assert any("invalid e-mail **1**" in m.value for m in at.markdown)
    assert next_button(at).label == "Generate 3 messages"
    next_button(at).click().run()
    assert not at.exception
    # 5. review: the URL names the batch
    batch_id = int(at.query_params["batch"])
    assert at.metric[1].value == "2"
    assert any("invalid e-mail" in m.value for m in at.markdown)
    rows = store.rows(
        "SELECT id, client_id, status, body_text FROM messages WHERE batch_id = ? ORDER BY id",
        [batch_id],
    )
    assert [r["status"] for r in rows] == ["draft", "invalid", "draft"]
    assert rows[0]["body_text"] == "Dear **Jana Nová** from Brno!"
    # the template itself is unchanged
    assert tpl.get_template_by_name(store, "Welcome").body == "Dear **{{ name }}** from {{ city }}."
    # open the invalid one and fix its address
    bad = rows[1]["id"]
    at.selectbox(key="wiz_open_select").select(bad).run()
    assert any("Cannot be sent: invalid e-mail" in e.value for e in at.error)
    address = next(t for t in at.text_input if t.label == "E-mail address")
    address.input("petr@example.com")
    next(b for b in at.button if b.label == "Save changes").click().run()
    assert not at.exception
    assert store.scalar("SELECT status FROM messages WHERE id = ?", [bad]) == "draft"
    # exclude the first: its own status, out of the batch's work
    at.selectbox(key="wiz_open_select").select(rows[0]["id"]).run()
    at.button(key=f"wiz_exclude_{rows[0]['id']}").click().run()
    assert store.scalar("SELECT status FROM messages WHERE id = ?", [rows[0]["id"]]) == "excluded"
    assert at.metric[3].value == "1"
    # 6. finish: keep for later (logged)
    at.button(key="wiz_next_review").click().run()
    assert any("2** of 3 messages are ready" in m.value for m in at.markdown)
    at.button(key="wiz_keep").click().run()
    assert "2 messages kept as drafts" in at.success[0].value
    assert statuses(store, batch_id) == {1: "excluded", 2: "draft", 3: "draft"}
    kept = store.rows("SELECT batch_id, detail FROM action_log WHERE action = 'keep for later'")
    assert [(r["batch_id"], json.loads(r["detail"])) for r in kept] == [(batch_id, {"count": 2})]


def test_invalid_template_blocks_next_and_shows_line(store):
    at = app(store)
    next_button(at).click().run()
    at.text_area(key="wiz_body_in").input("Hi\n{{ name }").run()
    assert "body: syntax error on line 2" in at.error[0].value
    assert next_button(at).disabled
    at.text_area(key="wiz_body_in").input("{{ ''.__class__ }}").run()
    assert "Python internals" in at.error[0].value


def test_save_as_template_only_when_pressed(store):
    at = app(store)
    next_button(at).click().run()
    at.text_input(key="wiz_subject_in").input("New subject {{ name }}").run()
    assert tpl.get_template_by_name(store, "Welcome").subject == "Hello {{ first_name }}"
    at.text_input(key="wiz_save_name").input("Welcome v2").run()
    at.button(key="wiz_save_new").click().run()
    assert tpl.get_template_by_name(store, "Welcome v2").subject == "New subject {{ name }}"
    assert tpl.get_template_by_name(store, "Welcome").subject == "Hello {{ first_name }}"


def test_blank_template_reads_blank_after_going_back(store):
    """The picker names the blank message, never "Choose an option"."""
    at = app(store)
    at.selectbox(key="wiz_template_select").select(0).run()
    assert at.selectbox(key="wiz_template_select").value == 0
    next_button(at).click().run()
    at.text_input(key="wiz_subject_in").input("Hi").run()
    at.text_area(key="wiz_body_in").input("Plain text").run()
    at.text_input(key="wiz_save_name").input("Plain").run()
    at.button(key="wiz_save_new").click().run()
    at.button(key="wiz_back_1").click().run()
    picker = at.selectbox(key="wiz_template_select")
    assert picker.value is not None
    assert picker.format_func(0) == "(blank message)"


def test_preview_any_recipient(store):
    at = app(store)
    next_button(at).click().run()
    assert any("Preview for Jana Nová" in m.value for m in at.markdown)
    at.text_input(key="wiz_preview_search").input("eva").run()
    assert any("Preview for Eva Veselá" in m.value for m in at.markdown)
    assert any("Ostrava" in h.proto.body for h in at.get("html"))
    at.text_input(key="wiz_preview_search").input("").run()
    at.selectbox(key="wiz_preview_client").select(2).run()
    assert any("Preview for Petr Malý" in m.value for m in at.markdown)


def test_sms_counter_diacritics_and_send_now(store):
    at = app(store, channel="sms")
    assert "SMS" in at.markdown[0].value
    next_button(at).click().run()
    at.text_area(key="wiz_body_in").input("Dobrý den {{ name }}, " + "ř" * 60).run()
    assert any("UCS-2" in c.value and "2** segments" in c.value for c in at.caption)
    at.toggle(key="wiz_gsm7_in").set_value(True).run()
    assert any("GSM-7" in c.value and "1** segment " in c.value for c in at.caption)
    next_button(at).click().run()  # SMS skips attachments
    # numbered as in the progress line: 1. Template, 2. Content, 3. Recipients, 4. Review
    assert "3. Recipients" in at.subheader[0].value
    assert any("not a mobile **1**" in m.value for m in at.markdown)
    next_button(at).click().run()
    assert at.subheader[0].value.startswith("4. Review batch")
    assert any("not a mobile" in m.value for m in at.markdown)
    batch_id = int(at.query_params["batch"])
    body = store.scalar(
        "SELECT body_text FROM messages WHERE batch_id = ? AND client_id = 1", [batch_id]
    )
    assert body == "Dobry den Jana Nova, " + "r" * 60
    at.button(key="wiz_next_review").click().run()
    at.button(key="wiz_send_now").click().run()
    assert "2 messages queued to send now" in at.success[0].value
    assert (
        store.scalar(
            "SELECT count(*) FROM messages WHERE batch_id = ? AND status = 'queued'", [batch_id]
        )
        == 2
    )


def test_segment_warning_above_the_limit(store, monkeypatch):
    monkeypatch.setenv("COMMS_SMS_MAX_SEGMENTS", "1")
    at = app(store, channel="sms")
    next_button(at).click().run()
    at.text_area(key="wiz_body_in").input("x" * 200).run()
    assert any("more than 1" in w.value for w in at.warning)


def test_schedule(store):
    at = app(store)
    to_finish(at)
    schedule = at.button(key="wiz_schedule")
    assert schedule.label.startswith("Schedule for ")
    schedule.click().run()
    assert "scheduled for" in at.success[0].value
    row = store.rows(
        "SELECT count(*) n, min(scheduled_at) t FROM messages WHERE status = 'queued'"
    )[0]
    assert row["n"] == 2 and row["t"].hour == 9


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_attachments_step_only_for_email(store, channel):
    at = app(store, channel=channel)
    next_button(at).click().run()
    next_button(at).click().run()
    expected = "3. Attachments" if channel == "email" else "3. Recipients"
    assert expected in at.subheader[0].value


def test_a_picked_file_is_attached_at_once_and_logged(store):
    at = app(store)
    next_button(at).click().run()
    next_button(at).click().run()
    at.file_uploader[0].set_value(("terms.pdf", b"%PDF-1.4 terms", "application/pdf")).run()
    assert not at.exception
    assert "Attached: terms.pdf." in at.success[0].value
    assert any("terms.pdf" in m.value for m in at.markdown)
    assert not any(b.label == "Attach" for b in at.button)  # no second step to forget
    logged = store.rows("SELECT action, detail FROM action_log WHERE action = 'attach'")
    assert len(logged) == 1 and json.loads(logged[0]["detail"])["files"] == ["terms.pdf"]
    # Next straight away: the file goes with every message.
    next_button(at).click().run()
    next_button(at).click().run()
    batch_id = int(at.query_params["batch"])
    names = store.rows(
        "SELECT DISTINCT a.filename FROM message_attachments ma"
        " JOIN attachments a ON a.id = ma.attachment_id"
        " JOIN messages m ON m.id = ma.message_id WHERE m.batch_id = ?",
        [batch_id],
    )
    assert names == [{"filename": "terms.pdf"}]


def test_a_file_over_the_limit_is_refused_and_blocks_next(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_ATTACHMENT_MB", "1")
    at = app(store)
    next_button(at).click().run()
    next_button(at).click().run()
    at.file_uploader[0].set_value(("big.bin", b"x" * (2 * 1024 * 1024), "application/octet-stream"))
    at.run()
    assert "the limit is" in at.error[0].value
    assert next_button(at).disabled


def test_send_a_test_through_the_background_sender(store, db_path, sender):
    at = app(store)
    batch_id = to_finish(at)
    at.text_input(key="wiz_test_address").input("tester@example.com")
    at.button(key="wiz_send_test").click().run()
    assert not at.exception
    for _ in range(100):  # the background sender sends it; the page only shows it
        if store.scalar("SELECT count(*) FROM messages WHERE source = 'test' AND status = 'sent'"):
            break
        time.sleep(0.05)
    at.run()
    assert any("Test sent to tester@example.com" in s.value for s in at.success)
    row = store.rows(
        "SELECT status, source, subject, to_address FROM messages WHERE source = 'test'"
    )
    assert row == [
        {
            "status": "sent",
            "source": "test",
            "subject": "[TEST] Hello Jana",
            "to_address": "tester@example.com",
        }
    ]
    # The batch itself is untouched: still drafts.
    assert (
        store.scalar(
            "SELECT count(*) FROM messages WHERE batch_id = ? AND status = 'draft'", [batch_id]
        )
        == 2
    )
    outbox_dir = db_path.parent / "outbox"
    assert any(outbox_dir.rglob("*.eml"))


def test_regenerating_replaces_the_previous_batch(store):
    at = app(store)
    first = to_review(at)
    at.button(key="wiz_back_review").click().run()
    assert "batch" not in at.query_params
    assert f"Batch {first} was generated already" in at.info[0].value
    next_button(at).click().run()
    second = int(at.query_params["batch"])
    assert second != first
    rows = store.rows(
        "SELECT batch_id, status, count(*) AS n FROM messages GROUP BY ALL ORDER BY ALL"
    )
    assert rows == [
        {"batch_id": first, "status": "cancelled", "n": 2},
        {"batch_id": first, "status": "invalid", "n": 1},
        {"batch_id": second, "status": "draft", "n": 2},
        {"batch_id": second, "status": "invalid", "n": 1},
    ]


def test_a_new_channel_from_the_directory_starts_over(store):
    at = app(store)
    next_button(at).click().run()
    assert at.session_state["wiz_step"] == 1
    at.session_state["comms_wizard_channel"] = "sms"
    at.run()
    assert "SMS" in at.markdown[0].value
    assert at.selectbox(key="wiz_template_select").value is not None  # back at step 1


def test_template_attachment_can_be_removed_for_this_send(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_ATTACHMENT_MB", "1")
    at = app(store)
    tid = tpl.get_template_by_name(store, "Welcome").id
    aid = tpl.attach(store, tid, "terms.pdf", b"%PDF-1.4")
    tpl.attach(store, tid, "price list.pdf", b"%PDF-1.5")
    at.run()
    next_button(at).click().run()
    next_button(at).click().run()
    assert any("terms.pdf" in m.value for m in at.markdown)
    assert any("of 1 MB per message used" in c.value for c in at.caption)
    at.button(key=f"wiz_rm_{aid}").click().run()
    assert not any("terms.pdf" in m.value for m in at.markdown)
    next_button(at).click().run()
    next_button(at).click().run()
    batch_id = int(at.query_params["batch"])
    names = store.rows(
        "SELECT DISTINCT a.filename FROM message_attachments ma"
        " JOIN attachments a ON a.id = ma.attachment_id"
        " JOIN messages m ON m.id = ma.message_id WHERE m.batch_id = ?",
        [batch_id],
    )
    assert names == [{"filename": "price list.pdf"}]
    # The template keeps both.
    assert len(tpl.get_template(store, tid).attachments) == 2


def test_discard_asks_first_naming_the_count(store):
    at = app(store)
    batch_id = to_finish(at)
    at.button(key="wiz_discard").click().run()
    # Nothing is cancelled yet: the question names the count.
    assert statuses(store, batch_id) == {1: "draft", 2: "invalid", 3: "draft"}
    assert f"Discard batch {batch_id}? Its 2 drafts will be cancelled" in at.warning[0].value
    at.button(key="wiz_discard_no").click().run()
    assert statuses(store, batch_id) == {1: "draft", 2: "invalid", 3: "draft"}
    at.button(key="wiz_discard").click().run()
    at.button(key="wiz_discard_yes").click().run()
    assert f"Batch {batch_id} discarded: 2 drafts cancelled" in at.success[0].value
    assert statuses(store, batch_id) == {1: "cancelled", 2: "invalid", 3: "cancelled"}
    # A reload calls it discarded (not finished).
    again = AppTest.from_file(PAGE, default_timeout=30)
    again.query_params["batch"] = str(batch_id)
    again.run()
    assert f"Batch {batch_id} was discarded" in again.info[0].value


def test_finish_with_nothing_sendable_says_why(store):
    """Only the invalid address chosen: the finish step explains instead of greying out."""
    at = app(store, ids=(2,))
    to_finish(at)
    assert not at.exception
    assert at.button(key="wiz_send_now").disabled
    assert "Nothing can be sent: every message is invalid or excluded" in at.warning[0].value


def test_a_reload_lands_on_the_same_step(store):
    at = app(store)
    batch_id = to_review(at)
    # A new session (a reload, a bookmark): nothing in session state but the URL.
    again = AppTest.from_file(PAGE, default_timeout=30)
    again.query_params["batch"] = str(batch_id)
    again.run()
    assert not again.exception
    assert again.subheader[0].value == f"5. Review batch {batch_id}"
    assert "No recipients chosen yet" not in " ".join(i.value for i in again.info)
    again.button(key="wiz_next_review").click().run()
    assert again.query_params["step"] == "finish"
    fresh = AppTest.from_file(PAGE, default_timeout=30)
    fresh.query_params.update({"batch": str(batch_id), "step": "finish"})
    fresh.run()
    assert fresh.subheader[0].value == "6. Finish"
    fresh.button(key="wiz_send_now").click().run()
    assert "2 messages queued to send now" in fresh.success[0].value
    # Once queued, the batch has left the wizard: a reload says so and links to Outbox.
    last = AppTest.from_file(PAGE, default_timeout=30)
    last.query_params["batch"] = str(batch_id)
    last.run()
    assert f"Batch {batch_id} has left the wizard: 1 invalid, 2 queued" in last.info[0].value


def test_the_menu_brings_back_the_batch_generated_in_this_session(store):
    at = app(store)
    batch_id = to_review(at)
    at.query_params.clear()  # the menu's link to Bulk send carries no ?batch
    at.run()
    assert int(at.query_params["batch"]) == batch_id
    assert at.subheader[0].value == f"5. Review batch {batch_id}"


def test_an_unknown_batch_says_so(store):
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["batch"] = "999"
    at.run()
    assert "Batch 999 does not exist" in at.error[0].value


def test_the_exclude_column_excludes_and_includes(store):
    at = app(store)
    batch_id = to_review(at)
    editor_key = next(d.key for d in at.data_editor)
    at.session_state[editor_key] = {
        "edited_rows": {0: {"exclude": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    assert statuses(store, batch_id)[1] == "excluded"
    assert "1 message excluded." in at.success[0].value
    assert at.metric[3].value == "1"  # Excluded
    assert at.metric[1].value == "1"  # Ready to send
    # The table is drawn afresh from the database: the tick shows its status now.
    table = at.data_editor[0].value
    assert table.loc[0, "exclude"] and table.loc[0, "status"] == "excluded"
    editor_key = at.data_editor[0].key
    at.session_state[editor_key] = {
        "edited_rows": {0: {"exclude": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert statuses(store, batch_id)[1] == "draft"
    assert "1 message included again." in at.success[0].value
    actions = [r["action"] for r in store.rows("SELECT action FROM action_log ORDER BY id")]
    assert "exclude" in actions and "include" in actions


def test_excluded_is_out_of_the_batch_work(store):
    at = app(store)
    batch_id = to_review(at)
    first = store.scalar("SELECT min(id) FROM messages WHERE batch_id = ?", [batch_id])
    at.selectbox(key="wiz_open_select").select(first).run()
    at.button(key=f"wiz_exclude_{first}").click().run()
    at.button(key="wiz_next_review").click().run()
    at.button(key="wiz_send_now").click().run()
    assert "1 message queued to send now" in at.success[0].value
    assert statuses(store, batch_id) == {1: "excluded", 2: "invalid", 3: "queued"}
    assert outbox.progress(store, batch_id)["draft"] == 0


def test_recipients_flags_and_drop_before_generating(store):
    seed(store)
    # Eva opts out; a fourth client shares Jana's address.
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (id, name, email, email_valid, city) VALUES"
            " (4, 'Jana Copy', 'JANA@example.com', true, 'Brno');"
            "INSERT INTO suppressions (address, channel) VALUES ('eva@example.com', 'email')"
        )
    )
    at = app(store, ids=(1, 2, 3, 4), seeded=True)
    for _ in range(3):
        next_button(at).click().run()
    assert "Recipients" in at.subheader[0].value
    assert any(
        "duplicate **1**" in m.value
        and "invalid e-mail **1**" in m.value
        and "opted out" in m.value
        for m in at.markdown
    )
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Jana Nová", "Petr Malý", "Eva Veselá", "Jana Copy"]
    assert list(table["Valid e-mail"]) == ["✓", "✗", "✓", "✓"]
    assert list(table["Not opted out"]) == ["✓", "✓", "✗", "✓"]
    assert list(table["Not a duplicate"]) == ["✓", "✓", "✓", "✗"]
    # Drop Jana (row 0): her copy is no longer a duplicate.
    select_rows(at, "wiz_rcpt_table", [0])
    at.button(key="wiz_rcpt_drop").click().run()
    table = at.dataframe[0].value
    assert list(table["Dropped"]) == ["dropped", "", "", ""]
    assert list(table["Not a duplicate"]) == ["✓", "✓", "✓", "✓"]
    assert at.metric[3].value == "1"  # Dropped
    assert next_button(at).label == "Generate 3 messages"
    next_button(at).click().run()
    batch_id = int(at.query_params["batch"])
    got = {
        r["client_id"]: (r["status"], r["reason"])
        for r in store.rows(
            "SELECT client_id, status, reason FROM messages WHERE batch_id = ?", [batch_id]
        )
    }
    assert got == {
        1: ("excluded", None),
        2: ("invalid", "invalid e-mail"),
        3: ("invalid", "opted out"),
        4: ("draft", None),  # the duplicate, re-validated once Jana was dropped
    }
    assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'drop recipients'") == 1


def test_drop_all_with_a_problem_and_restore(store):
    at = app(store)
    for _ in range(3):
        next_button(at).click().run()
    at.button(key="wiz_rcpt_drop_problems").click().run()
    assert at.metric[3].value == "1"
    at.radio(key="wiz_rcpt_view").set_value("Dropped").run()
    assert list(at.dataframe[0].value["Name"]) == ["Petr Malý"]
    at.button(key="wiz_rcpt_restore_all").click().run()
    assert at.metric[3].value == "0"


def test_the_same_template_to_the_same_clients_warns(store):
    at = app(store)
    first = to_finish(at)
    at.button(key="wiz_send_now").click().run()
    created = store.scalar("SELECT created_at FROM batches WHERE id = ?", [first])
    again = app(store, seeded=True)
    again.session_state["comms_selection"] = {"client_ids": [1, 3]}
    again.run()
    for _ in range(3):
        next_button(again).click().run()
    warning = next(w.value for w in again.warning if "already sent" in w.value)
    assert f"batch #{first}" in warning
    assert format_datetime(created) in warning  # the viewer's date format (English here)
    assert "template “Welcome” to 2 of these clients" in warning


def test_a_batch_kept_as_drafts_is_offered_for_review(store):
    at = app(store)
    first = to_finish(at)
    at.button(key="wiz_keep").click().run()
    again = app(store, seeded=True)
    again.session_state["comms_selection"] = {"client_ids": [1, 2, 3, 4]}
    again.run()
    for _ in range(3):
        next_button(again).click().run()
    assert any(f"Batch #{first}" in w.value and "2 drafts" in w.value for w in again.warning)
    again.button(key=f"wiz_earlier_{first}").click().run()
    assert int(again.query_params["batch"]) == first


def test_sms_hint_blames_the_ellipsis_not_diacritics(store):
    at = app(store, channel="sms")
    next_button(at).click().run()
    at.text_area(key="wiz_body_in").input("Please wait…").run()
    hint = next(c.value for c in at.caption if "UCS-2 (70" in c.value)
    assert "because of …" in hint and "… → ..." in hint
    assert "diacritics" not in hint


@pytest.fixture
def czech():
    """Czech in this thread too: AppTest calls a widget's format_func here, not in the page."""
    set_language("cs")
    yield
    set_language("en")


def test_the_wizard_speaks_czech(store, czech):
    """The session's language (the sidebar switch's key) decides: every step in Czech."""
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["ui_language"] = "cs"
    at.session_state["comms_selection"] = {"client_ids": [1, 2, 3]}
    at.session_state["comms_wizard_channel"] = "email"
    at.run()
    assert not at.exception
    assert "**E-mail** pro **3 vybraní klienti**" in at.markdown[0].value
    assert at.subheader[0].value == "1. Kanál a šablona"
    assert next_button(at).label == "Další"
    next_button(at).click().run()
    assert at.subheader[0].value == "2. Obsah této rozesílky"
    assert any("Náhled pro Jana Nová" in m.value for m in at.markdown)
    next_button(at).click().run()
    assert at.subheader[0].value == "3. Přílohy"
    next_button(at).click().run()
    assert at.subheader[0].value == "4. Příjemci"
    assert [m.label for m in at.metric][:2] == ["Vybráno", "Bez problémů"]
    assert next_button(at).label == "Vytvořit 3 zprávy"
    next_button(at).click().run()
    assert not at.exception
    assert at.subheader[0].value.startswith("5. Kontrola dávky")
    at.button(key="wiz_next_review").click().run()
    assert at.subheader[0].value == "6. Dokončení"
    assert any("**2** ze 3 zpráv jsou připravené k odeslání" in m.value for m in at.markdown)
    at.button(key="wiz_keep").click().run()
    assert "2 zprávy zůstaly jako koncepty" in at.success[0].value
