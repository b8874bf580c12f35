"""Real servers on 127.0.0.1 for tests and benchmarks (no mocks of anything crossing a socket).

`SmtpSink`: an aiosmtpd SMTP server that records every accepted message and
can be programmed per recipient (451 / 550 replies), to drop the connection
after N messages, or to delay its RCPT and end-of-data replies::

    with SmtpSink() as sink:
        sink.program("slow@example.com", "451 4.7.1 Try again later")  # once, then accept
        sink.always("nobody@example.com", "550 5.1.1 No such user")
        ... send to 127.0.0.1:sink.port ...
        assert sink.message_ids() == [...]

`TwilioServer`: a threaded HTTP server speaking Twilio's Messages API
(POST /2010-04-01/Accounts/{sid}/Messages.json, basic auth, form body) that
answers like Twilio (201 + JSON with an SM... SID) and records every message;
per number it can reply 21211 / 429 / 500. It also answers GET
/2010-04-01/Accounts/{sid}/Messages/{Sid}.json with the message's current
status (polling), and plays Twilio's side of the webhooks: a status callback to
the StatusCallback URL a message was sent with, and an inbound reply, each
signed with X-Twilio-Signature by the twilio package's RequestValidator::

    with TwilioServer() as tw:
        tw.program("+420601000001", (429, 20429, "Too Many Requests"))  # once
        tw.always("+15005550001", (400, 21211, "The 'To' number is not valid."))
        env = tw.env()  # TWILIO_ACCOUNT_SID / AUTH_TOKEN / COMMS_SMS_FROM / COMMS_TWILIO_API_BASE
        tw.set_status(sid, "undelivered", 30003)  # what GET Messages/{sid}.json says now
        tw.status_callback(sid, "delivered")  # POST, signed, to the message's StatusCallback
        tw.inbound(url, "+420601000001", "STOP")  # POST a reply, signed, to url

Both can also run as a separate process (so a benchmark's sink does not share
the GIL, or a test's sink survives a killed client)::

    python tests/servers.py smtp --port 0 --log sink.jsonl [--delay-rcpt 0.02 --delay-data 0.02]
    python tests/servers.py twilio --port 0 [--log sms.jsonl]

which print `READY <port>` on stdout once listening, and stop on SIGTERM.
`spawn_smtp_sink()` / `spawn_twilio_server()` start those and wait for READY.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from urllib.request import Request, urlopen

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SMTP -------------------------------------------------------------------------------


@dataclass
class Received:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message_id: str | None
    connection: int  # which TCP connection carried it (1, 2, ...)

    def parsed(self) -> email.message.EmailMessage:
        """The message parsed with the modern email API."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class _SinkState:
    received: list[Received] = field(default_factory=list)
    programmed: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    permanent: dict[str, str] = field(default_factory=dict)
    rcpt_attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    connections: int = 0
    drop_every: int = 0  # drop a connection when it has carried this many messages
    drop_after_data_at: set[int] = field(default_factory=set)  # accept, then drop before 250
    delay_rcpt: float = 0.0
    delay_data: float = 0.0
    log_path: Path | None = None
    pipelining: bool = True


class _SinkHandler:
    """aiosmtpd handler hooks; all state lives in _SinkState under a lock."""

    def __init__(self, state: _SinkState, lock: threading.Lock) -> None:
        self.state, self.lock = state, lock
        self._per_conn: dict[int, int] = {}
        self._log = open(state.log_path, "a", buffering=1 << 16) if state.log_path else None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        with self.lock:
            if not hasattr(session, "comms_conn"):
                self.state.connections += 1
                session.comms_conn = self.state.connections
                self._per_conn[session.comms_conn] = 0
        session.host_name = hostname
        # Mainstream relays offer PIPELINING, so the sender's pipelined path is the one
        # tested; aiosmtpd reads commands in order, which is all pipelining needs.
        if self.state.pipelining:
            responses = (
                [*responses[:-1], "250-PIPELINING", responses[-1]] if responses else responses
            )
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        conn = getattr(session, "comms_conn", 0)
        with self.lock:
            drop = self.state.drop_every and self._per_conn.get(conn, 0) >= self.state.drop_every
        if drop:  # the server vanishes mid-session, without a reply
            server.transport.close()
            return "421 4.3.0 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.state.delay_rcpt:
            await asyncio.sleep(self.state.delay_rcpt)
        key = address.lower()
        with self.lock:
            self.state.rcpt_attempts[key] += 1
            if key in self.state.permanent:
                return self.state.permanent[key]
            queue = self.state.programmed.get(key)
            if queue:
                return queue.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.state.delay_data:
            await asyncio.sleep(self.state.delay_data)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        msgid = _message_id(data)
        conn = getattr(session, "comms_conn", 0)
        with self.lock:
            self.state.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), data, msgid, conn)
            )
            count = len(self.state.received)
            self._per_conn[conn] = self._per_conn.get(conn, 0) + 1
            if self._log:
                self._log.write(json.dumps({"message_id": msgid, "to": envelope.rcpt_tos}) + "\n")
            drop = count in self.state.drop_after_data_at
        if drop:  # accepted (and recorded), but the reply never arrives: ambiguous
            server.transport.close()
            return "250 OK (never seen)"
        return "250 2.0.0 Message accepted for delivery"

    def close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None


