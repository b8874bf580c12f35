"""What the Outbox page reads: loose messages, a batch's messages by status, what is
scheduled, which batches just moved. Status changes stay in comms.outbox (make_due_now
only picks the ids and hands them to outbox.reschedule)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from comms import outbox
from comms.store import Store

RECENT_MINUTES = 15  # a finished batch stays on the page this long after its last change


def loose_messages(store: Store) -> pd.DataFrame:
    """Messages outside any batch that still need attention (queued, sending, failed,
    interrupted), interrupted first, then soonest due; at most 1,000."""
    return store.df(
        """
        SELECT m.id, m.channel, m.status, c.name AS client, m.client_id,
               m.to_address, coalesce(m.subject, left(m.body_text, 60)) AS subject,
               coalesce(m.next_attempt_at, m.scheduled_at) AS due_at, m.attempts,
               coalesce(m.error, m.reason) AS error, m.source, m.updated_at
        FROM messages m LEFT JOIN clients c ON c.id = m.client_id
        WHERE m.batch_id IS NULL AND m.status IN ('queued', 'sending', 'failed', 'interrupted')
        ORDER BY m.status = 'interrupted' DESC, due_at NULLS FIRST, m.id
        LIMIT 1000
        """
    )


def batch_messages(store: Store, batch_id: int, statuses: tuple[str, ...]) -> pd.DataFrame:
    """A batch's messages in some statuses (at most 500), with client and last error."""
    return store.df(
        """
        SELECT m.id, m.status, c.name AS client, m.client_id, m.to_address,
               m.attempts, coalesce(m.error, m.reason) AS error, m.updated_at
        FROM messages m LEFT JOIN clients c ON c.id = m.client_id
        WHERE m.batch_id = ? AND m.status IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY m.id LIMIT 500
        """,
        [int(batch_id), list(statuses)],
    )


def recently_moved_batches(store: Store, minutes: int = RECENT_MINUTES) -> set[int]:
    """Batches with a message that changed in the last few minutes (e.g. just finished)."""
    since = outbox.now() - timedelta(minutes=minutes)
    return {
        int(r[0])
        for r in store.cursor()
        .execute(
            "SELECT DISTINCT batch_id FROM messages WHERE batch_id IS NOT NULL AND updated_at >= ?",
            [since],
        )
        .fetchall()
    }


def scheduled_count(store: Store, batch_id: int | None) -> int:
    """Queued messages whose time has not come yet."""
    where = "batch_id = ?" if batch_id is not None else "batch_id IS NULL"
    params = [int(batch_id)] if batch_id is not None else []
    return int(
        store.scalar(
            f"SELECT count(*) FROM messages WHERE {where} AND status = 'queued'"
            " AND coalesce(next_attempt_at, scheduled_at) > ?",
            [*params, outbox.now()],
        )
        or 0
    )


def scheduled_count_all(store: Store) -> int:
    """Queued messages anywhere whose time has not come yet."""
    return int(
        store.scalar(
            "SELECT count(*) FROM messages WHERE status = 'queued'"
            " AND coalesce(next_attempt_at, scheduled_at) > ?",
            [outbox.now()],
        )
        or 0
    )


def make_due_now(store: Store, batch_id: int) -> int:
    """The batch's scheduled (queued, not yet due) messages become due now, via comms.outbox."""
    ids = [
        int(r[0])
        for r in store.cursor()
        .execute(
            "SELECT id FROM messages WHERE batch_id = ? AND status = 'queued'"
            " AND coalesce(next_attempt_at, scheduled_at) > ?",
            [int(batch_id), outbox.now()],
        )
        .fetchall()
    ]
    return outbox.reschedule(store, ids, None) if ids else 0
