"""After sending, SMS: delivery reports (Twilio's signed callbacks, polling), replies, and the
one mover of sent -> delivered / undelivered / bounced (comms.outbox.delivery).

The routes run in a real uvicorn server on 127.0.0.1 (comms.web's ROUTES) and
Twilio's side is tests/servers.py's TwilioServer: messages are really sent to
it, and its callbacks are signed with the twilio package's RequestValidator.
Helpers here (clients, sent messages, the route server) are used by the other
test_feedback_* files.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from servers import TwilioServer, free_port
from starlette.applications import Starlette

from comms import outbox, web
from comms.outbox import delivery
from comms.outbox.create import insert_messages
from comms.sending import dispatcher
from comms.store import Store

# -- helpers for every test_feedback_* file ---------------------------------------------------


def add_client(
    store: Store, name: str = "Jana Nováková", email: str | None = None, phone: str | None = None
) -> int:
    """One client with consent for both channels."""
    (cid,) = store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (name, email, email_valid, phone, phone_kind)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            [name, email, email is not None, phone, "mobile" if phone else None],
        ).fetchone()
    )
    return int(cid)


def queue_messages(
    store: Store, channel: str, recipients: list[tuple[int | None, str]], *, body: str = "Hello"
) -> list[int]:
    """Messages of one batch to (client id, address) pairs, queued and due now."""

    def write(cur) -> list[int]:
        (batch_id,) = cur.execute(
            "INSERT INTO batches (channel, name, total) VALUES (?, 'feedback', ?) RETURNING id",
            [channel, len(recipients)],
        ).fetchone()
        return insert_messages(
            cur,
            [
                {"client_id": c, "to_address": a, "subject": "Hi", "body_text": body}
                for c, a in recipients
            ],
            channel=channel,
            source="bulk",
            batch_id=batch_id,
            status="draft",
        )

    ids = store.write(write)
    outbox.queue(store, message_ids=ids)
    return ids


def send_all(store: Store, channel: str) -> None:
    """Send what is due (through whatever backend the environment configures)."""
    result = dispatcher.run_once(store, channels=[channel], wait_for_retries=False)
    assert not result.errors, result.errors


def message(store: Store, message_id: int) -> dict:
    return store.rows("SELECT * FROM messages WHERE id = ?", [message_id])[0]


def actions(store: Store, name: str) -> list[dict]:
    return store.rows(
        'SELECT action, message_id, client_id, batch_id, detail, "user" FROM action_log'
        " WHERE action = ? ORDER BY id",
        [name],
    )


@contextmanager
def route_server() -> Iterator[str]:
    """comms.web's routes in a real uvicorn server on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=web.ROUTES), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the route server did not start")
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioServer]:
    """A TwilioServer that the twilio backend is configured for."""
    with TwilioServer() as tw:
        for k, v in tw.env().items():
            monkeypatch.setenv(k, v)
        yield tw


# -- the mover ----------------------------------------------------------------------------------


