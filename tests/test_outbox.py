"""The outbox state machine: every move, its records, and the moves it refuses."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from comms import outbox
from comms.errors import InvalidTransition, NotFound
from comms.outbox import ClaimScope, Result, RetryPolicy
from comms.store import Store
from tests.claiming import claim, outcome


def seed(
    store: Store,
    n: int,
    *,
    channel: str = "email",
    status: str = "draft",
    batch: bool = True,
    to: str | None = None,
) -> tuple[int | None, list[int]]:
    """Insert n messages (one batch); returns (batch_id, message ids). Used by other test files."""
    cur = store.cursor()
    batch_id = None
    if batch:
        batch_id = cur.execute(
            "INSERT INTO batches (channel, name, total) VALUES (?, 'test batch', ?) RETURNING id",
            [channel, n],
        ).fetchone()[0]
    rows = cur.execute(
        "INSERT INTO messages (channel, source, batch_id, to_address, to_name, subject,"
        " body_text, body_html, status)"
        " SELECT ?, 'test', ?, "
        " CASE WHEN ? IS NOT NULL THEN ? WHEN ? = 'sms' THEN '+42060' || lpad(i::VARCHAR, 7, '0')"
        " ELSE 'client' || i || '@example.com' END,"
        " 'Client ' || i, 'Hello ' || i, 'Dear client ' || i, '<p>Dear client ' || i || '</p>', ?"
        " FROM range(?) t(i) RETURNING id",
        [channel, batch_id, to, to, channel, status, n],
    ).fetchall()
    return batch_id, sorted(r[0] for r in rows)


def statuses(store: Store, ids: list[int]) -> list[str]:
    return [
        r[0]
        for r in store.cursor()
        .execute(
            "SELECT status FROM messages WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
            [ids],
        )
        .fetchall()
    ]


def log_actions(store: Store) -> list[str]:
    return [r["action"] for r in store.rows("SELECT action FROM action_log ORDER BY id")]


WORKER = outbox.worker_name("test-0")


def test_transitions_are_data_over_the_declared_statuses() -> None:
    for action, (sources, target) in outbox.TRANSITIONS.items():
        assert target in outbox.STATUSES, action
        assert sources <= set(outbox.STATUSES), action
    # only queued is ever picked for sending; a queued message otherwise only gets a new
    # due time (send now, reschedule) or is cancelled
    assert [
        a for a, (src, t) in outbox.TRANSITIONS.items() if "queued" in src and t != "queued"
    ] == [
        "cancel",
        "claim",
    ]
    assert [a for a, (_, t) in outbox.TRANSITIONS.items() if t == "sending"] == ["claim"]


def test_queue_moves_drafts_skips_excluded_and_invalid(store: Store) -> None:
    batch_id, ids = seed(store, 4)
    assert outbox.exclude(store, [ids[0]]) == 1
    store.cursor().execute("UPDATE messages SET status = 'invalid' WHERE id = ?", [ids[1]])
    assert outbox.queue(store, batch_id=batch_id) == 2
    assert statuses(store, ids) == ["excluded", "invalid", "queued", "queued"]
    entry = store.rows("SELECT * FROM action_log WHERE action = 'queue'")[0]
    assert json.loads(entry["detail"])["count"] == 2
    assert entry["batch_id"] == batch_id


def test_queue_explicit_non_draft_raises_and_changes_nothing(store: Store) -> None:
    _, ids = seed(store, 2)
    store.cursor().execute("UPDATE messages SET status = 'sent' WHERE id = ?", [ids[1]])
    with pytest.raises(InvalidTransition, match=rf"{ids[1]} \(sent\)"):
        outbox.queue(store, message_ids=ids)
    assert statuses(store, ids) == ["draft", "sent"]
    assert "queue" not in log_actions(store)
    with pytest.raises(NotFound):
        outbox.queue(store, message_ids=[999999])


def test_scheduled_message_is_claimed_only_when_due(store: Store) -> None:
    _, ids = seed(store, 2)
    outbox.queue(store, message_ids=[ids[0]], scheduled_at=datetime.now() + timedelta(hours=1))
    outbox.queue(store, message_ids=[ids[1]])
    claimed = claim(store, WORKER, 5)
    assert [r["id"] for r in claimed] == [ids[1]]
    assert claimed[0]["status"] == "sending" and claimed[0]["attempts"] == 1
    assert store.scalar("SELECT claimed_by FROM messages WHERE id = ?", [ids[1]]) == WORKER
    assert outbox.due_count(store) == 0
    assert outbox.due_count(store, within_seconds=7200) == 1


def test_paused_batch_is_not_claimed_until_resumed(store: Store) -> None:
    batch_id, ids = seed(store, 3)
    outbox.queue(store, batch_id=batch_id)
    outbox.pause(store, batch_id)
    assert claim(store, WORKER, 10) == []
    outbox.resume(store, batch_id)
    assert len(claim(store, WORKER, 10)) == 3
    assert {"pause batch", "resume batch"} <= set(log_actions(store))
    with pytest.raises(NotFound):
        outbox.pause(store, 424242)


def test_mark_sent_records_provider_id_attempt_and_log(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    (row,) = claim(store, WORKER)
    outcome(store, "sent", row["id"], "<abc@example.com>")
    msg = outbox.get_message(store, row["id"])
    assert msg["status"] == "sent" and msg["provider_id"] == "<abc@example.com>"
    assert msg["sent_at"] is not None
    attempt = store.rows("SELECT * FROM message_attempts WHERE message_id = ?", [row["id"]])
    assert [(a["attempt"], a["outcome"]) for a in attempt] == [(1, "sent")]
    # one line per action: a send's outcome is the message's attempt, not an action-log row
    assert "send" not in log_actions(store)


def test_outcome_of_a_message_that_is_not_sending_is_refused(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    with pytest.raises(InvalidTransition, match="not sending"):
        outcome(store, "sent", ids[0], "<x@y>")
    assert statuses(store, ids) == ["queued"]
    assert store.scalar("SELECT count(*) FROM message_attempts") == 0


def test_transient_backs_off_then_fails_after_max_attempts(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    policy = RetryPolicy(max_attempts=3, backoff_seconds=10)
    delays = []
    for attempt in (1, 2, 3):
        store.cursor().execute("UPDATE messages SET next_attempt_at = NULL WHERE id = ?", ids)
        (row,) = claim(store, WORKER)
        assert row["attempts"] == attempt
        before = datetime.now()
        new = outcome(store, "transient", ids[0], "451 4.7.1 try later", policy)
        msg = outbox.get_message(store, ids[0])
        if attempt < 3:
            assert new == "queued" and msg["error"] == "451 4.7.1 try later"
            delays.append((msg["next_attempt_at"] - before).total_seconds())
            assert claim(store, WORKER) == []  # not due yet
    assert new == "failed"
    assert msg["reason"] == outbox.REASON_RETRIES_EXHAUSTED
    assert msg["error"] == "451 4.7.1 try later"
    assert 9 < delays[0] <= 10.5 and 19 < delays[1] <= 20.5  # exponential
    outcomes = store.rows(
        "SELECT attempt, outcome FROM message_attempts WHERE message_id = ? ORDER BY attempt", ids
    )
    assert [(o["attempt"], o["outcome"]) for o in outcomes] == [
        (1, "transient"),
        (2, "transient"),
        (3, "transient"),
    ]
    assert not {"send deferred", "send failed"} & set(log_actions(store))


def test_permanent_failure_keeps_server_text_and_can_be_retried(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    claim(store, WORKER)
    outcome(store, "permanent", ids[0], "550 5.1.1 No such user")
    msg = outbox.get_message(store, ids[0])
    assert (msg["status"], msg["reason"], msg["error"]) == (
        "failed",
        outbox.REASON_REJECTED,
        "550 5.1.1 No such user",
    )
    assert outbox.retry(store, message_ids=ids) == 1
    msg = outbox.get_message(store, ids[0])
    assert msg["status"] == "queued" and msg["attempts"] == 0
    with pytest.raises(InvalidTransition):
        outbox.retry(store, message_ids=ids)  # queued is not failed


def test_cancel_drafts_and_queued_but_not_sent(store: Store) -> None:
    batch_id, ids = seed(store, 3)
    outbox.queue(store, message_ids=[ids[0]])
    assert outbox.cancel(store, message_ids=ids[:2]) == 2
    assert statuses(store, ids) == ["cancelled", "cancelled", "draft"]
    assert outbox.cancel(store, batch_id=batch_id) == 1
    with pytest.raises(InvalidTransition):
        outbox.cancel(store, message_ids=[ids[0]])


def test_recover_interrupted_takes_only_other_processes_rows(store: Store) -> None:
    _, ids = seed(store, 3)
    outbox.queue(store, message_ids=ids)
    claim(store, "deadhost:1:abc:w0")
    claim(store, "deadhost:1:abc:w1")
    claim(store, WORKER)  # ours: still being sent by this process
    assert outbox.recover_interrupted(store) == 2
    assert statuses(store, ids) == ["interrupted", "interrupted", "sending"]
    assert outbox.recover_interrupted(store) == 0  # never twice
    # never resent automatically: interrupted is not claimable
    assert claim(store, WORKER, 5) == []
    assert log_actions(store).count("interrupted") == 2


def test_resolve_interrupted_by_a_person(store: Store) -> None:
    _, ids = seed(store, 3)
    outbox.queue(store, message_ids=ids)
    claim(store, "gone:1:x:w", 3)
    outbox.recover_interrupted(store)
    assert outbox.resolve_interrupted(store, [ids[0]], "sent") == 1
    assert outbox.resolve_interrupted(store, [ids[1]], "resend") == 1
    assert outbox.resolve_interrupted(store, [ids[2]], "cancel") == 1
    assert statuses(store, ids) == ["sent", "queued", "cancelled"]
    with pytest.raises(InvalidTransition):
        outbox.resolve_interrupted(store, [ids[0]], "resend")
    with pytest.raises(ValueError):
        outbox.resolve_interrupted(store, [ids[0]], "maybe")
    assert log_actions(store).count("resolve interrupted") == 3


def test_group_commit_gives_each_worker_at_most_one_message(store: Store) -> None:
    _, ids = seed(store, 5)
    outbox.queue(store, message_ids=ids)
    workers = [outbox.worker_name(f"w{i}") for i in range(3)]
    scope = ClaimScope(channel="email")
    _, got = outbox.record_and_claim_many(store, [], [(w, scope) for w in workers])
    assert sorted(r["claimed_by"] for r in got.values()) == sorted(workers)
    results = [Result(r["id"], "sent", provider_id=f"<{r['id']}@x>") for r in got.values()]
    new, got2 = outbox.record_and_claim_many(store, results, [(w, scope) for w in workers])
    assert set(new.values()) == {"sent"}
    assert sum(1 for r in got2.values() if r) == 2  # only 2 left
    per_worker = store.rows(
        "SELECT claimed_by, count(*) AS n FROM messages WHERE status = 'sending' GROUP BY ALL"
    )
    assert all(r["n"] == 1 for r in per_worker)


def test_progress_counts_every_status(store: Store) -> None:
    batch_id, ids = seed(store, 4)
    outbox.queue(store, message_ids=ids[:3])
    claim(store, WORKER)
    outcome(store, "sent", ids[0], "<1@x>")
    counts = outbox.progress(store, batch_id)
    assert counts["sent"] == 1 and counts["queued"] == 2 and counts["draft"] == 1
    assert counts["total"] == 4 and set(outbox.STATUSES) <= set(counts)
    (row,) = [b for b in outbox.batch_progress(store) if b["batch_id"] == batch_id]
    assert row["sent"] == 1 and row["queued"] == 2 and row["next_due_at"] is not None


def test_overlapping_scopes_in_one_commit_claim_each_message_once(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    a, b = outbox.worker_name("a"), outbox.worker_name("b")
    _, got = outbox.record_and_claim_many(
        store, [], [(a, ClaimScope(channel="email")), (b, ClaimScope())]
    )
    assert sorted(r["id"] for r in got.values() if r) == ids


def test_read_ahead_cache_skips_rows_that_changed_since(store: Store) -> None:
    batch_id, ids = seed(store, 6)
    outbox.queue(store, batch_id=batch_id)
    cache = outbox.ClaimCache(size=4)
    scope = ClaimScope(channel="email")
    w = [outbox.worker_name(f"c{i}") for i in range(2)]
    _, got = outbox.record_and_claim_many(store, [], [(w[0], scope)], cache=cache)
    assert got[w[0]]["id"] == ids[0]
    # after the cache read ids[0..3]: one is cancelled, one's batch row is edited
    outbox.cancel(store, message_ids=[ids[1]])
    store.cursor().execute("UPDATE messages SET updated_at = now() WHERE id = ?", [ids[2]])
    _, got = outbox.record_and_claim_many(store, [], [(w[1], scope)], cache=cache)
    assert got[w[1]]["id"] == ids[3]  # the stale ones were skipped, never claimed
    assert statuses(store, ids) == ["sending", "cancelled", "queued", "sending", "queued", "queued"]
    outbox.pause(store, batch_id)
    r = Result(ids[0], "sent", "<a@x>", attempts=1, batch_id=batch_id)
    _, got = outbox.record_and_claim_many(store, [r], [(w[0], scope)], cache=cache)
    assert got[w[0]] is None  # paused: nothing claimed, but the outcome is recorded
    assert statuses(store, ids)[0] == "sent"


def test_read_ahead_cache_tops_up_across_refills(store: Store) -> None:
    _, ids = seed(store, 10)
    outbox.queue(store, message_ids=ids)
    cache = outbox.ClaimCache(size=3)
    scope = ClaimScope(channel="email")
    workers = [outbox.worker_name(f"t{i}") for i in range(4)]
    claimed: list[int] = []
    results: list[Result] = []
    for _ in range(3):
        _, got = outbox.record_and_claim_many(
            store, results, [(w, scope) for w in workers], cache=cache
        )
        rows = [r for r in got.values() if r]
        assert len(rows) == min(4, len(ids) - len(claimed))  # nobody is sent home early
        claimed += [r["id"] for r in rows]
        results = [Result(r["id"], "sent", f"<{r['id']}@x>", attempts=1) for r in rows]
    assert sorted(claimed) == ids


def test_preferred_row_is_claimed_or_replaced_when_stale(store: Store) -> None:
    """A worker's expected next row (the dispatcher's hint) is claimed when still queued;
    once cancelled meanwhile, the worker gets another row and the cancelled one stays put."""
    batch_id, ids = seed(store, 6)
    outbox.queue(store, batch_id=batch_id)
    scope = outbox.ClaimScope("email", batch_id)
    cache = outbox.ClaimCache()
    _, got = outbox.record_and_claim_many(store, [], [(WORKER, scope)], cache=cache)
    first = got[WORKER]
    hint = cache.peek(scope)
    assert hint is not None and hint["id"] != first["id"]
    done = outbox.Result(first["id"], "sent", "<a@x>")
    _, got = outbox.record_and_claim_many(
        store, [done], [(WORKER, scope)], cache=cache, preferred={WORKER: hint}
    )
    assert got[WORKER]["id"] == hint["id"]
    cache.hinted.discard(hint["id"])
    stale = cache.peek(scope)
    outbox.cancel(store, message_ids=[stale["id"]])
    done = outbox.Result(hint["id"], "sent", "<b@x>")
    _, got = outbox.record_and_claim_many(
        store, [done], [(WORKER, scope)], cache=cache, preferred={WORKER: stale}
    )
    assert got[WORKER] is not None and got[WORKER]["id"] not in (stale["id"], hint["id"])
    assert outbox.get_message(store, stale["id"])["status"] == "cancelled"
    assert store.scalar("SELECT count(*) FROM messages WHERE status = 'sending'") == 1
