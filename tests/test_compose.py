"""Compose one message for one client, edit and copy drafts, send compose."""

from __future__ import annotations

import pytest

from comms import outbox
from comms.clients import suppressions
from comms.errors import CommsError, InvalidTransition, TemplateError
from comms.messages import compose, editor, history
from comms.templates.attachments import add_attachment
from tests.seed_history import add_client, add_message


def test_compose_email_draft_renders_fields_and_attachments(store):
    cid = add_client(store, attributes={"points": 120})
    pdf = add_attachment(store, "offer.pdf", b"%PDF-1.4 test")
    res = compose.compose(
        store,
        client_id=cid,
        channel="email",
        subject="Hi {{ name }}",
        body="You have **{{ points }}** points in {{ city }}.",
        attachment_ids=[pdf],
    )
    assert res.status == "draft" and res.to_address == "jana@example.cz"
    msg = history.get_message(store, res.message_id)
    assert msg["subject"] == "Hi Jana Nováková"
    assert msg["body_text"] == "You have **120** points in Brno."
    assert "<strong>120</strong>" in msg["body_html"]
    assert msg["source"] == "client detail" and msg["status"] == "draft"
    assert [a["filename"] for a in msg["attachments"]] == ["offer.pdf"]
    # it belongs to the client at once
    assert [m["id"] for m in history.client_history(store, cid)] == [res.message_id]
    assert store.scalar("SELECT action FROM action_log WHERE message_id = ?", [res.message_id])


