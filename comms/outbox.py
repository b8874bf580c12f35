"""Message states and the only functions that move messages between them.

Every other module reads `messages.status`; only this one writes it. Each move
runs in one transaction together with its `message_attempts` row (for sending
outcomes) and its action-log entry, so a change and its record land together.

Invariants (enforced where noted):

* Only `queued` is ever picked for sending (`claim_due`).
* A message is written `sending` and COMMITTED before it is handed to a server
  (`claim_due` returns only after the commit). A crash therefore leaves it in
  `sending`, never in `queued`, so it cannot be sent a second time by accident.
* `sending` rows left by a process that is gone become `interrupted`
  (`recover_interrupted`) and stay there until a person resolves them
  (`resolve_interrupted`): delivery is unknown, so nothing resends them on its own.
* Each claimer (one per connection) holds at most one `sending` row at a time,
  which is how a crash costs at most one ambiguous message per connection.

Times are naive local timestamps, like the columns' `current_timestamp`
defaults; an aware datetime passed in is converted to local time.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from comms import actionlog
from comms.errors import InvalidTransition, NotFound
from comms.store import Store

# -- the state machine, as data ------------------------------------------------

STATUSES: tuple[str, ...] = (
    "draft",  # generated, editable, not yet meant to leave
    "invalid",  # generated with a named reason (bad address, opted out, ...); never sent
    "queued",  # waiting for its time (scheduled_at / next_attempt_at); the only sendable state
    "sending",  # claimed by one connection and committed before the hand-off
    "sent",  # the server accepted it (provider_id = Message-ID / Twilio SID)
    "failed",  # permanent error, or transient errors exhausted; reason + server text
    "cancelled",  # a person withdrew it
    "interrupted",  # was `sending` when its process died or the link dropped: delivery unknown
)

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "queue": (frozenset({"draft"}), "queued"),
    "cancel": (frozenset({"draft", "queued"}), "cancelled"),
    "claim": (frozenset({"queued"}), "sending"),
    "sent": (frozenset({"sending"}), "sent"),
    "fail": (frozenset({"sending"}), "failed"),
    "defer": (frozenset({"sending"}), "queued"),  # transient error, attempts left
    "interrupt": (frozenset({"sending"}), "interrupted"),
    "retry": (frozenset({"failed", "interrupted"}), "queued"),
    "resolve sent": (frozenset({"interrupted"}), "sent"),
    "resolve resend": (frozenset({"interrupted"}), "queued"),
    "resolve cancel": (frozenset({"interrupted"}), "cancelled"),
}

# Decisions a person can take about an interrupted message.
RESOLUTIONS: tuple[str, ...] = ("sent", "resend", "cancel")

# Named failure reasons (the server's own text goes to `error`).
REASON_REJECTED = "rejected by server"
REASON_RETRIES_EXHAUSTED = "temporary errors, attempts exhausted"
REASON_NOT_SENDABLE = "cannot be sent"

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 3600.0

# Who this process is, in `claimed_by`: rows claimed by another process id are
# stale (DuckDB lets one process write the file, so that process is gone).
PROCESS_TOKEN = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_MESSAGE_COLUMNS = (
    "id, client_id, channel, source, batch_id, to_address, to_name, subject, body_text,"
    " body_html, status, attempts, scheduled_at, claimed_by"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff up to max_attempts."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS

    def delay(self, attempts: int) -> float:
        """Seconds to wait before attempt number attempts+1."""
        return min(self.backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def now() -> datetime:
    """The current naive local time, the unit every timestamp column uses."""
    return datetime.now()


def _local(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone().replace(tzinfo=None)


def worker_name(label: str) -> str:
    """A claimed_by value naming this process and one of its connections."""
    return f"{PROCESS_TOKEN}:{label}"


# -- helpers -----------------------------------------------------------------


def _ids(values: Iterable[int] | None) -> list[int]:
    return sorted({int(v) for v in values or ()})


def _check_from(cur: duckdb.DuckDBPyConnection, action: str, ids: Sequence[int]) -> list[dict]:
    """Rows for ids, raising InvalidTransition for any whose status cannot take `action`."""
    allowed, target = TRANSITIONS[action]
    rows = _rows(
        cur,
        "SELECT id, status, batch_id, client_id, excluded FROM messages WHERE id IN "
        "(SELECT unnest(?::BIGINT[]))",
        [list(ids)],
    )
    found = {r["id"] for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No message with id {', '.join(map(str, missing[:10]))}.")
    bad = [r for r in rows if r["status"] not in allowed]
    if bad:
        shown = ", ".join(f"{r['id']} ({r['status']})" for r in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InvalidTransition(
            f"Cannot {action} message {shown}{more}: only {', '.join(sorted(allowed))} "
            f"messages can become {target}."
        )
    return rows


def _rows(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict]:
    res = cur.execute(sql, params)
    names = [d[0] for d in res.description]
    return [dict(zip(names, row, strict=True)) for row in res.fetchall()]


def _scope(message_ids: Sequence[int] | None, batch_id: int | None) -> tuple[str, list[Any]]:
    """WHERE clause over `messages` for explicit ids and/or one batch."""
    if message_ids is None and batch_id is None:
        raise ValueError("give message_ids or batch_id")
    clauses, params = [], []
    if message_ids is not None:
        clauses.append("id IN (SELECT unnest(?::BIGINT[]))")
        params.append(list(message_ids))
    if batch_id is not None:
        clauses.append("batch_id = ?")
        params.append(int(batch_id))
    return " AND ".join(clauses), params


def _log_bulk(
    cur: duckdb.DuckDBPyConnection,
    action: str,
    ids: list[int],
    batch_id: int | None,
    detail: dict[str, Any],
) -> None:
    """One entry for a bulk move: the count, and the ids when they are few."""
    detail = {"count": len(ids), **detail}
    if len(ids) <= 50:
        detail["message_ids"] = ids
    actionlog.record(
        cur,
        action,
        batch_id=batch_id,
        message_id=ids[0] if len(ids) == 1 else None,
        detail=detail,
    )


# -- moves started by a person -------------------------------------------------


def queue(
    store: Store,
    *,
    message_ids: Iterable[int] | None = None,
    batch_id: int | None = None,
    scheduled_at: datetime | None = None,
) -> int:
    """Drafts -> queued, due at scheduled_at (None = now); excluded drafts are skipped.

    With message_ids, a message that is not a draft raises InvalidTransition
    (nothing is queued). With only batch_id, the batch's drafts are queued and
    its invalid / excluded messages are left where they are.
    """
    ids = _ids(message_ids) if message_ids is not None else None
    when = _local(scheduled_at)

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        if ids is not None:
            _check_from(cur, "queue", ids)
        where, params = _scope(ids, batch_id)
        moved = [
            r[0]
            for r in cur.execute(
                f"UPDATE messages SET status = 'queued', scheduled_at = ?, next_attempt_at = NULL,"
                f" reason = NULL, error = NULL, updated_at = ? WHERE {where}"
                " AND status = 'draft' AND NOT excluded RETURNING id",
                [when or now(), now(), *params],
            ).fetchall()
        ]
        if moved:
            batches = _batches_of(cur, moved) if batch_id is None else {int(batch_id)}
            _log_bulk(
                cur,
                "queue",
                sorted(moved),
                next(iter(batches)) if len(batches) == 1 else None,
                {"scheduled_at": when.isoformat(sep=" ") if when else "now"},
            )
        return len(moved)

    return store.write(run)


def _batches_of(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> set[int | None]:
    return {
        r[0]
        for r in cur.execute(
            "SELECT DISTINCT batch_id FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        ).fetchall()
    }


def cancel(
    store: Store, *, message_ids: Iterable[int] | None = None, batch_id: int | None = None
) -> int:
    """Drafts and queued messages -> cancelled; returns how many moved."""
    ids = _ids(message_ids) if message_ids is not None else None

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        if ids is not None:
            _check_from(cur, "cancel", ids)
        where, params = _scope(ids, batch_id)
        moved = [
            r[0]
            for r in cur.execute(
                f"UPDATE messages SET status = 'cancelled', updated_at = ? WHERE {where}"
                " AND status IN ('draft', 'queued') RETURNING id",
                [now(), *params],
            ).fetchall()
        ]
        if moved:
            _log_bulk(cur, "cancel", sorted(moved), batch_id, {})
        return len(moved)

    return store.write(run)


def retry(
    store: Store, *, message_ids: Iterable[int] | None = None, batch_id: int | None = None
) -> int:
    """Failed (and, when a person chooses resend, interrupted) -> queued, due now.

    `attempts` restarts at 0 so the message gets a full set of tries again;
    the earlier tries stay in message_attempts.
    """
    ids = _ids(message_ids) if message_ids is not None else None

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        if ids is not None:
            _check_from(cur, "retry", ids)
        where, params = _scope(ids, batch_id)
        status_in = "('failed', 'interrupted')" if ids is not None else "('failed')"
        moved = [
            r[0]
            for r in cur.execute(
                f"UPDATE messages SET status = 'queued', attempts = 0, scheduled_at = ?,"
                f" next_attempt_at = NULL, claimed_by = NULL, updated_at = ?"
                f" WHERE {where} AND status IN {status_in} RETURNING id",
                [now(), now(), *params],
            ).fetchall()
        ]
        if moved:
            _log_bulk(cur, "retry", sorted(moved), batch_id, {})
        return len(moved)

    return store.write(run)


def resolve_interrupted(store: Store, message_ids: Iterable[int], decision: str) -> int:
    """A person decides about interrupted messages: 'sent', 'resend' or 'cancel'."""
    if decision not in RESOLUTIONS:
        raise ValueError(f"decision must be one of {', '.join(RESOLUTIONS)}, not {decision!r}")
    ids = _ids(message_ids)
    if not ids:
        return 0
    if decision == "resend":

        def run_resend(cur: duckdb.DuckDBPyConnection) -> int:
            _check_from(cur, "resolve resend", ids)
            cur.execute(
                "UPDATE messages SET status = 'queued', attempts = 0, scheduled_at = ?,"
                " next_attempt_at = NULL, claimed_by = NULL, updated_at = ?"
                " WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [now(), now(), ids],
            )
            _log_bulk(cur, "resolve interrupted", ids, None, {"decision": "resend"})
            return len(ids)

        return store.write(run_resend)

    action = "resolve sent" if decision == "sent" else "resolve cancel"
    target = TRANSITIONS[action][1]

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        _check_from(cur, action, ids)
        extra = ", sent_at = coalesce(sent_at, ?)" if target == "sent" else ""
        params: list[Any] = [target, now()]
        if target == "sent":
            params.append(now())
        cur.execute(
            f"UPDATE messages SET status = ?, updated_at = ?{extra}, claimed_by = NULL"
            " WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [*params, ids],
        )
        _log_bulk(cur, "resolve interrupted", ids, None, {"decision": decision})
        return len(ids)

    return store.write(run)


def pause(store: Store, batch_id: int) -> None:
    """Stop claiming the batch's queued messages (the ones already sending finish)."""
    _set_paused(store, batch_id, True)