def _sent(store: Store, n: int, channel: str = "email") -> list[int]:
    ids = queue_messages(store, channel, [(None, f"c{i}@example.com") for i in range(n)])
    store.write(
        lambda cur: cur.execute(
            "UPDATE messages SET status = 'sent', provider_id = 'p' || id"
            " WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        )
    )
    return ids


def test_reports_move_sent_messages_and_a_late_one_never_moves_back(store: Store) -> None:
    a, b, c = _sent(store, 3)
    got = delivery.apply(
        store,
        [
            delivery.Report("delivered", a, "test"),
            delivery.Report("undelivered", b, "test", code="30003", reason="undelivered: 30003"),
            delivery.Report(
                "bounced", c, "test", code="5.1.1", reason="bounced: 5.1.1 user unknown"
            ),
        ],
    )
    assert [g.outcome for g in got] == ["moved", "moved", "moved"]
    assert [message(store, i)["status"] for i in (a, b, c)] == [
        "delivered",
        "undelivered",
        "bounced",
    ]
    assert message(store, c)["reason"] == "bounced: 5.1.1 user unknown"

    late = delivery.apply(
        store,
        [
            delivery.Report("undelivered", a, "test"),  # delivered stays delivered
            delivery.Report("delivered", c, "test"),  # bounced stays bounced
            delivery.Report("bounced", a, "test", reason="bounced: 5.2.1 mailbox disabled"),
        ],
    )
    assert [g.outcome for g in late] == ["late", "late", "moved"]  # bounce may follow delivery
    assert [message(store, i)["status"] for i in (a, b, c)] == ["bounced", "undelivered", "bounced"]
    events = store.scalar("SELECT count(*) FROM feedback_events")
    assert events == 6  # late reports are kept as events, they only move nothing


def test_a_report_seen_twice_is_applied_once(store: Store) -> None:
    (a,) = _sent(store, 1, "sms")
    report = delivery.Report("delivered", a, "test", dedupe_key="twilio:SMx:delivered")
    assert [g.outcome for g in delivery.apply(store, [report, report])] == ["moved", "duplicate"]
    assert delivery.apply(store, [report])[0].outcome == "duplicate"
    assert store.scalar("SELECT count(*) FROM feedback_events") == 1
    assert len(actions(store, "delivered")) == 1


def test_only_sent_messages_move(store: Store) -> None:
    (queued,) = queue_messages(store, "sms", [(None, "+420601000009")])
    (got,) = delivery.apply(store, [delivery.Report("delivered", queued, "test")])
    assert got.outcome == "late" and message(store, queued)["status"] == "queued"
    (unknown,) = delivery.apply(store, [delivery.Report("delivered", 999_999, "test")])
    assert unknown.outcome == "unknown"


def test_moves_are_logged_per_kind_and_batch(store: Store) -> None:
    ids = _sent(store, 3)
    delivery.apply(store, [delivery.Report("bounced", i, "imap") for i in ids])
    (entry,) = actions(store, "bounced")
    assert entry["batch_id"] is not None and '"count": 3' in entry["detail"]


# -- Twilio: status callbacks -------------------------------------------------------------------


@pytest.fixture
def callbacks(
    store: Store, twilio_env: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TwilioServer, str]]:
    """The routes served for real, COMMS_PUBLIC_URL pointing at them, Twilio configured."""
    with route_server() as url:
        monkeypatch.setenv("COMMS_PUBLIC_URL", url)
        yield twilio_env, url


def test_each_sms_asks_for_status_callbacks_at_the_public_url(store: Store, callbacks) -> None:
    tw, url = callbacks
    (mid,) = queue_messages(store, "sms", [(None, "+420601000001")])
    send_all(store, "sms")
    (sent,) = tw.messages
    assert sent["form"]["StatusCallback"] == f"{url}/hooks/twilio/status"
    assert message(store, mid)["provider_id"] == sent["sid"]


def test_signed_callbacks_deliver_and_forgeries_get_403(store: Store, callbacks) -> None:
    tw, _ = callbacks
    ok, bad = queue_messages(store, "sms", [(None, "+420601000001"), (None, "+420601000002")])
    send_all(store, "sms")
    sid_ok, sid_bad = (message(store, i)["provider_id"] for i in (ok, bad))

    assert tw.status_callback(sid_ok, "sent")[0] == 200  # not final: nothing moves
    assert message(store, ok)["status"] == "sent"
    assert tw.status_callback(sid_ok, "delivered")[0] == 200
    assert message(store, ok)["status"] == "delivered"

    status, body = tw.status_callback(sid_bad, "delivered", token="not-the-auth-token")
    assert status == 403 and "Forbidden" in body
    assert message(store, bad)["status"] == "sent"
    assert store.scalar("SELECT count(*) FROM feedback_events WHERE message_id = ?", [bad]) == 0

    (entry,) = actions(store, "delivered")
    assert entry["message_id"] == ok and entry["user"] == web.TWILIO


def test_undelivered_keeps_twilio_error_code_and_its_meaning(store: Store, callbacks) -> None:
    tw, _ = callbacks
    (mid,) = queue_messages(store, "sms", [(None, "+420601000003")])
    send_all(store, "sms")
    sid = message(store, mid)["provider_id"]
    assert tw.status_callback(sid, "undelivered", 30003)[0] == 200
    row = message(store, mid)
    assert row["status"] == "undelivered"
    assert row["reason"].startswith("undelivered: 30003 unreachable")
    assert "30003" in row["error"]
    # A late "delivered" (or a repeat) moves nothing back.
    assert tw.status_callback(sid, "delivered")[0] == 200
    assert message(store, mid)["status"] == "undelivered"


def test_failed_at_twilio_is_undelivered(store: Store, callbacks) -> None:
    tw, _ = callbacks
    (mid,) = queue_messages(store, "sms", [(None, "+420601000004")])
    send_all(store, "sms")
    tw.status_callback(message(store, mid)["provider_id"], "failed", 30007)
    row = message(store, mid)
    assert row["status"] == "undelivered" and "carrier filtering" in row["reason"]


