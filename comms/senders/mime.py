"""Build RFC 5322 e-mails with the stdlib `email` package.

multipart/alternative text + HTML, real attachments, a unique Message-ID,
From with a display name, Reply-To and List-Unsubscribe when configured.
Header injection is impossible by construction: every header value goes
through `email.headerregistry` (addresses) or has CR/LF folded away
(subject), and the SMTP policy refuses any value still carrying a newline.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from urllib.parse import quote

from comms.config import setting
from comms.senders.base import OutgoingMessage
from comms.senders.config import DEFAULT_FROM, parse_from

_NEWLINES = re.compile(r"[\r\n\t\v\f\x00]+")
_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"(?i)</(p|div|h[1-6]|li|tr)>|<br\s*/?>")


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


def recipient(address: str, name: str | None = None) -> Address:
    """The To address; a value that is not exactly one address raises InvalidMessage."""
    if not address or _NEWLINES.search(address) or any(c in address for c in '<>,;" '):
        raise InvalidMessage(f"invalid e-mail address: {address!r}")
    try:
        return Address(display_name=one_line(name), addr_spec=address.strip())
    except (ValueError, IndexError) as exc:
        raise InvalidMessage(f"invalid e-mail address: {address!r} ({exc})") from None


def html_to_text(markup: str) -> str:
    """A readable plain-text part for an HTML-only message."""
    text = _BLOCK_END.sub("\n", markup)
    text = html.unescape(_TAG.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _unsubscribe(template: str, message: OutgoingMessage) -> str:
    value = (
        template.replace("{client_id}", str(message.client_id or ""))
        .replace("{message_id}", str(message.id))
        .replace("{email}", quote(message.to_address, safe="@"))
    )
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return ", ".join(p if p.startswith("<") else f"<{p}>" for p in parts)


def build_email(message: OutgoingMessage, identity: EmailIdentity) -> EmailMessage:
    """The complete e-mail for one message, with a fresh Message-ID."""
    sender = parse_from(identity.from_address)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = recipient(message.to_address, message.to_name)
    msg["Subject"] = one_line(message.subject)
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = make_msgid(idstring=f"m{message.id}", domain=sender.domain or None)
    if identity.reply_to:
        msg["Reply-To"] = parse_from(identity.reply_to, "COMMS_REPLY_TO")
    if identity.list_unsubscribe:
        value = _unsubscribe(identity.list_unsubscribe, message)
        msg["List-Unsubscribe"] = value
        if "<https://" in value or "<http://" in value:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = message.body_text
    if not text and message.body_html:
        text = html_to_text(message.body_html)
    msg.set_content(text or "", subtype="plain", charset="utf-8", cte="quoted-printable")
    if message.body_html:
        msg.add_alternative(
            message.body_html, subtype="html", charset="utf-8", cte="quoted-printable"
        )
    for att in message.attachments:
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            att.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=one_line(att.filename) or "attachment",
        )
    return msg
