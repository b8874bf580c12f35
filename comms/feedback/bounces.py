"""Reading what comes back to the bounce address: bounces, complaints, mailto unsubscribes.

`read_mail(raw, key)` classifies one e-mail and says which of our messages it
is about. Nothing here writes; comms.feedback.mailbox applies what it finds.

* A delivery-status report (RFC 3464: `multipart/report;
  report-type=delivery-status`, as Postfix, Gmail, Microsoft 365 and Exim with
  DSN send) gives, per recipient, an Action, a Status (5.1.1) and a
  Diagnostic-Code. `failed` is a bounce: hard for 5.x.x, soft for 4.x.x.
  `delayed`, `delivered`, `relayed` and `expanded` are not bounces (a delay
  warning is followed by the real outcome) and are ignored.
* The plain-text bounces of MTAs that send no DSN (Exim's classic "Mail
  delivery failed", older Exchange): a mail from MAILER-DAEMON / postmaster, or
  with X-Failed-Recipients, or a bounce subject, whose text carries an SMTP
  status; the failed address is X-Failed-Recipients' or the first in the text.
* A feedback-loop report (ARF, RFC 5965: `report-type=feedback-report`) is a
  complaint.
* A mail whose Subject is "unsubscribe <token>" with a valid unsubscribe token
  is a mailto unsubscribe (the List-Unsubscribe mailto: comms.feedback.links).
* Anything else (auto-replies, out-of-office, people writing back) is not for
  us and is left alone. An auto-reply can arrive at a VERP address and quote
  our Message-ID, so neither makes a mail a bounce: only its form does.

Which message: the VERP address the mail was sent to (`bounces+<id>-<sig>@`,
checked against the key), else the Message-ID of the returned message
(message/rfc822, text/rfc822-headers, or a "Message-ID:" line in a plain-text
bounce), which the caller looks up among the sent messages' provider ids.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import Message

from comms.feedback.keys import find_token
from comms.feedback.links import PURPOSE_BOUNCE, PURPOSE_UNSUBSCRIBE, UNSUBSCRIBE_SUBJECT

# RFC 3463 enhanced status codes we name in a suppression reason ("bounced: 5.1.1 user unknown").
STATUS_MEANINGS: dict[str, str] = {
    "5.1.1": "user unknown",
    "5.1.2": "domain does not exist",
    "5.1.3": "bad address syntax",
    "5.1.6": "mailbox moved",
    "5.1.10": "recipient not found",
    "5.2.1": "mailbox disabled",
    "5.2.2": "mailbox full",
    "5.2.3": "message too large",
    "5.3.0": "mail system error",
    "5.4.1": "recipient rejected",
    "5.4.4": "unable to route",
    "5.4.7": "delivery time expired",
    "5.5.0": "mailbox unavailable",
    "5.7.1": "refused by policy",
    "5.7.606": "sender blocked",
    "4.2.2": "mailbox full",
    "4.3.2": "system not accepting mail",
    "4.4.1": "no answer from host",
    "4.4.2": "connection dropped",
    "4.4.7": "delivery time expired",
    "4.7.1": "deferred by policy",
}
CLASS_MEANINGS = {"5": "permanent failure", "4": "temporary failure"}

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?m)(?:^|\s)([45]\d\d)[ -]")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MESSAGE_ID = re.compile(r"(?im)^message-id:\s*(<[^>\s]+>)")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailer_daemon")
_BOUNCE_SUBJECTS = re.compile(
    r"(?i)undeliver|returned mail|delivery (status notification \(failure\)|failure|failed)"
    r"|mail delivery (failed|subsystem)|failure notice|could not be delivered|nondeliverable"
)
# Where the VERP address can be seen in a delivered bounce (the envelope recipient).
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass(frozen=True)
class Finding:
    """What one e-mail says about one of our messages."""

    kind: str  # hard | soft | complaint | unsubscribe
    recipient: str | None = None  # the address that bounced / complained
    status: str | None = None  # enhanced status code (5.1.1)
    diagnostic: str | None = None  # the remote server's words
    verp_message_id: int | None = None  # from a valid VERP address
    original_message_id: str | None = None  # Message-ID of the returned message, "<...>"
    unsubscribe_token: str | None = None
    dedupe_key: str | None = None  # this mail + recipient: seen again, applied once

    @property
    def meaning(self) -> str:
        """A few words for the status code: 'user unknown', 'mailbox full'."""
        if not self.status:
            return "bounced" if self.kind == "hard" else "temporary failure"
        return STATUS_MEANINGS.get(self.status) or CLASS_MEANINGS.get(self.status[0], "failure")


def parse(raw: bytes) -> Message:
    """The mail parsed (compat32: report parts come as lists of header blocks); a damaged
    one still parses."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def read_mail(raw: bytes, key: bytes) -> list[Finding]:
    """What one e-mail says about our messages ([] when it is not a bounce, complaint or
    unsubscribe: leave it alone)."""
    msg = parse(raw)
    mail_id = (msg.get("Message-ID") or "").strip() or hashlib.sha256(raw).hexdigest()[:32]
    verp = _verp_message_id(msg, key)

    subject = _header_text(msg.get("Subject"))
    if UNSUBSCRIBE_SUBJECT in subject.lower():
        token_id = find_token(key, PURPOSE_UNSUBSCRIBE, subject)
        if token_id is not None:
            token = _token_in(subject)
            return [Finding("unsubscribe", unsubscribe_token=token, dedupe_key=f"mailto:{token}")]

    ctype = msg.get_content_type()
    report_type = (
        (msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    )
    if report_type == "delivery-status":
        found = _from_dsn(msg, verp)
    elif report_type == "feedback-report":
        found = _from_arf(msg, verp)
    elif _looks_like_plain_bounce(msg, subject):
        found = _from_plain_text(msg, verp)
    else:
        return []
    return [
        Finding(**{**f.__dict__, "dedupe_key": f"mail:{mail_id}:{(f.recipient or '').lower()}"})
        for f in found
    ]


# -- the forms ---------------------------------------------------------------------------


def _from_dsn(msg: Message, verp: int | None) -> list[Finding]:
    original = _original_message_id(msg)
    out = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):
            action = (block.get("Action") or "").strip().lower()
            if action != "failed":
                continue  # delayed / delivered / relayed / expanded: not a bounce
            status = _status_code(block.get("Status") or "")
            diagnostic = _diagnostic(block.get("Diagnostic-Code") or "")
            if not status:
                status = _status_code(diagnostic) or _status_from_reply(diagnostic)
            recipient = _address_of(
                block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            )
            kind = "soft" if status and status.startswith("4") else "hard"
            out.append(Finding(kind, recipient, status, diagnostic or None, verp, original))
    return out


