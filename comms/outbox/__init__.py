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

import json
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

_MESSAGE_COLUMNS_M = (
    "m.id, m.client_id, m.channel, m.source, m.batch_id, m.to_address, m.to_name, m.subject,"
    " m.body_text, m.body_html, m.status, m.attempts, m.scheduled_at, m.claimed_by,"
    " m.updated_at"
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


@dataclass(frozen=True)
class ClaimScope:
    """Which queued messages a claimer may take: a channel, a batch, explicit ids."""

    channel: str | None = None
    batch_id: int | None = None
    message_ids: tuple[int, ...] | None = None

    def where(self, at: datetime) -> tuple[str, list[Any]]:
        """WHERE clause over `messages m` selecting what is due at `at`."""
        clauses = [
            "m.status = 'queued'",
            "NOT m.excluded",
            "(m.scheduled_at IS NULL OR m.scheduled_at <= ?)",
            "(m.next_attempt_at IS NULL OR m.next_attempt_at <= ?)",
            "coalesce(m.batch_id, -1) NOT IN (SELECT b.id FROM batches b WHERE b.paused)",
        ]
        params: list[Any] = [at, at]
        if self.channel is not None:
            clauses.append("m.channel = ?")
            params.append(self.channel)
        if self.batch_id is not None:
            clauses.append("m.batch_id = ?")
            params.append(int(self.batch_id))
        if self.message_ids is not None:
            clauses.append("m.id IN (SELECT unnest(?::BIGINT[]))")
            params.append(list(self.message_ids))
        return " AND ".join(clauses), params


def _pick(
    cur: duckdb.DuckDBPyConnection, scope: ClaimScope, workers: Sequence[str], at: datetime
) -> list[dict]:
    """Up to one due message per worker (read only; the claim is the UPDATE)."""
    where, params = scope.where(at)
    return _rows(
        cur,
        f"SELECT {_MESSAGE_COLUMNS_M} FROM messages m WHERE {where} ORDER BY m.id LIMIT ?",
        [*params, len(workers)],
    )


def _claim_and_mark_sent(
    cur: duckdb.DuckDBPyConnection,
    sent: Sequence[Result],
    claimed: Sequence[dict],
    at: datetime,
    trail: _Trail,
) -> tuple[dict[int, str], list[dict]]:
    """Sent outcomes (sending -> sent) and picked rows (queued -> sending), set-wise.

    A picked row is claimed only if it is still exactly what was read (same
    updated_at), still due, not excluded and its batch not paused; returns
    ({message_id: 'sent'}, the picked rows actually claimed).

    DuckDB's cost here grows with the number of columns an UPDATE touches, so
    these statements touch only status, claimed_by, attempts, provider_id,
    sent_at and updated_at (pages use it to spot batches that just moved).
    """
    if not sent and not claimed:
        return {}, []
    # RETURNING costs DuckDB several milliseconds per statement, so the row facts the
    # log needs come from the claimer (Result.attempts / batch_id / client_id) and
    # are read back only for a caller that did not provide them.
    missing = [r.message_id for r in sent if r.attempts is None]
    known = {
        row[0]: row[1:]
        for row in (
            cur.execute(
                "SELECT id, attempts, batch_id, client_id FROM messages"
                " WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [missing],
            ).fetchall()
            if missing
            else []
        )
    }
    # Two plain UPDATEs, no join: an UPDATE ... FROM (unnest ...) costs DuckDB a hash
    # join plus a scan (~2 ms more per commit). Ids are integers, written inline as an
    # IN list (with a BETWEEN that lets DuckDB skip row groups by their min/max);
    # per-row values come from parameter lists through list_position.
    count = 0
    if sent:
        sent_ids = [int(r.message_id) for r in sent]
        (n,) = cur.execute(
            "UPDATE messages SET status = 'sent',"
            " provider_id = list_extract($pid, list_position($ids, id)),"
            " sent_at = $at, updated_at = $at, error = NULL"
            f" WHERE id BETWEEN $lo AND $hi AND id IN ({_int_list(sent_ids)})"
            " AND status = 'sending'",
            {
                "pid": [r.provider_id for r in sent],
                "ids": sent_ids,
                "at": at,
                "lo": min(sent_ids),
                "hi": max(sent_ids),
            },
        ).fetchone()
        count += n
    if claimed:
        claim_ids = [int(r["id"]) for r in claimed]
        batches = sorted({r["batch_id"] for r in claimed if r["batch_id"] is not None})
        paused = (
            {
                row[0]
                for row in cur.execute(
                    f"SELECT id FROM batches WHERE paused AND id IN ({_int_list(batches)})"
                ).fetchall()
            }
            if batches
            else set()
        )
        if paused:  # a batch paused since the rows were read: its messages stay queued
            claimed = [r for r in claimed if r["batch_id"] not in paused]
            claim_ids = [int(r["id"]) for r in claimed]
    if claimed:
        # Claimed only if still exactly what was read (same updated_at), due, not excluded.
        (n,) = cur.execute(
            "UPDATE messages SET status = 'sending',"
            " claimed_by = list_extract($workers, list_position($ids, id)),"
            " attempts = attempts + 1, updated_at = $at"
            f" WHERE id BETWEEN $lo AND $hi AND id IN ({_int_list(claim_ids)})"
            " AND status = 'queued' AND NOT excluded"
            " AND updated_at = list_extract($seen, list_position($ids, id))"
            " AND (scheduled_at IS NULL OR scheduled_at <= $at)"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= $at)",
            {
                "workers": [r["claimed_by"] for r in claimed],
                "ids": claim_ids,
                "seen": [r["updated_at"] for r in claimed],
                "at": at,
                "lo": min(claim_ids),
                "hi": max(claim_ids),
            },
        ).fetchone()
        count += n
    ids = [r.message_id for r in sent] + [r["id"] for r in claimed]
    won = list(claimed)
    if count != len(ids):
        after = dict(
            cur.execute(
                "SELECT id, status FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [[r.message_id for r in sent]],
            ).fetchall()
        )
        stray = [r.message_id for r in sent if after.get(r.message_id) != "sent"]
        if stray:
            raise InvalidTransition(
                f"Message {', '.join(map(str, stray[:10]))} is not sending: its outcome cannot"
                " be recorded."
            )
        # some picked rows changed since they were read (cancelled, paused, claimed
        # by another run): keep only the ones this statement claimed
        owner = dict(
            cur.execute(
                "SELECT id, claimed_by FROM messages WHERE status = 'sending'"
                " AND id IN (SELECT unnest(?::BIGINT[]))",
                [[r["id"] for r in claimed]],
            ).fetchall()
        )
        won = [r for r in claimed if owner.get(r["id"]) == r["claimed_by"]]
    statuses: dict[int, str] = {}
    for res in sent:
        if res.attempts is None and res.message_id not in known:
            raise NotFound(f"No message with id {res.message_id}.")
        attempts, batch_id, client_id = (
            (res.attempts, res.batch_id, res.client_id)
            if res.attempts is not None
            else known[res.message_id]
        )
        statuses[res.message_id] = "sent"
        trail.add(res.message_id, attempts, "sent", res.provider_id)
        trail.log.append(
            {
                "action": "send",
                "outcome": "ok",
                "batch_id": batch_id,
                "message_id": res.message_id,
                "client_id": client_id,
                "detail": {"attempt": attempts, "provider_id": res.provider_id},
            }
        )
    return statuses, won


