"""Build RFC 5322 e-mails with the stdlib `email` package.

multipart/alternative text + HTML, real attachments, a unique Message-ID,
From with a display name, Reply-To and List-Unsubscribe when configured.

Header injection is impossible by construction: addresses are validated with
`email.headerregistry.Address` (one address, no CR/LF), every other header
value has CR/LF and control characters folded into a space (`one_line`), and
`_set` refuses any value that still carries a line break. The parts are built
with the `email.mime` classes (compat32), which is several times faster than
`EmailMessage`'s header registry for thousands of messages; non-ASCII names
and subjects are RFC 2047-encoded, text parts are base64 when not plain ASCII.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email import encoders, policy
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, localtime, make_msgid
from functools import lru_cache
from urllib.parse import quote

from comms.config import setting
from comms.sending.senders.base import OutgoingMessage
from comms.sending.senders.config import DEFAULT_FROM, parse_from
from comms.templates.rendering import html_to_text

_NEWLINES = re.compile(r"[\r\n\t\v\f\x00]+")


class InvalidMessage(ValueError):
    """The message cannot be built (bad recipient address); never worth a retry."""


@dataclass(frozen=True)
class EmailIdentity:
    """Who the e-mails come from and the list headers they carry."""

    from_address: str = DEFAULT_FROM
    reply_to: str | None = None
    list_unsubscribe: str | None = None  # "<https://...{client_id}>, <mailto:...>" or a bare URL

    @classmethod
    def from_settings(cls) -> EmailIdentity:
        """COMMS_FROM, COMMS_REPLY_TO, COMMS_LIST_UNSUBSCRIBE (env or [smtp])."""
        return cls(
            from_address=str(setting("COMMS_FROM", "smtp", "from", DEFAULT_FROM)),
            reply_to=setting("COMMS_REPLY_TO", "smtp", "reply_to"),
            list_unsubscribe=setting("COMMS_LIST_UNSUBSCRIBE", "smtp", "list_unsubscribe"),
        )


def one_line(value: str | None) -> str:
    """A header-safe single line: CR, LF and other control breaks become one space."""
    return _NEWLINES.sub(" ", value or "").strip()


@lru_cache(maxsize=256)  # build_email and the SMTP envelope ask for the same address
def recipient(address: str, name: str | None = None) -> Address:
    """The To address; a value that is not exactly one address raises InvalidMessage."""
    if not address or _NEWLINES.search(address) or any(c in address for c in '<>,;" '):
        raise InvalidMessage(f"invalid e-mail address: {address!r}")
    try:
        return Address(display_name=one_line(name), addr_spec=address.strip())
    except (ValueError, IndexError) as exc:
        raise InvalidMessage(f"invalid e-mail address: {address!r} ({exc})") from None


def _unsubscribe(template: str, message: OutgoingMessage) -> str:
    value = (
        template.replace("{client_id}", str(message.client_id or ""))
        .replace("{message_id}", str(message.id))
        .replace("{email}", quote(message.to_address, safe="@"))
    )
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return ", ".join(p if p.startswith("<") else f"<{p}>" for p in parts)


class _SmtpPolicy(type(policy.compat32)):  # type: ignore[misc]
    """compat32 with CRLF, writing a short one-line ASCII header without folding machinery.

    compat32 builds an email.header.Header per header to fold it; a header that
    fits on one line comes out unchanged, so it is written directly (same bytes).
    """

    def fold_binary(self, name: str, value: object) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
            and not _NEWLINES.search(value)
            and "  " not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# Bytes for the SMTP DATA phase: CRLF line ends, as smtplib.send_message would write.
SMTP_POLICY = _SmtpPolicy(linesep="\r\n")


def _set(msg: Message, name: str, value: str | Header) -> None:
    """Set a header, refusing any value that could start a new header line."""
    if isinstance(value, str) and _NEWLINES.search(value):
        raise InvalidMessage(f"{name} must be one line")
    msg[name] = value


def _text_header(value: str) -> str | Header:
    value = one_line(value)
    return value if value.isascii() else Header(value, "utf-8")


def _address(addr: Address) -> str:
    """'Name <user@host>' with a non-ASCII name RFC 2047-encoded."""
    return formataddr((addr.display_name, addr.addr_spec), charset="utf-8")


@lru_cache(maxsize=16)
def _identity_headers(identity: EmailIdentity) -> tuple[str, str, str | None]:
    """(From header, its domain, Reply-To header), parsed once per configuration."""
    sender = parse_from(identity.from_address)
    reply_to = (
        _address(parse_from(identity.reply_to, "COMMS_REPLY_TO")) if identity.reply_to else None
    )
    return _address(sender), sender.domain, reply_to


def _boundary(*texts: str | None) -> str:
    """A multipart boundary that occurs in none of the texts."""
    while True:
        boundary = f"=_{uuid.uuid4().hex}"
        if not any(t and boundary in t for t in texts):
            return boundary


def _text_part(text: str, subtype: str) -> MIMEText:
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        return MIMEText(text, subtype, "us-ascii")
    return MIMEText(text, subtype, "utf-8")  # base64: 7-bit safe through any relay


def build_email(message: OutgoingMessage, identity: EmailIdentity) -> Message:
    """The complete e-mail for one message, with a fresh Message-ID.

    Raises InvalidMessage for a recipient that is not exactly one valid address.
    """
    from_header, domain, reply_to = _identity_headers(identity)
    to = recipient(message.to_address, message.to_name)
    text = message.body_text
    if not text and message.body_html:
        text = html_to_text(message.body_html)
    body: Message = _text_part(text or "", "plain")
    if message.body_html:
        # Our own random boundary, checked with a plain substring test: the stdlib's
        # generator would otherwise compile a regex per message to pick one.
        alternative = MIMEMultipart("alternative", boundary=_boundary(text, message.body_html))
        alternative.attach(body)
        alternative.attach(_text_part(message.body_html, "html"))
        body = alternative
    if message.attachments:
        mixed = MIMEMultipart("mixed")
        mixed.attach(body)
        for att in message.attachments:
            maintype, _, subtype = (att.content_type or "").partition("/")
            part = MIMEBase(maintype or "application", subtype or "octet-stream")
            part.set_payload(att.data)
            encoders.encode_base64(part)
            name = one_line(att.filename) or "attachment"
            filename = name if name.isascii() else ("utf-8", "", name)
            part.add_header("Content-Disposition", "attachment", filename=filename)
            mixed.attach(part)
        body = mixed
    msg = body
    _set(msg, "From", from_header)
    _set(msg, "To", _address(to))
    _set(msg, "Subject", _text_header(message.subject or ""))
    _set(msg, "Date", format_datetime(localtime()))
    _set(msg, "Message-ID", make_msgid(idstring=f"m{message.id}", domain=domain or None))
    if reply_to:
        _set(msg, "Reply-To", reply_to)
    if identity.list_unsubscribe:
        value = _unsubscribe(identity.list_unsubscribe, message)
        _set(msg, "List-Unsubscribe", value)
        if "<https://" in value or "<http://" in value:
            _set(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    if "MIME-Version" not in msg:
        _set(msg, "MIME-Version", "1.0")
    return msg


def as_smtp_bytes(msg: Message) -> bytes:
    """The message as bytes with CRLF line ends, ready for DATA."""
    return msg.as_bytes(policy=SMTP_POLICY)
