"""One-click unsubscribe (RFC 8058): the headers every e-mail carries, the signed token, the
confirmation page, the POST, and the app started for real with `comms serve`."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from conftest import free_port, wait_http
from servers import SmtpSink
from test_feedback_delivery import (
    actions,
    add_client,
    message,
    queue_messages,
    route_server,
    send_all,
)

from comms import web
from comms.feedback import keys, links, unsubscribe
from comms.sending.senders.base import OutgoingMessage
from comms.sending.senders.mime import EmailIdentity, build_email
from comms.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
KEY = b"k" * 32


def _open(
    url: str, body: bytes | None = None, accept_language: str | None = None
) -> tuple[int, str, Message]:
    """GET (no body) or form POST; status, page and response headers (errors included)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    if accept_language is not None:
        headers["Accept-Language"] = accept_language
    req = urllib.request.Request(
        url, data=body, method="GET" if body is None else "POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def _post(url: str, body: bytes = b"List-Unsubscribe=One-Click") -> tuple[int, str]:
    return _open(url, body)[:2]


def _get(url: str) -> tuple[int, str]:
    return _open(url)[:2]


# -- what an e-mail carries ------------------------------------------------------------------


def _email(identity: EmailIdentity, **kw):
    fields = {"id": 42, "channel": "email", "to_address": "jana@example.cz", "subject": "Hi",
              "body_text": "Hello", **kw}  # fmt: skip
    return build_email(OutgoingMessage(**fields), identity)


def test_list_unsubscribe_one_click_url_and_mailto() -> None:
    identity = EmailIdentity(
        "Firma <news@firma.example>", public_url="https://comms.firma.example",
        bounce_address="bounces@firma.example", key=KEY,
    )  # fmt: skip
    email = _email(identity)
    token = links.unsubscribe_token(KEY, 42)
    value = " ".join(email["List-Unsubscribe"].split())  # unfolded
    assert value == (
        f"<https://comms.firma.example/u/{token}>,"
        f" <mailto:bounces@firma.example?subject=unsubscribe%20{token}>"
    )
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert keys.read_token(KEY, links.PURPOSE_UNSUBSCRIBE, token) == 42
    # VERP: the envelope sender names the message, signed; the From stays as it is.
    assert email.mail_from == f"bounces+{keys.make_token(KEY, 'b', 42, sep='-')}@firma.example"
    assert email["From"] == "Firma <news@firma.example>"


def test_without_a_public_url_only_the_mailto_form_is_sent() -> None:
    email = _email(EmailIdentity("news@firma.example", key=KEY))
    assert email["List-Unsubscribe"].startswith("<mailto:news@firma.example?subject=unsubscribe")
    assert email["List-Unsubscribe-Post"] is None
    assert email.mail_from is None  # no bounce address: the From address is the envelope's


def test_unsubscribe_url_in_a_template_becomes_the_messages_own_link() -> None:
    identity = EmailIdentity("news@firma.example", public_url="https://c.example", key=KEY)
    text = f"Bye: {links.UNSUBSCRIBE_URL}"
    html = f'<p><a href="{links.UNSUBSCRIBE_URL}">Odhlásit</a></p>'
    parsed = _email(identity, body_text=text, body_html=html).headers()
    import email as stdlib_email

    full = stdlib_email.message_from_bytes(_email(identity, body_text=text, body_html=html).data)
    plain, rich = (p.get_payload(decode=True).decode() for p in full.walk() if not p.is_multipart())
    link = links.unsubscribe_url("https://c.example", KEY, 42)
    assert plain == f"Bye: {link}" and f'href="{link}"' in rich
    assert links.UNSUBSCRIBE_URL not in str(parsed)


def test_a_tampered_token_is_refused() -> None:
    token = links.unsubscribe_token(KEY, 42)
    for bad in (token[:-1] + ("0" if token[-1] != "0" else "1"), "43" + token[2:], "x", ""):
        with pytest.raises(keys.BadToken):
            keys.read_token(KEY, links.PURPOSE_UNSUBSCRIBE, bad)
    bounce = keys.make_token(KEY, links.PURPOSE_BOUNCE, 42)  # another purpose's token
    with pytest.raises(keys.BadToken):
        keys.read_token(KEY, links.PURPOSE_UNSUBSCRIBE, bounce)


def test_the_key_file_is_made_once_beside_the_database_mode_0600(store: Store) -> None:
    first = keys.signing_key(store.path)
    path = store.path.with_suffix(".key")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.signing_key(store.path) == first == keys.signing_key()
    assert (
        "comms.key" in (ROOT / ".gitignore").read_text()
        or "*.key" in (ROOT / ".gitignore").read_text()
    )


def test_a_configured_key_is_used_and_no_file_is_made(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_UNSUBSCRIBE_KEY", "a-long-configured-secret-key")
    assert keys.signing_key(store.path) == b"a-long-configured-secret-key"
    assert not store.path.with_suffix(".key").exists()


# -- the routes ---------------------------------------------------------------------------------


def _sent_email(store: Store, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    for k, v in sink.env().items():
        monkeypatch.setenv(k, v)
    cid = add_client(store, email="jana@example.cz")
    (mid,) = queue_messages(store, "email", [(cid, "jana@example.cz")])
    send_all(store, "email")
    return cid, mid


def test_get_confirms_post_unsubscribes_and_repeating_is_harmless(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink, route_server() as url:
        monkeypatch.setenv("COMMS_PUBLIC_URL", url)
        cid, mid = _sent_email(store, sink, monkeypatch)
        (received,) = sink.received
        header = " ".join(received.parsed()["List-Unsubscribe"].split())
        link = header.split(">")[0].lstrip("<")
        assert link == f"{url}/u/{links.unsubscribe_token(keys.signing_key(store.path), mid)}"

        status, page = _get(link)  # what a mail scanner does: nothing changes
        assert status == 200 and 'method="post"' in page and "j***@example.cz" in page
        assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is True

        status, page = _post(link)
        assert status == 200 and "Unsubscribed" in page
        assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is False
        assert store.rows("SELECT address, channel, reason FROM suppressions") == [
            {"address": "jana@example.cz", "channel": "email", "reason": "unsubscribed"}
        ]
        (entry,) = actions(store, "unsubscribed")
        assert entry["message_id"] == mid and entry["client_id"] == cid

        assert _post(link)[0] == 200  # a second click: nothing more happens
        assert len(actions(store, "unsubscribed")) == 1
        assert store.scalar("SELECT count(*) FROM suppressions") == 1
    assert message(store, mid)["status"] == "sent"  # unsubscribing moves no message


def test_a_tampered_link_gets_404_and_changes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink, route_server() as url:
        cid, mid = _sent_email(store, sink, monkeypatch)
        token = links.unsubscribe_token(keys.signing_key(store.path), mid)
        forged = token[:-4] + "0000" if not token.endswith("0000") else token[:-4] + "1111"
        for bad in (
            forged,
            links.unsubscribe_token(b"x" * 32, mid),
            "../etc",
            f"{mid + 1}.{token}",
        ):
            assert _post(f"{url}/u/{bad}")[0] == 404
            assert _get(f"{url}/u/{bad}")[0] == 404
        # A valid token for a message that does not exist (another database's, say).
        assert (
            _post(f"{url}/u/{links.unsubscribe_token(keys.signing_key(store.path), 999)}")[0] == 404
        )
        assert _post(f"{url}/u/{token}", b"something=else")[0] == 400
    assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is True
    assert store.scalar("SELECT count(*) FROM suppressions") == 0
    assert actions(store, "unsubscribed") == []


def test_the_pages_speak_the_recipients_language(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipient's browser decides (Accept-Language), not the desk's language."""
    with SmtpSink() as sink, route_server() as url:
        monkeypatch.setenv("COMMS_PUBLIC_URL", url)
        cid, mid = _sent_email(store, sink, monkeypatch)
        link = f"{url}/u/{links.unsubscribe_token(keys.signing_key(store.path), mid)}"
        czech = "cs-CZ,cs;q=0.9,en-US;q=0.8,en;q=0.7"

        status, page, headers = _open(link, accept_language=czech)
        assert status == 200 and '<html lang="cs">' in page
        assert "<title>Odhlásit odběr</title>" in page
        assert "Opravdu už nechcete dostávat e-maily na <b>j***@example.cz</b>?" in page
        assert '<button type="submit">Odhlásit odběr</button>' in page
        assert headers["Content-Language"] == "cs" and "Accept-Language" in headers["Vary"]
        assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is True

        status, page, _headers = _open(link, b"something=else", czech)
        assert status == 400 and "Požadavek musí obsahovat <code>" in page

        status, page, headers = _open(link, b"List-Unsubscribe=One-Click", czech)
        assert status == 200 and '<html lang="cs">' in page and "<h1>Odhlášeno</h1>" in page
        assert "Na j***@example.cz vám už nebudeme posílat e-maily." in page
        assert headers["Content-Language"] == "cs"
        assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is False
        (entry,) = actions(store, "unsubscribed")
        assert entry["user"] == web.RECIPIENT

        status, page, _headers = _open(f"{url}/u/x", accept_language="cs")
        assert status == 404 and '<html lang="cs">' in page and "Neplatný odkaz" in page
        assert "Nic se nezměnilo." in page

        status, page, _headers = _open(f"{url}/hooks/twilio/status", b"a=b", "cs")
        assert status == 403 and page.startswith("Zakázáno")


@pytest.mark.parametrize(
    "accept_language",
    [None, "", "en-GB,en;q=0.9", "de-DE,de;q=0.9", "cs;q=0, en", "*", "cs;q=nonsense"],
)
def test_english_unless_the_browser_asks_for_czech(
    store: Store, monkeypatch: pytest.MonkeyPatch, accept_language: str | None
) -> None:
    with SmtpSink() as sink, route_server() as url:
        _cid, mid = _sent_email(store, sink, monkeypatch)
        link = f"{url}/u/{links.unsubscribe_token(keys.signing_key(store.path), mid)}"
        status, page, headers = _open(link, accept_language=accept_language)
        assert status == 200 and '<html lang="en">' in page
        assert "<title>Unsubscribe</title>" in page
        assert "Stop sending e-mails to <b>j***@example.cz</b>?" in page
        assert headers["Content-Language"] == "en"
        status, page, _headers = _open(link, b"List-Unsubscribe=One-Click", accept_language)
        assert status == 200 and "<h1>Unsubscribed</h1>" in page
        assert "j***@example.cz will get no more e-mails from us." in page
        assert _open(f"{url}/u/x", accept_language=accept_language)[1].count("Link not valid")


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("cs", "cs"),
        ("CS-cz", "cs"),
        ("en;q=0.5, cs;q=0.8", "cs"),  # q decides, not the order
        ("de-DE, cs;q=0.7, en;q=0.5", "cs"),  # the first one we have
        ("en, cs;q=0.9", "en"),
        ("cs;q=0.9, en;q=0.9", "cs"),  # equal q: the header's order
        ("cs;q=0", "en"),  # refused
        ("cs;q=1.5", "en"),  # out of range: ignored
        ("fr, *;q=0.5, cs;q=0.1", "en"),  # anything else before Czech
        (" , ;q=1, cs ; q=0.3 ", "cs"),
        ("sk", "en"),
        (None, "en"),
    ],
)
def test_accept_language_is_read_with_its_q_values(header: str | None, lang: str) -> None:
    from starlette.requests import Request

    headers = [] if header is None else [(b"accept-language", header.encode())]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers})
    assert web.request_language(request) == lang


def test_the_worker_thread_speaks_the_requests_language_and_forgets_it() -> None:
    """Work done in _in_thread's worker formats text in the request's language; the pool's
    thread keeps nothing of it for the next request."""
    import asyncio
    import concurrent.futures

    from comms import i18n

    def in_worker() -> tuple[str, str]:
        return i18n.language(), i18n._("Unsubscribed")

    async def czech_request() -> tuple[str, str]:
        with web._speaking("cs"):
            return await web._in_thread(web.RECIPIENT, in_worker)

    async def english_request() -> tuple[str, str]:
        return await web._in_thread(web.RECIPIENT, in_worker)

    async def both() -> list[tuple[str, str]]:
        return [await czech_request(), await english_request(), await czech_request()]

    # A loop of its own in a thread of its own: an earlier test may leave one running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answers = pool.submit(lambda: asyncio.run(both())).result(timeout=60)
    assert answers == [("cs", "Odhlášeno"), ("en", "Unsubscribed"), ("cs", "Odhlášeno")]
    assert i18n.language() == "en"


def test_mailto_unsubscribe_is_processed_from_the_mailbox(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comms.feedback import mailbox

    with SmtpSink() as sink:
        cid, mid = _sent_email(store, sink, monkeypatch)
        header = sink.received[0].parsed()["List-Unsubscribe"]
    mailto = header.split("<mailto:")[1].split(">")[0]
    address, query = mailto.split("?", 1)
    subject = urllib.request.unquote(query.split("=", 1)[1])
    request = (
        f"From: Jana <jana@example.cz>\r\nTo: {address}\r\nSubject: {subject}\r\n"
        "Message-ID: <req-1@example.cz>\r\n\r\nPlease remove me.\r\n"
    ).encode()
    summary = mailbox.process(store, [request], "imap")
    assert summary.unsubscribed == 1
    assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is False
    assert unsubscribe.is_unsubscribed(store, mid)


# -- the real app ----------------------------------------------------------------------------------


def _comms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "comms", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_comms_serve_serves_the_routes_and_sends_without_a_page_view(
    db_path: Path, tmp_path: Path
) -> None:
    """`comms serve` for real: a plain HTTP client unsubscribes; the lifespan's background
    sender sends a due message although nobody opened a page."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMMS_PUBLIC_URL": url, "COMMS_POLL_SECONDS": "0.2"}
    env.pop("COMMS_SMTP_HOST", None)
    store = open_store(db_path)
    cid = add_client(store, email="jana@example.cz")
    other = add_client(store, "Petr", email="petr@example.cz")
    (sent_id,) = queue_messages(store, "email", [(cid, "jana@example.cz")])
    send_all(store, "email")  # demo mode: written to the outbox folder
    (due_id,) = queue_messages(store, "email", [(other, "petr@example.cz")])  # due now
    key = keys.signing_key(store.path)
    token = links.unsubscribe_token(key, sent_id)
    store.close()

    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--port", str(port), "--host", "127.0.0.1",
         "--db", str(db_path)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_until_serving(proc, f"{url}/_stcore/health", tmp_path / "serve.log")
        assert _get(f"{url}/u/{token}")[0] == 200
        status, page = _post(f"{url}/u/{token}")
        assert status == 200 and "Unsubscribed" in page
        outbox_dir = Path(env["COMMS_OUTBOX_DIR"])
        while not list(outbox_dir.glob(f"{due_id}-*.eml")):  # the background sender's work
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            threading_wait(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()

    store = open_store(db_path)
    assert store.scalar("SELECT consent_email FROM clients WHERE id = ?", [cid]) is False
    assert message(store, due_id)["status"] == "sent"
    (entry,) = actions(store, "unsubscribed")
    assert entry["message_id"] == sent_id
    # The key is a secret: in no table, and not in the server's log.
    secret = key.decode()
    for (table,) in (
        store.cursor()
        .execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
        .fetchall()
    ):
        assert secret not in str(store.rows(f'SELECT * FROM "{table}"')), table
    assert secret not in (tmp_path / "serve.log").read_text()
    store.close()

    listed = _comms("clients", "--db", str(db_path), "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows.get("clients", rows) if isinstance(rows, dict) else rows
    jana = next(r for r in rows if r["email"] == "jana@example.cz")
    assert jana["consent_email"] is False


def _wait_until_serving(proc: subprocess.Popen, health: str, log: Path) -> None:
    """Until the server answers its health check; fails at once if it exited."""
    while True:
        assert proc.poll() is None, f"comms serve exited:\n{log.read_text()}"
        try:
            wait_http(health, timeout=1)
            return
        except RuntimeError:
            continue


def threading_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)


def test_a_template_with_unsubscribe_url_generates_and_goes_out_with_the_messages_link(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """{{ unsubscribe_url }} is a known field (not 'missing field'); the e-mail carries
    the message's own signed link, never the placeholder."""
    from comms.messages import generate
    from comms.sending import dispatcher

    monkeypatch.setenv("COMMS_PUBLIC_URL", "https://c.example")
    monkeypatch.setenv("COMMS_UNSUBSCRIBE_KEY", KEY.decode())
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (id, name, email, email_valid) VALUES (1, 'Jana', 'j@x.cz', true)"
        )
    )
    result = generate.generate_messages(
        store,
        selection={"client_ids": [1]},
        channel="email",
        subject="News",
        body="Hello {{ name }}. [Unsubscribe]({{ unsubscribe_url }})",
    )
    (mid,) = [r[0] for r in store.cursor().execute("SELECT id FROM messages").fetchall()]
    assert store.scalar("SELECT status FROM messages WHERE id = ?", [mid]) == "draft"
    with SmtpSink() as sink:
        for key, value in sink.env().items():
            monkeypatch.setenv(key, value)
        from comms import outbox

        outbox.queue(store, batch_id=result.batch_id)
        assert dispatcher.run_once(store, batch_id=result.batch_id).sent == 1
        data = sink.received[0].data.decode()
    assert links.unsubscribe_url("https://c.example", KEY, mid) in data
    assert links.UNSUBSCRIBE_URL not in data
