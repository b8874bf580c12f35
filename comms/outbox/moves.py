"""The moves a person makes: queue, send now, cancel, retry, resolve, pause, resume.

Each move is one transaction of the store's one writer (comms.store, W1), so it
can never interleave with the dispatcher's claim: a message the sender holds is
`sending` and stays out of every move below but its own outcome. Each move's
allowed start statuses come from `states.TRANSITIONS`, and each writes one
action-log entry with the count in the same transaction.

With explicit message ids a move is all or nothing: one message that cannot
take it raises InvalidTransition (a message being sent right now says so) and
nothing moves. With only a batch, the batch's messages that can take it move
and the others are left where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from comms import actionlog
from comms.errors import NotFound
from comms.i18n import N_, _
from comms.outbox import refusals
from comms.outbox.claims import count_pause
from comms.outbox.states import (
    RESOLUTIONS,
    local_time,
    now,
    sources,
    status_in,
    target,
)
from comms.store import Store, dicts

# How each move reads in a sentence: "Cannot <verb> message 5 (sent)" (translated when
# raised; "queue", "cancel", ... are also the moves' action names, with the same Czech).
_VERBS = {
    "queue": N_("queue"),
    "send now": N_("send"),
    "cancel": N_("cancel"),
    "retry": N_("retry"),
    "reschedule": N_("reschedule"),
    "resolve sent": N_("mark as sent"),
    "resolve resend": N_("send again"),
    "resolve cancel": N_("cancel"),
    "exclude": N_("exclude"),
    "include": N_("include again"),
}


def ids_of(values: Iterable[int] | None) -> list[int]:
    """Distinct message ids, sorted (int() refuses anything else)."""
    return sorted({int(v) for v in values or ()})


def check_from(cur: duckdb.DuckDBPyConnection, action: str, ids: Sequence[int]) -> list[dict]:
    """Rows for ids, raising NotFound / InvalidTransition unless every one can take `action`."""
    rows = dicts(
        cur,
        "SELECT id, status, batch_id, client_id FROM messages WHERE id IN "
        "(SELECT unnest(?::BIGINT[]))",
        [list(ids)],
    )
    found = {r["id"] for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise refusals.no_message(refusals.listed(missing), len(missing))
    allowed, verb = sources(action), _VERBS.get(action, action)
    busy = [r["id"] for r in rows if r["status"] == "sending" and "sending" not in allowed]
    if busy:
        raise refusals.being_sent(verb, refusals.listed(sorted(busy)), len(busy))
    bad = [r for r in rows if r["status"] not in allowed]
    if bad:
        shown = refusals.with_status([(r["id"], r["status"]) for r in bad[: refusals.SHOWN]])
        raise refusals.wrong_status(
            verb,
            shown + refusals.more(len(bad)),
            len(bad),
            refusals.statuses(sorted(allowed)),
            target(action),
        )
    return rows


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
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry for a bulk move: the count, and the ids when they are few."""
    entry: dict[str, Any] = {"count": len(ids), **(detail or {})}
    if len(ids) <= 50:
        entry["message_ids"] = ids
    if batch_id is None:
        batches = {
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT batch_id FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [ids],
            ).fetchall()
        }
        batch_id = next(iter(batches)) if len(batches) == 1 else None
    actionlog.record(
        cur,
        action,
        batch_id=batch_id,
        message_id=ids[0] if len(ids) == 1 else None,
        detail=entry,
    )


def _move(
    store: Store,
    action: str,
    message_ids: Iterable[int] | None,
    batch_id: int | None,
    sets: str,
    params: list[Any],
    *,
    only: frozenset[str] | None = None,
    detail: dict[str, Any] | None = None,
    log_as: str | None = None,
) -> int:
    """UPDATE the messages in scope that can take `action`: SET `sets` and status = its target."""
    ids = ids_of(message_ids) if message_ids is not None else None

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        if ids is not None:
            check_from(cur, action, ids)
        where, scope_params = _scope(ids, batch_id)
        return _update(
            cur,
            action,
            f"{where} AND {status_in(action, only=only)}",
            scope_params,
            sets,
            params,
            batch_id=batch_id,
            detail=detail,
            log_as=log_as,
        )

    return store.write(run)


def _update(
    cur: duckdb.DuckDBPyConnection,
    action: str,
    where: str,
    where_params: list[Any],
    sets: str,
    params: list[Any],
    *,
    batch_id: int | None,
    detail: dict[str, Any] | None = None,
    log_as: str | None = None,
) -> int:
    """Move the rows matching `where` to `action`'s target; log them; how many moved.

    The ids are read first and the UPDATE then takes the same WHERE: both run in
    one transaction of the one writer (W1), so nothing changes in between. Not
    UPDATE ... RETURNING, which costs DuckDB about 30 us per returned row
    (3 s for a 100,000-message batch) against a few milliseconds for the read.
    """
    moved = [
        r[0] for r in cur.execute(f"SELECT id FROM messages WHERE {where}", where_params).fetchall()
    ]
    if not moved:
        return 0
    (count,) = cur.execute(
        f"UPDATE messages SET status = ?, {sets}, updated_at = ? WHERE {where}",
        [target(action), *params, now(), *where_params],
    ).fetchone()
    assert count == len(moved)  # W1: the rows cannot change between the two statements
    _log_bulk(cur, log_as or action, sorted(moved), batch_id, detail)
    return len(moved)


