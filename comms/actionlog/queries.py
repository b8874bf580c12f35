"""Reading the action log: filters, paging, readable details and a CSV export.

The writer is comms.actionlog; this module only reads. Entries about one
message are found by batch or client even when the writer filled only
message_id, by looking the message up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from comms.csv_export import dataframe_to_csv, rows_to_csv
from comms.store import Store

# What an entry shows: the page's table adds a summary, the CSV export the id and raw detail.
ENTRY_COLUMNS = (
    "ts",
    "user",
    "action",
    "outcome",
    "batch_id",
    "message_id",
    "client_id",
    "client_name",
)
TABLE_COLUMNS = (*ENTRY_COLUMNS, "summary")
EXPORT_COLUMNS = ("id", *ENTRY_COLUMNS, "detail")

# Message and client are joined so that a per-message entry shows its client. The
# join is costly over a long log, so filters run on action_log alone and only the
# page they select is joined (see _select).
_JOIN = """
    LEFT JOIN messages m ON m.id = a.message_id
    LEFT JOIN clients c ON c.id = coalesce(a.client_id, m.client_id)
"""
_COLUMNS = """
    a.id, a.ts, a."user", a.action, a.outcome,
    coalesce(a.batch_id, m.batch_id) AS batch_id, a.message_id,
    coalesce(a.client_id, m.client_id) AS client_id,
    c.name AS client_name, CAST(a.detail AS VARCHAR) AS detail
"""
CHUNK_VECTORS = 50  # DuckDB vectors (2,048 rows each) per CSV chunk: ~100,000 rows


@dataclass
class LogFilter:
    """What the action log page filters by; every field is optional."""

    actions: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    batch_id: int | None = None
    client_id: int | None = None
    client: str | None = None  # a name / e-mail / phone fragment
    message_id: int | None = None
    text: str | None = None  # searched in the detail JSON

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (dates as ISO strings)."""
        d = asdict(self)
        for key in ("date_from", "date_to"):
            if d[key] is not None:
                d[key] = d[key].isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogFilter:
        """The inverse of to_dict; unknown keys are ignored."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("date_from", "date_to"):
            if isinstance(known.get(key), str):
                known[key] = date.fromisoformat(known[key])
        return cls(**known)


def log_where(f: LogFilter) -> tuple[str, list[Any]]:
    """The WHERE clause (over action_log a alone) and its parameters for a filter."""
    clauses: list[str] = []
    params: list[Any] = []
    if f.actions:
        clauses.append("a.action IN (" + ", ".join("?" * len(f.actions)) + ")")
        params += list(f.actions)
    if f.users:
        clauses.append('a."user" IN (' + ", ".join("?" * len(f.users)) + ")")
        params += list(f.users)
    if f.outcomes:
        clauses.append("a.outcome IN (" + ", ".join("?" * len(f.outcomes)) + ")")
        params += list(f.outcomes)
    if f.date_from is not None:
        clauses.append("a.ts >= ?")
        params.append(_start_of(f.date_from))
    if f.date_to is not None:
        clauses.append("a.ts < ?")
        params.append(_start_of(f.date_to) + timedelta(days=1))
    # An entry is about a batch / client directly, or through the message it names.
    # Semi-joins on the (few) matching messages keep the log scan free of joins.
    if f.batch_id is not None:
        clauses.append(
            "(a.batch_id = ? OR (a.batch_id IS NULL AND a.message_id IN"
            " (SELECT id FROM messages WHERE batch_id = ?)))"
        )
        params += [int(f.batch_id)] * 2
    if f.client_id is not None:
        clauses.append(
            "(a.client_id = ? OR (a.client_id IS NULL AND a.message_id IN"
            " (SELECT id FROM messages WHERE client_id = ?)))"
        )
        params += [int(f.client_id)] * 2
    if f.client:
        needle = f"%{f.client.strip()}%"
        matching = "SELECT id FROM clients WHERE name ILIKE ? OR email ILIKE ? OR phone ILIKE ?"
        clauses.append(
            f"(a.client_id IN ({matching}) OR (a.client_id IS NULL AND a.message_id IN"
            f" (SELECT id FROM messages WHERE client_id IN ({matching}))))"
        )
        params += [needle] * 6
    if f.message_id is not None:
        clauses.append("a.message_id = ?")
        params.append(int(f.message_id))
    if f.text:
        clauses.append("CAST(a.detail AS VARCHAR) ILIKE ?")
        params.append(f"%{f.text.strip()}%")
    return (" AND ".join(clauses) or "true"), params


def _select(f: LogFilter, *, paged: bool) -> tuple[str, list[Any]]:
    """Matching entries newest first (one page when paged), joined to message and client."""
    where, params = log_where(f)
    inner = f"SELECT a.* FROM action_log a WHERE {where} ORDER BY a.ts DESC, a.id DESC" + (
        " LIMIT ? OFFSET ?" if paged else ""
    )
    sql = f"SELECT {_COLUMNS} FROM ({inner}) a {_JOIN} ORDER BY a.ts DESC, a.id DESC"
    return sql, params


def _start_of(d: date) -> datetime:
    return datetime(d.year, d.month, d.day) if not isinstance(d, datetime) else d


def count_log(store: Store, f: LogFilter) -> int:
    """How many entries match the filter."""
    where, params = log_where(f)
    return int(store.scalar(f"SELECT count(*) FROM action_log a WHERE {where}", params) or 0)


def query_log(store: Store, f: LogFilter, *, limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """One page of matching entries, newest first, with the client's name and a summary."""
    sql, params = _select(f, paged=True)
    df = store.df(sql, [*params, int(limit), int(offset)])
    df["summary"] = [summarize_detail(d) for d in df["detail"]]
    return df


