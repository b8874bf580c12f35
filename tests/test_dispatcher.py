"""The dispatcher end to end: real SMTP sink / Twilio server, real DuckDB file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from servers import SmtpSink, TwilioServer, free_port
from test_outbox import seed, statuses

from comms import outbox
from comms.sending import dispatcher
from comms.sending.dispatcher import TokenBucket
from comms.store import Store, open_store
from tests.claiming import claim


@pytest.fixture(params=[False, True], ids=["plain", "pipelined"])
def pipelined(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run e-mail tests twice: plain, and with every next envelope sent ahead (prepare)."""
    if request.param:
        monkeypatch.setattr(dispatcher, "PIPELINE_AFTER_SECONDS", 0.0)
    return request.param


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch, db_path: Path, pipelined: bool) -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COMMS_BACKOFF_SECONDS", "0.05")
        yield s


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[TwilioServer]:
    with TwilioServer() as s:
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COMMS_BACKOFF_SECONDS", "0.05")
        yield s


def test_batch_is_sent_once_each_with_progress(store: Store, sink: SmtpSink) -> None:
    batch_id, ids = seed(store, 40)
    outbox.queue(store, batch_id=batch_id)
    seen: list[dict] = []
    result = dispatcher.run_once(store, batch_id=batch_id, progress=seen.append)
    assert (result.sent, result.failed, result.retried, result.interrupted) == (40, 0, 0, 0)
    assert statuses(store, ids) == ["sent"] * 40
    msgids = sink.message_ids()
    assert len(msgids) == 40 and len(set(msgids)) == 40
    stored = {r["provider_id"] for r in store.rows("SELECT provider_id FROM messages")}
    assert stored == set(msgids)
    assert seen[-1]["done"] == 40 and seen[-1]["total"] == 40
    assert 1 < sink.connections <= 8  # parallel connections, each reused
    runs = store.rows("SELECT action, detail FROM action_log WHERE action LIKE 'send run%'")
    assert [r["action"] for r in runs] == ["send run start", "send run end"]
    end = json.loads(runs[1]["detail"])
    assert end["sent"] == 40 and end["duration"] > 0


def test_451_is_retried_then_sent_550_fails_with_server_text(store: Store, sink: SmtpSink) -> None:
    batch_id, ids = seed(store, 6)
    sink.program("client1@example.com", "451 4.7.1 Greylisted", "451 4.7.1 Greylisted")
    sink.always("client2@example.com", "550 5.1.1 No such user")
    outbox.queue(store, batch_id=batch_id)
    result = dispatcher.run_once(store, batch_id=batch_id)
    assert (result.sent, result.failed, result.retried) == (5, 1, 2)
    rows = {r["to_address"]: r for r in store.rows("SELECT * FROM messages")}
    assert rows["client1@example.com"]["status"] == "sent"
    assert rows["client1@example.com"]["attempts"] == 3
    # Sent in the end: the greylisting text stays in its attempts, not on the message.
    assert rows["client1@example.com"]["error"] is None
    failed = rows["client2@example.com"]
    assert failed["status"] == "failed" and "550 5.1.1 No such user" in failed["error"]
    assert sink.rcpt_attempts("client1@example.com") == 3
    assert len(sink.received) == 5 and len(set(sink.message_ids())) == 5
    outcomes = store.rows(
        "SELECT outcome FROM message_attempts WHERE message_id = ? ORDER BY ts, attempt",
        [rows["client1@example.com"]["id"]],
    )
    assert [o["outcome"] for o in outcomes] == ["transient", "transient", "sent"]


