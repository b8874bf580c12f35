"""The client detail's pieces: pick a client, its fields, edit, opt-out, compose one
message, and the client's communication. Also the "open client detail" helper that
every table showing a client uses.

Writes go through comms.clients.profile (edits, opt-outs) and comms.messages.compose (compose);
button actions run as callbacks so inputs can be cleared after a success.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from comms.clients import profile, search_clients
from comms.errors import CommsError
from comms.feedback import queries as feedback_queries
from comms.i18n import N_, TABLE_DATETIME, _, format_datetime, language, size
from comms.messages import compose, history
from comms.rules.sms import max_segments, sms_info, split_segments, to_gsm7
from comms.sending import dispatcher
from comms.store import Store
from comms.templates import attachments as att
from comms.ui import communication as comm_ui
from comms.ui.common import CHANNEL_LABELS, FORMAT_LABELS, number, set_flash, show_flash, shown_code
from comms.ui.widgets import attachments as attachments_ui
from comms.ui.widgets.sms_counter import ucs2_hint
from comms.ui.widgets.tables import id_table

CLIENT_PAGE = "pages/client.py"
COMM_PAGE = "pages/communication.py"
FLASH = "cd_flash"
HISTORY_ROWS = 500
HISTORY_KEY = "cd_history"
BLANK = 0  # the template picker's "blank message": a None value reads "Choose an option"
# The edited fields (profile.update_client's keys), named in the "Saved: ..." outcome.
FIELD_LABELS = {
    "name": N_("Name"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "company": N_("Company"),
    "city": N_("City"),
    "consent_email": N_("E-mail consent"),
    "consent_sms": N_("SMS consent"),
    "tags": N_("Tags"),
    "attributes": N_("Attributes"),
}
# Stored reasons this page writes or falls back to (codes, translated when shown).
N_("client asked to stop")
CONSENT_WITHDRAWN = N_("consent withdrawn")


# -- navigation helpers (for every page that shows a client) ---------------------------


def switch(page: str) -> None:
    """st.switch_page, or a note when the page runs alone (outside app.py's navigation)."""
    try:
        st.switch_page(page)
    except StreamlitAPIException:
        st.info(_("Saved; open {page} to continue.").format(page=page))


def open_client_detail(client_id: int) -> None:
    """Go to the client's detail page."""
    st.session_state["comms_client_id"] = int(client_id)
    switch(CLIENT_PAGE)


def show_communication(client_id: int) -> None:
    """Go to the Communication list narrowed to this client."""
    st.session_state["comms_comm_client_id"] = int(client_id)
    switch(COMM_PAGE)


def current_client_id() -> int | None:
    """The client to show: session state, else ?client=ID (kept in the URL for sharing)."""
    return comm_ui.client_id_from("comms_client_id")


def forget_client() -> None:
    """Back to the client picker (a callback)."""
    st.session_state.pop("comms_client_id", None)
    if "client" in st.query_params:
        del st.query_params["client"]


def flash() -> None:
    """Show (once) the outcome of the last action."""
    show_flash(FLASH)


# -- picking a client ---------------------------------------------------------------


def client_picker(store: Store) -> None:
    """Search clients by id, name, e-mail or phone and open one."""
    st.info(_("Choose a client to see and edit their details and write to them."))
    text = st.text_input(
        _("Find a client"), key="cd_pick_search", placeholder=_("id, name, e-mail or phone")
    )
    found = search_clients(store, text)
    if found.empty:
        st.warning(
            _("No client matches.") if text else _("There are no clients yet: upload a list first.")
        )
        return
    picked = id_table(
        found,
        [int(i) for i in found["id"]],
        key="cd_pick_table",
        multi=False,
        hide_index=True,
        placeholder="",
        column_config={
            "id": st.column_config.NumberColumn(_("ID"), format="%d", width="small"),
            "name": _("Name"),
            "email": _("E-mail"),
            "phone": _("Phone"),
            "city": _("City"),
        },
    )
    if st.button(_("Open client detail"), type="primary", disabled=not picked, key="cd_pick_open"):
        st.session_state["comms_client_id"] = int(picked[0])
        st.rerun()


# -- the client's fields ------------------------------------------------------------


def _when(value: Any) -> str:
    """A stored timestamp in the viewer's date format ("" for none)."""
    if value is None or value is pd.NaT:
        return ""
    return format_datetime(pd.Timestamp(value).to_pydatetime())


def header(client: dict[str, Any]) -> None:
    """Name, badges and the ways out."""
    st.title(client["name"] or _("(no name)"))
    badges = st.container(horizontal=True)
    with badges:
        if client.get("email"):
            ok = client.get("email_valid")
            st.badge(
                _("valid e-mail") if ok else _("invalid e-mail"),
                color="green" if ok else "red",
                icon=":material/mail:",
            )
        kind = client.get("phone_kind")
        if client.get("phone"):
            mobile = kind in ("mobile", "fixed_line_or_mobile")
            st.badge(
                _("mobile") if mobile else shown_code(kind or "phone"),
                color="green" if mobile else "orange",
                icon=":material/smartphone:",
            )
        for channel, label in (("email", _("opted out of e-mail")), ("sms", _("opted out of SMS"))):
            if client["suppressed"].get(channel) or not client.get(f"consent_{channel}"):
                st.badge(label, color="red", icon=":material/block:")
    st.caption(
        _("Client {id} · added {added} · updated {updated}").format(
            id=client["id"],
            added=_when(client["created_at"]),
            updated=_when(client["updated_at"]),
        )
    )
    with st.container(horizontal=True):
        if st.button(
            _("Show communication"),
            icon=":material/forum:",
            key="cd_show_comm",
        ):
            show_communication(client["id"])
        st.button(
            _("Choose another client"),
            icon=":material/person_search:",
            key="cd_forget",
            on_click=forget_client,
        )


def fields(client: dict[str, Any]) -> None:
    """The client's fields, read-only."""
    email = client.get("email") or "—"
    if client.get("email") and not client.get("email_valid"):
        email += " " + _("(invalid: {error})").format(
            error=shown_code(client.get("email_error")) or _("check it")
        )
    phone = client.get("phone") or "—"
    if client.get("phone"):
        phone += f" ({shown_code(client.get('phone_kind') or 'unknown')})"
    yes, no = _("yes"), _("no")
    rows = {
        _("E-mail"): email,
        _("Phone"): phone,
        _("Company"): client.get("company") or "—",
        _("City"): client.get("city") or "—",
        _("Lists"): ", ".join(client.get("lists") or []) or "—",
        _("Tags"): ", ".join(client.get("tags") or []) or "—",
        _("E-mail consent"): yes if client.get("consent_email") else no,
        _("SMS consent"): yes if client.get("consent_sms") else no,
    }
    st.markdown("  \n".join(f"**{k}:** {v}" for k, v in rows.items()))
    attrs = client.get("attributes") or {}
    if attrs:
        st.markdown("**" + _("Attributes") + "**")
        st.dataframe(
            pd.DataFrame({_("Field"): list(attrs), _("Value"): [str(v) for v in attrs.values()]}),
            hide_index=True,
            key="cd_attrs_view",
            placeholder="",
        )


def _edit_version() -> int:
    return int(st.session_state.get("cd_edit_version", 0))


def edit_form(store: Store, client: dict[str, Any]) -> None:
    """Edit name, addresses, consent, tags and attributes; addresses are re-validated."""
    v = f"{client['id']}_{_edit_version()}"
    attrs = client.get("attributes") or {}
    with st.form(f"cd_edit_{v}"):
        name = st.text_input(_("Name"), value=client.get("name") or "", key=f"cd_e_name_{v}")
        # One field per line: the form sits in the narrow left column.
        email = st.text_input(_("E-mail"), value=client.get("email") or "", key=f"cd_e_email_{v}")
        phone = st.text_input(_("Phone"), value=client.get("phone") or "", key=f"cd_e_phone_{v}")
        company = st.text_input(
            _("Company"), value=client.get("company") or "", key=f"cd_e_company_{v}"
        )
        city = st.text_input(_("City"), value=client.get("city") or "", key=f"cd_e_city_{v}")
        consents = st.container(horizontal=True)
        consent_email = consents.checkbox(
            _("E-mail consent"), value=bool(client.get("consent_email")), key=f"cd_e_ce_{v}"
        )
        consent_sms = consents.checkbox(
            _("SMS consent"), value=bool(client.get("consent_sms")), key=f"cd_e_cs_{v}"
        )
        tags = st.text_input(
            _("Tags"),
            value=", ".join(client.get("tags") or []),
            help=_("Separated by commas."),
            key=f"cd_e_tags_{v}",
        )
        st.caption(_("Attributes (every other column of the imported list; used in templates)"))
        edited = st.data_editor(
            pd.DataFrame(
                {"Field": list(attrs), "Value": [str(x) for x in attrs.values()]},
                columns=["Field", "Value"],
            ).astype(str),
            num_rows="dynamic",
            hide_index=True,
            key=f"cd_e_attrs_{v}",
            width="stretch",
            placeholder="",
            column_config={"Field": _("Field"), "Value": _("Value")},
        )
        submitted = st.form_submit_button(_("Save changes"), type="primary", icon=":material/save:")
    if not submitted:
        return
    changes: dict[str, Any] = {}
    if name != (client.get("name") or ""):
        changes["name"] = name
    if email.strip() != (client.get("email") or ""):
        changes["email"] = email
    if phone.strip() != (client.get("phone") or ""):
        changes["phone"] = phone
    if company != (client.get("company") or ""):
        changes["company"] = company
    if city != (client.get("city") or ""):
        changes["city"] = city
    if consent_email != bool(client.get("consent_email")):
        changes["consent_email"] = consent_email
    if consent_sms != bool(client.get("consent_sms")):
        changes["consent_sms"] = consent_sms
    if tags != ", ".join(client.get("tags") or []):
        changes["tags"] = tags
    new_attrs = _attributes_from_editor(edited, attrs)
    if new_attrs != attrs:
        changes["attributes"] = new_attrs
    if not changes:
        st.info(_("Nothing changed."))
        return
    try:
        diff = profile.update_client(store, client["id"], changes)
    except CommsError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.session_state["cd_edit_version"] = _edit_version() + 1
    changed = list(diff)
    set_flash(
        FLASH,
        "success",
        lambda: _("Saved: {fields}.").format(
            fields=", ".join(_(FIELD_LABELS[f]) if f in FIELD_LABELS else f for f in changed)
            or _("no change")
        ),
    )
    st.rerun()


def _attributes_from_editor(edited: pd.DataFrame, original: dict[str, Any]) -> dict[str, Any]:
    """The editor's rows as a dict; values left as they were keep their original type."""
    out: dict[str, Any] = {}
    for _i, row in edited.iterrows():
        key = row.get("Field")
        if key is None or (isinstance(key, float) and key != key) or not str(key).strip():
            continue
        key = str(key).strip()
        value = row.get("Value")
        value = "" if value is None or (isinstance(value, float) and value != value) else value
        if key in original and str(original[key]) == str(value):
            value = original[key]
        out[key] = value
    return out


def opt_out_panel(store: Store, client: dict[str, Any]) -> None:
    """Per channel: opt out with a reason, or opt back in."""
    # One channel under the other: side by side they cut the buttons short in this column.
    for channel in ("email", "sms"):
        with st.container():
            supp = client["suppressed"].get(channel)
            consent = bool(client.get(f"consent_{channel}"))
            address = profile.client_address(client, channel)
            if consent and not supp:
                st.markdown(
                    _("**{channel}:** receives messages").format(channel=CHANNEL_LABELS[channel])
                )
                typed = st.text_input(
                    _("Reason"),
                    value=_(profile.DEFAULT_OPT_OUT_REASON),
                    key=f"cd_optout_reason_{channel}",
                )
                # Left as filled in: stored as the code, shown in the viewer's language.
                reason = (
                    profile.DEFAULT_OPT_OUT_REASON
                    if typed.strip() in ("", _(profile.DEFAULT_OPT_OUT_REASON))
                    else typed
                )
                if st.button(
                    _("Opt out of e-mail") if channel == "email" else _("Opt out of SMS"),
                    icon=":material/block:",
                    key=f"cd_optout_{channel}",
                ):
                    try:
                        profile.opt_out(store, client["id"], channel, reason)
                    except CommsError as exc:
                        st.error(str(exc))
                    else:
                        set_flash(FLASH, "success", _opted_out(client["name"], channel, address))
                        st.rerun()
            else:
                why = shown_code((supp or {}).get("reason") or CONSENT_WITHDRAWN)
                st.markdown(
                    _("**{channel}:** opted out ({why})").format(
                        channel=CHANNEL_LABELS[channel], why=why
                    )
                )
                if supp and supp.get("created_at"):
                    st.caption(
                        _("On the suppression list since {when}, by {who}.").format(
                            when=format_datetime(supp["created_at"]),
                            who=supp.get("created_by") or _("unknown"),
                        )
                    )
                if st.button(
                    _("Opt back in to e-mail") if channel == "email" else _("Opt back in to SMS"),
                    icon=":material/undo:",
                    key=f"cd_optin_{channel}",
                    help=_("Only when the client asked for it again."),
                ):
                    profile.opt_in(store, client["id"], channel)
                    name = client["name"]
                    set_flash(
                        FLASH,
                        "success",
                        lambda name=name, channel=channel: (
                            _("{name} receives e-mail again.")
                            if channel == "email"
                            else _("{name} receives SMS again.")
                        ).format(name=name),
                    )
                    st.rerun()


def _opted_out(name: str, channel: str, address: str | None):
    """The outcome of an opt-out, written when shown (in the viewer's language then)."""

    def text() -> str:
        done = (
            _("{name} is opted out of e-mail.")
            if channel == "email"
            else _("{name} is opted out of SMS.")
        ).format(name=name)
        if address:
            done += " " + _("({address} is on the suppression list)").format(address=address)
        return done

    return text


# -- compose ------------------------------------------------------------------------


def _fill_from_template(store: Store, channel: str) -> None:
    """Template picked: copy its subject, body, format and attachments into the inputs."""
    tid = st.session_state.get(f"cd_{channel}_template")
    if tid in (None, BLANK):
        return
    tpl = compose.get_template(store, template_id=tid)
    st.session_state[f"cd_{channel}_body"] = tpl["body"]
    if channel == "email":
        st.session_state["cd_email_subject"] = tpl["subject"] or ""
        st.session_state["cd_email_format"] = tpl["body_format"] or "markdown"
        st.session_state["cd_email_att_pool"] = list(tpl["attachment_ids"])
        st.session_state["cd_email_atts"] = list(tpl["attachment_ids"])


def _clear_compose(channel: str) -> None:
    # Widgets get empty values set, not their keys deleted: a deleted key resets the
    # value on the server only, and the browser kept showing the text just sent.
    ss = st.session_state
    ss[f"cd_{channel}_template"] = BLANK
    ss[f"cd_{channel}_body"] = ""
    if channel == "email":
        ss["cd_email_subject"] = ""
        ss["cd_email_atts"] = []
    ss.pop("cd_email_att_pool", None)
    st.session_state["cd_upload_nonce"] = int(st.session_state.get("cd_upload_nonce", 0)) + 1


def _submit(store: Store, client_id: int, channel: str, send: bool) -> None:
    """Callback of "Send now" / "Save draft"."""
    ss = st.session_state
    try:
        attachment_ids: list[int] = []
        if channel == "email":
            attachment_ids = list(ss.get("cd_email_atts") or [])
            uploads = ss.get(f"cd_email_upload_{ss.get('cd_upload_nonce', 0)}") or []
            attachment_ids += [att.add_attachment(store, f.name, f.getvalue()) for f in uploads]
        result = compose.compose(
            store,
            client_id=client_id,
            channel=channel,
            subject=ss.get("cd_email_subject") if channel == "email" else None,
            body=ss.get(f"cd_{channel}_body") or "",
            body_format=ss.get("cd_email_format", "markdown") if channel == "email" else "text",
            template_id=ss.get(f"cd_{channel}_template") or None,
            attachment_ids=attachment_ids,
            gsm7=bool(ss.get("cd_sms_gsm7")) if channel == "sms" else False,
            send=send,
        )
    except CommsError as exc:
        error = str(exc)
        set_flash(FLASH, "error", lambda: _("Not saved: {error}").format(error=error))
        return
    if result.status == "queued":
        dispatcher.wake(store)  # due now: the background sender sends it, not this page
    queued, mid, to = result.status == "queued", result.message_id, result.to_address
    set_flash(
        FLASH,
        "success",
        lambda: (
            _(
                "Message {id} to {to} queued to send now. It is at the top of the "
                "communication below."
            )
            if queued
            else _(
                "Message {id} to {to} saved as a draft. It is at the top of the "
                "communication below."
            )
        ).format(id=mid, to=to),
    )
    _clear_compose(channel)
    # The new message is at the top of the client's list: it is the one to look at.
    comm_ui.clear_selection(HISTORY_KEY)


def compose_panel(store: Store, client: dict[str, Any]) -> None:
    """Write one e-mail or SMS to this client, from a template or blank."""
    st.subheader(_("Write to {name}").format(name=client["name"] or _("this client")))
    channel = st.radio(
        _("Channel"),
        ["email", "sms"],
        format_func=CHANNEL_LABELS.get,
        horizontal=True,
        key="cd_channel",
    )
    try:
        address = compose.recipient(client, channel)
    except CommsError as exc:
        st.warning(str(exc), icon=":material/warning:")
        return
    st.caption(_("To: {address}").format(address=address))
    options = {t["id"]: t["name"] for t in compose.list_templates(store, channel)}
    st.selectbox(
        _("Template"),
        [BLANK, *options],
        format_func=lambda t: (
            _("Blank message") if t == BLANK else options.get(t, _("template {id}").format(id=t))
        ),
        key=f"cd_{channel}_template",
        on_change=_fill_from_template,
        args=(store, channel),
        help=_("A template fills the fields below; everything stays editable."),
    )
    if channel == "email":
        st.text_input(_("Subject"), key="cd_email_subject")
        st.selectbox(
            _("Body format"),
            list(FORMAT_LABELS),
            format_func=FORMAT_LABELS.get,
            key="cd_email_format",
        )
        st.text_area(
            _("Text"),
            key="cd_email_body",
            height=220,
            help=_("Fields like {{ name }} are filled in."),
        )
        pool = st.session_state.get("cd_email_att_pool") or []
        if pool:
            names = {
                a.id: f"{a.filename} ({size(a.size)})" for a in att.get_attachments(store, pool)
            }
            st.multiselect(
                _("Template attachments"),
                pool,
                format_func=lambda i: names.get(i, str(i)),
                key="cd_email_atts",
            )
        attachments_ui.uploader(
            _("Add attachments"),
            key=f"cd_email_upload_{st.session_state.get('cd_upload_nonce', 0)}",
        )
    else:
        st.text_area(
            _("Text"),
            key="cd_sms_body",
            height=150,
            help=_(
                "Fields like {{ name }} are filled in. The counter below updates when you "
                "leave the field or press Ctrl+Enter."
            ),
        )
        st.checkbox(
            _("Replace diacritics and typographic marks"),
            key="cd_sms_gsm7",
            help=_(
                "Write Czech letters without accents (ř → r) and typographic marks plainly "
                '(… → ..., „ → ") so more fits in one SMS.'
            ),
        )
    _preview(store, client, channel)
    row = st.container(horizontal=True)
    row.button(
        _("Send now"),
        type="primary",
        icon=":material/send:",
        key="cd_send_now",
        on_click=_submit,
        args=(store, client["id"], channel, True),
    )
    row.button(
        _("Save draft"),
        icon=":material/save:",
        key="cd_save_draft",
        on_click=_submit,
        args=(store, client["id"], channel, False),
    )


def _preview(store: Store, client: dict[str, Any], channel: str) -> None:
    """The message rendered for this client, with the live SMS counter."""
    ss = st.session_state
    body = ss.get(f"cd_{channel}_body") or ""
    if not body.strip():
        if channel == "sms":
            st.caption(sms_info("").describe())
        return
    subject = ss.get("cd_email_subject") if channel == "email" else None
    fmt = ss.get("cd_email_format", "markdown") if channel == "email" else "text"
    try:
        subj, text, html = compose.render(
            channel, subject, body, fmt, compose.client_context(client)
        )
    except CommsError as exc:
        st.warning(_("The text cannot be filled in for this client: {error}").format(error=exc))
        return
    if channel == "sms":
        if ss.get("cd_sms_gsm7"):
            text = to_gsm7(text)
        info = sms_info(text)
        line = info.describe()
        if info.segments > max_segments():
            st.warning(
                _("{line}: more than {n} segments costs more.").format(
                    line=line, n=number(max_segments())
                )
            )
        else:
            st.caption(line)
        hint = ucs2_hint(text) if not ss.get("cd_sms_gsm7") else None
        if hint:
            st.caption(hint + " " + _("“Replace diacritics and typographic marks” does that."))
        with st.expander(_("Preview for this client")):
            for i, part in enumerate(split_segments(text), start=1):
                st.caption(_("Segment {n}").format(n=i))
                st.text(part)
    else:
        with st.expander(_("Preview for this client")):
            st.markdown(_("**Subject:** {subject}").format(subject=subj))
            st.html(html or "")


# -- the client's communication -----------------------------------------------------


def client_messages(store: Store, client_id: int) -> None:
    """The client's messages, newest first; select one to see it as sent.

    A live panel (comms.ui.communication.live): while one of them is on its way it
    follows it, so a message just sent never shows "queued" with a Cancel button.
    """
    flt = history.MessageFilter(client_id=client_id)
    comm_ui.live(store, flt, _client_messages, store, client_id)
    replies(store, client_id)


def replies(store: Store, client_id: int) -> None:
    """What the client sent back (SMS replies, STOP / START included), newest first."""
    df = feedback_queries.inbound_for_client(store, client_id, limit=HISTORY_ROWS)
    if df.empty:
        return
    with st.expander(_("Replies from the client ({n})").format(n=number(len(df)))):
        st.dataframe(
            df[["received_at", "from_address", "body", "keyword"]],
            hide_index=True,
            width="stretch",
            column_config={
                "received_at": st.column_config.DatetimeColumn(
                    _("Received"), format=TABLE_DATETIME[language()]
                ),
                "from_address": _("From"),
                "body": st.column_config.TextColumn(_("Text"), width="large"),
                "keyword": _("Keyword"),
            },
        )


def _client_messages(store: Store, client_id: int, ticking: bool) -> None:
    total = history.count_messages(store, history.MessageFilter(client_id=client_id))
    df = history.client_history_df(store, client_id, limit=HISTORY_ROWS)
    st.subheader(_("Communication ({n})").format(n=number(total)))
    if df.empty:
        st.caption(_("Nothing sent to this client yet."))
        return
    if total > len(df):
        st.caption(
            _("The newest {n} are shown; **Show communication** lists and filters all.").format(
                n=number(len(df))
            )
        )
    # Every row is this client's, and the address is in the header: no Client / To.
    ids = comm_ui.message_table(df, key=HISTORY_KEY, hide=("Client", "To", "Attempts"))
    comm_ui.actions(store, ids, key="cd_act", table_key=HISTORY_KEY)
    if len(ids) == 1:
        comm_ui.message_view(store, ids[0], key="cd_msg")
    comm_ui.settled(df, ticking)