def test_signature_is_checked_against_the_public_url_not_the_request_host(
    store: Store, twilio_env: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy: Twilio signs https://comms.example.cz/..., the app sees 127.0.0.1."""
    tw = twilio_env
    monkeypatch.setenv("COMMS_PUBLIC_URL", "https://comms.example.cz")
    (mid,) = queue_messages(store, "sms", [(None, "+420601000005")])
    send_all(store, "sms")
    sid = message(store, mid)["provider_id"]
    assert tw.callbacks[sid] == "https://comms.example.cz/hooks/twilio/status"
    with route_server() as real:
        # Signed for the URL the app sees: not what Twilio was given, so refused.
        params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": tw.account_sid}
        assert tw.signed_post(f"{real}/hooks/twilio/status", params)[0] == 403
        assert message(store, mid)["status"] == "sent"
        # Signed for the public URL, arriving through the proxy at the real address.
        assert tw.status_callback(sid, "delivered", post_to=f"{real}/hooks/twilio/status")[0] == 200
    assert message(store, mid)["status"] == "delivered"


def test_without_a_public_url_no_callback_is_asked_or_accepted(
    store: Store, twilio_env: TwilioServer
) -> None:
    queue_messages(store, "sms", [(None, "+420601000006")])
    send_all(store, "sms")
    assert "StatusCallback" not in twilio_env.messages[0]["form"]
    with route_server() as real:
        params = {"MessageSid": twilio_env.messages[0]["sid"], "MessageStatus": "delivered"}
        assert twilio_env.signed_post(f"{real}/hooks/twilio/status", params)[0] == 403


# -- Twilio: polling ------------------------------------------------------------------------------


def test_polling_reads_each_message_resource_and_applies_it(
    store: Store, twilio_env: TwilioServer
) -> None:
    from comms.feedback import twilio

    tw = twilio_env
    a, b, c = queue_messages(
        store, "sms", [(None, "+420601000011"), (None, "+420601000012"), (None, "+420601000013")]
    )
    send_all(store, "sms")
    sid = {i: message(store, i)["provider_id"] for i in (a, b, c)}
    tw.set_status(sid[a], "delivered")
    tw.set_status(sid[b], "undelivered", 30005, "Unknown destination handset")
    # c stays "queued" at Twilio: not final, asked again later

    result = twilio.poll(store, everything=True)
    assert (result.asked, result.delivered, result.undelivered, result.pending) == (3, 1, 1, 1)
    assert sorted(tw.fetches) == sorted(sid.values())
    assert message(store, a)["status"] == "delivered"
    row = message(store, b)
    assert row["status"] == "undelivered" and "30005 unknown number" in row["reason"]
    assert message(store, c)["status"] == "sent"
    polls, next_at = store.rows("SELECT polls, next_at FROM sms_polls WHERE message_id = ?", [c])[
        0
    ].values()
    assert polls == 1 and next_at > message(store, c)["sent_at"]

    # Not due again yet (back-off), so the background round asks nobody...
    tw.fetches.clear()
    twilio.poll(store)
    assert tw.fetches == []
    # ...but `comms sms-status` asks about everything without a final status now.
    tw.set_status(sid[c], "delivered")
    assert twilio.poll(store, everything=True).delivered == 1
    assert tw.fetches == [sid[c]]
    assert message(store, c)["status"] == "delivered"


def test_sms_status_command_against_the_local_twilio(db_path, twilio_env: TwilioServer) -> None:
    import json

    from test_cli_send import comms

    from comms.store import open_store

    store = open_store(db_path)
    (mid,) = queue_messages(store, "sms", [(None, "+420601000021")])
    send_all(store, "sms")
    twilio_env.set_status(message(store, mid)["provider_id"], "undelivered", 30006)
    store.close()
    run = comms("sms-status", "--db", str(db_path), "--json", env=twilio_env.env())
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["undelivered"] == 1
    store = open_store(db_path)
    assert "landline" in message(store, mid)["reason"]
    store.close()


# -- Twilio: replies ------------------------------------------------------------------------------


def test_stop_opts_the_number_out_and_start_back_in(store: Store, callbacks) -> None:
    tw, url = callbacks
    phone = "+420601000031"
    a = add_client(store, "Jana", phone=phone)
    b = add_client(store, "Petr", phone=phone)  # two clients share the number
    inbound = f"{url}/hooks/twilio/inbound"

    status, body = tw.inbound(inbound, phone, "  Stop ")
    assert status == 200 and "<Response>" in body
    consent = store.rows("SELECT id, consent_sms FROM clients ORDER BY id")
    assert [r["consent_sms"] for r in consent] == [False, False]
    assert store.rows("SELECT reason FROM suppressions WHERE address = ?", [phone]) == [
        {"reason": "replied STOP"}
    ]
    reply = store.rows("SELECT client_id, body, keyword, channel FROM inbound_messages")
    assert reply == [{"client_id": a, "body": "  Stop ", "keyword": "stop", "channel": "sms"}]
    assert {e["client_id"] for e in actions(store, "opt-out")} == {a, b}

    tw.inbound(inbound, phone, "START")
    assert [r["consent_sms"] for r in store.rows("SELECT consent_sms FROM clients")] == [True, True]
    assert store.scalar("SELECT count(*) FROM suppressions WHERE address = ?", [phone]) == 0


@pytest.mark.parametrize("word", ["ODHLÁSIT", "odhlasit", "STOPALL", "unsubscribe", "Konec?"])
def test_stop_words(store: Store, callbacks, word: str) -> None:
    tw, url = callbacks
    phone = "+420601000041"
    add_client(store, phone=phone)
    tw.inbound(f"{url}/hooks/twilio/inbound", phone, word)
    stopped = store.scalar("SELECT NOT consent_sms FROM clients")
    assert stopped is (word != "Konec?")  # any other reply is only stored


def test_an_ordinary_reply_is_stored_in_the_clients_history(store: Store, callbacks) -> None:
    from comms.feedback import queries

    tw, url = callbacks
    cid = add_client(store, phone="+420601000051")
    tw.inbound(f"{url}/hooks/twilio/inbound", "+420601000051", "Děkuji, dorazilo.")
    replies = queries.inbound_for_client(store, cid)
    assert replies["body"].tolist() == ["Děkuji, dorazilo."]
    assert store.scalar("SELECT consent_sms FROM clients WHERE id = ?", [cid]) is True


def test_a_forged_reply_is_refused(store: Store, callbacks) -> None:
    tw, url = callbacks
    add_client(store, phone="+420601000061")
    status, _ = tw.inbound(f"{url}/hooks/twilio/inbound", "+420601000061", "STOP", token="forged")
    assert status == 403
    assert store.scalar("SELECT consent_sms FROM clients") is True
    assert store.scalar("SELECT count(*) FROM inbound_messages") == 0


def test_with_callbacks_the_background_reader_polls_only_late_sms(
    store: Store, twilio_env: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from comms.feedback import poller

    tw = twilio_env
    (mid,) = queue_messages(store, "sms", [(None, "+420601000071")])
    send_all(store, "sms")
    sid = message(store, mid)["provider_id"]
    tw.set_status(sid, "delivered")
    store.write(  # sent a minute ago: its first poll is due
        lambda cur: cur.execute(
            "UPDATE messages SET sent_at = sent_at - INTERVAL 1 MINUTE WHERE id = ?", [mid]
        )
    )
    reader = poller.Poller(store)
    monkeypatch.setenv("COMMS_PUBLIC_URL", "https://comms.example.cz")
    reader.round()  # callbacks are configured: a minute-old SMS waits for its callback
    assert tw.fetches == [] and message(store, mid)["status"] == "sent"
    monkeypatch.setattr(poller, "CALLBACK_GRACE", timedelta(seconds=30))
    reader.round()  # older than the grace: the callback never came, so it is asked
    assert tw.fetches == [sid] and message(store, mid)["status"] == "delivered"
    (entry,) = actions(store, "delivered")
    assert entry["user"] == "twilio"


def test_without_a_public_url_the_background_reader_polls(
    store: Store, twilio_env: TwilioServer
) -> None:
    from comms.feedback import poller

    (mid,) = queue_messages(store, "sms", [(None, "+420601000072")])
    send_all(store, "sms")
    twilio_env.set_status(message(store, mid)["provider_id"], "undelivered", 30008)
    store.write(
        lambda cur: cur.execute(
            "UPDATE messages SET sent_at = sent_at - INTERVAL 1 MINUTE WHERE id = ?", [mid]
        )
    )
    poller.Poller(store).round()
    assert message(store, mid)["status"] == "undelivered"
