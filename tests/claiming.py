"""Claims and outcomes through the dispatcher's own path (outbox.record_and_claim_many)."""

from __future__ import annotations

from comms import outbox
from comms.outbox import ClaimScope, Result, RetryPolicy
from comms.store import Store


def claim(store: Store, worker: str, limit: int = 1, scope: ClaimScope | None = None) -> list[dict]:
    """Claim up to `limit` due messages, one per worker: `worker`, then `worker#1`, ..."""
    workers = [worker] + [f"{worker}#{i}" for i in range(1, limit)]
    _, got = outbox.record_and_claim_many(store, [], [(w, scope or ClaimScope()) for w in workers])
    return sorted((r for r in got.values() if r), key=lambda r: r["id"])


def outcome(
    store: Store,
    kind: str,
    message_id: int,
    text: str | None = None,
    policy: RetryPolicy | None = None,
) -> str:
    """Record what a server answered for a sending message; its new status."""
    res = Result(
        int(message_id),
        kind,
        provider_id=text if kind == "sent" else None,
        error=None if kind == "sent" else text,
    )
    statuses, _ = outbox.record_and_claim_many(store, [res], [], policy=policy or RetryPolicy())
    return statuses[int(message_id)]


def wait_settled(store: Store, *ids: int, timeout: float = 30.0) -> list[str]:
    """Wait (bounded) until none of ids is due or being sent; their statuses by id."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        rows = store.rows(
            "SELECT id, status, next_attempt_at FROM messages"
            " WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
            [list(ids)],
        )
        busy = [
            r
            for r in rows
            if r["status"] == "sending" or (r["status"] == "queued" and not r["next_attempt_at"])
        ]
        if not busy or time.monotonic() > deadline:
            return [r["status"] for r in rows]
        time.sleep(0.05)
