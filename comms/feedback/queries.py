"""Reads of what came back after sending, for the pages and the CLI (no writes).

- `batch_results`: per batch, sent / delivered / bounced / undelivered /
  unsubscribed / complained (Home and Outbox: numbers and a chart).
- `channel_suppressions`: for one client, per channel, whether it is
  suppressed, why and since when, and which message's report did it (client detail).
- `client_feedback`: one client's reports (bounces, delivery reports, complaints,
  unsubscribes), newest first (the client's history / timeline).
- `inbound_for_client` / `inbound_messages`: SMS replies (the client's history).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from comms.clients.profile import client_address
from comms.outbox.delivery import MOVES
from comms.rules.validation import CHANNELS
from comms.store import Store

# The columns of batch_results, in the order a chart shows them.
RESULT_COLUMNS = ("sent", "delivered", "bounced", "undelivered", "unsubscribed", "complained")
_EVER_SENT = ("sent", *MOVES)  # a message in one of these statuses was handed over


def batch_results(store: Store, batch_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """One row per batch (all batches, or the given ones): batch_id and RESULT_COLUMNS.

    `sent` counts every message that was handed over (sent, delivered,
    undelivered, bounced); the others count messages by what became of them,
    `unsubscribed` and `complained` by the reports received about them.
    """
    ids = None if batch_ids is None else sorted({int(b) for b in batch_ids})
    where = "" if ids is None else "WHERE b.id IN (SELECT unnest(?::BIGINT[]))"
    return store.df(
        f"""
        WITH m AS (
            SELECT batch_id,
                   count(*) FILTER (WHERE status IN (SELECT unnest(?::VARCHAR[]))) AS sent,
                   count(*) FILTER (WHERE status = 'delivered') AS delivered,
                   count(*) FILTER (WHERE status = 'bounced') AS bounced,
                   count(*) FILTER (WHERE status = 'undelivered') AS undelivered
            FROM messages WHERE batch_id IS NOT NULL GROUP BY batch_id
        ), e AS (
            SELECT batch_id,
                   count(DISTINCT message_id) FILTER (WHERE kind = 'unsubscribed') AS unsubscribed,
                   count(DISTINCT message_id) FILTER (WHERE kind = 'complaint') AS complained
            FROM feedback_events WHERE batch_id IS NOT NULL GROUP BY batch_id
        )
        SELECT b.id AS batch_id,
               coalesce(m.sent, 0)::BIGINT AS sent,
               coalesce(m.delivered, 0)::BIGINT AS delivered,
               coalesce(m.bounced, 0)::BIGINT AS bounced,
               coalesce(m.undelivered, 0)::BIGINT AS undelivered,
               coalesce(e.unsubscribed, 0)::BIGINT AS unsubscribed,
               coalesce(e.complained, 0)::BIGINT AS complained
        FROM batches b LEFT JOIN m ON m.batch_id = b.id LEFT JOIN e ON e.batch_id = b.id
        {where}
        ORDER BY b.id
        """,
        [list(_EVER_SENT), *([ids] if ids is not None else [])],
    )


def channel_suppressions(store: Store, client_id: int) -> dict[str, dict[str, Any]]:
    """Per channel: {suppressed, consent, address, reason, since, by, message_id, report}.

    `reason` and `since` are the suppression list's (why and since when the
    address is not sent to); `message_id` and `report` name the report that
    listed it (a bounce, complaint, unsubscribe or STOP), when one did.
    """
    rows = store.rows("SELECT * FROM clients WHERE id = ?", [int(client_id)])
    if not rows:
        return {}
    client = rows[0]
    out: dict[str, dict[str, Any]] = {}
    for channel in CHANNELS:
        address = client_address(client, channel)
        entry: dict[str, Any] = {
            "address": address,
            "consent": bool(client.get(f"consent_{channel}")),
            "suppressed": False,
            "reason": None,
            "since": None,
            "by": None,
            "message_id": None,
            "report": None,
        }
        if address:
            listed = store.rows(
                "SELECT reason, created_at, created_by FROM suppressions"
                " WHERE lower(address) = lower(?) AND channel = ? ORDER BY created_at LIMIT 1",
                [address, channel],
            )
            if listed:
                entry.update(
                    suppressed=True,
                    reason=listed[0]["reason"],
                    since=listed[0]["created_at"],
                    by=listed[0]["created_by"],
                )
                cause = store.rows(
                    "SELECT message_id, kind FROM feedback_events WHERE lower(address) = lower(?)"
                    " AND channel = ? AND kind IN ('bounced', 'complaint', 'unsubscribed')"
                    " ORDER BY ts DESC LIMIT 1",
                    [address, channel],
                )
                if cause:
                    entry.update(message_id=cause[0]["message_id"], report=cause[0]["kind"])
        out[channel] = entry
    return out


def client_feedback(store: Store, client_id: int, *, limit: int = 500) -> pd.DataFrame:
    """One client's reports: ts, kind, message_id, channel, address, code, detail, source."""
    return store.df(
        "SELECT ts, kind, message_id, channel, address, code, detail, source"
        " FROM feedback_events WHERE client_id = ? ORDER BY ts DESC, id DESC LIMIT ?",
        [int(client_id), int(limit)],
    )


