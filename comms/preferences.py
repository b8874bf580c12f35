"""A signed-in person's own choices, kept in the store's `settings` table (today: the language)."""

from __future__ import annotations

from comms import i18n
from comms.store import Store


def _language_key(user: str) -> str:
    return f"language:{user}"


def saved_language(store: Store, user: str | None) -> str | None:
    """The language a signed-in user chose last time, if any (and still one we have)."""
    if not user:
        return None
    value = store.scalar("SELECT value FROM settings WHERE key = ?", [_language_key(user)])
    return i18n.normalise(value)


def save_language(store: Store, user: str, lang: str) -> None:
    """Remember a signed-in user's language (one row per user)."""
    key = _language_key(user)

    def write(cur) -> None:
        cur.execute("DELETE FROM settings WHERE key = ?", [key])
        cur.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [key, lang])

    store.write(write)
