"""What became of a sent message: THE code that moves sent -> delivered / undelivered / bounced.

Reports come from comms.feedback (Twilio callbacks and polling, bounces read
from files or the bounce mailbox). Each is recorded once in `feedback_events`
(a report seen twice, by its dedupe key, is a duplicate and changes nothing)
and, when its kind is a move, moves the message by states.TRANSITIONS:

* `delivered` -> "deliver", `undelivered` -> "undeliver", `bounced` -> "bounce".
  Each move's start statuses are the table's, so a late report never moves a
  status backwards (D1): a `delivered` arriving after `bounced`, or an
  `undelivered` after `delivered`, finds no start status and is kept as an
  event only ("late").
* `soft bounce` and `complaint` move nothing: a soft bounce's diagnostic is
  kept in the message's `error`; what to suppress is the caller's decision.

Everything runs on the caller's cursor, inside the caller's transaction of the
store's one writer (comms.store, W1), with the action-log entries of the moves
(one per kind and batch: a count, and the ids when they are few), so that
reports, moves and log land together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from comms import actionlog
from comms.outbox.states import now, sources, status_in, target
from comms.store import Store, dicts

# Report kind -> the move it makes (states.TRANSITIONS). Other kinds only record.
MOVES: dict[str, str] = {"delivered": "deliver", "undelivered": "undeliver", "bounced": "bounce"}
RECORD_ONLY: frozenset[str] = frozenset({"soft bounce", "complaint", "unsubscribed"})
KINDS: tuple[str, ...] = (*MOVES, *sorted(RECORD_ONLY))
_SHOWN_IDS = 50  # a log entry names the moved messages when at most this many


@dataclass(frozen=True)
class Report:
    """One thing the recipient's side said about one sent message."""

    kind: str  # one of KINDS
    message_id: int
    source: str  # twilio callback | twilio poll | imap | file | web | mailto
    code: str | None = None  # 5.1.1, Twilio's 30003, ...
    detail: str | None = None  # the diagnostic, or the code's meaning
    reason: str | None = None  # the message's named reason after a move ("bounced: 5.1.1 ...")
    address: str | None = None  # the address it concerns (default: the message's)
    dedupe_key: str | None = None  # the same report seen again is a duplicate

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"report kind must be one of {', '.join(KINDS)}, not {self.kind!r}")


@dataclass(frozen=True)
class Applied:
    """What one report did: `outcome` is moved | recorded | late | duplicate | unknown."""

    report: Report
    outcome: str
    status: str | None = None  # the message's status afterwards (None: no such message)
    client_id: int | None = None
    batch_id: int | None = None
    channel: str | None = None
    address: str | None = None  # the report's address, else the message's to_address


