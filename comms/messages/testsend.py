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

import html
from datetime import datetime
from typing import Any

import duckdb

from comms import actionlog, outbox
from comms.errors import CommsError
from comms.messages.editor import get_message
from comms.outbox.create import SOURCE_TEST
from comms.rules.recipients import check_address
from comms.rules.sms import sms_info
from comms.rules.validation import CHANNELS
from comms.store import Store

SUBJECT = "Test message from the client communication desk"


def normalise_test_address(channel: str, raw: str) -> str:
    """The normalised address (e-mail) or E.164 mobile number (SMS), or a clear CommsError."""
    if channel not in CHANNELS:
        raise CommsError(f"channel: must be 'email' or 'sms', not {channel!r}.")
    field = "address" if channel == "email" else "phone"
    if not (raw or "").strip():
        what = "type an e-mail address" if channel == "email" else "type a mobile number"
        raise CommsError(f"{field}: {what} to send the test message to.")
    address, reason, detail = check_address(channel, raw)
    if reason is not None:
        # check_email's / check_phone's text already starts with the reason.
        problem = detail or reason
        if not problem.startswith(reason):
            problem = f"{reason}: {problem}"
        raise CommsError(f"{field}: {problem} ({raw.strip()!r}).")
    return address


def _bodies(channel: str, backend: str, user: str) -> tuple[str | None, str, str | None]:
    at = datetime.now().strftime("%Y-%m-%d %H:%M")
    if channel == "sms":
        return None, f"comms test SMS via {backend}, sent by {user} at {at}. Sending works.", None
    text = (
        f"This is a test e-mail sent by {user} at {at} from the Settings page, "
        f"through the {backend} backend.\n\nIf you can read it, sending e-mail works."
    )
    body_html = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    return SUBJECT, text, body_html


def create_backend_test_message(store: Store, channel: str, raw_to: str, *, backend: str) -> int:
    """Store a test message (source 'test', no client) as a draft and queue it; returns its id."""
    to = normalise_test_address(channel, raw_to)
    user = actionlog.current_user()
    subject, text, body_html = _bodies(channel, backend, user)
    info = sms_info(text) if channel == "sms" else None

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        mid = int(
            cur.execute(
                "INSERT INTO messages (channel, source, to_address, subject, body_text, body_html,"
                " status, segments, encoding, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?) RETURNING id",
                [
                    channel,
                    SOURCE_TEST,
                    to,
                    subject,
                    text,
                    body_html,
                    info.segments if info else None,
                    info.encoding if info else None,
                    user,
                ],
            ).fetchone()[0]
        )
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
        raise CommsError(f"Test address {to_address!r}: {detail or reason}")

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        new_id = cur.execute(
            "INSERT INTO messages (client_id, channel, source, batch_id, to_address, to_name,"
            " subject, body_text, body_html, status, segments, encoding, created_by)"
            " VALUES (NULL, ?, 'test', NULL, ?, NULL, ?, ?, ?, 'draft', ?, ?, ?) RETURNING id",
            [
                channel,
                address,
                ("[TEST] " + (msg["subject"] or "")) if channel == "email" else None,
                msg["body_text"],
                msg["body_html"],
                msg["segments"],
                msg["encoding"],
                actionlog.current_user(),
            ],
        ).fetchone()[0]
        cur.execute(
            "INSERT INTO message_attachments (message_id, attachment_id)"
            " SELECT ?, attachment_id FROM message_attachments WHERE message_id = ?",
            [new_id, message_id],
        )
        actionlog.record(
            cur,
            "test message",
            batch_id=msg["batch_id"],
            message_id=int(new_id),
            detail={"copied_from": message_id, "to_address": address},
        )
        return int(new_id)

    return store.write(tx)
