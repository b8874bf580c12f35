"""The dispatcher's moves: claim due messages, record what the servers answered.

THE claim path is `record_and_claim_many` (the dispatcher's group commit; tests
call it too, directly or through `record_and_claim`). It runs in one
transaction of the store's one writer (comms.store, W1), so no person's move
interleaves with a claim, and each UPDATE re-checks the rows it moves; a row
that changed since it was read is skipped, never sent.

Invariants (enforced where noted):

* C1: only `queued`, due, unpaused messages are claimed (`ClaimScope.where`,
  and re-checked by the claiming UPDATE in `_claim_and_mark_sent`).
* C2: a message is written `sending` and COMMITTED before it is handed to a server:
  `record_and_claim_many` returns a claimed row only after its commit. A crash
  therefore leaves it in `sending`, never in `queued`, so it cannot be sent twice.
* C3: each claimer (one per connection) holds at most one `sending` row: its
  previous message leaves `sending` in the same commit in which its next one
  enters it. So a crash costs at most one ambiguous message per connection.
* C4: `sending` rows left by a process that is gone become `interrupted`
  (`recover_interrupted`) and stay there until a person resolves them
  (comms.outbox.moves.resolve_interrupted): delivery is unknown, so nothing
  resends them on its own.
* C5: only a `sending` row can take an outcome; an outcome for any other row is
  refused (InvalidTransition) and nothing of that commit is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from comms import actionlog
from comms.errors import InvalidTransition, NotFound
from comms.outbox.states import (
    DEFAULT_POLICY,
    PROCESS_TOKEN,
    REASON_PROCESS_STOPPED,
    REASON_REJECTED,
    REASON_RETRIES_EXHAUSTED,
    RetryPolicy,
    now,
    status_in,
    target,
)
from comms.store import Store, dicts

_MESSAGE_COLUMNS_M = (
    "m.id, m.client_id, m.channel, m.source, m.batch_id, m.to_address, m.to_name, m.subject,"
    " m.body_text, m.body_html, m.status, m.attempts, m.scheduled_at, m.claimed_by,"
    " m.updated_at"
)

# what became of a message -> the move that records it
_OUTCOMES: dict[str, str] = {
    "sent": "sent",
    "deferred": "defer",
    "failed": "fail",
    "interrupted": "interrupt",
}
OUTCOME_KINDS = ("sent", "transient", "permanent", "interrupted")  # what a sender reports


# P1: pauses made in this process, per database file. DuckDB lets one process write the
# file and every pause goes through comms.outbox.moves.pause (which counts it here inside
# its transaction), so while this count is unchanged since due rows were read (their
# SELECT skips paused batches), no batch of theirs can have been paused: the claim need
# not read `batches` again (~0.5 ms of every group commit).
_PAUSES: dict[str, int] = {}


def count_pause(store: Store) -> None:
    """A batch was paused (called inside the pausing transaction)."""
    key = str(store.path)
    _PAUSES[key] = _PAUSES.get(key, 0) + 1


def pauses(store: Store) -> int:
    """How many pauses this process has made in the store's file."""
    return _PAUSES.get(str(store.path), 0)


