"""The bulk send wizard under AppTest, on a real DuckDB file."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms import templates as tpl

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


def app(store, channel="email", ids=(1, 2, 3)):
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["comms_selection"] = {"client_ids": list(ids)}
    at.session_state["comms_wizard_channel"] = channel
    return at.run()


def next_button(at):
    return next(b for b in at.button if b.key and b.key.startswith("wiz_next_"))


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
    # 4. generate
    assert at.metric[0].value == "3"
    next_button(at).click().run()
    assert not at.exception
    # 5. review
    assert at.metric[1].value == "1" or at.metric[1].value == "2"
    assert any("invalid e-mail" in m.value for m in at.markdown)
    batch_id = at.session_state["wiz_batch_id"]
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
    # exclude the first
    at.selectbox(key="wiz_open_select").select(rows[0]["id"]).run()
    at.button(key=f"wiz_exclude_{rows[0]['id']}").click().run()
    assert store.scalar("SELECT excluded FROM messages WHERE id = ?", [rows[0]["id"]]) is True
    # 6. finish: keep for later
    next_button(at).click().run()
    assert any("2** of 3 messages are ready" in m.value for m in at.markdown)
    at.button(key="wiz_keep").click().run()
    assert "2 messages kept as drafts" in at.success[0].value
    statuses = store.rows(
        "SELECT status, count(*) n FROM messages WHERE batch_id = ? GROUP BY ALL ORDER BY 1",
        [batch_id],
    )
    assert statuses == [{"status": "draft", "n": 3}]


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


def test_sms_counter_diacritics_and_send_now(store):
    at = app(store, channel="sms")
    assert "SMS" in at.markdown[0].value
    next_button(at).click().run()
    at.text_area(key="wiz_body_in").input("Dobrý den {{ name }}, " + "ř" * 60).run()
    assert any("UCS-2" in c.value and "2** segments" in c.value for c in at.caption)
    at.toggle(key="wiz_gsm7_in").set_value(True).run()
    assert any("GSM-7" in c.value and "1** segment " in c.value for c in at.caption)
    next_button(at).click().run()  # SMS skips attachments
    # numbered as in the progress line: 1. Template, 2. Content, 3. Generate, 4. Review
    assert "3. Generate" in at.subheader[0].value
    next_button(at).click().run()
    assert at.subheader[0].value.startswith("4. Review batch")
    assert any("not a mobile" in m.value for m in at.markdown)
    batch_id = at.session_state["wiz_batch_id"]
    body = store.scalar(
        "SELECT body_text FROM messages WHERE batch_id = ? AND client_id = 1", [batch_id]
    )
    assert body == "Dobry den Jana Nova, " + "r" * 60
    next_button(at).click().run()
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
    for _ in range(4):
        next_button(at).click().run()
    next_button(at).click().run()
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
    expected = "3. Attachments" if channel == "email" else "3. Generate"
    assert expected in at.subheader[0].value


def test_send_a_test_through_the_outbox_folder(store, db_path):
    at = app(store)
    for _ in range(5):
        next_button(at).click().run()
    at.text_input(key="wiz_test_address").input("tester@example.com")
    at.button(key="wiz_send_test").click().run()
    assert not at.exception
    assert "Test sent to tester@example.com" in at.success[0].value
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
    batch_id = at.session_state["wiz_batch_id"]
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
    for _ in range(4):
        next_button(at).click().run()
    first = at.session_state["wiz_batch_id"]
    at.button(key="wiz_back_4").click().run()
    assert f"Batch {first} was generated already" in at.info[0].value
    next_button(at).click().run()
    second = at.session_state["wiz_batch_id"]
    assert second != first
    statuses = store.rows(
        "SELECT batch_id, status, count(*) AS n FROM messages GROUP BY ALL ORDER BY ALL"
    )
    assert statuses == [
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
    assert any("of 1.0 MB per message used" in c.value for c in at.caption)
    at.button(key=f"wiz_rm_{aid}").click().run()
    assert not any("terms.pdf" in m.value for m in at.markdown)
    next_button(at).click().run()
    next_button(at).click().run()
    batch_id = at.session_state["wiz_batch_id"]
    names = store.rows(
        "SELECT DISTINCT a.filename FROM message_attachments ma"
        " JOIN attachments a ON a.id = ma.attachment_id"
        " JOIN messages m ON m.id = ma.message_id WHERE m.batch_id = ?",
        [batch_id],
    )
    assert names == [{"filename": "price list.pdf"}]
    # The template keeps both.
    assert len(tpl.get_template(store, tid).attachments) == 2


def test_discard_the_batch(store):
    at = app(store)
    for _ in range(5):
        next_button(at).click().run()
    at.button(key="wiz_discard").click().run()
    batch_id = at.session_state["wiz_batch_id"]
    assert f"Batch {batch_id} discarded: 2 drafts cancelled" in at.success[0].value
    assert store.rows("SELECT status, count(*) AS n FROM messages GROUP BY ALL ORDER BY ALL") == [
        {"status": "cancelled", "n": 2},
        {"status": "invalid", "n": 1},
    ]


def test_finish_with_nothing_sendable_says_why(store):
    """Only the invalid address chosen: the finish step explains instead of greying out."""
    at = app(store, ids=(2,))
    for _ in range(5):
        next_button(at).click().run()
    assert not at.exception
    assert at.button(key="wiz_send_now").disabled
    assert "Nothing can be sent: every message is invalid or excluded" in at.warning[0].value