def test_transient_exhausted_becomes_failed(
    store: Store, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_MAX_ATTEMPTS", "2")
    _, ids = seed(store, 1)
    sink.always("client0@example.com", "421 4.3.2 Service busy")
    outbox.queue(store, message_ids=ids)
    result = dispatcher.run_once(store)
    assert (result.retried, result.failed) == (1, 1)
    msg = outbox.get_message(store, ids[0])
    assert msg["status"] == "failed" and msg["reason"] == outbox.REASON_RETRIES_EXHAUSTED


def test_connection_dropped_mid_batch_carries_on_without_duplicates(
    store: Store, monkeypatch: pytest.MonkeyPatch, db_path: Path, pipelined: bool
) -> None:
    with SmtpSink(drop_every=5) as sink:
        for key, value in sink.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COMMS_SMTP_CONNECTIONS", "2")
        batch_id, ids = seed(store, 30)
        outbox.queue(store, batch_id=batch_id)
        result = dispatcher.run_once(store, batch_id=batch_id)
        assert result.sent == 30 and result.interrupted == 0
        msgids = sink.message_ids()
        assert len(msgids) == 30 and len(set(msgids)) == 30
        assert sink.connections >= 6  # it did reconnect


def test_ambiguous_drop_is_interrupted_and_not_resent(store: Store, sink: SmtpSink) -> None:
    sink.drop_after_data(3)
    batch_id, ids = seed(store, 5)
    outbox.queue(store, batch_id=batch_id)
    result = dispatcher.run_once(store, batch_id=batch_id)
    assert (result.sent, result.interrupted) == (4, 1)
    assert len(sink.received) == 5  # the server had it: sending again would duplicate
    assert dispatcher.run_once(store).sent == 0


def test_twilio_21211_fails_429_is_retried(store: Store, twilio: TwilioServer) -> None:
    batch_id, ids = seed(store, 4, channel="sms")
    rows = store.rows("SELECT id, to_address FROM messages ORDER BY id")
    bad, busy = rows[0]["to_address"], rows[1]["to_address"]
    twilio.always(bad, (400, 21211, f"The 'To' number {bad} is not a valid phone number."))
    twilio.program(busy, (429, 20429, "Too Many Requests"))
    outbox.queue(store, batch_id=batch_id)
    result = dispatcher.run_once(store, batch_id=batch_id)
    assert (result.sent, result.failed, result.retried) == (3, 1, 1)
    got = {r["to_address"]: r for r in store.rows("SELECT * FROM messages")}
    assert got[bad]["status"] == "failed" and "21211" in got[bad]["error"]
    assert got[busy]["status"] == "sent" and got[busy]["provider_id"].startswith("SM")
    assert twilio.attempts_for(busy) == [429, 201]
    assert len(twilio.messages) == 3


def test_email_and_sms_in_one_run(store: Store, sink: SmtpSink, twilio: TwilioServer) -> None:
    seed(store, 3)
    seed(store, 2, channel="sms")
    outbox.queue(store, message_ids=[r["id"] for r in store.rows("SELECT id FROM messages")])
    assert dispatcher.run_once(store).sent == 5
    assert len(sink.received) == 3 and len(twilio.messages) == 2


def test_attachments_of_message_and_batch_are_sent(store: Store, sink: SmtpSink) -> None:
    batch_id, ids = seed(store, 2)
    cur = store.cursor()
    for i, (name, ctype) in enumerate([("a.pdf", "application/pdf"), ("b.csv", "text/csv")]):
        cur.execute(
            "INSERT INTO attachments (id, sha256, filename, content_type, size, data)"
            " VALUES (?, ?, ?, ?, 3, 'abc'::BLOB)",
            [100 + i, f"h{i}", name, ctype],
        )
    cur.execute("INSERT INTO batch_attachments VALUES (?, 100)", [batch_id])
    cur.execute("INSERT INTO message_attachments VALUES (?, 101)", [ids[0]])
    outbox.queue(store, batch_id=batch_id)
    dispatcher.run_once(store)
    names = {
        r.rcpt_tos[0]: sorted(a.get_filename() for a in r.parsed().iter_attachments())
        for r in sink.received
    }
    assert names == {"client0@example.com": ["a.pdf", "b.csv"], "client1@example.com": ["a.pdf"]}


def test_unreachable_server_stops_the_run_leaving_messages_queued(
    store: Store, monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    monkeypatch.setenv("COMMS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMMS_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "none")
    monkeypatch.setenv("COMMS_SMTP_CONNECTIONS", "2")
    batch_id, ids = seed(store, 10)
    outbox.queue(store, batch_id=batch_id)
    result = dispatcher.run_once(store, wait_for_retries=False)
    assert result.sent == 0 and result.errors and "cannot connect" in result.errors[0]
    assert statuses(store, ids) == ["queued"] * 10
    assert store.scalar("SELECT sum(attempts) FROM messages") == 2  # one per connection


def test_nothing_due_returns_at_once(store: Store) -> None:
    _, ids = seed(store, 2)
    outbox.queue(store, message_ids=ids, scheduled_at=datetime.now() + timedelta(days=1))
    result = dispatcher.run_once(store)
    assert (result.sent, result.failed, result.retried, result.interrupted) == (0, 0, 0, 0)
    assert store.scalar("SELECT count(*) FROM action_log WHERE action LIKE 'send run%'") == 0


def test_send_now_sends_only_those_even_if_scheduled(store: Store, sink: SmtpSink) -> None:
    _, ids = seed(store, 3)
    outbox.queue(store, message_ids=ids, scheduled_at=datetime.now() + timedelta(days=1))
    out = dispatcher.send_now(store, [ids[1]])
    assert out["sent"] == 1
    assert [m["status"] for m in out["messages"]] == ["sent"]
    assert statuses(store, ids) == ["queued", "sent", "queued"]
    assert sink.recipients() == ["client1@example.com"]


def test_paused_batch_is_left_alone(store: Store, sink: SmtpSink) -> None:
    batch_id, ids = seed(store, 3)
    outbox.queue(store, batch_id=batch_id)
    outbox.pause(store, batch_id)
    assert dispatcher.run_once(store).sent == 0
    outbox.resume(store, batch_id)
    assert dispatcher.run_once(store).sent == 3


def test_outbox_folder_is_the_default(store: Store, db_path: Path) -> None:
    _, ids = seed(store, 2)
    seed(store, 1, channel="sms")
    outbox.queue(store, message_ids=[r["id"] for r in store.rows("SELECT id FROM messages")])
    assert dispatcher.run_once(store).sent == 3
    folder = db_path.parent / "outbox"
    assert len(list(folder.glob("*.eml"))) == 2 and len(list(folder.glob("*.json"))) == 1


def test_background_thread_sends_when_due_and_is_started_once(store: Store, sink: SmtpSink) -> None:
    _, ids = seed(store, 2)
    bg = dispatcher.start_background(store, poll_seconds=0.1)
    try:
        assert dispatcher.start_background(store) is bg
        outbox.queue(store, message_ids=ids, scheduled_at=datetime.now() + timedelta(seconds=0.3))
        deadline = time.monotonic() + 60
        while statuses(store, ids) != ["sent", "sent"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses(store, ids) == ["sent", "sent"]
    finally:
        dispatcher.stop_background(store)
    assert not bg.alive


def test_background_start_recovers_interrupted(store: Store) -> None:
    _, ids = seed(store, 1)
    outbox.queue(store, message_ids=ids)
    claim(store, "elsewhere:9:dead:w0")
    bg = dispatcher.start_background(store, poll_seconds=60)
    dispatcher.stop_background(store)
    assert bg.recovered == 1 and statuses(store, ids) == ["interrupted"]


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(per_second=20)
    start = time.monotonic()
    for _ in range(30):
        bucket.acquire()
    assert time.monotonic() - start >= 0.45  # 20 at once, then 10 more at 20/s
    unlimited = TokenBucket()
    assert all(unlimited.acquire() for _ in range(1000))


def test_rate_limit_applies_to_a_run(
    store: Store, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_EMAIL_RATE_PER_SECOND", "10")
    batch_id, _ = seed(store, 15)
    outbox.queue(store, batch_id=batch_id)
    result = dispatcher.run_once(store)
    assert result.sent == 15 and result.duration >= 0.45


@pytest.mark.browser
def test_the_app_sends_due_messages_in_the_background(run_app, page, db_path: Path) -> None:
    ids: list[int] = []

    def queue_two(st: Store) -> None:
        _, made = seed(st, 2)
        outbox.queue(st, message_ids=made)
        ids.extend(made)

    url = run_app(seed=queue_two, env={"COMMS_POLL_SECONDS": "0.2"})
    page.goto(url)  # the first script run starts the dispatcher thread
    folder = db_path.parent / "outbox"
    deadline = time.monotonic() + 60
    while len(list(folder.glob("*.eml"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    run_app.stop()
    assert len(list(folder.glob("*.eml"))) == 2
    store = open_store(db_path)
    assert statuses(store, ids) == ["sent", "sent"]
    store.close()


def test_misconfigured_backend_claims_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")  # token and sender missing
    _, ids = seed(store, 2, channel="sms")
    outbox.queue(store, message_ids=ids)
    result = dispatcher.run_once(store)
    assert result.sent == 0 and "TWILIO_AUTH_TOKEN" in result.errors[0]
    assert statuses(store, ids) == ["queued", "queued"]
    assert store.scalar("SELECT sum(attempts) FROM messages") == 0


def test_two_runs_at_once_never_send_a_message_twice(store: Store, sink: SmtpSink) -> None:
    import threading

    batch_id, ids = seed(store, 120)
    outbox.queue(store, batch_id=batch_id)
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(dispatcher.run_once(store)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 120
    msgids = sink.message_ids()
    assert len(msgids) == 120 and len(set(msgids)) == 120
    assert statuses(store, ids) == ["sent"] * 120


def test_send_run_records_the_person_who_started_it(store: Store, sink: SmtpSink) -> None:
    """A run is one line per action, named after the person; its per-message outcomes
    (written by the committer thread) are its message_attempts rows, under its run id."""
    from comms import actionlog

    batch_id, ids = seed(store, 3)
    outbox.queue(store, batch_id=batch_id)
    actionlog.set_user("alice@example.com")
    try:
        dispatcher.run_once(store, batch_id=batch_id)
    finally:
        actionlog.set_user(None)
    assert statuses(store, ids) == ["sent"] * 3
    lines = store.rows(
        """SELECT action, "user", detail->>'run' AS run, detail->>'sent' AS sent"""
        " FROM action_log WHERE action LIKE 'send run%' ORDER BY id"
    )
    assert [(r["action"], r["user"]) for r in lines] == [
        ("send run start", "alice@example.com"),
        ("send run end", "alice@example.com"),
    ]
    assert lines[0]["run"] == lines[1]["run"] and lines[1]["sent"] == "3"
    per_message = store.rows(
        "SELECT message_id, outcome, run_id FROM message_attempts ORDER BY message_id"
    )
    assert [(r["message_id"], r["outcome"]) for r in per_message] == [(i, "sent") for i in ids]
    assert {r["run_id"] for r in per_message} == {lines[0]["run"]}
    assert not store.rows(
        "SELECT * FROM action_log WHERE message_id IS NOT NULL AND action <> 'queue'"
    )
