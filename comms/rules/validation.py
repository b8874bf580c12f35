"""Address checks and the named reasons a message or a row cannot be used.

E-mail syntax through email-validator, phones through phonenumbers. Every
reason is declared here as data, so the import report, the wizard's review and
the action log speak the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

# Reasons (Odoo-style: declared as data, shown to people as they are).
INVALID_EMAIL = "invalid e-mail"
INVALID_PHONE = "invalid phone"
NOT_MOBILE = "not a mobile"
NO_EMAIL = "no e-mail"
NO_PHONE = "no phone"
OPTED_OUT = "opted out"
NO_CONSENT = "no consent"
DUPLICATE = "duplicate"
EMPTY_ROW = "empty row"
MISSING_FIELD = "missing field: {field}"
RENDER_ERROR = "render error: {error}"
TOO_LARGE = "attachments too large"
# The address has non-ASCII letters before the @ and the SMTP server does not offer SMTPUTF8.
NEEDS_SMTPUTF8 = "needs SMTPUTF8"

DEFAULT_REGION = "CZ"

# The two channels, and their names inside a sentence ("no e-mail templates yet").
CHANNELS = ("email", "sms")
CHANNEL_NAMES = {"email": "e-mail", "sms": "SMS"}

_KIND_NAMES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
# Kinds an SMS can be sent to. FIXED_LINE_OR_MOBILE is what phonenumbers says
# for countries (US, CA ...) whose plans do not tell the two apart.
SMS_KINDS = frozenset({"mobile", "fixed_line_or_mobile"})


@dataclass(frozen=True)
class EmailCheck:
    ok: bool
    address: str  # normalised when ok, stripped input otherwise
    error: str | None = None


@dataclass(frozen=True)
class PhoneCheck:
    ok: bool
    e164: str  # E.164 when ok, stripped input otherwise
    kind: str  # one of _KIND_NAMES' values, or "invalid"
    error: str | None = None

    @property
    def is_mobile(self) -> bool:
        return self.ok and self.kind in SMS_KINDS


@lru_cache(maxsize=200_000)
def check_email(raw: str | None, check_deliverability: bool = False) -> EmailCheck:
    """Syntax-check and normalise one address (DNS only when asked)."""
    text = (raw or "").strip()
    if not text:
        return EmailCheck(False, "", NO_EMAIL)
    if any(c in text for c in "\r\n"):
        return EmailCheck(False, text, f"{INVALID_EMAIL}: contains a line break")
    try:
        info = validate_email(text, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        return EmailCheck(False, text, f"{INVALID_EMAIL}: {exc}")
    return EmailCheck(True, info.normalized)


@lru_cache(maxsize=200_000)
def check_phone(raw: str | None, region: str = DEFAULT_REGION) -> PhoneCheck:
    """Parse one number into E.164 with its kind, using a default region."""
    text = (raw or "").strip()
    if not text:
        return PhoneCheck(False, "", "invalid", NO_PHONE)
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return PhoneCheck(False, text, "invalid", f"{INVALID_PHONE}: {exc._msg}")
    if not phonenumbers.is_valid_number(number):
        return PhoneCheck(False, text, "invalid", f"{INVALID_PHONE}: not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind = _KIND_NAMES.get(phonenumbers.number_type(number), "unknown")
    return PhoneCheck(True, e164, kind)


def missing_field(field: str) -> str:
    return MISSING_FIELD.format(field=field)


def render_error(error: str) -> str:
    return RENDER_ERROR.format(error=error)


# A render over its budget (comms.templates.budget): it took too long, or made too much.
TEMPLATE_TOO_SLOW = "template too slow"
TEMPLATE_TOO_LARGE = "template too large"
