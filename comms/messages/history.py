"""Read-only queries over messages: the Communication list, one client's history,
the timeline, one message as it was sent, and the Home page's figures.

Every list is filtered, counted and paged in DuckDB; only one page of rows ever
reaches pandas. "Newest first" means by creation time, then id (ids grow with
time, so the pair is a total order even within one transaction).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from comms.errors import NotFound
from comms.i18n import _
from comms.outbox import SOURCES, STATUSES
from comms.rules.validation import CHANNELS
from comms.store import Store

# Columns of one row of the Communication list (the body is cut to a snippet
# in SQL so a page never carries megabytes of HTML).
LIST_COLUMNS = """
    m.id, m.created_at, m.client_id, m.channel, m.status, m.source, m.batch_id,
    m.to_address, m.to_name, m.subject,
    left(coalesce(m.body_text, ''), 120) AS snippet,
    m.reason, m.error, m.attempts, m.segments, m.scheduled_at, m.next_attempt_at, m.sent_at
"""


# What the list and its filters read: everything but the HTML body and the
# sending bookkeeping, so one client's rows stay small when materialised.
SCOPE_COLUMNS = (
    "id, created_at, client_id, channel, status, source, batch_id, to_address, to_name,"
    " subject, body_text, reason, error, attempts, segments, scheduled_at, next_attempt_at,"
    " sent_at"
)


@dataclass
class MessageFilter:
    """What the Communication list is narrowed to; every field optional."""

    client_id: int | None = None
    client_text: str | None = None  # name, e-mail or phone of the client
    channel: str | None = None
    statuses: list[str] = field(default_factory=list)
    source: str | None = None
    batch_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive
    text: str | None = None  # subject, body, address or recipient name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def is_empty(self) -> bool:
        return self == MessageFilter()


def _contains(columns: list[str], text: str) -> tuple[str, list[Any]]:
    """Case-insensitive "any column contains text" (ILIKE; ESCAPE only when needed,
    because DuckDB's ILIKE ... ESCAPE is about twice as slow as plain ILIKE)."""
    if any(c in text for c in "%_\\"):
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql = " OR ".join(f"{c} ILIKE ? ESCAPE '\\'" for c in columns)
    else:
        pattern = f"%{text}%"
        sql = " OR ".join(f"{c} ILIKE ?" for c in columns)
    return f"({sql})", [pattern] * len(columns)


def filter_where(f: MessageFilter) -> tuple[str, list[Any]]:
    """A WHERE clause over `messages m` (without the keyword) and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if f.client_id is not None:
        parts.append("m.client_id = ?")
        params.append(int(f.client_id))
    if f.client_text and f.client_text.strip():
        sql, values = _contains(["c.name", "c.email", "c.phone"], f.client_text.strip())
        parts.append(f"m.client_id IN (SELECT c.id FROM clients c WHERE {sql})")
        params += values
    if f.channel:
        parts.append("m.channel = ?")
        params.append(f.channel)
    if f.statuses:
        parts.append(f"m.status IN ({', '.join('?' for _ in f.statuses)})")
        params += list(f.statuses)
    if f.source:
        parts.append("m.source = ?")
        params.append(f.source)
    if f.batch_id is not None:
        parts.append("m.batch_id = ?")
        params.append(int(f.batch_id))
    if f.date_from:
        parts.append("m.created_at >= ?")
        params.append(dt.datetime.combine(f.date_from, dt.time.min))
    if f.date_to:
        parts.append("m.created_at < ?")
        params.append(dt.datetime.combine(f.date_to + dt.timedelta(days=1), dt.time.min))
    if f.text and f.text.strip():
        sql, values = _contains(
            ["m.subject", "m.body_text", "m.to_address", "m.to_name"], f.text.strip()
        )
        parts.append(sql)
        params += values
    return (" AND ".join(parts) or "true"), params


def _scope(f: MessageFilter) -> tuple[str, str, list[Any]]:
    """(WITH prefix, source relation, params) for a filter.

    Narrowed to one client, the client's rows are looked up first through the
    messages(client_id) index and materialised; without that, DuckDB would
    answer ORDER BY ... LIMIT with a top-N over the whole table.
    """
    if f.client_id is not None:
        return (
            f"WITH m AS MATERIALIZED (SELECT {SCOPE_COLUMNS} FROM messages WHERE client_id = ?),",
            "m",
            [int(f.client_id)],
        )
    return "WITH", "messages m", []


def count_messages(store: Store, f: MessageFilter | None = None) -> int:
    """How many messages match the filter."""
    f = f or MessageFilter()
    where, params = filter_where(f)
    prefix, source, pre = _scope(f)
    sql = f"{prefix} hits AS (SELECT 1 FROM {source} WHERE {where}) SELECT count(*) FROM hits"
    return int(store.scalar(sql, [*pre, *params]) or 0)


def list_messages(
    store: Store, f: MessageFilter | None = None, *, limit: int = 50, offset: int = 0
) -> pd.DataFrame:
    """One page of matching messages, newest first, with the client's name."""
    f = f or MessageFilter()
    where, params = filter_where(f)
    prefix, source, pre = _scope(f)
    # Order and cut first, then join the client only for the rows of this page.
    sql = f"""
        {prefix} page AS (
            SELECT {LIST_COLUMNS} FROM {source} WHERE {where}
            ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?
        )
        SELECT p.*, c.name AS client_name
        FROM page p LEFT JOIN clients c ON c.id = p.client_id
        ORDER BY p.created_at DESC, p.id DESC
    """
    return store.df(sql, [*pre, *params, int(limit), int(offset)])


def client_history(store: Store, client_id: int, *, limit: int | None = None) -> list[dict]:
    """Every message of one client, newest first, with full bodies."""
    sql = """
        WITH m AS MATERIALIZED (SELECT * FROM messages WHERE client_id = ?)
        SELECT id, channel, status, source, batch_id, to_address, subject,
               body_text AS body, body_html, reason, error, attempts, segments, encoding,
               provider_id, scheduled_at, sent_at, created_at
        FROM m ORDER BY created_at DESC, id DESC
    """
    params: list[Any] = [int(client_id)]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return store.rows(sql, params)


def client_history_df(store: Store, client_id: int, *, limit: int = 500) -> pd.DataFrame:
    """A client's messages for a table (no bodies), newest first."""
    return list_messages(store, MessageFilter(client_id=client_id), limit=limit)


def client_timeline(store: Store, client_id: int, *, limit: int = 5000) -> pd.DataFrame:
    """One point per message of a client: when, channel, status, subject."""
    return store.df(
        """
        WITH m AS MATERIALIZED (
            SELECT id, sent_at, created_at, channel, status, subject, body_text
            FROM messages WHERE client_id = ?
        )
        SELECT id, coalesce(sent_at, created_at) AS ts, channel, status,
               coalesce(subject, left(body_text, 60)) AS title
        FROM m ORDER BY created_at DESC, id DESC LIMIT ?
        """,
        [int(client_id), int(limit)],
    )


def batch_options(store: Store, *, limit: int = 200) -> list[dict]:
    """Recent batches for the batch filter: id and a readable label."""
    return store.rows(
        """
        SELECT id, channel, created_at,
               coalesce(name, 'batch ' || id) || ' (' || channel || ', '
                   || strftime(created_at, '%Y-%m-%d %H:%M') || ')' AS label
        FROM batches ORDER BY id DESC LIMIT ?
        """,
        [int(limit)],
    )


def filter_options(store: Store) -> dict[str, list]:
    """Choices for the Communication filters (sources seen plus the known ones)."""
    return {
        "channels": list(CHANNELS),
        "statuses": list(STATUSES),
        "sources": list(SOURCES),
        "batches": batch_options(store),
    }


def get_message(store: Store, message_id: int) -> dict:
    """One message as sent: its fields, client, batch (and body format), attachments, attempts."""
    rows = store.rows(
        """
        SELECT m.*, c.name AS client_name, b.name AS batch_name, b.body_format
        FROM messages m
        LEFT JOIN clients c ON c.id = m.client_id
        LEFT JOIN batches b ON b.id = m.batch_id
        WHERE m.id = ?
        """,
        [int(message_id)],
    )
    if not rows:
        raise NotFound(_("Message {id} does not exist.").format(id=message_id))
    msg = rows[0]
    msg["attachments"] = store.rows(
        """
        SELECT a.id, a.filename, a.content_type, a.size, a.sha256
        FROM message_attachments ma JOIN attachments a ON a.id = ma.attachment_id
        WHERE ma.message_id = ? ORDER BY a.filename, a.id
        """,
        [int(message_id)],
    )
    msg["attempt_log"] = store.rows(
        "SELECT attempt, ts, outcome, detail FROM message_attempts"
        " WHERE message_id = ? ORDER BY ts, attempt",
        [int(message_id)],
    )
    return msg


ON_ITS_WAY_SECONDS = 60  # a queued message due within this long is "on its way"


def on_its_way(df: pd.DataFrame) -> bool:
    """Whether a page of list_messages rows holds a message about to change by itself:
    one being sent, or queued and due within ON_ITS_WAY_SECONDS (not scheduled for later)."""
    if df.empty:
        return False
    if (df["status"] == "sending").any():
        return True
    queued = df[df["status"] == "queued"]
    if queued.empty:
        return False
    due = queued["next_attempt_at"].fillna(queued["scheduled_at"])
    soon = pd.Timestamp(dt.datetime.now() + dt.timedelta(seconds=ON_ITS_WAY_SECONDS))
    return bool((due.isna() | (due <= soon)).any())


def count_on_its_way(store: Store, f: MessageFilter | None = None) -> int:
    """How many messages matching the filter are on its way (see on_its_way)."""
    f = f or MessageFilter()
    where, params = filter_where(f)
    prefix, source, pre = _scope(f)
    soon = dt.datetime.now() + dt.timedelta(seconds=ON_ITS_WAY_SECONDS)
    sql = (
        f"{prefix} hits AS (SELECT 1 FROM {source} WHERE {where} AND (m.status = 'sending'"
        " OR (m.status = 'queued' AND coalesce(m.next_attempt_at, m.scheduled_at, ?) <= ?)))"
        " SELECT count(*) FROM hits"
    )
    return int(store.scalar(sql, [*pre, *params, soon, soon]) or 0)


def statuses_of(store: Store, ids: Sequence[int]) -> dict[int, str]:
    """{message id: status} for some messages (what the selection actions can do)."""
    if not ids:
        return {}
    rows = store.rows(
        "SELECT id, status FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))",
        [[int(i) for i in ids]],
    )
    return {int(r["id"]): r["status"] for r in rows}


def attachment_data(store: Store, attachment_id: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of one stored attachment."""
    rows = store.rows(
        "SELECT filename, content_type, data FROM attachments WHERE id = ?", [int(attachment_id)]
    )
    if not rows:
        raise NotFound(_("Attachment {id} does not exist.").format(id=attachment_id))
    r = rows[0]
    return r["filename"], r["content_type"], bytes(r["data"])


# -- Home page ----------------------------------------------------------------


@dataclass(frozen=True)
class HomeStats:
    clients: int
    templates: int
    sent: int  # in the window
    failed: int  # in the window
    queued: int  # now
    drafts: int  # now
    days: int


def home_stats(store: Store, *, days: int = 30) -> HomeStats:
    """Counts for the Home page's metrics over the last `days` days."""
    since = dt.datetime.now() - dt.timedelta(days=days)
    row = store.rows(
        """
        SELECT
            (SELECT count(*) FROM clients) AS clients,
            (SELECT count(*) FROM templates) AS templates,
            count(*) FILTER (WHERE status = 'sent' AND sent_at >= ?) AS sent,
            count(*) FILTER (WHERE status = 'failed' AND updated_at >= ?) AS failed,
            count(*) FILTER (WHERE status = 'queued') AS queued,
            count(*) FILTER (WHERE status = 'draft') AS drafts
        FROM messages
        """,
        [since, since],
    )[0]
    return HomeStats(**{k: int(v or 0) for k, v in row.items()}, days=days)


def recent_batches(store: Store, *, limit: int = 10) -> pd.DataFrame:
    """The last batches with their message counts per status (long format)."""
    return store.df(
        """
        WITH recent AS (SELECT * FROM batches ORDER BY id DESC LIMIT ?)
        SELECT r.id AS batch_id,
               -- The batch number keeps two sends of one template apart (one bar each).
               '#' || r.id || ' ' || coalesce(r.name, 'batch') || ' · '
                   || CASE r.channel WHEN 'email' THEN 'e-mail' ELSE 'SMS' END AS batch,
               r.created_at, m.status, count(m.id) AS messages
        FROM recent r JOIN messages m ON m.batch_id = r.id
        GROUP BY ALL ORDER BY r.id DESC, m.status
        """,
        [int(limit)],
    )