def test_html_in_fields_is_escaped(store):
    cid = add_client(store, name="<script>alert(1)</script>")
    res = compose.compose(store, client_id=cid, channel="email", subject="x", body="Hi {{ name }}")
    html = history.get_message(store, res.message_id)["body_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_compose_sms_counts_segments_and_transliterates(store):
    cid = add_client(store)
    res = compose.compose(
        store, client_id=cid, channel="sms", body="Dobrý den, {{ name }}! Příští týden", gsm7=True
    )
    msg = history.get_message(store, res.message_id)
    assert msg["body_text"] == "Dobry den, Jana Novakova! Pristi tyden"
    assert (msg["segments"], msg["encoding"]) == (1, "GSM-7")
    assert msg["to_address"] == "+420601123456" and msg["subject"] is None


def test_send_now_queues(store):
    cid = add_client(store)
    res = compose.compose(store, client_id=cid, channel="sms", body="Hi", send=True)
    assert res.status == "queued"
    assert history.get_message(store, res.message_id)["status"] == "queued"


@pytest.mark.parametrize(
    "fields, channel, words",
    [
        ({"email": None, "email_valid": False}, "email", "no e-mail"),
        ({"email": "bad@", "email_valid": False}, "email", "not valid"),
        ({"phone_kind": "fixed_line", "phone": "+420541000000"}, "sms", "not a mobile"),
        ({"consent_sms": False}, "sms", "no consent"),
    ],
)
def test_compose_refuses_unusable_recipient(store, fields, channel, words):
    cid = add_client(store, **fields)
    with pytest.raises(CommsError, match=words):
        compose.compose(store, client_id=cid, channel=channel, subject="s", body="b")
    assert store.scalar("SELECT count(*) FROM messages") == 0


def test_compose_refuses_suppressed_address(store):
    cid = add_client(store)
    suppressions.add_suppression(store, "JANA@example.cz", "bounced list")
    with pytest.raises(CommsError, match="opted out"):
        compose.compose(store, client_id=cid, channel="email", subject="s", body="b")
    assert store.scalar("SELECT count(*) FROM messages") == 0


def test_missing_field_and_sandbox_are_clear_errors(store):
    cid = add_client(store)
    with pytest.raises(TemplateError, match="missing field"):
        compose.compose(store, client_id=cid, channel="sms", body="Hi {{ nickname }}")
    with pytest.raises(TemplateError):
        compose.compose(store, client_id=cid, channel="sms", body="{{ ''.__class__.__mro__ }}")
    with pytest.raises(CommsError, match="subject"):
        compose.compose(store, client_id=cid, channel="email", subject="", body="b")
    assert store.scalar("SELECT count(*) FROM messages") == 0


def test_edit_copy_and_send_drafts(store):
    cid = add_client(store)
    res = compose.compose(store, client_id=cid, channel="email", subject="A", body="one")
    editor.edit_message(store, res.message_id, subject="B", body="two *words*")
    msg = history.get_message(store, res.message_id)
    assert (msg["subject"], msg["body_text"]) == ("B", "two *words*")
    assert "<em>words</em>" in msg["body_html"]

    sent = add_message(store, cid, status="failed", source="bulk", subject="Old")
    copy = compose.copy_to_draft(store, sent)
    cm = history.get_message(store, copy)
    assert (cm["status"], cm["source"], cm["subject"]) == ("draft", "client detail", "Old")

    assert compose.send_drafts(store, [res.message_id, copy]) == 2
    assert outbox.progress(store)["queued"] == 2
    with pytest.raises(InvalidTransition):
        compose.send_drafts(store, [res.message_id])  # already queued
    with pytest.raises(CommsError, match="only drafts"):
        editor.edit_message(store, res.message_id, body="x")


def test_one_editor_revalidates_a_draft_like_a_generated_message(store):
    """A draft edited to keep a `{{ field }}` is invalid, naming the field; fixed, a draft again."""
    cid = add_client(store)
    res = compose.compose(store, client_id=cid, channel="email", subject="Hi", body="Dear Jana")
    bad = editor.edit_message(store, res.message_id, body="Our shop in {{ city }} has news.")
    assert (bad["status"], bad["reason"]) == ("invalid", "missing field: city")
    assert "{{ city }}" in bad["error"]
    with pytest.raises(InvalidTransition):  # an invalid message cannot be queued
        compose.send_drafts(store, [res.message_id])
    good = editor.edit_message(store, res.message_id, body="Our shop in Brno has news.")
    assert (good["status"], good["reason"], good["error"]) == ("draft", None, None)
    assert good["body_html"] == "<p>Our shop in Brno has news.</p>"
    edits = store.rows("SELECT outcome FROM action_log WHERE action = 'edit' ORDER BY id")
    assert [e["outcome"] for e in edits] == ["invalid", "draft"]
    sms = compose.compose(store, client_id=cid, channel="sms", body="Hi")
    empty = editor.edit_message(store, sms.message_id, body="  ")
    assert (empty["status"], empty["reason"]) == ("invalid", "empty message")


def batch_of(store, *rows):
    """A batch with one message per (client, address, status, reason)."""
    batch = store.scalar("INSERT INTO batches (channel) VALUES ('email') RETURNING id")
    ids = [
        add_message(
            store,
            cid,
            batch_id=batch,
            to_address=address,
            status=status,
            reason=reason,
            subject="Hi",
            body_text="Hello",
        )
        for cid, address, status, reason in rows
    ]
    return batch, ids


def test_exclude_frees_the_address_of_its_duplicate(store):
    a = add_client(store, email="same@example.cz")
    b = add_client(store, name="Copy", email="SAME@example.cz")
    _, (first, second) = batch_of(
        store,
        (a, "same@example.cz", "draft", None),
        (b, "SAME@example.cz", "invalid", "duplicate"),
    )
    assert editor.exclude(store, [first]) == 1
    assert outbox.get_message(store, first)["status"] == "excluded"
    after = outbox.get_message(store, second)
    assert (after["status"], after["reason"]) == ("draft", None)  # the one to send now


def test_include_re_validates_in_the_same_transaction(store):
    cid = add_client(store)
    _, (mid,) = batch_of(store, (cid, "jana@example.cz", "draft", None))
    editor.exclude(store, [mid])
    # While it was out of the send, the client withdrew consent.
    store.write(lambda cur: cur.execute("UPDATE clients SET consent_email = false"))
    assert editor.include(store, [mid]) == {"draft": 0, "invalid": 1}
    msg = outbox.get_message(store, mid)
    assert (msg["status"], msg["reason"]) == ("invalid", "no consent")
    # only an excluded message can be included
    with pytest.raises(InvalidTransition):
        editor.include(store, [mid])


def test_revalidate_keeps_generation_order_for_duplicates(store):
    a = add_client(store, email="same@example.cz")
    b = add_client(store, name="Copy", email="same@example.cz")
    _, (first, second) = batch_of(
        store,
        (a, "same@example.cz", "invalid", "opted out"),
        (b, "same@example.cz", "invalid", "opted out"),
    )
    assert editor.revalidate(store, [first, second]) == {"draft": 1, "invalid": 1}
    assert outbox.get_message(store, first)["status"] == "draft"
    assert outbox.get_message(store, second)["reason"] == "duplicate"