def _from_arf(msg: Message, verp: int | None) -> list[Finding]:
    original = _original_message_id(msg)
    recipient = None
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            fields = _status_blocks(part)
            for block in fields:
                recipient = recipient or _address_of(block.get("Original-Rcpt-To") or "")
    if recipient is None:
        returned = _returned_headers(msg)
        if returned is not None:
            recipient = _address_of(returned.get("To") or "")
    return [Finding("complaint", recipient, None, "feedback-loop report", verp, original)]


def _looks_like_plain_bounce(msg: Message, subject: str) -> bool:
    sender = (msg.get("From") or "").lower()
    return bool(
        msg.get("X-Failed-Recipients")
        or any(name in sender for name in _BOUNCE_SENDERS)
        or _BOUNCE_SUBJECTS.search(subject)
    ) and not re.search(r"(?i)\bdelayed\b|\bwarning\b", subject)


def _from_plain_text(msg: Message, verp: int | None) -> list[Finding]:
    text = _plain_text(msg)
    head, _, copy = _split_returned(text)
    status = _status_code(head) or _status_from_reply(head)
    if status is None:
        return []  # a bounce-looking mail without any SMTP status: not one we can read
    failed = [a.strip() for a in (msg.get("X-Failed-Recipients") or "").split(",") if a.strip()]
    recipient = failed[0] if failed else _first_address(head)
    original = _original_message_id(msg) or _message_id_in(copy or text)
    diagnostic = _diagnostic_line(head, status)
    kind = "soft" if status.startswith("4") else "hard"
    return [Finding(kind, recipient, status, diagnostic, verp, original)]


