"""People act while the background sender runs: nothing sent twice, no false 'cancelled'.

In one process, as in the app: the background sender works through a 400-message
batch against a real SMTP sink on 127.0.0.1 whose replies are delayed 20 ms, while
other threads press Send now, Cancel and Retry on random messages of that batch for
a few seconds. Several rounds, each with its own timings. Then we compare what the
sink received with what the database says.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter

import pytest

from comms import outbox
from comms.errors import CommsError
from comms.sending import dispatcher
from comms.store import Store
from tests.servers import SmtpSink

N = 400
FAILING = 12  # recipients the sink always refuses (550), so Retry has work to do

# (seed, seconds the people act, pause between their clicks, sender connections)
ROUNDS = [(1, 3.0, 0.002, 8), (2, 2.5, 0.02, 4), (3, 3.0, 0.0, 8), (4, 2.0, 0.01, 2)]


def seed_batch(store: Store, n: int) -> list[int]:
    """A batch of n drafts to n distinct addresses (as generation leaves them), queued."""

    def fill(cur) -> None:
        cur.execute(
            "INSERT INTO clients (id, name, email, email_valid)"
            " SELECT range + 1, 'Client ' || (range + 1), 'c' || (range + 1) || '@example.com',"
            " true FROM range(?)",
            [n],
        )
        cur.execute("INSERT INTO batches (id, channel, name) VALUES (1, 'email', 'Race')")
        cur.execute(
            "INSERT INTO messages (id, client_id, channel, source, batch_id, to_address,"
            " subject, body_text, status) SELECT range + 1, range + 1, 'email', 'bulk', 1,"
            " 'c' || (range + 1) || '@example.com', 'Hello', 'Hi there', 'draft' FROM range(?)",
            [n],
        )

    store.write(fill)
    outbox.queue(store, batch_id=1)
    return list(range(1, n + 1))


class People:
    """Threads clicking Send now, Cancel and Retry on random messages, as the pages do."""

    def __init__(self, store: Store, ids: list[int], seed: int, pause: float) -> None:
        self.store, self.ids, self.pause = store, ids, pause
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.unexpected: list[BaseException] = []
        self.refusals: Counter[str] = Counter()
        self.moved: Counter[str] = Counter()
        self.lock = threading.Lock()

    def act(self, name: str) -> None:
        rng = random.Random(f"{name}-{self.rng.random()}")
        actions = {
            "send now": lambda ids: outbox.send_now(self.store, message_ids=ids),
            "send now (wait)": lambda ids: dispatcher.send_now(self.store, ids, timeout=0.5)[
                "sent"
            ],
            "cancel": lambda ids: outbox.cancel(self.store, message_ids=ids),
            "retry": lambda ids: outbox.retry(self.store, message_ids=ids),
            "send batch now": lambda ids: outbox.send_now(self.store, batch_id=1),
        }
        while not self.stop.is_set():
            action = rng.choice(list(actions))
            ids = rng.sample(self.ids, rng.choice((1, 1, 2, 5)))
            try:
                n = actions[action](ids)
                dispatcher.wake(self.store)
                with self.lock:
                    self.moved[action] += int(n or 0)
            except CommsError:
                with self.lock:
                    self.refusals[action] += 1
            except BaseException as exc:  # anything but a domain refusal is a bug
                with self.lock:
                    self.unexpected.append(exc)
            if self.pause:
                time.sleep(rng.uniform(0, self.pause))

    def run(self, seconds: float, threads: int = 3) -> None:
        workers = [
            threading.Thread(target=self.act, args=(f"person-{i}",), daemon=True)
            for i in range(threads)
        ]
        for t in workers:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in workers:
            t.join(30)


def settle(store: Store, timeout: float = 90.0) -> dict[str, int]:
    """Wait (bounded) until nothing is due or being sent; the counts by status."""
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox.progress(store, 1)
        if not counts["sending"] and not outbox.due_count(store, batch_id=1):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


@pytest.mark.parametrize("seed, seconds, pause, connections", ROUNDS)
def test_actions_while_the_background_sender_runs(
    store, monkeypatch, caplog, seed, seconds, pause, connections
):
    caplog.set_level(logging.ERROR)
    with SmtpSink(delay_rcpt=0.02, delay_data=0.02) as sink:
        for key, value in sink.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COMMS_SMTP_CONNECTIONS", str(connections))
        monkeypatch.setenv("COMMS_BACKOFF_SECONDS", "0.05")
        monkeypatch.setenv("COMMS_MAX_ATTEMPTS", "2")
        ids = seed_batch(store, N)
        refused = {f"c{i}@example.com" for i in random.Random(seed).sample(ids, FAILING)}
        for address in refused:
            sink.always(address, "550 5.1.1 No such user")
        bg = dispatcher.start_background(store, poll_seconds=0.05)
        try:
            people = People(store, ids, seed, pause)
            people.run(seconds)
            counts = settle(store)
        finally:
            dispatcher.stop_background(store)
        delivered = Counter(sink.recipients())

    rows = store.rows("SELECT id, to_address, status FROM messages WHERE batch_id = 1")
    by_status: dict[str, set[str]] = {}
    for r in rows:
        by_status.setdefault(r["status"], set()).add(r["to_address"])

    assert not people.unexpected, people.unexpected[:3]
    # no recipient got the mail twice at the sink
    assert [a for a, n in delivered.items() if n > 1] == []
    # no message recorded `cancelled` was delivered
    assert by_status.get("cancelled", set()) & set(delivered) == set()
    # every message recorded `sent` was delivered, and every delivered one is `sent`
    assert by_status.get("sent", set()) == set(delivered)
    # nothing is left queued or sending; refused recipients ended failed (or cancelled)
    assert counts["queued"] == 0 and counts["sending"] == 0, counts
    assert by_status.get("failed", set()) <= refused
    assert set(delivered) & refused == set()
    # the people really raced the sender: some moves and some refusals happened
    assert sum(people.moved.values()) > 0 and counts["sent"] > 0
    # no sending thread died, and no conflict error surfaced anywhere
    assert bg.last_error is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ][:3]
    result = bg.last_result
    assert result is None or not [e for e in result.errors if "Conflict" in e]


def test_generation_appends_while_the_sender_and_people_write(store, monkeypatch, caplog):
    """W2 / G2: a bulk generation stores its batch in many INSERTs on a transaction of its
    own, without the write lock, while the background sender commits its sends and people
    press Send now / Cancel / Retry. Nobody sees the new batch before it is whole, nothing
    is lost or doubled on either side, and no conflict surfaces."""
    from comms.messages import generate

    caplog.set_level(logging.ERROR)
    monkeypatch.setattr(generate, "CHUNK", 250)
    monkeypatch.setattr(generate, "STORE_ROWS", 500)  # one INSERT per 2 chunks: ~40 INSERTs
    generated = 20_000
    with SmtpSink(delay_rcpt=0.01, delay_data=0.01) as sink:
        for key, value in sink.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COMMS_BACKOFF_SECONDS", "0.05")
        ids = seed_batch(store, N)

        def more_clients(cur) -> None:
            cur.execute(
                "INSERT INTO clients (id, name, email, email_valid, city)"
                " SELECT range + 1000, 'Gen ' || range, 'g' || range || '@example.com', true,"
                " 'Brno' FROM range(?)",
                [generated],
            )
            # seed_batch gave its batch and messages ids by hand: the sequences move past them
            cur.execute("SELECT max(nextval('message_id_seq')) FROM range(?)", [N])
            cur.execute("SELECT nextval('batch_id_seq')")

        store.write(more_clients)
        seen: set[int] = set()
        watching = threading.Event()

        def watch() -> None:  # what any other session can see of the new batch
            while not watching.is_set():
                seen.add(int(store.scalar("SELECT count(*) FROM messages WHERE batch_id <> 1")))

        watcher = threading.Thread(target=watch, daemon=True)
        bg = dispatcher.start_background(store, poll_seconds=0.02)
        people = People(store, ids, 7, 0.005)
        acting = threading.Thread(target=people.run, args=(60.0,), daemon=True)
        try:
            watcher.start()
            acting.start()
            result = generate.generate_messages(
                store,
                selection={"filter": {"city": "Brno"}},
                channel="email",
                subject="Hi {{ name }}",
                body="Dear {{ name }}, see you in {{ city }}.",
            )
            people.stop.set()
            acting.join(30)
            watching.set()
            watcher.join(30)
            counts = settle(store)
        finally:
            people.stop.set()
            dispatcher.stop_background(store)
        delivered = Counter(sink.recipients())

    assert not people.unexpected, people.unexpected[:3]
    assert (result.total, result.valid) == (generated, generated)
    # all or nothing, to every reader at every moment
    assert seen <= {0, generated}, sorted(seen)[:5]
    stored = store.rows(
        "SELECT status, count(*) AS n, count(DISTINCT client_id) AS clients FROM messages"
        " WHERE batch_id = ? GROUP BY status",
        [result.batch_id],
    )
    assert stored == [{"status": "draft", "n": generated, "clients": generated}]
    assert store.scalar("SELECT total FROM batches WHERE id = ?", [result.batch_id]) == generated
    assert (
        store.scalar(
            "SELECT count(*) FROM action_log WHERE action = 'generate' AND batch_id = ?",
            [result.batch_id],
        )
        == 1
    )
    # the sender's side as in the race above: nothing doubled, sent == delivered
    rows = store.rows("SELECT to_address, status FROM messages WHERE batch_id = 1")
    sent = {r["to_address"] for r in rows if r["status"] == "sent"}
    assert [a for a, n in delivered.items() if n > 1] == []
    assert sent == set(delivered) and counts["queued"] == 0 and counts["sending"] == 0
    assert sum(people.moved.values()) > 0 and len(sent) > 0
    assert bg.last_error is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ][:3]