def queue(
    store: Store,
    *,
    message_ids: Iterable[int] | None = None,
    batch_id: int | None = None,
    scheduled_at: datetime | None = None,
) -> int:
    """Drafts -> queued, due at scheduled_at (None = now)."""
    when = local_time(scheduled_at)
    return _move(
        store,
        "queue",
        message_ids,
        batch_id,
        "scheduled_at = ?, next_attempt_at = NULL, reason = NULL, error = NULL",
        [when or now()],
        detail={"scheduled_at": when.isoformat(sep=" ") if when else "now"},
    )


def send_now(
    store: Store, *, message_ids: Iterable[int] | None = None, batch_id: int | None = None
) -> int:
    """Drafts and queued messages -> queued and due now (scheduled or backing off alike).

    Only makes them due: the dispatcher sends them (a page wakes the app's
    background sender). A message already `sending` is skipped, never sent again.
    Returns how many became due now.
    """
    ids = ids_of(message_ids) if message_ids is not None else None
    action = "send now"

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        if ids is not None:
            rows = dicts(
                cur,
                "SELECT id FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))"
                " AND status <> 'sending'",
                [ids],
            )
            check_from(cur, action, [r["id"] for r in rows])
        where, params = _scope(ids, batch_id)
        return _update(
            cur,
            action,
            f"{where} AND {status_in(action)}",
            params,
            "scheduled_at = ?, next_attempt_at = NULL,"
            " reason = CASE WHEN status = 'draft' THEN NULL ELSE reason END",
            [now()],
            batch_id=batch_id,
        )

    return store.write(run)


def reschedule(store: Store, message_ids: Iterable[int], scheduled_at: datetime | None) -> int:
    """Move queued messages' due time (None = now)."""
    when = local_time(scheduled_at) or now()
    return _move(
        store,
        "reschedule",
        message_ids,
        None,
        "scheduled_at = ?, next_attempt_at = NULL",
        [when],
        detail={"scheduled_at": str(when)},
    )


def cancel(
    store: Store, *, message_ids: Iterable[int] | None = None, batch_id: int | None = None
) -> int:
    """Drafts and queued messages -> cancelled; returns how many moved.

    A message being sent right now cannot be cancelled (with explicit ids that
    is refused with a sentence saying so; a batch's sending messages finish).
    """
    return _move(store, "cancel", message_ids, batch_id, "claimed_by = NULL", [])


def retry(
    store: Store, *, message_ids: Iterable[int] | None = None, batch_id: int | None = None
) -> int:
    """Failed (and, with explicit ids, interrupted) -> queued, due now.

    A batch-wide retry leaves interrupted messages alone: their delivery is
    unknown, so only a person's decision about them (resolve_interrupted, or
    naming them) may send them again. `attempts` restarts at 0 so the message
    gets a full set of tries; the earlier tries stay in message_attempts.
    """
    return _move(
        store,
        "retry",
        message_ids,
        batch_id,
        "attempts = 0, scheduled_at = ?, next_attempt_at = NULL, claimed_by = NULL, reason = NULL",
        [now()],
        only=None if message_ids is not None else frozenset({"failed"}),
    )


def resolve_interrupted(store: Store, message_ids: Iterable[int], decision: str) -> int:
    """A person decides about interrupted messages: 'sent', 'resend' or 'cancel'."""
    if decision not in RESOLUTIONS:
        raise ValueError(f"decision must be one of {', '.join(RESOLUTIONS)}, not {decision!r}")
    ids = ids_of(message_ids)
    if not ids:
        return 0
    action = RESOLUTIONS[decision]
    sets = {
        "resolve sent": ("claimed_by = NULL, sent_at = coalesce(sent_at, ?)", [now()]),
        "resolve resend": (
            "attempts = 0, scheduled_at = ?, next_attempt_at = NULL, claimed_by = NULL,"
            " reason = NULL",
            [now()],
        ),
        "resolve cancel": ("claimed_by = NULL", []),
    }[action]
    return _move(
        store,
        action,
        ids,
        None,
        sets[0],
        sets[1],
        detail={"decision": decision},
        log_as="resolve interrupted",
    )


def exclude(store: Store, message_ids: Iterable[int]) -> int:
    """Drafts and invalid messages -> excluded: out of their batch's work, never sent."""
    return _move(store, "exclude", message_ids, None, "claimed_by = NULL", [])


def include(store: Store, message_ids: Iterable[int]) -> int:
    """Excluded -> draft again; the caller re-validates it (comms.messages.editor)."""
    return _move(store, "include", message_ids, None, "claimed_by = NULL", [])


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
            raise NotFound(_("No batch with id {id}.").format(id=batch_id))
        if paused:
            count_pause(store)  # P1 (comms.outbox.claims)
        actionlog.record(cur, "pause batch" if paused else "resume batch", batch_id=int(batch_id))

    store.write(run)
