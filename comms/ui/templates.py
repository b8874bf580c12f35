"""The Templates page: list, create, edit, duplicate, delete, attachments, live preview."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from comms import i18n
from comms import templates as tpl
from comms.errors import CommsError
from comms.i18n import N_, _, ngettext
from comms.store import Store
from comms.ui.common import CHANNEL_LABELS, FORMAT_LABELS, md_escape
from comms.ui.widgets import attachments as attachments_ui
from comms.ui.widgets.sms_counter import sms_counter

NEW = 0  # the "new template" choice in the picker
EDITOR_KEYS = ("tpl_name", "tpl_channel", "tpl_subject", "tpl_format", "tpl_body")
# A new template's starting subject and body (msgids: written in the viewer's language).
STARTER = (N_("Hello {{ first_name }}"), N_("Dear {{ name }},\n\n…\n\nKind regards"))


def _load_editor(store: Store, template_id: int) -> None:
    """Put a template (or a blank one) into the editor's widgets."""
    if template_id == NEW:
        subject, body = STARTER
        values = {
            "tpl_name": "",
            "tpl_channel": "email",
            "tpl_subject": _(subject),
            "tpl_format": "markdown",
            "tpl_body": _(body),
        }
    else:
        t = tpl.get_template(store, template_id)
        values = {
            "tpl_name": t.name,
            "tpl_channel": t.channel,
            "tpl_subject": t.subject or "",
            "tpl_format": t.body_format,
            "tpl_body": t.body,
        }
    for key in EDITOR_KEYS:
        st.session_state[key] = values[key]
    st.session_state["tpl_loaded"] = template_id


def _flash(text: str) -> None:
    st.session_state["tpl_flash"] = text


def picker(store: Store) -> int:
    """The template list and the choice of which one to edit; returns its id (0 = new)."""
    rows = tpl.list_templates(store)
    if rows:
        frame = pd.DataFrame(rows)[["name", "channel", "subject", "attachments", "updated_at"]]
        frame["channel"] = frame["channel"].map(CHANNEL_LABELS)
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            key="tpl_table",
            placeholder="",  # an SMS has no subject
            column_config={
                "name": _("Name"),
                "channel": _("Channel"),
                "subject": _("Subject"),
                "attachments": st.column_config.NumberColumn(_("Attachments"), format="%d"),
                "updated_at": st.column_config.DatetimeColumn(
                    _("Last changed"), format=i18n.TABLE_DATETIME[i18n.language()]
                ),
            },
        )
    else:
        st.info(_("No templates yet. Write the first one below."), icon=":material/description:")
    names = {int(r["id"]): f"{r['name']} ({CHANNEL_LABELS[r['channel']]})" for r in rows}
    options = [NEW, *names]
    # A programmatic choice (after create / duplicate / delete) is applied before
    # the widget is drawn: Streamlit refuses changes to a drawn widget's state.
    pending = st.session_state.pop("tpl_pending", None)
    if pending is not None:
        st.session_state["tpl_select"] = pending
    if st.session_state.get("tpl_select") not in options:
        st.session_state["tpl_select"] = NEW
    chosen = st.selectbox(
        _("Template to edit"),
        options,
        format_func=lambda i: _("(write a new template)") if i == NEW else names[i],
        key="tpl_select",
    )
    if st.session_state.get("tpl_loaded") != chosen:
        _load_editor(store, chosen)
    return chosen


def _check(channel: str, subject: str | None, body: str, fmt: str) -> tuple[Any, str | None]:
    try:
        return tpl.compile_template(channel, subject, body, fmt), None
    except CommsError as exc:
        return None, str(exc)


def editor(store: Store, template_id: int) -> None:
    """Fields, live check, preview and the save / duplicate / delete actions."""
    flash = st.session_state.pop("tpl_flash", None)
    if flash:
        st.success(flash, icon=":material/check:")
    left, right = st.columns([3, 2])
    with left:
        st.text_input(_("Name"), key="tpl_name", placeholder=_("e.g. Spring offer"))
        channel = st.radio(
            _("Channel"),
            list(CHANNEL_LABELS),
            format_func=CHANNEL_LABELS.get,
            horizontal=True,
            key="tpl_channel",
            disabled=template_id != NEW,
        )
        subject = None
        fmt = "text"
        if channel == "email":
            subject = st.text_input(_("Subject"), key="tpl_subject")
            fmt = st.selectbox(
                _("Body format"),
                list(FORMAT_LABELS),
                format_func=FORMAT_LABELS.get,
                key="tpl_format",
            )
        body = st.text_area(
            _("Body"),
            key="tpl_body",
            height=300,
            help=_("Jinja2 placeholders: {placeholders}").format(
                placeholders="{{ name }}, {{ city }}, {{ points }} … "
                "{% if vip is defined %}…{% endif %}, {{ city | default('') }}"
            ),
        )
        compiled, error = _check(channel, subject, body, fmt)
        if error:
            st.error(error, icon=":material/error:")
        elif compiled.fields:
            st.caption(
                _("Fields used:") + " " + ", ".join(f"`{f}`" for f in sorted(compiled.fields))
            )
        if channel == "sms":
            sms_counter(body, label=_("Template text"))
        _actions(store, template_id, channel, subject, body, fmt, error)
    with right:
        client = _client_picker(store)
        if client is not None:
            _fields_table(client)
            if compiled is not None:
                _preview(compiled, client)
    if template_id != NEW and channel == "email":
        attachments_panel(store, template_id)


