"""Queries over messages: the Communication list, a client's history, timeline, detail."""

from __future__ import annotations

import datetime as dt

import pytest

from comms.errors import NotFound
from comms.messages import history
from comms.messages.history import MessageFilter
from comms.rules.sms import split_segments
from tests.seed_history import add_client, add_message


@pytest.fixture
def seeded(store):
    jana = add_client(store)
    petr = add_client(store, name="Petr Svoboda", email="petr@example.com", phone="+420602000111")
    batch = store.scalar(
        "INSERT INTO batches (channel, name) VALUES ('email', 'Spring sale') RETURNING id"
    )
    old = dt.datetime(2026, 1, 10, 9, 0)
    ids = {
        "old": add_message(store, jana, created_at=old, sent_at=old, subject="January news"),
        "bulk": add_message(store, petr, batch_id=batch, subject="Spring sale", status="failed"),
        "sms": add_message(
            store,
            jana,
            channel="sms",
            source="client detail",
            subject=None,
            body_text="Your parcel is ready",
            status="draft",
            to_address="+420601123456",
        ),
        "cli": add_message(store, petr, source="cli", subject="Invoice 42", status="queued"),
    }
    return store, jana, petr, batch, ids


def test_list_newest_first_with_client_names(seeded):
    store, jana, petr, batch, ids = seeded
    df = history.list_messages(store)
    assert list(df["id"]) == [ids["cli"], ids["sms"], ids["bulk"], ids["old"]]
    assert df.loc[df["id"] == ids["bulk"], "client_name"].item() == "Petr Svoboda"
    assert history.count_messages(store) == 4
    page2 = history.list_messages(store, limit=2, offset=2)
    assert list(page2["id"]) == [ids["bulk"], ids["old"]]


@pytest.mark.parametrize(
    "flt, expected",
    [
        (MessageFilter(channel="sms"), ["sms"]),
        (MessageFilter(statuses=["failed", "queued"]), ["cli", "bulk"]),
        (MessageFilter(source="cli"), ["cli"]),
        (MessageFilter(client_text="svoboda"), ["cli", "bulk"]),
        (MessageFilter(text="PARCEL"), ["sms"]),
        (MessageFilter(text="50%"), []),
        (MessageFilter(date_to=dt.date(2026, 1, 10)), ["old"]),
        (MessageFilter(date_from=dt.date(2026, 1, 11)), ["cli", "sms", "bulk"]),
    ],
)
def test_filters(seeded, flt, expected):
    store, jana, petr, batch, ids = seeded
    got = list(history.list_messages(store, flt)["id"])
    assert got == [ids[k] for k in expected]
    assert history.count_messages(store, flt) == len(expected)


def test_filter_by_client_id_and_batch(seeded):
    store, jana, petr, batch, ids = seeded
    assert list(history.list_messages(store, MessageFilter(client_id=jana))["id"]) == [
        ids["sms"],
        ids["old"],
    ]
    assert list(history.list_messages(store, MessageFilter(batch_id=batch))["id"]) == [ids["bulk"]]
    opts = history.filter_options(store)
    assert opts["batches"][0]["id"] == batch and "Spring sale" in opts["batches"][0]["label"]


def test_client_history_and_timeline(seeded):
    store, jana, petr, batch, ids = seeded
    rows = history.client_history(store, jana)
    assert [r["id"] for r in rows] == [ids["sms"], ids["old"]]
    assert rows[0]["body"] == "Your parcel is ready" and rows[1]["sent_at"] is not None
    tl = history.client_timeline(store, jana)
    assert set(tl["channel"]) == {"email", "sms"} and len(tl) == 2
    assert tl.loc[tl["id"] == ids["sms"], "title"].item() == "Your parcel is ready"


def test_message_detail_with_attempts(seeded):
    store, jana, petr, batch, ids = seeded
    store.cursor().execute(
        "INSERT INTO message_attempts (message_id, attempt, outcome, detail) VALUES"
        " (?, 1, 'transient', '451 try later'), (?, 2, 'permanent', '550 no such user')",
        [ids["bulk"], ids["bulk"]],
    )
    msg = history.get_message(store, ids["bulk"])
    assert msg["batch_name"] == "Spring sale" and msg["client_name"] == "Petr Svoboda"
    assert [a["outcome"] for a in msg["attempt_log"]] == ["transient", "permanent"]
    with pytest.raises(NotFound):
        history.get_message(store, 10_000)


def test_home_stats_and_recent_batches(seeded):
    store, jana, petr, batch, ids = seeded
    store.cursor().execute("UPDATE messages SET sent_at = now() WHERE id = ?", [ids["bulk"]])
    stats = history.home_stats(store)
    assert (stats.clients, stats.failed, stats.queued, stats.drafts) == (2, 1, 1, 1)
    assert stats.sent == 0  # the one sent message is from January, outside 30 days
    rb = history.recent_batches(store)
    assert rb.to_dict("records")[0]["status"] == "failed"
    assert rb["messages"].sum() == 1


def test_recent_batches_keep_two_sends_of_one_template_apart(store):
    """Two batches from the same template are two bars on Home, not one merged bar."""
    cur = store.cursor()
    cur.execute("INSERT INTO clients (name, email) VALUES ('Jana', 'jana@example.com')")
    for batch_id in (1, 2):
        cur.execute(
            "INSERT INTO batches (id, name, channel) VALUES (?, 'Spring offer', 'email')",
            [batch_id],
        )
        cur.execute(
            "INSERT INTO messages (client_id, channel, source, batch_id, status)"
            " VALUES (1, 'email', 'bulk', ?, 'sent')",
            [batch_id],
        )
    rb = history.recent_batches(store)
    assert list(rb["batch"]) == ["#2 Spring offer · e-mail", "#1 Spring offer · e-mail"]


@pytest.mark.parametrize(
    "text, sizes",
    [
        ("", []),
        ("a" * 160, [160]),
        ("a" * 161, [153, 8]),
        ("a" * 152 + "€" + "b" * 10, [152, 11]),  # € costs two: never split
        ("ý" * 71, [67, 4]),
    ],
)
def test_split_segments(text, sizes):
    parts = split_segments(text)
    assert [len(p) for p in parts] == sizes
    assert "".join(parts) == text


def test_text_filter_takes_wildcards_literally(store):
    cid = add_client(store)
    pct = add_message(store, cid, subject="50% off today")
    add_message(store, cid, subject="500 points")
    under = add_message(store, cid, subject="code A_1")
    add_message(store, cid, subject="code AB1")
    assert list(history.list_messages(store, MessageFilter(text="50%"))["id"]) == [pct]
    assert list(history.list_messages(store, MessageFilter(text="a_1"))["id"]) == [under]
    assert history.count_messages(store, MessageFilter(client_text="nová%")) == 0
