"""Template storage: create, edit, duplicate, delete and read templates, and link their files.

A template is saved only when it parses, passes the sandbox's static check and
fills in within its render budget (comms.templates.rendering), so a stored
template always compiles. Names are
unique regardless of case. Every change writes its action-log entry in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from comms import actionlog
from comms.errors import NotFound, TemplateError
from comms.i18n import _
from comms.rules.validation import CHANNELS
from comms.store import Store
from comms.templates import attachments as att
from comms.templates.rendering import (
    FORMATS,
    CompiledTemplate,
    TemplateTooCostly,
    compile_template,
    unknown_channel,
    unknown_format,
)


@dataclass
class Template:
    id: int
    name: str
    channel: str
    subject: str | None
    body: str
    body_format: str
    attachments: list[att.Attachment] = field(default_factory=list)

    def compile(self) -> CompiledTemplate:
        return compile_template(self.channel, self.subject, self.body, self.body_format)


def validate_template(
    name: str, channel: str, subject: str | None, body: str, body_format: str
) -> None:
    """Everything saving checks before it writes (TemplateError): a runaway template is
    refused here, so nothing renders for long while the write lock is held."""
    if not (name or "").strip():
        raise TemplateError(_("A template needs a name."))
    if channel not in CHANNELS:
        raise TemplateError(unknown_channel(channel))
    if body_format not in FORMATS:
        raise TemplateError(unknown_format(body_format))
    if not (body or "").strip():
        raise TemplateError(_("A template needs a body."))
    if channel == "email" and not (subject or "").strip():
        raise TemplateError(_("An e-mail template needs a subject."))
    try:
        compile_template(channel, subject, body, body_format, check_budget=True)
    except TemplateTooCostly as exc:  # over its render budget for any client
        raise TemplateError(
            _("{problem}; nothing was saved.").format(problem=str(exc).rstrip("."))
        ) from None


def _name_taken(cur: duckdb.DuckDBPyConnection, name: str, except_id: int | None) -> bool:
    row = cur.execute(
        "SELECT id FROM templates WHERE lower(name) = lower(?) AND id IS DISTINCT FROM ?",
        [name.strip(), except_id],
    ).fetchone()
    return row is not None


def _link(cur: duckdb.DuckDBPyConnection, template_id: int, attachment_ids: Iterable[int]) -> None:
    for aid in dict.fromkeys(int(a) for a in attachment_ids):
        cur.execute(
            "INSERT INTO template_attachments (template_id, attachment_id) VALUES (?, ?)",
            [template_id, aid],
        )


def create_template(
    store: Store,
    *,
    name: str,
    channel: str,
    body: str,
    subject: str | None = None,
    body_format: str = "markdown",
    attachment_ids: Iterable[int] = (),
) -> int:
    """Save a new template (only when it parses); return its id."""
    if channel == "sms":
        subject, body_format = None, "text"
    validate_template(name, channel, subject, body, body_format)
    name = name.strip()
    attachment_ids = list(attachment_ids)
    if channel == "sms" and attachment_ids:
        raise TemplateError(_("SMS templates cannot carry attachments."))

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        tid = _insert(cur, name, channel, subject, body, body_format, attachment_ids)
        actionlog.record(
            cur,
            "template create",
            detail={"template_id": tid, "name": name, "channel": channel},
        )
        return tid

    return store.write(tx)


def _ensure_name_free(cur: duckdb.DuckDBPyConnection, name: str, template_id: int | None) -> None:
    if _name_taken(cur, name, template_id):
        raise TemplateError(
            _("A template named {name!r} already exists; choose another name.").format(name=name)
        )


def _insert(
    cur: duckdb.DuckDBPyConnection,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    body_format: str,
    attachment_ids: list[int],
) -> int:
    """Insert one template row with its attachment links (names are unique); its id."""
    _ensure_name_free(cur, name, None)
    tid = cur.execute(
        "INSERT INTO templates (name, channel, subject, body, body_format)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        [name, channel, subject, body, body_format],
    ).fetchone()[0]
    _link(cur, tid, attachment_ids)
    return int(tid)


def update_template(
    store: Store,
    template_id: int,
    *,
    name: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    body_format: str | None = None,
) -> None:
    """Change a template's name / subject / body / format (only when it parses)."""
    current = get_template(store, template_id)
    new_name = (name if name is not None else current.name).strip()
    new_subject = subject if subject is not None else current.subject
    new_body = body if body is not None else current.body
    new_format = body_format or current.body_format
    if current.channel == "sms":
        new_subject, new_format = None, "text"
    validate_template(new_name, current.channel, new_subject, new_body, new_format)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        _ensure_name_free(cur, new_name, template_id)
        cur.execute(
            "UPDATE templates SET name = ?, subject = ?, body = ?, body_format = ?,"
            " updated_at = current_timestamp WHERE id = ?",
            [new_name, new_subject, new_body, new_format, template_id],
        )
        changed = [
            k
            for k, old, new in (
                ("name", current.name, new_name),
                ("subject", current.subject, new_subject),
                ("body", current.body, new_body),
                ("body_format", current.body_format, new_format),
            )
            if old != new
        ]
        actionlog.record(
            cur,
            "template edit",
            detail={"template_id": template_id, "name": new_name, "changed": changed},
        )

    store.write(tx)