# -- helpers -----------------------------------------------------------------------------


def _header_text(value: object) -> str:
    """A header as text, RFC 2047 words decoded."""
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:
        return str(value)


def _token_in(text: str) -> str | None:
    match = re.search(r"[0-9]{1,18}\.[0-9a-f]{20}", text.lower())
    return match.group(0) if match else None


def _verp_message_id(msg: Message, key: bytes) -> int | None:
    for name in _ENVELOPE_HEADERS:
        for value in msg.get_all(name) or []:
            if "+" not in str(value):
                continue
            found = find_token(key, PURPOSE_BOUNCE, str(value))
            if found is not None:
                return found
    return None


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        text = part.get_payload(decode=True).decode("utf-8", "replace")
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(b) for b in blocks if b.strip()]


def _returned_headers(msg: Message) -> Message | None:
    """The returned message's headers (message/rfc822 or text/rfc822-headers), if any."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            return email.message_from_bytes(raw)
    return None


def _original_message_id(msg: Message) -> str | None:
    returned = _returned_headers(msg)
    if returned is not None and returned.get("Message-ID"):
        return str(returned.get("Message-ID")).strip()
    return None


def _status_code(text: str) -> str | None:
    match = _STATUS.search(text or "")
    if not match or match.group(1) == "2":
        return None
    return ".".join(match.groups())


def _status_from_reply(text: str) -> str | None:
    """'550 ...' without an enhanced code: its class as 5.0.0 / 4.0.0."""
    match = _SMTP_REPLY.search(text or "")
    return f"{match.group(1)[0]}.0.0" if match else None


def _diagnostic(value: str) -> str:
    """'smtp; 550 5.1.1 ...' -> '550 5.1.1 ...' on one line."""
    text = " ".join(str(value).split())
    return text.split(";", 1)[1].strip() if ";" in text[:12] else text


def _address_of(value: str) -> str | None:
    """'rfc822; user@example.com' -> 'user@example.com'."""
    match = _ADDRESS.search(str(value))
    return match.group(0) if match else None


def _plain_text(msg: Message) -> str:
    """The mail's text/plain parts (or its only part), decoded."""
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_content_type() not in ("text/plain", "message/rfc822"):
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                texts.append("\n------ copy of the message ------\n" + inner[0].as_string())
            continue
        raw = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            texts.append(raw.decode(charset, "replace"))
        except LookupError:
            texts.append(raw.decode("utf-8", "replace"))
    return "\n".join(texts)


_COPY_MARKERS = re.compile(
    r"(?im)^.*(copy of the message|original message|message headers follow|"
    r"returned message|undelivered message|------ This is a copy).*$"
)


def _split_returned(text: str) -> tuple[str, str, str]:
    """(the explanation, the marker line, the returned copy) of a plain-text bounce."""
    match = _COPY_MARKERS.search(text)
    if not match:
        return text, "", ""
    return text[: match.start()], match.group(0), text[match.end() :]


def _first_address(text: str) -> str | None:
    for match in _ADDRESS.finditer(text):
        address = match.group(0)
        if not address.lower().startswith(_BOUNCE_SENDERS):
            return address
    return None


def _message_id_in(text: str) -> str | None:
    match = _MESSAGE_ID.search(text or "")
    return match.group(1) if match else None


def _diagnostic_line(text: str, status: str) -> str | None:
    """The line of the explanation that carries the status, joined with its continuation."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if status in line or re.match(r"[45]\d\d[ -]", line):
            rest = [line]
            for nxt in lines[i + 1 : i + 3]:
                if not nxt or re.match(r"[A-Za-z-]+:", nxt):
                    break
                rest.append(nxt)
            return " ".join(rest)[:500]
    return None