def _int_list(values: Iterable[int]) -> str:
    """Integers as SQL literals for an IN list (int() refuses anything else)."""
    return ", ".join(str(int(v)) for v in values)


def _claim(
    cur: duckdb.DuckDBPyConnection, scope: ClaimScope, workers: Sequence[str], at: datetime
) -> list[dict]:
    """Claim up to one due message per worker; the i-th row goes to workers[i]."""
    picked = _pick(cur, scope, workers, at)
    for row, owner in zip(picked, workers, strict=False):
        row.update(status="sending", claimed_by=owner, attempts=row["attempts"] + 1)
    return _claim_and_mark_sent(cur, [], picked, at, _Trail())[1]


def attachment_ids(store: Store, message_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Attachment ids per message: its own plus its batch's (read outside any write)."""
    found: dict[int, set[int]] = {}
    for message_id, attachment_id in (
        store.cursor()
        .execute(
            "SELECT m.id, a.attachment_id FROM messages m JOIN message_attachments a"
            " ON a.message_id = m.id WHERE m.id IN (SELECT unnest(?::BIGINT[]))"
            " UNION SELECT m.id, a.attachment_id FROM messages m JOIN batch_attachments a"
            " ON a.batch_id = m.batch_id WHERE m.id IN (SELECT unnest(?::BIGINT[]))",
            [list(message_ids)] * 2,
        )
        .fetchall()
    ):
        found.setdefault(message_id, set()).add(attachment_id)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def scope_has_attachments(store: Store, scope: ClaimScope) -> bool:
    """Whether any queued message in scope carries an attachment (skips lookups when not)."""
    where, params = scope.where(datetime.max)
    return bool(
        store.scalar(
            f"SELECT count(*) FROM messages m WHERE {where} AND (m.id IN (SELECT message_id FROM"
            " message_attachments) OR m.batch_id IN (SELECT batch_id FROM batch_attachments))",
            params,
        )
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
    scope = ClaimScope(channel, batch_id, tuple(_ids(message_ids)) if message_ids else None)
    return store.write(lambda cur: _claim(cur, scope, [worker] * int(limit), now()))


@dataclass(frozen=True)
class Result:
    """What happened to one claimed message (the dispatcher's view of a sender's Outcome)."""

    message_id: int
    status: str  # sent | transient | permanent | interrupted
    provider_id: str | None = None
    error: str | None = None
    # What the claimer already knows of the row (saves reading it back when recording).
    attempts: int | None = None
    batch_id: int | None = None
    client_id: int | None = None


def _record(
    cur: duckdb.DuckDBPyConnection,
    results: Sequence[Result],
    policy: RetryPolicy,
    at: datetime,
    trail: _Trail,
) -> dict[int, str]:
    """Apply sending outcomes set-wise (a few statements whatever their number).

    Returns {message_id: new status}. Only `sending` rows can take an outcome.
    """
    if not results:
        return {}
    by_id = {r.message_id: r for r in results}
    if len(by_id) != len(results):
        raise ValueError("one outcome per message")
    ids = list(by_id)
    kinds = [by_id[i].status for i in ids]
    if any(k not in ("sent", "transient", "permanent", "interrupted") for k in kinds):
        raise ValueError(f"unknown outcome status in {kinds}")
    errors = [(by_id[i].error or "")[:2000] or None for i in ids]
    # New status, decided in SQL from the row's own attempts (no extra read):
    # transient with attempts left -> queued (+ backoff), exhausted -> failed.
    updated = cur.execute(
        "UPDATE messages SET status = CASE v.kind WHEN 'sent' THEN 'sent'"
        " WHEN 'interrupted' THEN 'interrupted'"
        " WHEN 'transient' THEN CASE WHEN messages.attempts < ? THEN 'queued' ELSE 'failed' END"
        " ELSE 'failed' END,"
        " reason = CASE WHEN v.kind = 'permanent' THEN ? WHEN v.kind = 'transient'"
        " AND messages.attempts >= ? THEN ? WHEN v.kind = 'sent' THEN NULL"
        " ELSE messages.reason END,"
        " error = CASE WHEN v.kind = 'sent' THEN NULL ELSE v.error END,"
        " provider_id = coalesce(v.pid, messages.provider_id),"
        " sent_at = CASE WHEN v.kind = 'sent' THEN ? ELSE messages.sent_at END,"
        " next_attempt_at = CASE WHEN v.kind = 'transient' AND messages.attempts < ?"
        " THEN ? + to_microseconds(CAST(least(? * pow(2, greatest(messages.attempts - 1, 0)), ?)"
        " * 1000000 AS BIGINT)) ELSE NULL END,"
        " updated_at = ?"
        " FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS kind,"
        " unnest(?::VARCHAR[]) AS error, unnest(?::VARCHAR[]) AS pid) v"
        " WHERE messages.id = v.id AND messages.status = 'sending'"
        " RETURNING messages.id, messages.status, messages.attempts, messages.batch_id,"
        " messages.client_id, messages.next_attempt_at, messages.reason",
        [
            policy.max_attempts,
            REASON_REJECTED,
            policy.max_attempts,
            REASON_RETRIES_EXHAUSTED,
            at,
            policy.max_attempts,
            at,
            policy.backoff_seconds,
            MAX_BACKOFF_SECONDS,
            at,
            ids,
            kinds,
            errors,
            [by_id[i].provider_id for i in ids],
        ],
    ).fetchall()
    if len(updated) != len(ids):
        done = {row[0] for row in updated}
        stray = [i for i in ids if i not in done]
        raise InvalidTransition(
            f"Message {', '.join(map(str, stray[:10]))} is not sending: its outcome cannot be"
            " recorded."
        )
    actions = {
        "sent": ("send", "ok"),
        "queued": ("send deferred", "transient"),
        "failed": ("send failed", "failed"),
        "interrupted": ("interrupted", "interrupted"),
    }
    new_status: dict[int, str] = {}
    for message_id, status, attempts, batch_id, client_id, next_at, reason in updated:
        res = by_id[message_id]
        new_status[message_id] = status
        error = (res.error or "")[:2000] or None
        action, outcome = actions[status]
        detail: dict[str, Any] = {"attempt": attempts}
        if status == "sent":
            detail["provider_id"] = res.provider_id
        else:
            detail["error"] = error
        if status == "queued" and next_at is not None:
            detail["retry_in_seconds"] = round((next_at - at).total_seconds(), 3)
        if status == "failed":
            detail["reason"] = reason
        trail.add(message_id, attempts, res.status, res.provider_id or error)
        trail.log.append(
            {
                "action": action,
                "outcome": outcome,
                "batch_id": batch_id,
                "message_id": message_id,
                "client_id": client_id,
                "detail": detail,
            }
        )
    return new_status


class _Trail:
    """message_attempts rows and action-log entries of one commit, written in two statements."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[Any]] = {k: [] for k in ("id", "n", "outcome", "detail")}
        self.log: list[dict[str, Any]] = []

    def add(self, message_id: int, attempt: int, outcome: str, detail: str | None) -> None:
        for key, value in zip(self.attempts, (message_id, attempt, outcome, detail), strict=True):
            self.attempts[key].append(value)

    def write(self, cur: duckdb.DuckDBPyConnection, at: datetime) -> None:
        if self.attempts["id"]:
            cur.execute(
                "INSERT INTO message_attempts (message_id, attempt, ts, outcome, detail)"
                " SELECT unnest(?::BIGINT[]), unnest(?::INTEGER[]), ?, unnest(?::VARCHAR[]),"
                " unnest(?::VARCHAR[])",
                [self.attempts["id"], self.attempts["n"], at, self.attempts["outcome"],
                 self.attempts["detail"]],
            )  # fmt: skip
        _log_rows(cur, self.log, at)


def _log_rows(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], at: datetime) -> None:
    """Many action-log entries in ONE statement (executemany costs a statement per row)."""
    if not rows:
        return
    user = actionlog.current_user()
    cur.execute(
        'INSERT INTO action_log (ts, "user", action, batch_id, message_id, client_id, outcome,'
        " detail) SELECT ?, ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]),"
        " unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON",
        [
            at,
            user,
            [r["action"] for r in rows],
            [r.get("batch_id") for r in rows],
            [r.get("message_id") for r in rows],
            [r.get("client_id") for r in rows],
            [r.get("outcome", "ok") for r in rows],
            [json.dumps(r.get("detail") or {}, ensure_ascii=False, default=str) for r in rows],
        ],
    )


class ClaimCache:
    """Due messages read ahead in bulk for one run, so a claim needs no SELECT of its own.

    A queued message's content does not change (only drafts are edited), and
    the claiming UPDATE re-checks every row (still queued, same updated_at,
    due, batch not paused), so a stale entry is merely skipped, never sent.
    Used by one committer thread only.
    """

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._rows: dict[ClaimScope, list[dict]] = {}
        self._pos: dict[ClaimScope, int] = {}
        self.hinted: set[int] = set()  # rows handed out by peek() and not yet released

    def peek(self, scope: ClaimScope) -> dict | None:
        """The next read-ahead row (a copy), taken out of the cache, without any read.

        The dispatcher hands it to a worker as the likely next message, to be
        claimed by that worker's next commit (`preferred`); None when the cache is dry.
        """
        rows, pos = self._rows.get(scope, []), self._pos.get(scope, 0)
        if pos >= len(rows):
            return None
        self._pos[scope] = pos + 1
        self.hinted.add(rows[pos]["id"])
        return dict(rows[pos])

    def take(
        self, cur: duckdb.DuckDBPyConnection, scope: ClaimScope, n: int, at: datetime
    ) -> list[dict]:
        """Up to n candidates (copies), reading the next due rows when the cache runs dry.

        Returns fewer than n only when fewer are due: a short answer ends a worker.
        """
        rows, pos = self._rows.get(scope, []), self._pos.get(scope, 0)
        out = [dict(r) for r in rows[pos : pos + n]]
        self._pos[scope] = pos + n
        if len(out) < n:  # ran dry: read the next due rows and top up
            where, params = scope.where(at)
            fresh = _rows(
                cur,
                f"SELECT {_MESSAGE_COLUMNS_M} FROM messages m WHERE {where} ORDER BY m.id LIMIT ?",
                [*params, max(self.size, 2 * n)],
            )
            have = {r["id"] for r in out} | self.hinted  # a hinted row is its worker's
            fresh = [r for r in fresh if r["id"] not in have]
            need = n - len(out)
            out.extend(dict(r) for r in fresh[:need])
            self._rows[scope], self._pos[scope] = fresh, need
        return out


def record_and_claim_many(
    store: Store,
    results: Sequence[Result],
    claims: Sequence[tuple[str, ClaimScope]],
    *,
    policy: RetryPolicy = RetryPolicy(),
    cache: ClaimCache | None = None,
    preferred: dict[str, dict] | None = None,
) -> tuple[dict[int, str], dict[str, dict | None]]:
    """Record finished messages and claim the next one per worker, in ONE transaction.

    This is the dispatcher's group commit: DuckDB commits serialise and each
    statement costs about a millisecond whatever its row count, so the outcomes
    of every connection that just finished and their next claims share one
    commit. Invariant: a worker's previous message leaves `sending` in the
    same commit in which its next one enters it, so no worker ever holds more
    than one `sending` row. claims = [(worker, scope)]; preferred = {worker: row}
    names the row a worker expects (ClaimCache.peek), claimed for it when still
    due (else it gets another); returns
    ({message_id: new status}, {worker: claimed row or None}).
    """
    results = list(results)
    by_scope: dict[ClaimScope, list[str]] = {}
    for worker, scope in claims:
        by_scope.setdefault(scope, []).append(worker)

    def run(cur: duckdb.DuckDBPyConnection) -> tuple[dict[int, str], dict[str, dict | None]]:
        at = now()
        trail = _Trail()
        statuses = _record(cur, [r for r in results if r.status != "sent"], policy, at, trail)
        sent = [r for r in results if r.status == "sent"]
        got: dict[str, dict | None] = {w: None for w, _ in claims}
        seen: set[int] = set()
        pending = dict(by_scope)
        for _round in range(4):  # later rounds only when read-ahead rows went stale
            picked: list[dict] = []
            if _round == 0 and preferred:
                for scope, workers in list(pending.items()):
                    rest = []
                    for w in workers:
                        row = preferred.get(w)
                        if row is None or row["id"] in seen:
                            rest.append(w)
                            continue
                        seen.add(row["id"])
                        row = dict(row, status="sending", claimed_by=w)
                        row["attempts"] += 1
                        picked.append(row)
                    pending[scope] = rest
            skipped = False
            for scope, workers in pending.items():
                if not workers:
                    continue
                if cache is not None and _round < 3:  # the last round reads afresh
                    rows = cache.take(cur, scope, len(workers), at)
                else:
                    rows = _pick(cur, scope, workers, at)
                for row, owner in zip(rows, workers, strict=False):
                    if row["id"] in seen:  # overlapping scopes: one owner per message
                        skipped = True
                        continue
                    seen.add(row["id"])
                    row.update(status="sending", claimed_by=owner, attempts=row["attempts"] + 1)
                    picked.append(row)
            done, won = _claim_and_mark_sent(cur, sent, picked, at, trail)
            statuses.update(done)
            sent = []
            for row in won:
                got[row["claimed_by"]] = row
            if cache is None or (len(won) == len(picked) and not skipped):
                break
            pending = {  # every worker still without a row (a stale preferred one too)
                scope: [w for w in workers if got[w] is None]
                for scope, workers in by_scope.items()
                if any(got[w] is None for w in workers)
            }
            if not pending:
                break
        trail.write(cur, at)
        return statuses, got

    return store.write(run)


def record_and_claim(
    store: Store,
    result: Result | None,
    *,
    policy: RetryPolicy = RetryPolicy(),
    worker: str | None = None,
    scope: ClaimScope = ClaimScope(),
) -> tuple[str | None, dict | None]:
    """One worker's outcome and next claim in one transaction (see record_and_claim_many)."""
    statuses, got = record_and_claim_many(
        store,
        [result] if result is not None else [],
        [(worker, scope)] if worker is not None else [],
        policy=policy,
    )
    return (
        statuses.get(result.message_id) if result is not None else None,
        got.get(worker) if worker is not None else None,
    )


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


def reschedule(store: Store, message_ids: Iterable[int], scheduled_at: datetime | None) -> int:
    """Move queued messages' due time (None = now), e.g. "send now" on a scheduled batch."""
    ids = _ids(message_ids)
    when = _local(scheduled_at) or now()

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        moved = [
            r[0]
            for r in cur.execute(
                "UPDATE messages SET scheduled_at = ?, next_attempt_at = NULL, updated_at = ?"
                " WHERE id IN (SELECT unnest(?::BIGINT[])) AND status = 'queued' RETURNING id",
                [when, now(), ids],
            ).fetchall()
        ]
        if moved:
            _log_bulk(cur, "reschedule", sorted(moved), None, {"scheduled_at": str(when)})
        return len(moved)

    return store.write(run)


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
    scope = ClaimScope(channel, batch_id, tuple(_ids(message_ids)) if message_ids else None)
    where, params = scope.where(now() + timedelta(seconds=within_seconds))
    return int(store.scalar(f"SELECT count(*) FROM messages m WHERE {where}", params))


def get_message(store: Store, message_id: int) -> dict:
    """One message row, or NotFound."""
    rows = store.rows("SELECT * FROM messages WHERE id = ?", [int(message_id)])
    if not rows:
        raise NotFound(f"No message with id {message_id}.")
    return rows[0]
