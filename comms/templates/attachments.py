"""Attachments stored once by content hash and linked to templates, batches and messages.

One row in `attachments` per distinct content (sha256): the same PDF uploaded
for ten templates, or carried by 100,000 messages, is stored once.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from comms import i18n
from comms.config import int_setting
from comms.errors import CommsError, NotFound
from comms.i18n import _
from comms.store import Store


@dataclass(frozen=True)
class Attachment:
    id: int
    sha256: str
    filename: str
    content_type: str
    size: int


def max_message_bytes() -> int:
    """Largest total attachment size per message (COMMS_MAX_ATTACHMENT_MB, default 10)."""
    return int_setting("COMMS_MAX_ATTACHMENT_MB", "comms", "max_attachment_mb", 10) * 1024 * 1024


def human_size(size: int) -> str:
    """A file size in the viewer's language: i18n.size ('1,2 MB' in Czech); in English
    the form it has always had ('1.2 MB', '1.0 MB', '340 kB', '12 B')."""
    if i18n.language() != i18n.DEFAULT:
        return i18n.size(size)
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} kB"
    return f"{size} B"


def guess_type(filename: str) -> str:
    """Content type from the file name (application/octet-stream when unknown)."""
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _clean_name(filename: str) -> str:
    # Only the last path component, without line breaks (it ends up in a header).
    name = Path(str(filename).replace("\\", "/")).name
    name = "".join(c for c in name if c not in "\r\n\t\x00").strip()
    if not name:
        raise CommsError(_("An attachment needs a file name."))
    return name


def add_in(cur: duckdb.DuckDBPyConnection, filename: str, data: bytes) -> int:
    """Store content (once per sha256) inside the caller's transaction; return its id."""
    filename = _clean_name(filename)
    limit = max_message_bytes()
    if len(data) > limit:
        raise CommsError(
            _(
                "{file} is {size}; the limit per message is {limit} (COMMS_MAX_ATTACHMENT_MB)."
            ).format(file=filename, size=human_size(len(data)), limit=human_size(limit))
        )
    digest = hashlib.sha256(data).hexdigest()
    row = cur.execute(
        "SELECT id FROM attachments WHERE sha256 = ? AND filename = ? ORDER BY id LIMIT 1",
        [digest, filename],
    ).fetchone()
    if row:
        return int(row[0])
    # Same content under another name: a new row (the name is what the recipient sees).
    return int(
        cur.execute(
            "INSERT INTO attachments (sha256, filename, content_type, size, data)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            [digest, filename, guess_type(filename), len(data), data],
        ).fetchone()[0]
    )


def add_attachment(store: Store, filename: str, data: bytes) -> int:
    """Store an uploaded file (deduplicated by content and name) and return its id."""
    return store.write(lambda cur: add_in(cur, filename, data))


def add_file(store: Store, path: str | Path) -> int:
    """Store a file from disk and return its id."""
    p = Path(path)
    if not p.is_file():
        raise CommsError(_("Attachment {file} does not exist.").format(file=p))
    return add_attachment(store, p.name, p.read_bytes())


def get_attachments(store: Store, ids: Iterable[int]) -> list[Attachment]:
    """Metadata (not content) of attachments, in the order asked."""
    ids = [int(i) for i in ids]
    if not ids:
        return []
    rows = store.rows(
        "SELECT id, sha256, filename, content_type, size FROM attachments WHERE id IN "
        f"({', '.join('?' * len(ids))})",
        ids,
    )
    by_id = {r["id"]: Attachment(**r) for r in rows}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise NotFound(_("Attachment {file} does not exist.").format(file=missing[0]))
    return [by_id[i] for i in ids]


def attachment_data(store: Store, attachment_id: int) -> bytes:
    """The stored content of one attachment."""
    data = store.scalar("SELECT data FROM attachments WHERE id = ?", [attachment_id])
    if data is None:
        raise NotFound(_("Attachment {file} does not exist.").format(file=attachment_id))
    return bytes(data)


def total_size(attachments: Iterable[Attachment]) -> int:
    return sum(a.size for a in attachments)


def check_total(attachments: list[Attachment]) -> None:
    """Raise when the attachments together exceed the per-message limit."""
    total, limit = total_size(attachments), max_message_bytes()
    if total > limit:
        raise CommsError(
            _(
                "Attachments total {size}; the limit per message is {limit} "
                "(COMMS_MAX_ATTACHMENT_MB). Remove some files."
            ).format(size=human_size(total), limit=human_size(limit))
        )


def for_template(store: Store, template_id: int) -> list[Attachment]:
    """A template's attachments."""
    rows = store.rows(
        "SELECT a.id, a.sha256, a.filename, a.content_type, a.size FROM template_attachments t"
        " JOIN attachments a ON a.id = t.attachment_id WHERE t.template_id = ? ORDER BY a.id",
        [template_id],
    )
    return [Attachment(**r) for r in rows]


def for_message(store: Store, message_id: int) -> list[Attachment]:
    """A message's attachments."""
    rows = store.rows(
        "SELECT a.id, a.sha256, a.filename, a.content_type, a.size FROM message_attachments m"
        " JOIN attachments a ON a.id = m.attachment_id WHERE m.message_id = ? ORDER BY a.id",
        [message_id],
    )
    return [Attachment(**r) for r in rows]
