"""The action log: who did what, when, to which batch / message / client.

Every entry is written with the caller's cursor, inside the transaction of the
change it records, so a change and its log entry land together or not at all.
"""

from __future__ import annotations

import contextvars
import getpass
import json
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
    cur.execute(
        'INSERT INTO action_log ("user", action, batch_id, message_id, client_id, outcome, detail)'
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            user or current_user(),
            action,
            batch_id,
            message_id,
            client_id,
            outcome,
            json.dumps(detail or {}, ensure_ascii=False, default=str),
        ],
    )


def record_many(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Append many entries at once (per-message outcomes of a send run)."""
    if not rows:
        return
    user = current_user()
    cur.executemany(
        'INSERT INTO action_log ("user", action, batch_id, message_id, client_id, outcome, detail)'
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            [
                r.get("user") or user,
                r["action"],
                r.get("batch_id"),
                r.get("message_id"),
                r.get("client_id"),
                r.get("outcome", "ok"),
                json.dumps(r.get("detail") or {}, ensure_ascii=False, default=str),
            ]
            for r in rows
        ],
    )