def resume(store: Store, batch_id: int) -> None:
    """Let the batch's queued messages be claimed again."""
    _set_paused(store, batch_id, False)


def _set_paused(store: Store, batch_id: int, paused: bool) -> None:
    def run(cur: duckdb.DuckDBPyConnection) -> None:
        row = cur.execute(
            "UPDATE batches SET paused = ? WHERE id = ? RETURNING id", [paused, int(batch_id)]
        ).fetchone()
        if row is None:
            raise NotFound(f"No batch with id {batch_id}.")
        actionlog.record(cur, "pause batch" if paused else "resume batch", batch_id=int(batch_id))

    store.write(run)


# -- moves made by the dispatcher ------------------------------------------------


def _claim(
    cur: duckdb.DuckDBPyConnection,
    *,
    worker: str,
    channel: str | None,
    batch_id: int | None,
    message_ids: Sequence[int] | None,
    limit: int,
    at: datetime,
) -> list[dict]:
    clauses = [
        "m.status = 'queued'",
        "NOT m.excluded",
        "(m.scheduled_at IS NULL OR m.scheduled_at <= ?)",
        "(m.next_attempt_at IS NULL OR m.next_attempt_at <= ?)",
        "(m.batch_id IS NULL OR NOT coalesce((SELECT b.paused FROM batches b"
        " WHERE b.id = m.batch_id), false))",
    ]
    params: list[Any] = [at, at]
    if channel is not None:
        clauses.append("m.channel = ?")
        params.append(channel)
    if batch_id is not None:
        clauses.append("m.batch_id = ?")
        params.append(int(batch_id))
    if message_ids is not None:
        clauses.append("m.id IN (SELECT unnest(?::BIGINT[]))")
        params.append(list(message_ids))
    pick = (
        f"SELECT m.id FROM messages m WHERE {' AND '.join(clauses)}"
        " ORDER BY coalesce(m.next_attempt_at, m.scheduled_at), m.id LIMIT ?"
    )
    return _rows(
        cur,
        f"UPDATE messages SET status = 'sending', claimed_by = ?, attempts = attempts + 1,"
        f" updated_at = ? WHERE id IN ({pick}) AND status = 'queued' RETURNING {_MESSAGE_COLUMNS}",
        [worker, at, *params, int(limit)],
    )