def export_log_csv(store: Store, f: LogFilter, headers: Mapping[str, str] | None = None) -> bytes:
    """Every matching entry as formula-safe CSV bytes (UTF-8 with BOM), newest first.

    Fetched and written in chunks of ~100,000 rows, each neutralised column-wise.
    `headers` names the columns in the file (the viewer's language); the cells are
    the stored data, never translated.
    """
    names = [(headers or {}).get(c, c) for c in EXPORT_COLUMNS]
    sql, params = _select(f, paged=False)
    cur = store.cursor().execute(sql, params)
    parts: list[bytes] = []
    while True:
        chunk = cur.fetch_df_chunk(CHUNK_VECTORS)
        if chunk.empty:
            break
        chunk = chunk[list(EXPORT_COLUMNS)].set_axis(names, axis="columns")
        parts.append(dataframe_to_csv(chunk, header=not parts, bom=not parts))
    return b"".join(parts) or rows_to_csv([], names)


def get_entry(store: Store, entry_id: int) -> dict[str, Any] | None:
    """One entry with its parsed detail, or None."""
    rows = store.rows(
        f"SELECT {_COLUMNS} FROM action_log a {_JOIN} WHERE a.id = ?", [int(entry_id)]
    )
    if not rows:
        return None
    entry = rows[0]
    entry["detail"] = parse_detail(entry["detail"])
    return entry


def filter_options(store: Store) -> dict[str, list[str]]:
    """The distinct actions, users and outcomes present, for the filter widgets."""
    return {
        "actions": [
            r[0] for r in store.cursor().execute(_DISTINCT.format(col="action")).fetchall()
        ],
        "users": [r[0] for r in store.cursor().execute(_DISTINCT.format(col='"user"')).fetchall()],
        "outcomes": [
            r[0] for r in store.cursor().execute(_DISTINCT.format(col="outcome")).fetchall()
        ],
    }


_DISTINCT = "SELECT DISTINCT {col} FROM action_log WHERE {col} IS NOT NULL ORDER BY 1"


