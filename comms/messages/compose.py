"""One message for one client: compose (from a template or blank), copy to a draft, send.

A composed message is rendered with the client's fields, checked (the
recipient rule of comms.rules.recipients, attachments) and stored as a `draft`
through comms.outbox.create with its source ('client detail' from the app,
'cli' from the command line). "Send now" then hands it to `comms.outbox.queue`,
the only place that moves statuses. Nothing is stored when any check fails:
the caller gets one clear message. A draft is changed with the one editor,
comms.messages.editor.edit_message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from comms import actionlog, outbox, templates
from comms.clients.profile import load_client
from comms.errors import CommsError, NotFound
from comms.i18n import _
from comms.outbox.create import DRAFT, SOURCE_DETAIL, insert_messages
from comms.rules.recipients import address_key, check_recipient
from comms.rules.sms import sms_info, to_gsm7
from comms.rules.validation import (
    CHANNEL_NAMES,
    INVALID_EMAIL,
    INVALID_PHONE,
    NO_CONSENT,
    NO_EMAIL,
    NO_PHONE,
    NOT_MOBILE,
    OPTED_OUT,
)
from comms.store import Store
from comms.templates import attachments as att


@dataclass(frozen=True)
class Composed:
    """A stored message: its id, status and what it costs as SMS (when it is one)."""

    message_id: int
    status: str
    channel: str
    to_address: str
    segments: int | None = None
    encoding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "status": self.status,
            "channel": self.channel,
            "to_address": self.to_address,
            "segments": self.segments,
            "encoding": self.encoding,
        }


# -- templates -------------------------------------------------------------------


def get_template(store: Store, *, template_id: int | None = None, name: str | None = None) -> dict:
    """A template by id or (case-insensitive) name, with its attachment ids."""
    if template_id is not None:
        tpl = templates.get_template(store, int(template_id))
    else:
        tpl = templates.get_template_by_name(store, name or "")
    return {
        "id": tpl.id,
        "name": tpl.name,
        "channel": tpl.channel,
        "subject": tpl.subject,
        "body": tpl.body,
        "body_format": tpl.body_format,
        "attachment_ids": [a.id for a in tpl.attachments],
    }


def list_templates(store: Store, channel: str | None = None) -> list[dict]:
    """Templates for a picker: id, name, channel, ..."""
    return templates.list_templates(store, channel)


def client_context(client: dict[str, Any]) -> dict[str, Any]:
    """The fields a template sees for one client (comms.templates' rules)."""
    return templates.client_context(client, client.get("attributes") or {})


def render(
    channel: str, subject: str | None, body: str, body_format: str, ctx: dict[str, Any]
) -> tuple[str | None, str, str | None]:
    """(subject, text body, HTML body or None) of one message for one client.

    Raises TemplateError naming the problem (syntax with its line, a missing
    field, a sandbox refusal); nothing is stored then.
    """
    compiled = templates.compile_template(channel, subject, body, body_format or "markdown")
    out = templates.render_preview(compiled, ctx)
    return out.subject, out.text, out.html


# -- compose -------------------------------------------------------------------


def _check_channel(channel: str) -> None:
    if channel not in CHANNEL_NAMES:
        raise CommsError(
            _("channel: must be 'email' or 'sms', not {channel!r}.").format(channel=channel)
        )


def recipient(client: dict[str, Any], channel: str) -> str:
    """The client's address for the channel (comms.rules.recipients), or a clear error why not."""
    who = client.get("name") or _("client {id}").format(id=client["id"])
    label = _(CHANNEL_NAMES[channel])
    raw = client.get("email") if channel == "email" else client.get("phone")
    known = client.get("email_valid") if channel == "email" else client.get("phone_kind")
    listed = (client.get("suppressed") or {}).get(channel)
    address, reason, detail = check_recipient(
        channel,
        raw,
        known,
        consent=bool(client.get(f"consent_{channel}")),
        suppressed={address_key(channel, listed["address"])} if listed else (),
    )
    if reason is None:
        return address
    # The sentences name the reasons of comms.rules.validation (NOT_MOBILE, OPTED_OUT,
    # NO_CONSENT) in their words; the suppression's reason is a stored code, shown translated.
    why = (listed or {}).get("reason")
    sentences = {
        NO_EMAIL: _("{who} has no e-mail address. Add one in the client's details.").format(
            who=who
        ),
        INVALID_EMAIL: _(
            "{who}'s e-mail {raw} is not valid. Correct it in the client's details."
        ).format(who=who, raw=repr(raw)),
        NO_PHONE: _("{who} has no phone number. Add one in the client's details.").format(who=who),
        INVALID_PHONE: _(
            "{who}'s phone {raw} is not a valid number. Correct it in the client's details."
        ).format(who=who, raw=repr(raw)),
        NOT_MOBILE: _(
            "{who}'s phone {address} is not a mobile number ({detail}); an SMS cannot be sent to it."
        ).format(who=who, address=address, detail=detail),
        OPTED_OUT: _(
            "{who} is opted out of {channel} ({address} is on the suppression list: {reason})."
        ).format(
            who=who,
            channel=label,
            address=address,
            reason=_(why) if why else _("no reason given"),
        ),
        NO_CONSENT: _(
            "{who} has no consent for {channel}. Give consent back in the client's details first."
        ).format(who=who, channel=label),
    }
    other = _("{who} cannot get this {channel}: {problem}.")
    raise CommsError(
        sentences.get(reason) or other.format(who=who, channel=label, problem=detail or _(reason))
    )


def compose(
    store: Store,
    *,
    client_id: int,
    channel: str,
    subject: str | None = None,
    body: str = "",
    body_format: str = "markdown",
    template_id: int | None = None,
    attachment_ids: Sequence[int] = (),
    gsm7: bool = False,
    send: bool = False,
    source: str = SOURCE_DETAIL,
) -> Composed:
    """Render, check and store one message for one client as a draft; queue it when send."""
    _check_channel(channel)
    if not (body or "").strip():
        raise CommsError(_("body: the message is empty. Write something or choose a template."))
    if channel == "email" and not (subject or "").strip():
        raise CommsError(_("subject: an e-mail needs a subject."))
    client = load_client(store, client_id)
    to_address = recipient(client, channel)
    subj, text, html = render(channel, subject, body, body_format, client_context(client))
    if subj is not None and any(c in subj for c in "\r\n"):
        raise CommsError(_("subject: must be one line (it became several after rendering)."))
    segments = encoding = None
    if channel == "sms":
        if gsm7:
            text = to_gsm7(text)
        info = sms_info(text)
        segments, encoding = info.segments, info.encoding
        attachment_ids = ()
    files = att.get_attachments(store, attachment_ids)
    att.check_total(files)

    row = {
        "client_id": int(client_id),
        "channel": channel,
        "source": source,
        "to_address": to_address,
        "to_name": client.get("name"),
        "subject": subj,
        "body_text": text,
        "body_html": html,
        "status": DRAFT,
        "segments": segments,
        "encoding": encoding,
    }

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        (mid,) = insert_messages(cur, [row], attachment_ids=[f.id for f in files])
        actionlog.record(
            cur,
            "compose",
            message_id=mid,
            client_id=int(client_id),
            detail={
                "channel": channel,
                "source": source,
                "template_id": template_id,
                "attachments": [f.filename for f in files],
                "segments": segments,
            },
        )
        return mid

    mid = store.write(write)
    status = DRAFT
    if send:
        outbox.queue(store, message_ids=[mid])
        status = outbox.get_message(store, mid)["status"]
    return Composed(mid, status, channel, to_address, segments, encoding)


def copy_to_draft(store: Store, message_id: int, *, source: str = SOURCE_DETAIL) -> int:
    """A new draft with the content and attachments of any message; returns its id.

    A client's message is copied to the client's current address, checked like
    a composed one (it may have been corrected, or the client may have opted
    out since): nothing is stored when the client cannot receive it. A message
    without a client (a test) keeps its address.
    """
    msg = outbox.get_message(store, message_id)
    to_address = msg["to_address"]
    if msg["client_id"] is not None:
        try:
            client = load_client(store, msg["client_id"])
        except NotFound:
            pass  # the client was deleted: the address as it was
        else:
            to_address = recipient(client, msg["channel"])
    row = {
        "client_id": msg["client_id"],
        "channel": msg["channel"],
        "source": source,
        "to_address": to_address,
        "to_name": msg["to_name"],
        "subject": msg["subject"],
        "body_text": msg["body_text"],
        "body_html": msg["body_html"],
        "status": DRAFT,
        "segments": msg["segments"],
        "encoding": msg["encoding"],
    }

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        files = [
            r[0]
            for r in cur.execute(
                "SELECT attachment_id FROM message_attachments WHERE message_id = ?",
                [int(message_id)],
            ).fetchall()
        ]
        (new_id,) = insert_messages(cur, [row], attachment_ids=files)
        actionlog.record(
            cur,
            "copy to draft",
            message_id=new_id,
            client_id=msg["client_id"],
            detail={"copied_from": int(message_id)},
        )
        return new_id

    return store.write(write)


def send_drafts(store: Store, message_ids: Iterable[int]) -> int:
    """Queue drafts to go now; returns how many were queued (non-drafts are refused)."""
    ids = [int(i) for i in message_ids]
    if not ids:
        return 0
    return outbox.queue(store, message_ids=ids)
