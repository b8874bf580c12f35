"""Bounces and complaints: DSNs as Postfix, Exim, Gmail and Microsoft 365 send them, an ARF
complaint, an auto-reply that must be ignored; matched by VERP or by Message-ID; applied once.

The e-mails are really sent (to tests/servers.py's SmtpSink, with a VERP
envelope sender), and each fixture in tests/fixtures/bounces/ is filled with
what the sink received: the Message-ID, the recipient, the VERP address.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers import SmtpSink
from test_feedback_delivery import actions, add_client, message, queue_messages, send_all

from comms.feedback import bounces, keys, mailbox, queries
from comms.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
BOUNCE_ADDRESS = "bounces@firma.example"
DSN_FIXTURES = ("postfix", "exim", "gmail", "m365")


def fill(name: str, *, message_id: str, rcpt: str, verp: str, n: int = 1) -> bytes:
    """A fixture with our message's Message-ID, recipient and VERP address in it."""
    text = (FIXTURES / f"{name}.eml").read_text()
    for key, value in (("{MESSAGE_ID}", message_id), ("{RCPT}", rcpt), ("{VERP}", verp),
                       ("{N}", str(n))):  # fmt: skip
        text = text.replace(key, value)
    return text.replace("\n", "\r\n").encode()


@pytest.fixture
def sent(store: Store, monkeypatch: pytest.MonkeyPatch):
    """sent(address, n=1) -> [(message id, Message-ID, VERP envelope sender)], really sent."""
    sink = SmtpSink().start()
    for k, v in sink.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("COMMS_BOUNCE_ADDRESS", BOUNCE_ADDRESS)

    def send(address: str, n: int = 1) -> list[tuple[int, str, str]]:
        cid = store.scalar("SELECT id FROM clients WHERE email = ?", [address]) or add_client(
            store, email=address
        )
        ids = queue_messages(store, "email", [(cid, address)] * n)
        before = len(sink.received)
        send_all(store, "email")
        got = {r.message_id: r for r in sink.received[before:]}
        out = []
        for mid in ids:
            provider = message(store, mid)["provider_id"]
            out.append((mid, provider, got[provider].mail_from))
        return out

    yield send
    sink.stop()


@pytest.mark.parametrize("name", DSN_FIXTURES)
def test_a_hard_bounce_bounces_the_message_and_suppresses_the_address(
    store: Store, sent, name: str
) -> None:
    ((mid, msgid, verp),) = sent("jana@example.cz")
    assert verp.startswith("bounces+") and verp.endswith("@firma.example")
    raw = fill(name, message_id=msgid, rcpt="jana@example.cz", verp=verp)

    summary = mailbox.process(store, [raw], "file")
    assert (summary.bounced, summary.suppressed, summary.ignored) == (1, 1, 0)
    row = message(store, mid)
    assert row["status"] == "bounced"
    code = "5.1.10" if name == "m365" else "5.1.1"
    meaning = "recipient not found" if name == "m365" else "user unknown"
    assert row["reason"] == f"bounced: {code} {meaning}"
    assert code in row["error"]  # the remote server's diagnostic is kept
    (listed,) = store.rows("SELECT address, channel, reason FROM suppressions")
    assert listed == {"address": "jana@example.cz", "channel": "email",
                      "reason": f"bounced: {code} {meaning}"}  # fmt: skip
    (entry,) = actions(store, "bounced")
    assert entry["message_id"] == mid


@pytest.mark.parametrize("name", DSN_FIXTURES)
def test_matched_by_message_id_without_verp(store: Store, sent, name: str) -> None:
    ((mid, msgid, _),) = sent("petr@example.cz")
    raw = fill(name, message_id=msgid, rcpt="petr@example.cz", verp=BOUNCE_ADDRESS)
    (finding,) = bounces.read_mail(raw, keys.signing_key(store.path))
    assert finding.verp_message_id is None and finding.original_message_id == msgid
    assert mailbox.process(store, [raw], "file").bounced == 1
    assert message(store, mid)["status"] == "bounced"


def test_matched_by_verp_alone(store: Store, sent) -> None:
    ((mid, _, verp),) = sent("eva@example.cz")
    raw = fill("exim", message_id="<someone-elses@elsewhere>", rcpt="eva@example.cz", verp=verp)
    assert mailbox.process(store, [raw], "file").bounced == 1
    assert message(store, mid)["status"] == "bounced"


def test_a_forged_verp_address_matches_nothing(store: Store, sent) -> None:
    ((mid, _, verp),) = sent("eva@example.cz")
    forged = verp.replace(verp.split("-")[1][:4], "0000")
    raw = fill("exim", message_id="<unknown@elsewhere>", rcpt="eva@example.cz", verp=forged)
    summary = mailbox.process(store, [raw], "file")
    assert (summary.bounced, summary.unmatched) == (0, 1)
    assert message(store, mid)["status"] == "sent"


def test_an_arf_complaint_suppresses_the_address_and_leaves_the_message(store: Store, sent) -> None:
    ((mid, msgid, verp),) = sent("jana@example.cz")
    summary = mailbox.process(
        store, [fill("arf", message_id=msgid, rcpt="jana@example.cz", verp=verp)], "file"
    )
    assert (summary.complaints, summary.suppressed) == (1, 1)
    assert message(store, mid)["status"] == "sent"
    assert store.scalar("SELECT reason FROM suppressions") == "complaint"
    (entry,) = actions(store, "complaint")
    assert entry["message_id"] == mid
    assert queries.batch_results(store)["complained"].tolist() == [1]