def record(cur: duckdb.DuckDBPyConnection, reports: Sequence[Report]) -> list[Applied]:
    """Record reports and make their moves, on the caller's cursor; one Applied per report."""
    if not reports:
        return []
    ids = sorted({int(r.message_id) for r in reports})
    rows = {
        r["id"]: r
        for r in dicts(
            cur,
            "SELECT id, status, client_id, batch_id, channel, to_address FROM messages"
            " WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        )
    }
    keys = [r.dedupe_key for r in reports if r.dedupe_key]
    seen = (
        {
            k
            for (k,) in cur.execute(
                "SELECT dedupe_key FROM feedback_events"
                " WHERE dedupe_key IN (SELECT unnest(?::VARCHAR[]))",
                [keys],
            ).fetchall()
        }
        if keys
        else set()
    )
    status = {i: r["status"] for i, r in rows.items()}  # as it will be after earlier reports
    out: list[Applied] = []
    for rep in reports:
        row = rows.get(int(rep.message_id))
        if row is None:
            out.append(Applied(rep, "unknown"))
            continue
        where = {
            "client_id": row["client_id"],
            "batch_id": row["batch_id"],
            "channel": row["channel"],
            "address": rep.address or row["to_address"],
        }
        if rep.dedupe_key and rep.dedupe_key in seen:
            out.append(Applied(rep, "duplicate", status[row["id"]], **where))
            continue
        if rep.dedupe_key:
            seen.add(rep.dedupe_key)
        outcome = "recorded"
        if rep.kind in MOVES:
            move = MOVES[rep.kind]
            if status[row["id"]] in sources(move):  # D1: only from the table's start statuses
                status[row["id"]] = target(move)
                outcome = "moved"
            else:
                outcome = "late"
        out.append(Applied(rep, outcome, status[row["id"]], **where))
    _insert_events(cur, [a for a in out if a.outcome in ("moved", "recorded", "late")])
    _update_messages(cur, [a for a in out if a.outcome in ("moved", "recorded")])
    _log(cur, [a for a in out if a.outcome in ("moved", "recorded")])
    return out


def apply(store: Store, reports: Sequence[Report]) -> list[Applied]:
    """record() in one transaction of the store's one writer."""
    return store.write(lambda cur: record(cur, reports))


def _insert_events(cur: duckdb.DuckDBPyConnection, applied: Sequence[Applied]) -> None:
    if not applied:
        return
    cols: dict[str, list[Any]] = defaultdict(list)
    for a in applied:
        r = a.report
        cols["kind"].append(r.kind)
        cols["message_id"].append(int(r.message_id))
        cols["client_id"].append(a.client_id)
        cols["batch_id"].append(a.batch_id)
        cols["channel"].append(a.channel)
        cols["address"].append(a.address)
        cols["code"].append(r.code)
        cols["detail"].append(r.detail)
        cols["source"].append(r.source)
        cols["dedupe_key"].append(r.dedupe_key)
    cur.execute(
        "INSERT INTO feedback_events (ts, kind, message_id, client_id, batch_id, channel, address,"
        " code, detail, source, dedupe_key) SELECT ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[]),"
        " unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
        " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
        [now(), *(cols[c] for c in (
            "kind", "message_id", "client_id", "batch_id", "channel", "address", "code",
            "detail", "source", "dedupe_key",
        ))],
    )  # fmt: skip


def _update_messages(cur: duckdb.DuckDBPyConnection, applied: Sequence[Applied]) -> None:
    """The moves (status, reason, error) and the soft bounces' diagnostics, per message."""
    at = now()
    for kind, move in MOVES.items():
        group = [a for a in applied if a.report.kind == kind and a.outcome == "moved"]
        if not group:
            continue
        # One report per message and kind moves it (the first; D1 refuses a second).
        latest = {int(a.report.message_id): a.report for a in group}
        cur.execute(
            f"""
            UPDATE messages SET status = ?, reason = coalesce(v.reason, messages.reason),
                   error = coalesce(v.error, messages.error), updated_at = ?
            FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS reason,
                         unnest(?::VARCHAR[]) AS error) v
            WHERE messages.id = v.id AND {status_in(move, "messages.status")}
            """,
            [
                target(move),
                at,
                list(latest),
                [r.reason for r in latest.values()],
                [_error_text(r) for r in latest.values()],
            ],
        )
    soft = {
        int(a.report.message_id): a.report
        for a in applied
        if a.report.kind == "soft bounce" and a.outcome == "recorded"
    }
    if soft:
        cur.execute(
            """
            UPDATE messages SET error = v.error, updated_at = ?
            FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS error) v
            WHERE messages.id = v.id
            """,
            [at, list(soft), [f"soft bounce: {_error_text(r)}" for r in soft.values()]],
        )


def _error_text(r: Report) -> str | None:
    """The server's or carrier's words: code and diagnostic."""
    text = " ".join(p for p in (r.code, r.detail) if p)
    return text or None


def _log(cur: duckdb.DuckDBPyConnection, moved: Iterable[Applied]) -> None:
    """One action-log entry per kind and batch, with the count (and the ids when few).

    The moves and the record-only reports (soft bounce, complaint, unsubscribed);
    not the late ones, which change nothing.
    """
    groups: dict[tuple[str, int | None], list[Applied]] = defaultdict(list)
    for a in moved:
        groups[(a.report.kind, a.batch_id)].append(a)
    entries = []
    for (kind, batch_id), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        ids = sorted({int(a.report.message_id) for a in group})
        detail: dict[str, Any] = {
            "count": len(ids),
            "source": sorted({a.report.source for a in group}),
        }
        if len(ids) <= _SHOWN_IDS:
            detail["message_ids"] = ids
        if len(group) == 1:
            r = group[0].report
            detail.update(address=group[0].address, code=r.code, detail=r.detail, reason=r.reason)
        entries.append(
            {
                "action": kind,
                "batch_id": batch_id,
                "message_id": ids[0] if len(ids) == 1 else None,
                "client_id": group[0].client_id if len(ids) == 1 else None,
                "outcome": "ok",
                "detail": detail,
            }
        )
    actionlog.record_many(cur, entries)
