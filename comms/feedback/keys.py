"""The signing key and the tokens it signs: unsubscribe links and VERP bounce addresses.

A token names one message and carries an HMAC-SHA256 of it under the key, so
a link or a bounce address cannot be forged or pointed at another message.
Each use signs with its own purpose prefix ("u" for unsubscribe, "b" for
bounces), so one kind of token is never accepted as the other.

The key is COMMS_UNSUBSCRIBE_KEY when configured; else it is generated once
and kept in a key file beside the database (data/comms.duckdb ->
data/comms.key, mode 0600, git-ignored), so the CLI and the app sign alike.
It never goes into the database, the action log or any log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

from comms.errors import ConfigError
from comms.i18n import _

# comms.store (DuckDB) and the settings are imported where they are used: comms.feedback.links
# (and through it the template context, which a render worker imports) needs only the tokens.

KEY_BYTES = 32
SIGNATURE_CHARS = 20  # hex: 80 bits, short enough for an address's local part
# 12.<20 hex>: the message id and its signature (lowercase: survives a local part's case folding)
_TOKEN = re.compile(rf"(?P<id>[0-9]{{1,18}})[.-](?P<sig>[0-9a-f]{{{SIGNATURE_CHARS}}})")


class BadToken(ValueError):
    """A token that does not parse or whose signature is wrong."""


def key_path(db_path: str | os.PathLike[str] | None = None) -> Path:
    """The key file beside the database: the given one, else the one this process has open.

    With no path given, a process that has exactly one database open (the app,
    or a CLI command after --db) uses that one's, so it signs like the app
    serving the same file; otherwise $COMMS_DB or data/comms.duckdb.
    """
    from comms import store as store_module

    if db_path is None:
        open_paths = [p for p, s in list(store_module._STORES.items()) if not s._closed]
        db = open_paths[0] if len(open_paths) == 1 else store_module.resolve_db_path()
    else:
        db = store_module.resolve_db_path(db_path)
    return db.with_suffix(".key")


def _read_or_create(path: Path) -> bytes:
    """The key file's bytes, creating it (0600) when it does not exist yet.

    The new key is written to a temporary file first and then linked into
    place, which fails if another thread or process was first: nobody ever
    reads a half-written key file, and everybody ends up with the same key.
    """
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_hex(KEY_BYTES).encode() + b"\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another one was first: use theirs
        finally:
            os.unlink(tmp)
        data = path.read_bytes().strip()
    if len(data) < 32:
        raise ConfigError(
            _("The key file {path} is damaged (too short): delete it to make a new one.").format(
                path=path
            )
        )
    return data


def signing_key(db_path: str | os.PathLike[str] | None = None) -> bytes:
    """COMMS_UNSUBSCRIBE_KEY, else the key file beside the database (made on first use)."""
    from comms.sending.senders.config import FeedbackConfig

    configured = FeedbackConfig.from_settings().unsubscribe_key
    if configured:
        return configured.encode("utf-8")
    return _read_or_create(key_path(db_path))


def _signature(key: bytes, purpose: str, message_id: int) -> str:
    # hmac.digest: the one-shot C path (about 1 us; hmac.new costs 5 per e-mail built)
    mac = hmac.digest(key, f"{purpose}:{int(message_id)}".encode(), hashlib.sha256)
    return mac.hex()[:SIGNATURE_CHARS]


def make_token(key: bytes, purpose: str, message_id: int, sep: str = ".") -> str:
    """'<message id><sep><signature>' for one purpose ('u' unsubscribe, 'b' bounce)."""
    return f"{int(message_id)}{sep}{_signature(key, purpose, message_id)}"


def read_token(key: bytes, purpose: str, token: str) -> int:
    """The message id a token names; BadToken when it does not parse or is not ours."""
    match = _TOKEN.fullmatch((token or "").strip().lower())
    if not match:
        raise BadToken("not a comms token")
    message_id = int(match["id"])
    if not hmac.compare_digest(match["sig"], _signature(key, purpose, message_id)):
        raise BadToken("wrong signature")
    return message_id


def find_token(key: bytes, purpose: str, text: str) -> int | None:
    """The message id of the first valid token of `purpose` anywhere in text, else None."""
    for match in _TOKEN.finditer((text or "").lower()):
        try:
            return read_token(key, purpose, match.group(0))
        except BadToken:
            continue
    return None