def _actions(
    store: Store,
    template_id: int,
    channel: str,
    subject: str | None,
    body: str,
    fmt: str,
    error: str | None,
) -> None:
    name = st.session_state.get("tpl_name", "")
    row = st.container(horizontal=True)
    if row.button(
        _("Create template") if template_id == NEW else _("Save changes"),
        type="primary",
        icon=":material/save:",
        disabled=error is not None,
        key="tpl_save",
    ):
        try:
            if template_id == NEW:
                tid = tpl.create_template(
                    store, name=name, channel=channel, subject=subject, body=body, body_format=fmt
                )
                st.session_state["tpl_pending"] = tid
                st.session_state["tpl_loaded"] = tid
                _flash(_("Template “{name}” created.").format(name=name.strip()))
            else:
                tpl.update_template(
                    store, template_id, name=name, subject=subject, body=body, body_format=fmt
                )
                _flash(_("Template “{name}” saved.").format(name=name.strip()))
        except CommsError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if template_id == NEW:
        return
    if row.button(_("Duplicate"), icon=":material/content_copy:", key="tpl_duplicate"):
        tid = tpl.duplicate_template(store, template_id)
        st.session_state["tpl_pending"] = tid
        _flash(_("Copied as “{name}”.").format(name=tpl.get_template(store, tid).name))
        st.rerun()
    with row.popover(_("Delete"), icon=":material/delete:"):
        st.caption(_("Messages already generated from it keep their text."))
        if st.button(_("Delete this template"), type="primary", key="tpl_delete"):
            tpl.delete_template(store, template_id)
            st.session_state["tpl_pending"] = NEW
            _flash(_("Template “{name}” deleted.").format(name=name))
            st.rerun()


def _client_picker(store: Store) -> dict | None:
    rows = tpl.preview_clients(store)
    if not rows:
        st.caption(_("Import clients to see the fields and a preview with real values."))
        return None
    labels = {r["id"]: f"{r['name'] or _('(no name)')} · {r['email'] or ''}" for r in rows}
    cid = st.selectbox(
        _("Preview for client"), list(labels), format_func=labels.get, key="tpl_preview_client"
    )
    return tpl.sample_client(store, cid)


def _fields_table(client: dict) -> None:
    ctx = tpl.context_for(client)
    shown = [
        {"field": "{{ " + k + " }}", "value": ", ".join(v) if isinstance(v, list) else str(v)}
        for k, v in ctx.items()
        if k.isidentifier()
    ]
    with st.expander(_("Available fields (values of this client)")):
        st.dataframe(
            pd.DataFrame(shown),
            hide_index=True,
            width="stretch",
            placeholder="",
            column_config={"field": _("field"), "value": _("value")},
        )
        missing = [f for f in tpl.CLIENT_FIELDS if f not in ctx]
        if missing:
            st.caption(_("Empty for this client:") + " " + ", ".join(missing))


def _preview(compiled: tpl.CompiledTemplate, client: dict) -> None:
    st.markdown("**" + _("Preview") + "**")
    try:
        r = tpl.render_preview(compiled, tpl.context_for(client))
    except CommsError as exc:
        st.warning(_("For this client: {error}").format(error=exc), icon=":material/warning:")
        return
    with st.container(border=True):
        if compiled.channel == "email":
            st.markdown("**" + _("Subject:") + f"** {md_escape(r.subject or '')}")
            st.html(r.html or "")
        else:
            st.text(r.text)
            sms_counter(r.text, label=_("This client's SMS"))


def attachments_panel(store: Store, template_id: int) -> None:
    """The template's attachments: list, remove, upload."""
    st.subheader(_("Attachments"))
    t = tpl.get_template(store, template_id)
    attachments_ui.usage_caption(t.attachments, _("Sent with every message from this template."))
    removed = attachments_ui.file_rows(t.attachments, key_prefix="tpl_detach")
    if removed is not None:
        tpl.detach(store, template_id, removed)
        st.rerun()
    round_ = st.session_state.get("tpl_upload_round", 0)
    uploads = attachments_ui.uploader(_("Add files"), key=f"tpl_upload_{template_id}_{round_}")
    if uploads and st.button(_("Attach"), icon=":material/upload:", key="tpl_attach"):
        try:
            for u in uploads:
                tpl.attach(store, template_id, u.name, u.getvalue())
        except CommsError as exc:
            st.error(str(exc))
        else:
            st.session_state["tpl_upload_round"] = round_ + 1
            _flash(
                ngettext("{n} file attached.", "{n} files attached.", len(uploads)).format(
                    n=len(uploads)
                )
            )
            st.rerun()


def render(store: Store) -> None:
    """The whole Templates page."""
    st.title(_("Templates"))
    st.caption(
        _("E-mail (Markdown, HTML or text) and SMS templates with {placeholders}.").format(
            placeholders="{{ placeholders }}"
        )
    )
    template_id = picker(store)
    st.divider()
    editor(store, template_id)