def message_feedback(store: Store, message_id: int) -> list[dict[str, Any]]:
    """Every report about one message, oldest first."""
    return store.rows(
        "SELECT ts, kind, code, detail, source FROM feedback_events WHERE message_id = ?"
        " ORDER BY ts, id",
        [int(message_id)],
    )


def inbound_for_client(store: Store, client_id: int, *, limit: int = 500) -> pd.DataFrame:
    """One client's SMS replies: id, received_at, channel, from_address, body, keyword."""
    return store.df(
        "SELECT id, received_at, channel, from_address, to_address, body, keyword"
        " FROM inbound_messages WHERE client_id = ? ORDER BY received_at DESC, id DESC LIMIT ?",
        [int(client_id), int(limit)],
    )


def inbound_messages(store: Store, *, limit: int = 1000) -> pd.DataFrame:
    """Every SMS reply, newest first (with the client it was matched to)."""
    return store.df(
        "SELECT i.id, i.received_at, i.client_id, c.name AS client, i.from_address, i.body,"
        " i.keyword FROM inbound_messages i LEFT JOIN clients c ON c.id = i.client_id"
        " ORDER BY i.received_at DESC, i.id DESC LIMIT ?",
        [int(limit)],
    )


def settings_summary() -> dict[str, Any]:
    """What the Settings page shows about the loop after sending: the non-secret settings
    and, for each one missing, one sentence saying what that turns off."""
    from comms.errors import ConfigError
    from comms.i18n import N_
    from comms.sending.senders.config import FeedbackConfig

    try:
        config = FeedbackConfig.from_settings()
    except ConfigError as exc:
        return {"ok": False, "error": str(exc), "off": []}
    off = []
    if not config.public_url:
        off.append(
            N_(
                "COMMS_PUBLIC_URL is not set: e-mails offer only the mailto: unsubscribe (no"
                " one-click link), and SMS status is polled from Twilio instead of reported by"
                " it; replies to SMS are not received."
            )
        )
    if not config.bounce_address:
        off.append(
            N_(
                "COMMS_BOUNCE_ADDRESS is not set: bounces are matched by Message-ID only (no"
                " VERP), and mailto: unsubscribes go to the Reply-To / From address."
            )
        )
    if config.imap is None:
        off.append(
            N_(
                "No bounce mailbox (COMMS_BOUNCE_IMAP_HOST): bounces, complaints and mailto:"
                " unsubscribes are applied only by `comms bounces import`."
            )
        )
    return {"ok": True, **config.describe(), "off": off}