def parse_detail(raw: Any) -> dict[str, Any]:
    """The detail JSON as a dict ({} when empty; {'value': raw} when it is not an object)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"value": str(raw)}
    return value if isinstance(value, dict) else {"value": value}


def summarize_detail(raw: Any, max_len: int = 160) -> str:
    """A one-line, human-readable summary of a detail: `key: value` pairs, lists counted.

    Empty values (None, "", []) are left out: "message ids: None" says nothing.
    """
    detail = parse_detail(raw)
    parts = []
    for key, value in detail.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            text = f"{len(value)} item{'s' if len(value) != 1 else ''}"
        elif isinstance(value, dict):
            text = ", ".join(f"{k}={v}" for k, v in value.items())
        else:
            text = str(value)
        parts.append(f"{key.replace('_', ' ')}: {text}")
    summary = "; ".join(parts)
    return summary if len(summary) <= max_len else summary[: max_len - 1] + "…"


def detail_rows(detail: dict[str, Any], max_items: int = 20) -> list[dict[str, str]]:
    """A detail as readable Field / Value rows: nested objects flattened ("reasons › x"),
    lists joined (the first max_items, then how many more), empty values left out."""
    rows: list[dict[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value is None or value == "" or value == [] or value == {}:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{label} › {k}", v)
            return
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value[:max_items])
            more = len(value) - max_items
            text = shown + (f" … and {more:,} more" if more > 0 else "")
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = str(value)
        rows.append({"Field": label, "Value": text})

    for key, value in detail.items():
        add(key.replace("_", " "), value)
    return rows


def entry_message_ids(entry: dict[str, Any], limit: int = 200) -> list[int]:
    """The messages an entry is about: its message_id and any detail['message_ids']."""
    ids: list[int] = []
    if entry.get("message_id") is not None:
        ids.append(int(entry["message_id"]))
    listed = (entry.get("detail") or {}).get("message_ids")
    if isinstance(listed, list):
        ids += [int(i) for i in listed if isinstance(i, int) or str(i).isdigit()]
    return list(dict.fromkeys(ids))[:limit]


def messages_now(store: Store, message_ids: list[int]) -> pd.DataFrame:
    """Where those messages stand now: status, client, address, last error, provider id."""
    return store.df(
        """
        SELECT m.id, m.status, m.channel, c.name AS client_name, m.to_address,
               coalesce(m.error, m.reason) AS error, m.sent_at, m.provider_id
        FROM messages m LEFT JOIN clients c ON c.id = m.client_id
        WHERE m.id IN (SELECT unnest(?::BIGINT[]))
        ORDER BY m.id
        """,
        [list(message_ids)],
    )


# -- per-message outcomes of a send run ----------------------------------------------

# Per-message entries the dispatcher wrote before send runs kept their outcomes in
# message_attempts (one action-log line per message then, one per run now).
PER_MESSAGE_SEND_ACTIONS = ("send", "send failed", "send deferred", "interrupted")
# column -> its SQL over message_attempts a, messages m, clients c
OUTCOME_COLUMNS = {
    "message_id": "a.message_id",
    "attempt": "a.attempt",
    "ts": "a.ts",
    "outcome": "a.outcome",
    "detail": "a.detail",
    "status": "m.status",
    "channel": "m.channel",
    "batch_id": "m.batch_id",
    "client_id": "m.client_id",
    "client_name": "c.name",
    "to_address": "m.to_address",
}


def _outcomes_scope(entry: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """WHERE over message_attempts a for the per-message outcomes an entry stands for.

    - a run entry ('send run start' / 'send run end', or any entry whose detail
      names "run"): every attempt stamped with that run id (message_attempts.run_id);
    - an older per-message send entry (PER_MESSAGE_SEND_ACTIONS with a message_id):
      that message's attempt written with the entry (same timestamp), or, when none
      matches, all of the message's attempts.
    None for an entry that stands for no send outcome.
    """
    run = (entry.get("detail") or {}).get("run")
    if run:
        return "a.run_id = ?", [str(run)]
    if entry.get("action") in PER_MESSAGE_SEND_ACTIONS and entry.get("message_id") is not None:
        return (
            "a.message_id = ? AND (a.ts = ? OR NOT EXISTS (SELECT 1 FROM message_attempts x"
            " WHERE x.message_id = ? AND x.ts = ?))",
            [int(entry["message_id"]), entry["ts"], int(entry["message_id"]), entry["ts"]],
        )
    return None


def has_outcomes(entry: dict[str, Any]) -> bool:
    """Whether an entry stands for per-message send outcomes (entry_outcomes reads them)."""
    return _outcomes_scope(entry) is not None


def outcome_counts(store: Store, entry: dict[str, Any]) -> dict[str, int]:
    """{outcome: messages} of the entry's send outcomes (sent, transient, permanent, ...)."""
    scope = _outcomes_scope(entry)
    if scope is None:
        return {}
    where, params = scope
    rows = store.rows(
        f"SELECT a.outcome, count(*) AS n FROM message_attempts a WHERE {where}"
        " GROUP BY a.outcome ORDER BY n DESC, a.outcome",
        params,
    )
    return {r["outcome"]: int(r["n"]) for r in rows}


def entry_outcomes(
    store: Store,
    entry: dict[str, Any],
    *,
    outcomes: list[str] | None = None,
    limit: int = 500,
    offset: int = 0,
) -> pd.DataFrame:
    """One page of the entry's per-message outcomes, each joined to its message as it is now.

    Columns: message_id, attempt, ts, outcome, detail (the provider id or the
    server's text), status, channel, batch_id, client_id, client_name, to_address.
    """
    scope = _outcomes_scope(entry)
    if scope is None:
        return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    where, params = scope
    if outcomes:
        where += " AND a.outcome IN (SELECT unnest(?::VARCHAR[]))"
        params = [*params, list(outcomes)]
    return store.df(
        f"""
        SELECT {", ".join(f"{sql} AS {name}" for name, sql in OUTCOME_COLUMNS.items())}
        FROM message_attempts a
        JOIN messages m ON m.id = a.message_id
        LEFT JOIN clients c ON c.id = m.client_id
        WHERE {where}
        ORDER BY a.ts, a.message_id, a.attempt
        LIMIT ? OFFSET ?
        """,
        [*params, int(limit), int(offset)],
    )