def duplicate_template(store: Store, template_id: int, new_name: str | None = None) -> int:
    """Copy a template (with its attachments) under a new name; return the copy's id."""
    src = get_template(store, template_id)
    name = (new_name or "").strip()
    if not name:
        taken = {r["name"].lower() for r in store.rows("SELECT name FROM templates")}
        name, n = f"{src.name} (copy)", 2
        while name.lower() in taken:
            name, n = f"{src.name} (copy {n})", n + 1

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        tid = _insert(
            cur,
            name,
            src.channel,
            src.subject,
            src.body,
            src.body_format,
            [a.id for a in src.attachments],
        )
        actionlog.record(
            cur,
            "template duplicate",
            detail={"template_id": tid, "from_template_id": template_id, "name": name},
        )
        return tid

    return store.write(tx)


def delete_template(store: Store, template_id: int) -> None:
    """Delete a template (messages already generated from it keep their text)."""
    src = get_template(store, template_id)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute("DELETE FROM template_attachments WHERE template_id = ?", [template_id])
        cur.execute("DELETE FROM templates WHERE id = ?", [template_id])
        actionlog.record(
            cur, "template delete", detail={"template_id": template_id, "name": src.name}
        )

    store.write(tx)


def attach(store: Store, template_id: int, filename: str, data: bytes) -> int:
    """Store a file and attach it to an e-mail template; return the attachment id."""
    tpl = get_template(store, template_id)
    if tpl.channel != "email":
        raise TemplateError(_("SMS templates cannot carry attachments."))
    att.check_total([*tpl.attachments, att.Attachment(0, "", filename, "", len(data))])

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        aid = att.add_in(cur, filename, data)
        exists = cur.execute(
            "SELECT 1 FROM template_attachments WHERE template_id = ? AND attachment_id = ?",
            [template_id, aid],
        ).fetchone()
        if not exists:
            _link(cur, template_id, [aid])
        actionlog.record(
            cur,
            "template attach",
            detail={"template_id": template_id, "attachment_id": aid, "filename": filename},
        )
        return aid

    return store.write(tx)


def detach(store: Store, template_id: int, attachment_id: int) -> None:
    """Remove one attachment from a template (the stored content stays for other users)."""
    get_template(store, template_id)

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(
            "DELETE FROM template_attachments WHERE template_id = ? AND attachment_id = ?",
            [template_id, attachment_id],
        )
        actionlog.record(
            cur,
            "template detach",
            detail={"template_id": template_id, "attachment_id": attachment_id},
        )

    store.write(tx)


def _row_to_template(store: Store, row: dict) -> Template:
    return Template(
        id=int(row["id"]),
        name=row["name"],
        channel=row["channel"],
        subject=row["subject"],
        body=row["body"],
        body_format=row["body_format"],
        attachments=att.for_template(store, int(row["id"])),
    )


def get_template(store: Store, template_id: int) -> Template:
    """One template with its attachments (NotFound when it does not exist)."""
    rows = store.rows(
        "SELECT id, name, channel, subject, body, body_format FROM templates WHERE id = ?",
        [int(template_id)],
    )
    if not rows:
        raise NotFound(_("Template {id} does not exist.").format(id=template_id))
    return _row_to_template(store, rows[0])


def get_template_by_name(store: Store, name: str) -> Template:
    """One template by its (case-insensitive) name."""
    rows = store.rows(
        "SELECT id, name, channel, subject, body, body_format FROM templates"
        " WHERE lower(name) = lower(?)",
        [name.strip()],
    )
    if not rows:
        raise NotFound(
            _("No template named {name!r}. `comms templates list` shows them.").format(name=name)
        )
    return _row_to_template(store, rows[0])


def list_templates(store: Store, channel: str | None = None) -> list[dict]:
    """Every template (optionally one channel) with its attachment count, by name."""
    sql = (
        "SELECT t.id, t.name, t.channel, t.subject, t.body_format, t.updated_at,"
        " (SELECT count(*) FROM template_attachments ta WHERE ta.template_id = t.id)"
        " AS attachments, length(t.body) AS body_length FROM templates t"
    )
    params: list[Any] = []
    if channel:
        sql += " WHERE t.channel = ?"
        params.append(channel)
    sql += " ORDER BY lower(t.name)"
    return store.rows(sql, params)


def save_as_template(
    store: Store,
    *,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    body_format: str = "markdown",
    attachment_ids: Iterable[int] = (),
    template_id: int | None = None,
) -> int:
    """Store a send's text as a template: update template_id, or create a new one."""
    if template_id is None:
        return create_template(
            store,
            name=name,
            channel=channel,
            subject=subject,
            body=body,
            body_format=body_format,
            attachment_ids=attachment_ids,
        )
    update_template(
        store, template_id, name=name, subject=subject, body=body, body_format=body_format
    )
    return template_id
