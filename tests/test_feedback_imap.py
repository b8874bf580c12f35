"""The bounce mailbox over IMAP, against a real dovecot on 127.0.0.1.

Debian's dovecot-imapd (`make test` installs it) runs with the throwaway
configuration tests/dovecot/dovecot.conf and one mail user. Bounces are
appended to the mailbox with IMAP APPEND and then fetched by comms: the
applied ones are flagged (or moved), the auto-reply is left unread where it
was, and a second fetch counts nothing again.
"""

from __future__ import annotations

import imaplib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_feedback_bounces
from servers import free_port
from test_feedback_bounces import fill
from test_feedback_delivery import message

from comms.errors import CommsError
from comms.feedback import mailbox, poller
from comms.store import Store

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
CONF = Path(__file__).resolve().parent / "dovecot" / "dovecot.conf"
USER, PASSWORD = "bounces", "imap-test-secret"
sent = test_feedback_bounces.sent  # the fixture: e-mails really sent, with VERP


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    """A dovecot IMAP server of its own on a free port; yields the port."""
    if not Path(DOVECOT).exists():
        pytest.fail("dovecot is missing: `make test` installs Debian's dovecot-imapd")
    # Not under pytest's 0700 temporary folder: dovecot's auth process (user dovecot) reads
    # the passwd file and the mail is written as nobody.
    root = Path(tempfile.mkdtemp(prefix="comms-dovecot-"))
    root.chmod(0o755)
    port = free_port()
    mail_dir = root / "mail"
    for d in ("run", "state", "mail"):
        (root / d).mkdir()
    shutil.chown(mail_dir, "nobody", "nogroup")
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    conf = root / "dovecot.conf"
    conf.write_text(
        CONF.read_text()
        .replace("{base_dir}", str(root / "run"))
        .replace("{state_dir}", str(root / "state"))
        .replace("{log}", str(root / "dovecot.log"))
        .replace("{passwd}", str(root / "passwd"))
        .replace("{mail_dir}", str(mail_dir))
        .replace("{port}", str(port))
    )
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    try:
        while True:  # until it listens (or it exited, saying why)
            if proc.poll() is not None:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                pytest.fail(f"dovecot did not start: {proc.stderr.read()} {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap(dovecot: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[imaplib.IMAP4]:
    """A client session on an empty INBOX, and comms configured for the mailbox."""
    for key, value in {
        "COMMS_BOUNCE_IMAP_HOST": "127.0.0.1",
        "COMMS_BOUNCE_IMAP_PORT": str(dovecot),
        "COMMS_BOUNCE_IMAP_SECURITY": "none",  # loopback only; TLS is the default
        "COMMS_BOUNCE_IMAP_USER": USER,
        "COMMS_BOUNCE_IMAP_PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(key, value)
    conn = imaplib.IMAP4("127.0.0.1", dovecot)
    conn.login(USER, PASSWORD)
    for folder in ("INBOX", "Processed"):
        conn.create(folder)
        _, (count,) = conn.select(folder)
        if int(count):
            conn.store("1:*", "+FLAGS", "(\\Deleted)")
            conn.expunge()
    yield conn
    conn.logout()


def append(conn: imaplib.IMAP4, raw: bytes) -> None:
    typ, _ = conn.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
    assert typ == "OK"


def mailbox_state(conn: imaplib.IMAP4, folder: str = "INBOX") -> list[tuple[str, str]]:
    """(Subject, FLAGS) of every mail in a folder."""
    _, (count,) = conn.select(folder)
    if not int(count):
        return []
    typ, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = []
    for item in data:
        if isinstance(item, tuple):
            flags = item[0].decode()
            subject = item[1].decode().strip().removeprefix("Subject:").strip()
            out.append((subject, flags))
    return out


def test_bounces_appended_to_the_mailbox_are_fetched_flagged_and_counted_once(
    store: Store,
    sent,
    imap: imaplib.IMAP4,
) -> None:
    (a, b, c) = sent("jana@example.cz", 3)
    append(imap, fill("postfix", message_id=a[1], rcpt="jana@example.cz", verp=a[2]))
    append(imap, fill("arf", message_id=b[1], rcpt="jana@example.cz", verp=b[2]))
    append(imap, fill("autoreply", message_id=c[1], rcpt="jana@example.cz", verp=c[2]))

    summary = mailbox.fetch_imap(store)
    assert (summary.read, summary.bounced, summary.complaints, summary.ignored) == (3, 1, 1, 1)
    assert message(store, a[0])["status"] == "bounced"
    assert store.scalar("SELECT count(*) FROM suppressions") == 1  # bounce, then complaint

    state = dict(mailbox_state(imap))
    assert "\\Seen" in state["Undelivered Mail Returned to Sender"]
    assert mailbox.PROCESSED in state["Undelivered Mail Returned to Sender"]
    assert mailbox.PROCESSED in state["FW: Newsletter"]
    auto = next(flags for subject, flags in state.items() if "Newsletter" in subject
                and subject.startswith("=?utf-8?"))  # fmt: skip
    assert "\\Seen" not in auto and mailbox.PROCESSED not in auto  # left alone, unread

    again = mailbox.fetch_imap(store)
    assert again.read == 0
    assert store.scalar("SELECT count(*) FROM feedback_events") == 2


def test_processed_mail_is_moved_when_a_folder_is_named(
    store: Store,
    sent,
    imap: imaplib.IMAP4,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMS_BOUNCE_IMAP_MOVE_TO", "Processed")
    (a, c) = sent("eva@example.cz", 2)
    append(imap, fill("m365", message_id=a[1], rcpt="eva@example.cz", verp=a[2]))
    append(imap, fill("autoreply", message_id=c[1], rcpt="eva@example.cz", verp=c[2]))
    summary = mailbox.fetch_imap(store)
    assert (summary.bounced, summary.ignored) == (1, 1)
    assert [s for s, _ in mailbox_state(imap, "Processed")] == ["Undeliverable: Newsletter"]
    assert len(mailbox_state(imap, "INBOX")) == 1  # the auto-reply stays


def test_the_background_reader_fetches_the_mailbox(
    store: Store,
    sent,
    imap: imaplib.IMAP4,
) -> None:
    ((mid, msgid, verp),) = sent("petr@example.cz")
    reader = poller.Poller(store, tick=0.05).start()
    try:
        append(imap, fill("gmail", message_id=msgid, rcpt="petr@example.cz", verp=verp))
        # The first round read the (then empty) mailbox; the next comes after the interval.
        reader._next_imap = 0.0
        while message(store, mid)["status"] != "bounced":
            assert reader.alive, reader.last_error
            threading.Event().wait(0.05)
    finally:
        reader.stop()
    assert reader.last_error is None


def test_bounces_fetch_command(db_path: Path, sent, imap: imaplib.IMAP4, monkeypatch) -> None:
    import os

    from test_cli_send import comms

    from comms.store import open_store

    ((mid, msgid, verp),) = sent("jana@example.cz")
    append(imap, fill("exim", message_id=msgid, rcpt="jana@example.cz", verp=verp))
    open_store(db_path).close()
    run = comms("bounces", "fetch", "--db", str(db_path), "--json", env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["bounced"] == 1
    assert PASSWORD not in run.stdout + run.stderr


def test_a_refused_login_is_one_sentence_without_the_password(
    store: Store, imap: imaplib.IMAP4, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_BOUNCE_IMAP_PASSWORD", "wrong-password-123")
    with pytest.raises(CommsError) as err:
        mailbox.fetch_imap(store)
    assert "refused the login" in str(err.value) and "wrong-password-123" not in str(err.value)
