"""The action log: who did what, when, to which batch / message / client.

Every entry is written with the caller's cursor, inside the transaction of the
change it records, so a change and its log entry land together or not at all.
"""

from __future__ import annotations

import contextvars
import getpass
import json
from datetime import datetime
from typing import Any

import duckdb

_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("comms_user", default=None)


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def set_user(user: str | None) -> None:
    """Who is acting in this thread / script run (the signed-in user in the app)."""
    _user.set(user or None)


def current_user() -> str:
    """The signed-in user when one is set, else the OS user."""
    return _user.get() or os_user()


def record_many(
    cur: duckdb.DuckDBPyConnection, entries: list[dict[str, Any]], *, at: datetime | None = None
) -> None:
    """THE writer of the action log: append entries in ONE statement, on the caller's cursor.

    Each entry is {action, outcome?, batch_id?, message_id?, client_id?, detail?, user?};
    `at` stamps them all (default: the database's current time). One INSERT ... SELECT
    unnest(...) whatever their number (executemany would cost a statement per entry).
    """
    if not entries:
        return
    user = current_user()
    cur.execute(
        'INSERT INTO action_log (ts, "user", action, batch_id, message_id, client_id, outcome,'
        " detail) SELECT coalesce(?::TIMESTAMP, current_timestamp::TIMESTAMP),"
        " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]),"
        " unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON",
        [
            at,
            [e.get("user") or user for e in entries],
            [e["action"] for e in entries],
            [e.get("batch_id") for e in entries],
            [e.get("message_id") for e in entries],
            [e.get("client_id") for e in entries],
            [e.get("outcome", "ok") for e in entries],
            [json.dumps(e.get("detail") or {}, ensure_ascii=False, default=str) for e in entries],
        ],
    )


def record(
    cur: duckdb.DuckDBPyConnection,
    action: str,
    *,
    outcome: str = "ok",
    batch_id: int | None = None,
    message_id: int | None = None,
    client_id: int | None = None,
    detail: dict[str, Any] | None = None,
    user: str | None = None,
) -> None:
    """Append one entry using the caller's cursor (same transaction as the change)."""
    record_many(
        cur,
        [
            {
                "action": action,
                "outcome": outcome,
                "batch_id": batch_id,
                "message_id": message_id,
                "client_id": client_id,
                "detail": detail,
                "user": user,
            }
        ],
    )
