"""Whether a message can go to a recipient: the one rule every creator of messages asks.

The bulk generator, the editor, compose-one-message (client detail, CLI) and
the test messages all decide with `check_recipient` / `check_address`, so a
client who cannot get an e-mail in a bulk send cannot get it from the client
detail either, and the reason has the same name (comms.rules.validation).

Checked in this order, the first failure being the reason:

1. the address: no / invalid e-mail; no / invalid phone, not a mobile. What the
   import found (an e-mail's valid flag, a phone's kind) is trusted when it
   says the address is usable, otherwise the address is checked now;
2. the suppression list (`opted out`): an opt-out also withdraws consent, and
   `opted out` is the reason that says what happened;
3. consent (`no consent`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any, NamedTuple

from comms.config import default_region
from comms.rules.validation import (
    INVALID_EMAIL,
    INVALID_PHONE,
    NO_CONSENT,
    NO_EMAIL,
    NO_PHONE,
    NOT_MOBILE,
    OPTED_OUT,
    SMS_KINDS,
    check_email,
    check_phone,
)

# The reason for a message whose text is empty once rendered or edited.
EMPTY_MESSAGE = "empty message"


class Recipient(NamedTuple):
    """An address as a message would use it, and why it cannot (None when it can)."""

    address: str  # normalised (E.164 for SMS) when usable, else the stripped input
    reason: str | None  # a named reason from comms.rules.validation
    detail: str | None  # what exactly is wrong, for a person


def address_key(channel: str, address: str) -> str:
    """How addresses compare (duplicates, the suppression list): e-mail ignores case."""
    return address.strip().lower() if channel == "email" else address.strip()


def needs_smtputf8(address: str | None) -> bool:
    """An e-mail address with non-ASCII letters before the @ (SMTPUTF8, RFC 6531)."""
    return bool(address) and not address.rpartition("@")[0].isascii()


def check_address(channel: str, raw: Any, known: Any = None) -> Recipient:
    """The address rule alone; `known` is the import's e-mail valid flag or phone kind."""
    text = "" if raw is None or raw != raw else str(raw).strip()  # raw != raw: NaN
    if channel == "email":
        if not text:
            return Recipient("", NO_EMAIL, None)
        if known is True:
            return Recipient(text, None, None)
        checked = check_email(text)
        if checked.ok:
            return Recipient(checked.address, None, None)
        return Recipient(text, INVALID_EMAIL, checked.error)
    if not text:
        return Recipient("", NO_PHONE, None)
    if isinstance(known, str) and known in SMS_KINDS and text.startswith("+"):
        return Recipient(text, None, None)
    phone = check_phone(text, default_region())
    if not phone.ok:
        return Recipient(text, INVALID_PHONE, phone.error)
    if not phone.is_mobile:
        kind = phone.kind.replace("_", " ")
        return Recipient(phone.e164, NOT_MOBILE, f"{phone.e164} is a {kind} number")
    return Recipient(phone.e164, None, None)


def check_recipient(
    channel: str,
    raw: Any,
    known: Any = None,
    *,
    consent: bool = True,
    suppressed: Container[str] = (),
) -> Recipient:
    """Address, then opt-out, then consent; `suppressed` holds `address_key`s."""
    found = check_address(channel, raw, known)
    if found.reason is not None:
        return found
    if address_key(channel, found.address) in suppressed:
        return Recipient(found.address, OPTED_OUT, None)
    if consent is False:
        return Recipient(found.address, NO_CONSENT, None)
    return found


def check_recipients(
    channel: str,
    rows: Iterable[tuple[Any, Any, Any]],
    suppressed: Container[str] = (),
) -> list[tuple[str, str | None, str | None, str | None]]:
    """check_recipient for many (raw, known, consent), each with its address_key (None if not OK).

    The bulk generator's form of the same rule: an e-mail the import found valid
    takes a short path (strip, lower, look up), everything else check_recipient;
    tests/test_recipient_rules.py keeps both giving the same answers.
    """
    out: list[tuple[str, str | None, str | None, str | None]] = []
    email = channel == "email"
    for raw, known, consent in rows:
        if email and known is True and raw.__class__ is str and (address := raw.strip()):
            key = address.lower()
            if key in suppressed:
                out.append((address, OPTED_OUT, None, None))
            elif consent is False:
                out.append((address, NO_CONSENT, None, None))
            else:
                out.append((address, None, None, key))
            continue
        address, reason, detail = check_recipient(
            channel, raw, known, consent=consent, suppressed=suppressed
        )
        out.append((address, reason, detail, None if reason else address_key(channel, address)))
    return out