@dataclass(frozen=True)
class ClaimScope:
    """Which queued messages a claimer may take: a channel, a batch, explicit ids."""

    channel: str | None = None
    batch_id: int | None = None
    message_ids: tuple[int, ...] | None = None

    def where(self, at: datetime) -> tuple[str, list[Any]]:
        """WHERE clause over `messages m` selecting what is due at `at`."""
        clauses = [
            status_in("claim", "m.status"),
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
    return dicts(
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
    recheck_paused: bool = True,
) -> tuple[dict[int, str], list[dict]]:
    """Sent outcomes (sending -> sent) and picked rows (queued -> sending), set-wise.

    A picked row is claimed only if it is still exactly what was read (same
    updated_at), still due and its batch not paused; returns
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
            f"UPDATE messages SET status = '{target('sent')}',"
            " provider_id = list_extract($pid, list_position($ids, id)),"
            " sent_at = $at, updated_at = $at, error = NULL"
            f" WHERE id BETWEEN $lo AND $hi AND id IN ({_int_list(sent_ids)})"
            f" AND {status_in('sent')}",
            {
                "pid": [r.provider_id for r in sent],
                "ids": sent_ids,
                "at": at,
                "lo": min(sent_ids),
                "hi": max(sent_ids),
            },
        ).fetchone()
        count += n
    if claimed and recheck_paused:  # P1: only when a batch may have been paused since the read
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
        claim_ids = [int(r["id"]) for r in claimed]
        # Claimed only if still exactly what was read (same updated_at) and due.
        (n,) = cur.execute(
            f"UPDATE messages SET status = '{target('claim')}',"
            " claimed_by = list_extract($workers, list_position($ids, id)),"
            " attempts = attempts + 1, updated_at = $at"
            f" WHERE id BETWEEN $lo AND $hi AND id IN ({_int_list(claim_ids)})"
            f" AND {status_in('claim')}"
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
        stray = [r.message_id for r in sent if after.get(r.message_id) != target("sent")]
        if stray:
            raise InvalidTransition(
                f"Message {', '.join(map(str, stray[:10]))} is not sending: its outcome cannot"
                " be recorded."
            )
        # some picked rows changed since they were read (cancelled, paused, claimed
        # by another run): keep only the ones this statement claimed
        owner = dict(
            cur.execute(
                f"SELECT id, claimed_by FROM messages WHERE status = '{target('claim')}'"
                " AND id IN (SELECT unnest(?::BIGINT[]))",
                [[r["id"] for r in claimed]],
            ).fetchall()
        )
        won = [r for r in claimed if owner.get(r["id"]) == r["claimed_by"]]
    statuses: dict[int, str] = {}
    for res in sent:
        if res.attempts is None and res.message_id not in known:
            raise NotFound(f"No message with id {res.message_id}.")
        attempts = res.attempts if res.attempts is not None else known[res.message_id][0]
        statuses[res.message_id] = target("sent")
        trail.add(res.message_id, attempts, "sent", res.provider_id)
    return statuses, won


def _int_list(values: Iterable[int]) -> str:
    """Integers as SQL literals for an IN list (int() refuses anything else)."""
    return ", ".join(str(int(v)) for v in values)


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
    """Apply non-sent sending outcomes set-wise (a few statements whatever their number).

    The new status, reason and next try are decided here in Python, by the one
    RetryPolicy, from the row's attempts: transient with attempts left -> queued
    with backoff, exhausted -> failed. Returns {message_id: new status}.
    """
    if not results:
        return {}
    by_id = {r.message_id: r for r in results}
    if len(by_id) != len(results):
        raise ValueError("one outcome per message")
    if any(r.status not in OUTCOME_KINDS for r in results):
        raise ValueError(f"unknown outcome status in {[r.status for r in results]}")
    ids = sorted(by_id)
    rows = {
        r["id"]: r
        for r in dicts(
            cur,
            "SELECT id, attempts, batch_id, client_id, status, reason FROM messages"
            " WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        )
    }
    stray = [i for i in ids if i not in rows or rows[i]["status"] != target("claim")]
    if stray:  # C5
        raise InvalidTransition(
            f"Message {', '.join(map(str, stray[:10]))} is not sending: its outcome cannot be"
            " recorded."
        )
    plan: list[tuple[int, str, str | None, str | None, datetime | None]] = []
    for i in ids:
        res, row = by_id[i], rows[i]
        error = (res.error or "")[:2000] or None
        next_at = policy.after_transient(row["attempts"], at) if res.status == "transient" else None
        kind = {
            "transient": "deferred" if next_at is not None else "failed",
            "permanent": "failed",
        }.get(res.status, res.status)
        reason = {
            "transient": None if next_at is not None else REASON_RETRIES_EXHAUSTED,
            "permanent": REASON_REJECTED,
        }.get(res.status, row["reason"])
        plan.append((i, kind, reason, error, next_at))
    cur.execute(
        "UPDATE messages SET status = v.status, reason = v.reason, error = v.error,"
        " provider_id = coalesce(v.pid, messages.provider_id), next_attempt_at = v.next_at,"
        " updated_at = ?"
        " FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS status,"
        " unnest(?::VARCHAR[]) AS reason, unnest(?::VARCHAR[]) AS error,"
        " unnest(?::VARCHAR[]) AS pid, unnest(?::TIMESTAMP[]) AS next_at) v"
        f" WHERE messages.id = v.id AND {status_in('fail', 'messages.status')}",
        [
            at,
            [p[0] for p in plan],
            [target(_OUTCOMES[p[1]]) for p in plan],
            [p[2] for p in plan],
            [p[3] for p in plan],
            [by_id[p[0]].provider_id for p in plan],
            [p[4] for p in plan],
        ],
    )
    new_status: dict[int, str] = {}
    for message_id, kind, _reason, error, _next_at in plan:
        res, row = by_id[message_id], rows[message_id]
        new_status[message_id] = target(_OUTCOMES[kind])
        trail.add(message_id, row["attempts"], res.status, res.provider_id or error)
    return new_status


class _Trail:
    """message_attempts rows and action-log entries of one commit, written in two statements.

    Per-message outcomes of a send run go to message_attempts only, stamped with
    the run's id; the action log gets one line per run (comms.sending.dispatcher's
    'send run start' / 'send run end', whose detail names the same `run`).
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self.attempts: dict[str, list[Any]] = {k: [] for k in ("id", "n", "outcome", "detail")}
        self.log: list[dict[str, Any]] = []

    def add(self, message_id: int, attempt: int, outcome: str, detail: str | None) -> None:
        for key, value in zip(self.attempts, (message_id, attempt, outcome, detail), strict=True):
            self.attempts[key].append(value)

    def write(self, cur: duckdb.DuckDBPyConnection, at: datetime) -> None:
        if self.attempts["id"]:
            cur.execute(
                "INSERT INTO message_attempts (message_id, attempt, ts, outcome, detail, run_id)"
                " SELECT unnest(?::BIGINT[]), unnest(?::INTEGER[]), ?, unnest(?::VARCHAR[]),"
                " unnest(?::VARCHAR[]), ?",
                [self.attempts["id"], self.attempts["n"], at, self.attempts["outcome"],
                 self.attempts["detail"], self.run_id],
            )  # fmt: skip
        actionlog.record_many(cur, self.log, at=at)


