"""Reads of the outbox: counts by status, what is due, a batch's progress, what the
Outbox page lists (loose messages, a batch's messages by status, what is scheduled,
which batches just moved). Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from comms.outbox import refusals
from comms.outbox.claims import ClaimScope
from comms.outbox.moves import ids_of
from comms.outbox.states import STATUSES, now
from comms.store import Store

if TYPE_CHECKING:  # pandas costs ~0.4 s to import: only the pages need it
    import pandas as pd

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
    since = now() - timedelta(minutes=minutes)
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
            [*params, now()],
        )
        or 0
    )


def scheduled_count_all(store: Store) -> int:
    """Queued messages anywhere whose time has not come yet."""
    return int(
        store.scalar(
            "SELECT count(*) FROM messages WHERE status = 'queued'"
            " AND coalesce(next_attempt_at, scheduled_at) > ?",
            [now()],
        )
        or 0
    )


def progress(store: Store, batch_id: int | None = None) -> dict[str, int]:
    """Counts by status (every status present, plus 'total') for one batch or everything."""
    where, params = ("WHERE batch_id = ?", [int(batch_id)]) if batch_id is not None else ("", [])
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in (
        store.cursor()
        .execute(f"SELECT status, count(*) FROM messages {where} GROUP BY status", params)
        .fetchall()
    ):
        counts[status] = int(n)
    counts["total"] = sum(counts[s] for s in STATUSES)
    return counts


def batch_progress(store: Store) -> list[dict[str, Any]]:
    """Per batch: id, name, channel, paused, next due time and counts by status."""
    status_cols = ", ".join(
        f"count(*) FILTER (WHERE m.status = '{s}') AS \"{s}\"" for s in STATUSES
    )
    return store.rows(
        f"SELECT b.id AS batch_id, b.name, b.channel, b.paused, b.created_at, b.created_by,"
        f" count(m.id) AS total, {status_cols},"
        f" min(coalesce(m.next_attempt_at, m.scheduled_at)) FILTER (WHERE m.status = 'queued')"
        f" AS next_due_at"
        f" FROM batches b LEFT JOIN messages m ON m.batch_id = b.id"
        f" GROUP BY ALL ORDER BY b.id DESC"
    )


def due_count(
    store: Store,
    *,
    channel: str | None = None,
    batch_id: int | None = None,
    message_ids: Iterable[int] | None = None,
    within_seconds: float = 0.0,
) -> int:
    """Queued, unpaused messages due now (or within the next within_seconds)."""
    scope = ClaimScope(channel, batch_id, tuple(ids_of(message_ids)) if message_ids else None)
    where, params = scope.where(now() + timedelta(seconds=within_seconds))
    return int(store.scalar(f"SELECT count(*) FROM messages m WHERE {where}", params))


def get_message(store: Store, message_id: int) -> dict:
    """One message row, or NotFound."""
    rows = store.rows("SELECT * FROM messages WHERE id = ?", [int(message_id)])
    if not rows:
        raise refusals.no_message(str(message_id), 1)
    return rows[0]


def batch_rates(
    store: Store, batch_ids: Iterable[int], *, window_seconds: float = 60.0
) -> dict[int, float]:
    """Per batch: messages per second handed to the server lately (sent or failed).

    Counted from message_attempts over the last window_seconds, or since the
    batch's first attempt in it when that is later (a batch that started 5 s
    ago with 500 sent goes at 100/s, not 500/60). Batches with no attempt in
    the window are left out.
    """
    ids = ids_of(batch_ids)
    if not ids:
        return {}
    at = now()
    since = at - timedelta(seconds=window_seconds)
    rows = (
        store.cursor()
        .execute(
            "SELECT m.batch_id, count(*), min(a.ts) FROM message_attempts a"
            " JOIN messages m ON m.id = a.message_id"
            " WHERE a.ts >= ? AND m.batch_id IN (SELECT unnest(?::BIGINT[]))"
            " GROUP BY m.batch_id",
            [since, ids],
        )
        .fetchall()
    )
    rates: dict[int, float] = {}
    for batch_id, n, first in rows:
        span = max((at - first).total_seconds(), 1.0)
        rates[int(batch_id)] = int(n) / span
    return rates
