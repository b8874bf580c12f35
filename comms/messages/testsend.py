"""Test messages to an address a person types (Settings: "Send a test message").

The message is an ordinary `messages` row with source 'test' and no client:
stored as a draft, queued through comms.outbox and sent at once through
comms.sending.dispatcher.send_now, so a test exercises exactly the path real messages
take, and appears in the action log and the Communication list.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import duckdb

from comms import actionlog, outbox
from comms.config import default_region
from comms.errors import CommsError
from comms.rules.sms import sms_info
from comms.rules.validation import NOT_MOBILE, check_email, check_phone
from comms.store import Store

SOURCE_TEST = "test"
SUBJECT = "Test message from the client communication desk"


def normalise_test_address(channel: str, raw: str) -> str:
    """The normalised address (e-mail) or E.164 mobile number (SMS), or a clear CommsError."""
    if not (raw or "").strip():
        what = (
            "address: type an e-mail address"
            if channel == "email"
            else "phone: type a mobile number"
        )
        raise CommsError(f"{what} to send the test message to.")
    if channel == "email":
        check = check_email(raw)
        if not check.ok:
            raise CommsError(f"address: {check.error} ({raw.strip()!r}).")
        return check.address
    if channel == "sms":
        phone = check_phone(raw, default_region())
        if not phone.ok:
            raise CommsError(f"phone: {phone.error} ({raw.strip()!r}).")
        if not phone.is_mobile:
            raise CommsError(f"phone: {NOT_MOBILE} ({phone.e164} is {phone.kind}).")
        return phone.e164
    raise CommsError(f"channel: must be 'email' or 'sms', not {channel!r}.")


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


def create_test_message(store: Store, channel: str, raw_to: str, *, backend: str) -> int:
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

    mid = create_test_message(store, channel, raw_to, backend=backend)
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