def test_an_auto_reply_and_a_delay_warning_are_ignored(store: Store, sent) -> None:
    ((mid, msgid, verp),) = sent("jana@example.cz")
    mails = [
        fill("autoreply", message_id=msgid, rcpt="jana@example.cz", verp=verp),
        fill("postfix_delayed", message_id=msgid, rcpt="jana@example.cz", verp=verp),
    ]
    summary = mailbox.process(store, mails, "file")
    assert (summary.read, summary.ignored, summary.bounced, summary.soft) == (2, 2, 0, 0)
    assert message(store, mid)["status"] == "sent"
    assert store.scalar("SELECT count(*) FROM suppressions") == 0
    assert store.scalar("SELECT count(*) FROM feedback_events") == 0


def test_soft_bounces_are_recorded_and_three_in_a_row_count_as_hard(store: Store, sent) -> None:
    first, second, third = sent("full@example.cz", 3)
    for n, (mid, msgid, verp) in enumerate((first, second), start=1):
        raw = fill("postfix_soft", message_id=msgid, rcpt="full@example.cz", verp=verp, n=n)
        assert mailbox.process(store, [raw], "file").soft == 1
        row = message(store, mid)
        assert row["status"] == "sent" and row["error"].startswith("soft bounce: 4.2.2")
    assert store.scalar("SELECT count(*) FROM suppressions") == 0

    mid, msgid, verp = third
    raw = fill("postfix_soft", message_id=msgid, rcpt="full@example.cz", verp=verp, n=3)
    summary = mailbox.process(store, [raw], "file")
    assert (summary.bounced, summary.suppressed) == (1, 1)
    row = message(store, mid)
    assert row["status"] == "bounced"
    assert row["reason"] == "bounced: 3 soft bounces in a row (last 4.2.2 mailbox full)"
    assert store.scalar("SELECT reason FROM suppressions").startswith("bounced: 3 soft bounces")


def test_the_soft_bounce_limit_is_configurable(
    store: Store, sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SOFT_BOUNCE_LIMIT", "1")
    ((mid, msgid, verp),) = sent("full@example.cz")
    raw = fill("postfix_soft", message_id=msgid, rcpt="full@example.cz", verp=verp)
    assert mailbox.process(store, [raw], "file").bounced == 1
    assert message(store, mid)["status"] == "bounced"


def test_the_same_bounce_twice_counts_once(store: Store, sent, tmp_path: Path) -> None:
    ((mid, msgid, verp),) = sent("jana@example.cz")
    path = tmp_path / "bounce.eml"
    path.write_bytes(fill("postfix", message_id=msgid, rcpt="jana@example.cz", verp=verp))
    first = mailbox.import_files(store, [path])
    again = mailbox.import_files(store, [path])
    assert (first["bounced"], again["bounced"], again["duplicates"]) == (1, 0, 1)
    assert store.scalar("SELECT count(*) FROM feedback_events") == 1
    assert len(actions(store, "bounced")) == 1


def test_bounces_import_command_reads_an_mbox(db_path: Path, sent, tmp_path: Path) -> None:
    from test_cli_send import comms

    from comms.store import open_store

    (a, b, c) = sent("jana@example.cz", 3)
    box = tmp_path / "bounces.mbox"
    parts = []
    for n, (name, (_, msgid, verp)) in enumerate(
        zip(("postfix", "arf", "autoreply"), (a, b, c), strict=True)
    ):
        mail = fill(name, message_id=msgid, rcpt="jana@example.cz", verp=verp, n=n)
        parts.append(
            b"From MAILER-DAEMON Tue Dec  1 10:00:02 2026\n" + mail.replace(b"\r\n", b"\n")
        )
    box.write_bytes(b"\n".join(parts) + b"\n")
    open_store(db_path).close()
    run = comms("bounces", "import", str(box), "--db", str(db_path), "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["read"], out["bounced"], out["complaints"], out["ignored"]) == (3, 1, 1, 1)
    text = comms("bounces", "import", str(box), "--db", str(db_path))
    assert "3 read, 0 bounced" in text.stdout and "seen before" in text.stdout
    store = open_store(db_path)
    assert message(store, a[0])["status"] == "bounced"
    store.close()


def test_a_missing_file_is_one_clear_line(db_path: Path) -> None:
    from test_cli_send import comms

    run = comms("bounces", "import", "/nonexistent/bounce.eml", "--db", str(db_path))
    assert run.returncode == 1
    assert (
        run.stderr.strip()
        == "comms: /nonexistent/bounce.eml: no such file (give .eml files or an mbox)."
    )


def test_batch_results_and_why_a_client_is_suppressed(store: Store, sent) -> None:
    ((mid, msgid, verp),) = sent("jana@example.cz")
    mailbox.process(
        store, [fill("gmail", message_id=msgid, rcpt="jana@example.cz", verp=verp)], "file"
    )
    results = queries.batch_results(store).iloc[0].to_dict()
    assert {k: results[k] for k in queries.RESULT_COLUMNS} == {
        "sent": 1, "delivered": 0, "bounced": 1, "undelivered": 0, "unsubscribed": 0,
        "complained": 0,
    }  # fmt: skip
    cid = message(store, mid)["client_id"]
    why = queries.channel_suppressions(store, cid)["email"]
    assert why["suppressed"] and why["reason"] == "bounced: 5.1.1 user unknown"
    assert why["since"] is not None and (why["message_id"], why["report"]) == (mid, "bounced")
    assert queries.channel_suppressions(store, cid)["sms"]["suppressed"] is False
