"""Test messages to an address a person types, of two kinds:

- `create_backend_test_message` (Settings: "Send a test message"): a fixed text
  saying which backend sent it, to check that sending works at all;
- `copy_as_test_message` (the wizard's "Send a test"): a copy of one generated
  message, so a person sees exactly what the recipients will get.

Either is an ordinary `messages` row with source 'test' and no client, stored
as a draft; it is queued through comms.outbox and sent through
comms.sending.dispatcher.send_now, so a test takes exactly the path real
messages take, and appears in the action log and the Communication list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from comms import actionlog, outbox
from comms.errors import CommsError
from comms.i18n import _
from comms.messages.editor import get_message
from comms.outbox.create import DRAFT, SOURCE_TEST, insert_messages
from comms.rules.recipients import check_address
from comms.rules.sms import sms_info
from comms.rules.validation import CHANNELS
from comms.store import Store
from comms.templates.rendering import body_parts

SUBJECT = "Test message from the client communication desk"


def normalise_test_address(channel: str, raw: str) -> str:
    """The normalised address (e-mail) or E.164 mobile number (SMS), or a clear CommsError."""
    if channel not in CHANNELS:
        raise CommsError(
            _("channel: must be 'email' or 'sms', not {channel!r}.").format(channel=channel)
        )
    if not (raw or "").strip():
        raise CommsError(
            _("address: type an e-mail address to send the test message to.")
            if channel == "email"
            else _("phone: type a mobile number to send the test message to.")
        )
    address, reason, detail = check_address(channel, raw)
    if reason is not None:
        # check_email's / check_phone's text already starts with the reason.
        problem = detail or reason
        if not problem.startswith(reason):
            problem = f"{reason}: {problem}"
        shown, given = _named(reason, problem), repr(raw.strip())
        raise CommsError(
            _("address: {problem} ({given}).").format(problem=shown, given=given)
            if channel == "email"
            else _("phone: {problem} ({given}).").format(problem=shown, given=given)
        )
    return address


def _named(reason: str, text: str) -> str:
    """`text` with its leading reason (a code: 'invalid e-mail: ...') in the viewer's language;
    what follows the reason is the check's own detail, as it is."""
    if text == reason:
        return _(reason)
    if text.startswith(reason + ": "):
        return _(reason) + text[len(reason) :]
    return text


def _bodies(channel: str, backend: str, user: str) -> tuple[str | None, str, str | None]:
    at = datetime.now().strftime("%Y-%m-%d %H:%M")
    if channel == "sms":
        return None, f"comms test SMS via {backend}, sent by {user} at {at}. Sending works.", None
    text = (
        f"This is a test e-mail sent by {user} at {at} from the Settings page, "
        f"through the {backend} backend.\n\nIf you can read it, sending e-mail works."
    )
    return SUBJECT, *body_parts(channel, "text", text)


def create_backend_test_message(store: Store, channel: str, raw_to: str, *, backend: str) -> int:
    """Store a test message (source 'test', no client) as a draft and queue it; returns its id."""
    to = normalise_test_address(channel, raw_to)
    user = actionlog.current_user()
    subject, text, body_html = _bodies(channel, backend, user)
    info = sms_info(text) if channel == "sms" else None
    row = {
        "channel": channel,
        "source": SOURCE_TEST,
        "to_address": to,
        "subject": subject,
        "body_text": text,
        "body_html": body_html,
        "status": DRAFT,
        "segments": info.segments if info else None,
        "encoding": info.encoding if info else None,
        "created_by": user,
    }

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        (mid,) = insert_messages(cur, [row])
        actionlog.record(
            cur,
            "test message",
            message_id=mid,
            detail={"channel": channel, "to": to, "backend": backend},
        )
        return mid

    mid = store.write(write)
    outbox.queue(store, message_ids=[mid])
    return mid


def send_test_message(store: Store, channel: str, raw_to: str, *, backend: str) -> dict[str, Any]:
    """Create, queue and send one test message now; its final row (status, error, provider id)."""
    from comms.sending import dispatcher  # the sending machinery is only needed when really sending

    mid = create_backend_test_message(store, channel, raw_to, backend=backend)
    result = dispatcher.send_now(store, [mid])
    row = outbox.get_message(store, mid)
    return {
        "message_id": mid,
        "status": row["status"],
        "to_address": row["to_address"],
        "provider_id": row["provider_id"],
        "error": row["error"] or row["reason"],
        "errors": list(result.get("errors") or []),
    }


def copy_as_test_message(store: Store, message_id: int, to_address: str) -> int:
    """A copy of a generated message addressed to a tester (source 'test', draft)."""
    msg = get_message(store, message_id)
    channel = msg["channel"]
    address, reason, detail = check_address(channel, to_address)
    if reason:
        raise CommsError(
            _("Test address {address}: {problem}").format(
                address=repr(to_address), problem=_named(reason, detail or reason)
            )
        )

    row = {
        "channel": channel,
        "source": SOURCE_TEST,
        "to_address": address,
        "subject": ("[TEST] " + (msg["subject"] or "")) if channel == "email" else None,
        "body_text": msg["body_text"],
        "body_html": msg["body_html"],
        "status": DRAFT,
        "segments": msg["segments"],
        "encoding": msg["encoding"],
    }

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        (new_id,) = insert_messages(cur, [row], attachment_ids=[a.id for a in msg["attachments"]])
        actionlog.record(
            cur,
            "test message",
            batch_id=msg["batch_id"],
            message_id=int(new_id),
            detail={"copied_from": message_id, "to_address": address},
        )
        return int(new_id)

    return store.write(tx)