class ClaimCache:
    """Due messages read ahead in bulk for one run, so a claim needs no SELECT of its own.

    A queued message's content does not change (only drafts are edited), and
    the claiming UPDATE re-checks every row (still queued, same updated_at,
    due, batch not paused), so a stale entry is merely skipped, never sent.
    Used by one committer thread only.
    """

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self.pauses_seen: int | None = None  # P1: pauses() before the first read
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
            fresh = dicts(
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
    policy: RetryPolicy = DEFAULT_POLICY,
    cache: ClaimCache | None = None,
    preferred: dict[str, dict] | None = None,
    run_id: str | None = None,
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
        trail = _Trail(run_id)
        if cache is not None and cache.pauses_seen is None:
            cache.pauses_seen = pauses(store)  # every read of this cache comes after this
        recheck = cache is None or cache.pauses_seen != pauses(store)
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
                        row = dict(row, status=target("claim"), claimed_by=w)
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
                    row.update(
                        status=target("claim"), claimed_by=owner, attempts=row["attempts"] + 1
                    )
                    picked.append(row)
            done, won = _claim_and_mark_sent(cur, sent, picked, at, trail, recheck)
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
    policy: RetryPolicy = DEFAULT_POLICY,
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


def recover_interrupted(store: Store) -> int:
    """At start-up: `sending` rows not claimed by this process -> interrupted (C4).

    DuckDB lets one process write the file, so a `sending` row claimed by any
    other process belongs to one that died mid-hand-off: its delivery is
    unknown and it is never resent automatically. Returns how many.
    """

    def run(cur: duckdb.DuckDBPyConnection) -> int:
        at = now()
        rows = dicts(
            cur,
            f"UPDATE messages SET status = '{target('interrupt')}', updated_at = ?, error = ?"
            f" WHERE {status_in('interrupt')}"
            " AND (claimed_by IS NULL OR claimed_by NOT LIKE ?)"
            " RETURNING id, batch_id, client_id, attempts, claimed_by",
            [at, REASON_PROCESS_STOPPED, PROCESS_TOKEN + ":%"],
        )
        trail = _Trail()
        for r in rows:
            trail.add(r["id"], r["attempts"], "interrupted", r["claimed_by"])
            trail.log.append(
                {
                    "action": "interrupted",
                    "outcome": "interrupted",
                    "batch_id": r["batch_id"],
                    "message_id": r["id"],
                    "client_id": r["client_id"],
                    "detail": {"claimed_by": r["claimed_by"], "found": "at start-up"},
                }
            )
        trail.write(cur, at)
        return len(rows)

    return store.write(run)
