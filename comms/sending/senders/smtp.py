"""The SMTP backend: yagmail holds the session and login, stdlib `email` builds messages.

yagmail's own `send()` reconnects on every call and rewrites plain text into
HTML, so it is used only to open and log in (`yagmail.SMTP.login()`: plain,
STARTTLS or SSL, with or without a login, Gmail OAuth2 as yagmail offers it);
each message then goes over that one open `smtplib` connection.

How a failure maps to an Outcome (the server's text is kept):

* 4xx reply to MAIL / RCPT / DATA / end-of-data -> transient (retried later).
* 5xx reply -> permanent.
* The connection drops BEFORE the end-of-data marker was fully written: the
  server cannot have the message, so we reconnect and send it again at once
  (once); if that fails too it is transient.
* The connection drops AFTER the end-of-data marker was written but before
  the server's reply: the server may have queued it, so it is `interrupted`
  (never resent automatically). This is the one ambiguous message a broken
  connection can cost.

A server that offers PIPELINING (RFC 2920; every mainstream relay does) gets
MAIL FROM, RCPT TO and DATA in one write and their three replies are read
after it: two round trips per message instead of four, which is most of the
client's CPU on a fast relay (a system call, a wake-up and a reply parse per
round trip). The content still goes only after the server's 354, and a
refused MAIL or RCPT is reported exactly as without pipelining.

The envelope sender is the message's VERP address when it has one
(COMMS_BOUNCE_ADDRESS), else the From address. A recipient whose local part is
not ASCII goes out with SMTPUTF8 when the server offers it; a server that does
not is a permanent failure naming the reason (nothing is sent).
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

import yagmail

from comms.sending.senders.base import BaseSender, Outcome, OutgoingMessage
from comms.sending.senders.config import SmtpConfig, parse_from
from comms.sending.senders.mime import EmailIdentity, InvalidMessage, build_email

CRLF = b"\r\n"
DATA = ("DATA", "DATA\r\n", (354,))  # (step, command line, the replies that mean go on)


class _Stage:
    """How far one SMTP transaction got (decides whether a drop is ambiguous)."""

    ENVELOPE = "envelope"  # MAIL / RCPT / DATA command: nothing delivered yet
    BODY = "body"  # writing the message: incomplete without the final dot
    AWAITING_REPLY = "awaiting reply"  # final dot written: the server may have it


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


class SmtpReply(Exception):
    """A non-success SMTP reply inside one transaction."""

    def __init__(self, step: str, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.step, self.code, self.text = step, code, text


@dataclass
class _Prepared:
    """A message whose envelope (MAIL FROM / RCPT TO) went out ahead of its content."""

    message_id: int
    msgid: str
    rcpt: str
    data: bytes
    mail_from: str | None = None  # VERP envelope sender
    smtputf8: bool = False
    refused: SmtpReply | None = None  # the server refused MAIL or RCPT


def offers_smtputf8(config: SmtpConfig) -> bool | None:
    """Whether the server takes addresses with non-ASCII local parts (SMTPUTF8, RFC 6531).

    One connection, as the sender opens it (TLS, login), then QUIT; None when it
    cannot be asked (down, refused, a timeout): the send then decides. The bulk
    generator asks before it generates for such an address, so the person learns
    it in review, not from failures after sending.
    """
    sender = SmtpSender(config)
    try:
        sender._connect()
        assert sender._yag is not None
        conn = sender._yag.smtp
        conn.ehlo_or_helo_if_needed()
        return bool(conn.has_extn("smtputf8"))
    except Exception:  # noqa: BLE001 - any failure means "cannot tell"
        return None
    finally:
        sender._disconnect()


class SmtpSender(BaseSender):
    """Sends e-mail over one SMTP connection opened by yagmail."""

    channel = "email"
    backend = "smtp"
    pipelines = True

    def __init__(self, config: SmtpConfig, identity: EmailIdentity | None = None) -> None:
        super().__init__()
        self.config = config
        self.identity = identity or EmailIdentity.for_smtp(config)
        self.envelope_from = parse_from(self.identity.from_address).addr_spec
        self._yag: yagmail.SMTP | None = None
        self._prepared: _Prepared | None = None
        self.connections_opened = 0

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # -- connection ----------------------------------------------------------------
    def _connect(self) -> None:
        cfg = self.config
        login = bool(cfg.user) or bool(cfg.oauth2_file)
        yag = yagmail.SMTP(
            user=cfg.user or self.envelope_from,
            password=cfg.password,
            host=cfg.host,
            port=cfg.port,
            smtp_ssl=cfg.security == "ssl",
            smtp_starttls=cfg.security == "starttls",
            smtp_skip_login=not login,
            oauth2_file=cfg.oauth2_file,
            soft_email_validation=False,
            timeout=cfg.timeout,
        )
        if cfg.user:
            yag.user = cfg.user  # yagmail appends "@gmail.com" to a login without "@"
        try:
            yag.login()
        except Exception:
            yag.is_closed = True  # keep yagmail's __del__ from touching a dead socket
            raise
        self._yag = yag
        self.connections_opened += 1

    def _disconnect(self) -> None:
        self._prepared = None
        yag, self._yag = self._yag, None
        if yag is not None:
            try:
                yag.close()
            except (OSError, smtplib.SMTPException):
                pass
            yag.is_closed = True

    def _drop(self) -> None:
        """Forget a broken connection without talking to the server."""
        yag, self._yag = self._yag, None
        self.connected = False
        self._prepared = None
        if yag is not None:
            yag.is_closed = True
            try:
                yag.smtp.close()
            except Exception:
                pass

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"login refused by {self.where}: {exc.smtp_code} {_text(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"{exc.smtp_code} {_text(exc.smtp_error)} ({self.where})"
        return f"cannot connect to {self.where}: {type(exc).__name__}: {exc}"

    # -- sending ---------------------------------------------------------------------
    def _envelope(
        self, rcpt: str, data: bytes, mail_from: str | None = None, smtputf8: bool = False
    ) -> list[tuple[str, str, tuple[int, ...]]]:
        """MAIL FROM and RCPT TO as (step, command line, success codes): they deliver nothing."""
        assert self._yag is not None
        conn = self._yag.smtp
        conn.ehlo_or_helo_if_needed()
        size = f" SIZE={len(data)}" if conn.has_extn("size") else ""
        if smtputf8:
            if not conn.has_extn("smtputf8"):
                raise SmtpReply(
                    "MAIL FROM",
                    553,
                    "the server does not offer SMTPUTF8, which an address with non-ASCII"
                    " letters before the @ needs",
                )
            size += " SMTPUTF8" + (" BODY=8BITMIME" if conn.has_extn("8bitmime") else "")
        conn.command_encoding = "utf-8" if smtputf8 else "ascii"  # as smtplib.sendmail does
        # smtplib's mail()/rcpt() re-parse each address (quoteaddr); ours are already
        # validated single addr-specs (mime.recipient / parse_from), so write them as is.
        return [
            ("MAIL FROM", f"MAIL FROM:<{mail_from or self.envelope_from}>{size}\r\n", (250,)),
            ("RCPT TO", f"RCPT TO:<{rcpt}>\r\n", (250, 251)),
        ]

    def _commands(self, steps: list[tuple[str, str, tuple[int, ...]]]) -> None:
        """Send the commands and check their replies; SmtpReply names the first refusal.

        With PIPELINING they go in one write and every reply is read after it
        (a 421 ends the reading: the server is closing). A DATA that the server
        accepted after refusing MAIL or RCPT is closed at once with an empty
        data phase, so nothing is delivered and the connection stays usable.
        """
        assert self._yag is not None
        conn = self._yag.smtp
        if len(steps) == 1 or not conn.has_extn("pipelining"):
            for step, line, ok in steps:
                conn.send(line)
                code, resp = conn.getreply()
                if code not in ok:
                    raise SmtpReply(step, code, _text(resp))
            return
        conn.send("".join(line for _, line, _ in steps))
        refused: SmtpReply | None = None
        for step, _, ok in steps:
            code, resp = conn.getreply()
            if code in ok:
                continue
            refused = refused or SmtpReply(step, code, _text(resp))
            if code == 421:
                break
        if refused is None:
            return
        if steps[-1] is DATA and code == 354:  # the server went on regardless: end it empty
            conn.send(b"." + CRLF)
            conn.getreply()
        raise refused

    def _transaction(
        self,
        rcpt: str,
        data: bytes,
        stage: list[str],
        envelope_sent: bool = False,
        mail_from: str | None = None,
        smtputf8: bool = False,
    ) -> None:
        """MAIL, RCPT, DATA, body, end-of-data; `stage` records how far it got."""
        assert self._yag is not None
        conn = self._yag.smtp
        stage[0] = _Stage.ENVELOPE
        if envelope_sent:
            self._commands([DATA])
        else:
            self._commands([*self._envelope(rcpt, data, mail_from, smtputf8), DATA])
        payload = smtplib._quote_periods(data)  # dot-stuffing, as smtplib.data() does
        if not payload.endswith(CRLF):
            payload += CRLF
        stage[0] = _Stage.BODY
        conn.send(payload + b"." + CRLF)
        # From here the server holds a complete message: a drop is ambiguous.
        stage[0] = _Stage.AWAITING_REPLY
        code, resp = conn.getreply()
        if code != 250:
            raise SmtpReply("end of data", code, _text(resp))

    def _reset(self) -> None:
        """RSET after a refused transaction so the connection can carry the next one."""
        try:
            if self._yag is not None:
                self._yag.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def prepare(self, message: OutgoingMessage) -> bool:
        """Build the message and send its MAIL FROM / RCPT TO ahead (see BaseSender.prepare).

        The slow RCPT reply of a remote relay then overlaps the commit of the
        message's claim; the content (DATA) goes only in send(). A server that
        drops the connection now has received nothing: send() reconnects.
        """
        self.abandon()
        if not self.connected:
            return False
        try:
            email = build_email(message, self.identity)
        except (InvalidMessage, ValueError):
            return False  # send() reports it
        prepared = _Prepared(
            message.id, email.message_id, email.to, email.data, email.mail_from, email.smtputf8
        )
        try:
            self._commands(self._envelope(email.to, email.data, email.mail_from, email.smtputf8))
        except SmtpReply as exc:
            prepared.refused = exc
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()
            return False
        self._prepared = prepared
        return True

    def abandon(self) -> None:
        """RSET a prepared envelope whose message is not sent after all."""
        if self._prepared is not None:
            self._prepared = None
            self._reset()

    def _send(self, message: OutgoingMessage) -> Outcome:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.message_id != message.id:
            self._prepared = prepared
            self.abandon()
            prepared = None
        if prepared is not None and prepared.refused is not None:
            return self._refused(prepared.refused)
        if prepared is not None:
            msgid, rcpt, data = prepared.msgid, prepared.rcpt, prepared.data
            mail_from, smtputf8 = prepared.mail_from, prepared.smtputf8
        else:
            try:
                email = build_email(message, self.identity)
            except (InvalidMessage, ValueError) as exc:
                return Outcome.permanent(str(exc))
            msgid, rcpt, data = email.message_id, email.to, email.data
            mail_from, smtputf8 = email.mail_from, email.smtputf8
        stage = [_Stage.ENVELOPE]
        for attempt in (1, 2):
            if not self.connected:
                try:
                    self.open()
                except Exception as exc:
                    self.open_failed = True
                    return Outcome.transient(self.describe_error(exc))
            try:
                self._transaction(
                    rcpt,
                    data,
                    stage,
                    envelope_sent=prepared is not None,
                    mail_from=mail_from,
                    smtputf8=smtputf8,
                )
                return Outcome.sent(msgid)
            except SmtpReply as exc:
                return self._refused(exc)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                prepared = None  # a new connection needs the whole transaction
                self._drop()
                what = f"connection to {self.where} lost during {stage[0]}: {exc}"
                if stage[0] == _Stage.AWAITING_REPLY:
                    return Outcome.interrupted(what + "; the server may have accepted it")
                if attempt == 2:
                    return Outcome.transient(what)
                # nothing was delivered: reconnect and send it again right away
        return Outcome.transient(f"connection to {self.where} lost")  # pragma: no cover

    def _refused(self, exc: SmtpReply) -> Outcome:
        """The outcome of a refused transaction; the connection is made ready for the next."""
        detail = f"{exc.code} {exc.text} (at {exc.step}, {self.where})"
        if exc.code == 421:  # the server is closing this connection
            self._drop()
        else:
            self._reset()
        if 400 <= exc.code < 500:
            return Outcome.transient(detail)
        return Outcome.permanent(detail)
