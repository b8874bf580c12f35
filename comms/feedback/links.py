"""What a sent e-mail carries so that the loop can close: unsubscribe links and VERP addresses.

- `UNSUBSCRIBE_URL` is what `{{ unsubscribe_url }}` renders to in a template: a
  placeholder, because a message's id (which its token signs) exists only once
  the message is stored. The senders replace it with the message's own link
  (`fill_unsubscribe`) when they build what goes out.
- `list_unsubscribe` is the List-Unsubscribe header (RFC 2369 / RFC 8058): the
  one-click URL `PUBLIC_URL/u/<token>` when a public URL is configured, and a
  mailto: whose subject carries the token, read by the bounce mailbox.
- `verp_address` is the envelope sender `bounces+<id>-<signature>@domain`
  when COMMS_BOUNCE_ADDRESS is set, so a bounce names its message even when it
  quotes nothing of it.
"""

from __future__ import annotations

from comms.feedback.keys import make_token

# The placeholder `{{ unsubscribe_url }}` renders to (an https URL, so that any rule
# about link schemes lets it through); replaced per message when the e-mail is built.
UNSUBSCRIBE_URL = "https://unsubscribe.comms.invalid/u"

PURPOSE_UNSUBSCRIBE = "u"
PURPOSE_BOUNCE = "b"
UNSUBSCRIBE_SUBJECT = "unsubscribe"


def unsubscribe_token(key: bytes, message_id: int) -> str:
    """The token of message_id's unsubscribe link."""
    return make_token(key, PURPOSE_UNSUBSCRIBE, message_id)


def unsubscribe_url(public_url: str, key: bytes, message_id: int, token: str | None = None) -> str:
    """PUBLIC_URL/u/<token>: GET shows a confirmation, POST unsubscribes (one click)."""
    return f"{public_url.rstrip('/')}/u/{token or unsubscribe_token(key, message_id)}"


def unsubscribe_mailto(address: str, key: bytes, message_id: int, token: str | None = None) -> str:
    """mailto:<address>?subject=unsubscribe <token>, processed by the bounce mailbox."""
    # The token is digits, a dot and hex: only the space needs quoting.
    return f"mailto:{address}?subject={UNSUBSCRIBE_SUBJECT}%20{token or unsubscribe_token(key, message_id)}"


def list_unsubscribe(
    message_id: int, key: bytes, *, public_url: str | None, mailto: str | None
) -> tuple[str | None, bool, str | None]:
    """(List-Unsubscribe value or None, whether it offers RFC 8058 one-click, the link
    `{{ unsubscribe_url }}` becomes: the URL, else the mailto:)."""
    token = unsubscribe_token(key, message_id)  # signed once for all three
    url = unsubscribe_url(public_url, key, message_id, token) if public_url else None
    mail = unsubscribe_mailto(mailto, key, message_id, token) if mailto else None
    parts = [f"<{p}>" for p in (url, mail) if p]
    one_click = bool(public_url) and public_url.startswith("https://")
    return (", ".join(parts) or None), one_click, url or mail


def fill_unsubscribe(text: str | None, link: str | None) -> str | None:
    """The text with every UNSUBSCRIBE_URL placeholder replaced by the message's link."""
    if not text or UNSUBSCRIBE_URL not in text:
        return text
    return text.replace(UNSUBSCRIBE_URL, link or "")


def verp_address(bounce_address: str, key: bytes, message_id: int) -> str:
    """bounces+<id>-<signature>@domain for bounces@domain (the domain as given)."""
    local, domain = bounce_address.rsplit("@", 1)
    return f"{local}+{make_token(key, PURPOSE_BOUNCE, message_id, sep='-')}@{domain}"