def claim_due(
    store: Store,
    *,
    worker: str,
    channel: str | None = None,
    batch_id: int | None = None,
    message_ids: Iterable[int] | None = None,
    limit: int = 1,
) -> list[dict]:
    """Queued, due, unpaused messages -> sending (claimed_by=worker, attempts+1).

    Returns the claimed rows only after the transaction COMMITTED: the
    `sending` mark is durable before any byte goes to a server. A dispatcher
    connection asks for limit=1 so it never holds more than one `sending` row.
    """
    ids = _ids(message_ids) if message_ids is not None else None
    at = now()
    return store.write(
        lambda cur: _claim(
            cur,
            worker=worker,
            channel=channel,
            batch_id=batch_id,
            message_ids=ids,
            limit=limit,
            at=at,
        )
    )


@dataclass(frozen=True)
class Result:
    """What happened to one claimed message (the dispatcher's view of a sender's Outcome)."""

    message_id: int
    status: str  # sent | transient | permanent | interrupted
    provider_id: str | None = None
    error: str | None = None


def _record(cur: duckdb.DuckDBPyConnection, result: Result, policy: RetryPolicy) -> str:
    """Apply one sending outcome; returns the message's new status."""
    row = cur.execute(
        "SELECT status, attempts, batch_id, client_id, claimed_by FROM messages WHERE id = ?",
        [result.message_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"No message with id {result.message_id}.")
    status, attempts, batch_id, client_id, _claimed_by = row
    if status != "sending":
        raise InvalidTransition(
            f"Message {result.message_id} is {status}, not sending: its outcome cannot be recorded."
        )
    at = now()
    error = (result.error or "")[:2000] or None
    if result.status == "sent":
        new = "sent"
        cur.execute(
            "UPDATE messages SET status = 'sent', provider_id = ?, sent_at = ?, error = NULL,"
            " reason = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ?",
            [result.provider_id, at, at, result.message_id],
        )
        action, outcome, detail = "send", "ok", {"provider_id": result.provider_id}
    elif result.status == "transient" and attempts < policy.max_attempts:
        new = "queued"
        delay = policy.delay(attempts)
        cur.execute(
            "UPDATE messages SET status = 'queued', error = ?, next_attempt_at = ?, updated_at = ?"
            " WHERE id = ?",
            [error, at + timedelta(seconds=delay), at, result.message_id],
        )
        action, outcome = "send deferred", "transient"
        detail = {"error": error, "attempt": attempts, "retry_in_seconds": round(delay, 3)}
    elif result.status in ("transient", "permanent"):
        new = "failed"
        reason = REASON_REJECTED if result.status == "permanent" else REASON_RETRIES_EXHAUSTED
        cur.execute(
            "UPDATE messages SET status = 'failed', reason = ?, error = ?, next_attempt_at = NULL,"
            " updated_at = ? WHERE id = ?",
            [reason, error, at, result.message_id],
        )
        action, outcome, detail = "send failed", "failed", {"reason": reason, "error": error}
    elif result.status == "interrupted":
        new = "interrupted"
        cur.execute(
            "UPDATE messages SET status = 'interrupted', error = ?, updated_at = ? WHERE id = ?",
            [error, at, result.message_id],
        )
        action, outcome, detail = "interrupted", "interrupted", {"error": error}
    else:
        raise ValueError(f"unknown outcome status {result.status!r}")
    cur.execute(
        "INSERT INTO message_attempts (message_id, attempt, ts, outcome, detail) VALUES (?,?,?,?,?)",
        [result.message_id, attempts, at, result.status, result.provider_id or error],
    )
    actionlog.record(
        cur,
        action,
        outcome=outcome,
        batch_id=batch_id,
        message_id=result.message_id,
        client_id=client_id,
        detail=detail,
    )
    return new


def record_and_claim(
    store: Store,
    result: Result | None,
    *,
    policy: RetryPolicy = RetryPolicy(),
    worker: str | None = None,
    channel: str | None = None,
    batch_id: int | None = None,
    message_ids: Iterable[int] | None = None,
) -> tuple[str | None, dict | None]:
    """Record the outcome of a worker's message and claim its next one, in ONE transaction.

    One commit per message instead of two (DuckDB commits serialise). The
    at-most-one-`sending`-per-connection invariant holds: the previous message
    leaves `sending` in the same commit in which the next one enters it.
    Returns (new status of the finished message, the next claimed row or None).
    Pass worker=None to only record.
    """
    ids = _ids(message_ids) if message_ids is not None else None

    def run(cur: duckdb.DuckDBPyConnection) -> tuple[str | None, dict | None]:
        new = _record(cur, result, policy) if result is not None else None
        nxt = None
        if worker is not None:
            claimed = _claim(
                cur,
                worker=worker,
                channel=channel,
                batch_id=batch_id,
                message_ids=ids,
                limit=1,
                at=now(),
            )
            nxt = claimed[0] if claimed else None
        return new, nxt

    return store.write(run)


def mark_sent(store: Store, message_id: int, provider_id: str | None) -> None:
    """sending -> sent, with the provider's id (Message-ID / Twilio SID) and sent_at."""
    record_and_claim(store, Result(int(message_id), "sent", provider_id=provider_id))


def mark_failed(store: Store, message_id: int, error: str | None) -> None:
    """sending -> failed (permanent), keeping the server's text."""
    record_and_claim(store, Result(int(message_id), "permanent", error=error))


def mark_transient(
    store: Store, message_id: int, error: str | None, policy: RetryPolicy = RetryPolicy()
) -> str:
    """sending -> queued with backoff, or failed once attempts are exhausted."""
    new, _ = record_and_claim(
        store, Result(int(message_id), "transient", error=error), policy=policy
    )
    return str(new)


def mark_interrupted(store: Store, message_id: int, error: str | None) -> None:
    """sending -> interrupted: the hand-off may or may not have delivered it."""
    record_and_claim(store, Result(int(message_id), "interrupted", error=error))


def recover_interrupted(store: Store) -> int:
    """At start-up: `sending` rows not claimed by this process -> interrupted; returns how many.

    DuckDB lets one process write the file, so a `sending` row claimed by any
    other process belongs to one that died mid-hand-off: its delivery is
    unknown and it is never resent automatically.
    """

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        rows = _rows(
            cur,
            "UPDATE messages SET status = 'interrupted', updated_at = ?,"
            " error = 'the sending process stopped during the hand-off; delivery unknown'"
            " WHERE status = 'sending' AND (claimed_by IS NULL OR claimed_by NOT LIKE ?)"
            " RETURNING id, batch_id, client_id, attempts, claimed_by",
            [now(), PROCESS_TOKEN + ":%"],
        )
        if not rows:
            return 0
        cur.executemany(
            "INSERT INTO message_attempts (message_id, attempt, outcome, detail) VALUES (?,?,?,?)",
            [[r["id"], r["attempts"], "interrupted", r["claimed_by"]] for r in rows],
        )
        actionlog.record_many(
            cur,
            [
                {
                    "action": "interrupted",
                    "outcome": "interrupted",
                    "batch_id": r["batch_id"],
                    "message_id": r["id"],
                    "client_id": r["client_id"],
                    "detail": {"claimed_by": r["claimed_by"], "found": "at start-up"},
                }
                for r in rows
            ],
        )
        return len(rows)

    return store.write(run)


# -- reads ---------------------------------------------------------------------


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
    at = now() + timedelta(seconds=within_seconds)
    clauses = [
        "m.status = 'queued'",
        "NOT m.excluded",
        "(m.scheduled_at IS NULL OR m.scheduled_at <= ?)",
        "(m.next_attempt_at IS NULL OR m.next_attempt_at <= ?)",
        "(m.batch_id IS NULL OR NOT coalesce((SELECT b.paused FROM batches b"
        " WHERE b.id = m.batch_id), false))",
    ]
    params: list[Any] = [at, at]
    if channel is not None:
        clauses.append("m.channel = ?")
        params.append(channel)
    if batch_id is not None:
        clauses.append("m.batch_id = ?")
        params.append(int(batch_id))
    if message_ids is not None:
        clauses.append("m.id IN (SELECT unnest(?::BIGINT[]))")
        params.append(_ids(message_ids))
    return int(
        store.scalar(f"SELECT count(*) FROM messages m WHERE {' AND '.join(clauses)}", params)
    )


def pending_retry_count(
    store: Store,
    *,
    channel: str | None = None,
    batch_id: int | None = None,
    message_ids: Iterable[int] | None = None,
) -> int:
    """Queued messages waiting for a retry (next_attempt_at set), due or not."""
    clauses, params = ["status = 'queued'", "next_attempt_at IS NOT NULL"], []
    if channel is not None:
        clauses.append("channel = ?")
        params.append(channel)
    if batch_id is not None:
        clauses.append("batch_id = ?")
        params.append(int(batch_id))
    if message_ids is not None:
        clauses.append("id IN (SELECT unnest(?::BIGINT[]))")
        params.append(_ids(message_ids))
    return int(store.scalar(f"SELECT count(*) FROM messages WHERE {' AND '.join(clauses)}", params))


def get_message(store: Store, message_id: int) -> dict:
    """One message row, or NotFound."""
    rows = store.rows("SELECT * FROM messages WHERE id = ?", [int(message_id)])
    if not rows:
        raise NotFound(f"No message with id {message_id}.")
    return rows[0]