def _message_id(data: bytes) -> str | None:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode("ascii", "replace")
    return None


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that records and can misbehave on purpose."""

    def __init__(
        self,
        port: int = 0,
        *,
        delay_rcpt: float = 0.0,
        delay_data: float = 0.0,
        drop_every: int = 0,
        pipelining: bool = True,
        users: dict[str, str] | None = None,
        log_path: Path | None = None,
        tls_context: Any = None,
        ssl_context: Any = None,
        smtputf8: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.state = _SinkState(
            drop_every=drop_every,
            delay_rcpt=delay_rcpt,
            delay_data=delay_data,
            log_path=log_path,
            pipelining=pipelining,
        )
        self.users = users
        self.handler = _SinkHandler(self.state, self.lock)
        kwargs: dict[str, Any] = {"data_size_limit": 50 * 1024 * 1024}
        # SMTPUTF8 (RFC 6531, addresses with non-ASCII local parts): offered unless told not to
        kwargs["enable_SMTPUTF8"] = smtputf8
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=ssl_context,
            ready_timeout=30,
            **kwargs,
        )
        self.logins: list[str] = []

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users and self.users.get(user) == password:
                with self.lock:
                    self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
        self.handler.close()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programming ----------------------------------------------------------------------
    def program(self, rcpt: str, *replies: str) -> None:
        """Answer RCPT TO for rcpt with these replies, one per attempt, then accept."""
        with self.lock:
            self.state.programmed[rcpt.lower()].extend(replies)

    def always(self, rcpt: str, reply: str) -> None:
        """Answer every RCPT TO for rcpt with this reply (e.g. '550 5.1.1 No such user')."""
        with self.lock:
            self.state.permanent[rcpt.lower()] = reply

    def drop_after_data(self, *message_numbers: int) -> None:
        """Accept the n-th message (1-based, overall) then drop the link before replying 250."""
        with self.lock:
            self.state.drop_after_data_at.update(message_numbers)

    # -- what happened -----------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self.state.received)

    def message_ids(self) -> list[str | None]:
        """Message-ID of every accepted message, in arrival order (duplicates kept)."""
        return [r.message_id for r in self.received]

    def recipients(self) -> list[str]:
        return [rcpt for r in self.received for rcpt in r.rcpt_tos]

    def rcpt_attempts(self, rcpt: str) -> int:
        with self.lock:
            return self.state.rcpt_attempts[rcpt.lower()]

    @property
    def connections(self) -> int:
        with self.lock:
            return self.state.connections

    def env(self) -> dict[str, str]:
        """Settings pointing the smtp backend at this sink (no TLS, no login)."""
        return {
            "COMMS_SMTP_HOST": "127.0.0.1",
            "COMMS_SMTP_PORT": str(self.port),
            "COMMS_SMTP_SECURITY": "none",
            "COMMS_FROM": "Comms Test <sender@example.com>",
        }


# -- Twilio -----------------------------------------------------------------------------------

Reply = tuple[int, int, str]  # (HTTP status, Twilio error code, message)
MESSAGES_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"


class _TwilioHandler(BaseHTTPRequestHandler):
    server: _TwilioHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, like api.twilio.com
    # The reply's headers and body are two writes: with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms on Linux), which capped each connection at ~22
    # requests/s. Real API servers do not stall like that.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        owner = self.server.owner
        expected = (
            "Basic " + base64.b64encode(f"{owner.account_sid}:{owner.auth_token}".encode()).decode()
        )
        if self.headers.get("Authorization") == expected:
            return True
        self._reply(
            401,
            {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            },
        )
        return False  # fmt: skip

    def do_GET(self) -> None:  # noqa: N802
        owner = self.server.owner
        prefix = MESSAGES_PATH.format(sid=owner.account_sid)[: -len(".json")] + "/"
        if not (self.path.startswith(prefix) and self.path.endswith(".json")):
            self._reply(404, {"code": 20404, "message": "The requested resource was not found",
                              "status": 404})  # fmt: skip
            return
        if not self._authorised():
            return
        msg_sid = self.path[len(prefix) : -len(".json")]
        with owner.lock:
            owner.fetches.append(msg_sid)
            resource = owner.resources.get(msg_sid)
            resource = dict(resource) if resource else None
        if resource is None:
            self._reply(404, {"code": 20404, "message": f"Message {msg_sid} was not found",
                              "more_info": "https://www.twilio.com/docs/errors/20404",
                              "status": 404})  # fmt: skip
            return
        self._reply(200, resource)

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        sid = owner.account_sid
        if self.path != MESSAGES_PATH.format(sid=sid):
            self._reply(
                404,
                {
                    "code": 20404,
                    "message": "The requested resource was not found",
                    "more_info": "https://www.twilio.com/docs/errors/20404",
                    "status": 404,
                },
            )
            return
        expected = "Basic " + base64.b64encode(f"{sid}:{owner.auth_token}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._reply(
                401,
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
            )
            return
        to = form.get("To", "")
        reply = owner._next_reply(to)
        if reply is not None:
            status, code, message = reply
            owner._record_attempt(to, form, status)
            self._reply(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
            return
        if owner.delay:
            time.sleep(owner.delay)
        msg_sid = "SM" + uuid.uuid4().hex
        owner._record_attempt(to, form, 201, msg_sid)
        body = form.get("Body", "")
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        resource = {
            "account_sid": sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD",
            "sid": msg_sid, "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}/Media.json"},
            "to": to, "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
        }  # fmt: skip
        with owner.lock:
            owner.resources[msg_sid] = resource
            owner.callbacks[msg_sid] = form.get("StatusCallback")
        self._reply(201, resource)


class _TwilioHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: TwilioServer


class TwilioServer:
    """A local HTTP server answering Twilio's Messages API like Twilio does."""

    def __init__(
        self,
        port: int = 0,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",
        delay: float = 0.0,
        log_path: Path | None = None,
    ) -> None:
        self.account_sid, self.auth_token, self.delay = account_sid, auth_token, delay
        self.httpd = _TwilioHTTPServer(("127.0.0.1", port), _TwilioHandler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.lock = threading.Lock()
        self._programmed: dict[str, deque[Reply]] = defaultdict(deque)
        self._always: dict[str, Reply] = {}
        self.attempts: list[dict[str, Any]] = []  # every request, with its HTTP status
        self.resources: dict[str, dict[str, Any]] = {}  # SID -> the Message resource as now
        self.callbacks: dict[str, str | None] = {}  # SID -> the StatusCallback it was sent with
        self.fetches: list[str] = []  # SIDs asked for with GET Messages/{Sid}.json
        self._log = open(log_path, "a", buffering=1 << 16) if log_path else None
        self._thread: threading.Thread | None = None

    def start(self) -> TwilioServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> TwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, sms_from: str = "+15005550006") -> dict[str, str]:
        """Settings pointing the twilio backend at this server."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "COMMS_SMS_FROM": sms_from,
            "COMMS_TWILIO_API_BASE": self.base_url,
        }

    def program(self, to: str, *replies: Reply) -> None:
        """Answer requests for `to` with these (status, code, message) replies once each."""
        with self.lock:
            self._programmed[to].extend(replies)

    def always(self, to: str, reply: Reply) -> None:
        """Answer every request for `to` with this error reply."""
        with self.lock:
            self._always[to] = reply

    # -- after sending: status, polling, webhooks ------------------------------------------

    def set_status(
        self, sid: str, status: str, error_code: int | None = None, error_message: str | None = None
    ) -> None:
        """What GET Messages/{sid}.json answers from now on."""
        with self.lock:
            self.resources[sid].update(
                status=status, error_code=error_code, error_message=error_message
            )

    def signed_post(
        self,
        url: str,
        params: dict[str, str],
        *,
        post_to: str | None = None,
        token: str | None = None,
    ) -> tuple[int, str]:
        """POST params to post_to (default: url), signed for url as Twilio signs webhooks.

        A proxy in front of the app is played by giving post_to: Twilio signs the
        public URL it was given, the request arrives at another host. `token`
        signs with another auth token (a forgery). Returns (HTTP status, body).
        """
        signature = RequestValidator(token or self.auth_token).compute_signature(url, params)
        request = Request(
            post_to or url,
            data=urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature,
                     "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )  # fmt: skip
        try:
            with urlopen(request, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except OSError as exc:  # urllib's HTTPError carries the refusal's status
            code = getattr(exc, "code", None)
            if code is None:
                raise
            return int(code), exc.read().decode() if hasattr(exc, "read") else ""

    def status_callback(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        *,
        post_to: str | None = None,
        token: str | None = None,
    ) -> tuple[int, str]:
        """Twilio's status callback for a sent message, to the StatusCallback it was given."""
        with self.lock:
            url = self.callbacks.get(sid)
            resource = dict(self.resources[sid])
        if not url:
            raise AssertionError(f"message {sid} was sent without a StatusCallback")
        self.set_status(sid, status, error_code)
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
            "From": resource.get("from") or "", "To": resource["to"],
            "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
        }  # fmt: skip
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.signed_post(url, params, post_to=post_to, token=token)

    def inbound(
        self,
        url: str,
        from_: str,
        body: str,
        *,
        to: str = "+15005550006",
        post_to: str | None = None,
        token: str | None = None,
    ) -> tuple[int, str]:
        """An inbound SMS forwarded to the app's webhook, as Twilio sends it."""
        sid = "SM" + uuid.uuid4().hex
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid,
            "SmsSid": sid, "SmsMessageSid": sid, "From": from_, "To": to, "Body": body,
            "NumMedia": "0", "NumSegments": "1",
        }  # fmt: skip
        return self.signed_post(url, params, post_to=post_to, token=token)

    def _next_reply(self, to: str) -> Reply | None:
        with self.lock:
            if to in self._always:
                return self._always[to]
            queue = self._programmed.get(to)
            return queue.popleft() if queue else None

    def _record_attempt(self, to: str, form: dict[str, str], status: int, sid: str = "") -> None:
        entry = {"to": to, "status": status, "sid": sid, "form": form}
        with self.lock:
            self.attempts.append(entry)
            if self._log and status == 201:
                self._log.write(json.dumps({"sid": sid, "to": to}) + "\n")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message: to, sid and the form fields (From, Body, ...)."""
        with self.lock:
            return [a for a in self.attempts if a["status"] == 201]

    def attempts_for(self, to: str) -> list[int]:
        """HTTP statuses returned for `to`, in order."""
        with self.lock:
            return [a["status"] for a in self.attempts if a["to"] == to]


# -- separate processes ----------------------------------------------------------------------


def _spawn(args: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"server did not start: {line}")
    return proc, int(line[1])


def spawn_smtp_sink(
    log_path: Path, *, delay_rcpt: float = 0.0, delay_data: float = 0.0
) -> tuple[subprocess.Popen, int]:
    """Start an SmtpSink in its own process; returns (process, port). Stop with terminate()."""
    return _spawn(
        ["smtp", "--log", str(log_path), "--delay-rcpt", str(delay_rcpt),
         "--delay-data", str(delay_data)]
    )  # fmt: skip


def spawn_twilio_server(log_path: Path | None = None) -> tuple[subprocess.Popen, int]:
    """Start a TwilioServer in its own process (default credentials); returns (process, port)."""
    return _spawn(["twilio", *(["--log", str(log_path)] if log_path else [])])


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM and wait (the server flushes its log first)."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a separate-process server wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["smtp", "twilio"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--delay-rcpt", type=float, default=0.0)
    parser.add_argument("--delay-data", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.kind == "smtp":
        server: Any = SmtpSink(
            args.port, delay_rcpt=args.delay_rcpt, delay_data=args.delay_data, log_path=args.log
        )
    else:
        server = TwilioServer(args.port, log_path=args.log)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"READY {server.port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
