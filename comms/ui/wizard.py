"""The bulk send wizard: template, content, attachments, recipients, review, finish.

Until "Generate", the send being prepared lives in st.session_state under
`wiz_*` keys (the selection handed over by Clients, the template and text, the
attachments, the recipients dropped): this module draws those steps. From
"Generate" on, the batch in the database IS the wizard's state: the URL carries
it (`?batch=N`, and `&step=finish` on the last step) and comms.ui.wizard_batch
draws the step its messages call for (comms.messages.batches.stage), so a
reload, a bookmark or Outbox's "Review" lands on the same step. State and
navigation are comms.ui.wizard_flow's. Every write goes through comms.messages
(generate, editor, recipients, batches) and comms.outbox.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from comms import outbox
from comms import templates as tpl
from comms.errors import CommsError
from comms.i18n import N_, _, format_datetime, ngettext, size
from comms.messages import batches, generate, recipients, selection
from comms.rules.sms import to_gsm7
from comms.store import Store
from comms.templates import attachments as att
from comms.ui.common import (
    CHANNEL_LABELS,
    FORMAT_LABELS,
    md_escape,
    number,
    shown_code,
)
from comms.ui.widgets import attachments as attachments_ui
from comms.ui.widgets.sms_counter import sms_counter
from comms.ui.widgets.tables import clear_picked, id_table
from comms.ui.wizard_batch import render_batch
from comms.ui.wizard_flow import (
    ATTACHMENTS,
    CONTENT,
    RECIPIENTS,
    TEMPLATE,
    batch_in_url,
    go,
    handed_selection,
    heading,
    link,
    nav,
    next_step,
    open_batch,
    progress_header,
    reset,
    same_send,
    set_state,
    state,
    wanted_channel,
)

BLANK = 0  # the template picker's "blank message" (template ids start at 1)
BLANK_LABEL = N_("(blank message)")
# Labels (msgids, translated where shown) -> the recipients view they show.
RECIPIENT_VIEWS = {
    N_("All"): "all",
    N_("With a problem"): "problems",
    N_("Passing every check"): "ok",
    N_("Dropped"): "dropped",
}
# A directory filter's fields (comms.clients.queries.ClientFilter) as the selection names them.
FILTER_LABELS = {
    "search": N_("search"),
    "list": N_("list"),
    "tag": N_("tag"),
    "city": N_("city"),
    "attribute": N_("attribute"),
    "attribute_op": N_("comparison"),
    "attribute_value": N_("value"),
    "has_valid_email": N_("valid e-mail"),
    "has_mobile": N_("mobile"),
    "consent_email": N_("E-mail consent"),
    "consent_sms": N_("SMS consent"),
}
RECIPIENT_ROWS = 200  # rows per page of the recipients list
RECIPIENT_TABLE = "wiz_rcpt_table"


def _describe_selection(store: Store, sel: dict) -> tuple[int, str]:
    n = selection.selection_count(store, sel)
    if "client_ids" in sel:
        return n, ngettext("{n} selected client", "{n} selected clients", n).format(n=number(n))
    flt = {k: v for k, v in (sel.get("filter") or {}).items() if v not in (None, "", "equals")}
    what = ", ".join(_filter_part(k, v) for k, v in flt.items()) or _("every client")
    return n, ngettext(
        "all {n} matching client ({what})", "all {n} matching clients ({what})", n
    ).format(n=number(n), what=what)


def _filter_part(key: str, value: Any) -> str:
    """One field of a directory filter, in the viewer's language ("list: VIP")."""
    label = _(FILTER_LABELS[key]) if key in FILTER_LABELS else key.replace("_", " ")
    if isinstance(value, bool):
        value = _("yes") if value else _("no")
    elif key == "attribute_op":
        value = _(str(value))  # "contains" (the directory's choice)
    return f"{label}: {value}"


def no_selection(store: Store) -> None:
    """Explain how to choose recipients, and offer a whole list as a shortcut."""
    st.info(
        _(
            "No recipients chosen yet. Open **Clients**, tick the clients (or choose "
            "“all N matching” after filtering) and press **Send e-mail** or **Send SMS**."
        ),
        icon=":material/group:",
    )
    link(st, _("Go to Clients"), "pages/directory.py", ":material/group:", "wiz_go_clients")
    lists = selection.list_names(store)
    total = selection.client_count(store)
    if not total:
        st.caption(_("There are no clients yet: upload a client list in Clients first."))
        return
    st.subheader(_("Or send to a whole list"))
    every = _("All clients")
    choice = st.selectbox(
        _("List"), [every, *lists], key="wiz_pick_list", help=_("Every client of this list")
    )
    channel = st.radio(
        _("Channel"),
        list(CHANNEL_LABELS),
        format_func=CHANNEL_LABELS.get,
        horizontal=True,
        key="wiz_pick_channel",
    )
    if st.button(_("Use this list"), type="primary", icon=":material/checklist:"):
        flt = {} if choice == every else {"list": choice}
        sel = {"filter": flt}
        sel["count"] = selection.selection_count(store, sel)
        st.session_state["comms_selection"] = sel
        st.session_state["comms_wizard_channel"] = channel
        reset()
        st.rerun()


# -- the page -------------------------------------------------------------------------
def render(store: Store) -> None:
    """Draw the wizard: the batch the URL names, else the send being prepared."""
    batch_id = batch_in_url()
    sel = handed_selection()
    if (
        batch_id is None
        and state("batch_id") is not None
        and state("at_batch", True)
        and same_send(sel)
    ):
        # Back on the page (from the menu) after generating: the batch, not step 1.
        batch_id = int(state("batch_id"))
        open_batch(batch_id, finish=bool(state("at_finish")))
    if batch_id is not None:
        render_batch(store, batch_id)
        return
    if sel is None:
        no_selection(store)
        return
    count, description = _describe_selection(store, sel)
    if not same_send(sel):
        # A new selection (or channel) from the directory starts a new send.
        reset()
        set_state("selection", sel)
        set_state("origin_channel", wanted_channel())
        set_state("channel", wanted_channel())
    channel = state("channel", "email")
    step = min(state("step", TEMPLATE), RECIPIENTS)

    top, change = st.columns([4, 1], vertical_alignment="center")
    top.markdown(
        _("**{channel}** to **{recipients}**").format(
            channel=CHANNEL_LABELS[channel], recipients=md_escape(description)
        )
    )
    link(change, _("Change recipients"), "pages/directory.py", ":material/group:", "wiz_change")
    if count == 0:
        st.warning(_("The selection holds no clients any more. Choose recipients in Clients."))
        return
    progress_header(step, channel)

    if step == TEMPLATE:
        step_template(store, channel)
    elif step == CONTENT:
        step_content(store, channel, sel)
    elif step == ATTACHMENTS:
        step_attachments(store)
    else:
        step_recipients(store, channel, sel)


# -- 1. channel and template ---------------------------------------------------------
def _load_template(store: Store, template_id: int | None, channel: str) -> None:
    if template_id is None:
        set_state("subject", "")
        set_state("body", "")
        set_state("format", "markdown" if channel == "email" else "text")
        set_state("attachment_ids", [])
        set_state("template_name", None)
    else:
        t = tpl.get_template(store, template_id)
        set_state("subject", t.subject or "")
        set_state("body", t.body)
        set_state("format", t.body_format)
        set_state("attachment_ids", [a.id for a in t.attachments])
        set_state("template_name", t.name)
    set_state("loaded_template", (channel, template_id))
    for key in ("wiz_subject_in", "wiz_body_in", "wiz_format_in"):
        st.session_state.pop(key, None)  # the widgets show the newly loaded text


def step_template(store: Store, channel: str) -> None:
    st.subheader(_("1. Channel and template"))
    chosen = st.radio(
        _("Channel"),
        list(CHANNEL_LABELS),
        index=list(CHANNEL_LABELS).index(channel),
        format_func=CHANNEL_LABELS.get,
        horizontal=True,
        key="wiz_channel_radio",
    )
    if chosen != channel:
        set_state("channel", chosen)
        st.rerun()
    templates = tpl.list_templates(store, channel)
    # BLANK, not None: a None value reads as "nothing chosen" ("Choose an option").
    options: list[int] = [BLANK, *[int(t["id"]) for t in templates]]
    names = {int(t["id"]): t["name"] for t in templates}
    current = state("template_id")
    current = BLANK if current is None else current
    picked = st.selectbox(
        _("Template"),
        options,
        index=(
            options.index(current)
            if "wiz_template_id" in st.session_state and current in options
            else (1 if templates else 0)
        ),
        format_func=lambda i: (
            _(BLANK_LABEL) if i == BLANK else names.get(i, _("template {id}").format(id=i))
        ),
        key="wiz_template_select",
    )
    template_id = None if picked in (None, BLANK) else int(picked)
    if not templates:
        st.caption(
            _("No {channel} templates yet: start blank or create one in Templates.").format(
                channel=CHANNEL_LABELS[channel]
            )
        )
    if template_id is not None:
        t = tpl.get_template(store, template_id)
        with st.container(border=True):
            if t.subject:
                st.markdown(_("**Subject:** {subject}").format(subject=t.subject))
            st.code(t.body, language=None, wrap_lines=True)
            if t.attachments:
                st.caption(
                    _("Attachments: {files}").format(
                        files=", ".join(a.filename for a in t.attachments)
                    )
                )
    if nav(TEMPLATE, channel):
        set_state("template_id", template_id)
        if state("loaded_template") != (channel, template_id):
            _load_template(store, template_id, channel)
        go(CONTENT)
        st.rerun()


# -- 2. content ---------------------------------------------------------------------------
def _compiled(channel: str) -> tuple[tpl.CompiledTemplate | None, str | None]:
    try:
        return (
            tpl.compile_template(
                channel, state("subject"), state("body") or "", state("format") or "markdown"
            ),
            None,
        )
    except CommsError as exc:
        return None, str(exc)


def _preview_picker(store: Store, sel: dict) -> dict | None:
    """Which recipient to preview for: the first, or any one found by name / address."""
    search = st.text_input(
        _("Preview for"),
        key="wiz_preview_search",
        placeholder=_("find a recipient: name, e-mail or phone"),
    )
    found = recipients.preview_clients(store, sel, search, limit=50)
    if not found:
        st.caption(_("No selected client matches.") if search else _("No recipient to preview."))
        return None
    no_name, no_address = _("(no name)"), _("no address")
    labels = {
        int(c["id"]): f"{c['name'] or no_name} · {c['email'] or c['phone'] or no_address}"
        for c in found
    }
    ids = list(labels)
    chosen = st.selectbox(
        _("Recipient"),
        ids,
        format_func=labels.get,
        key="wiz_preview_client",
        label_visibility="collapsed",
    )
    return tpl.sample_client(store, int(chosen if chosen in labels else ids[0]))


def step_content(store: Store, channel: str, sel: dict) -> None:
    st.subheader(_("2. Content for this send"))
    name = state("template_name")
    st.caption(
        _(
            "Edits here change this send only; template “{name}” stays as it is unless you "
            "save it below."
        ).format(name=name)
        if name
        else _("Write the message; {{ name }}, {{ city }} and every imported column are available.")
    )
    left, right = st.columns([3, 2])
    # Widgets keep their own keys; the wizard's copy is updated from them.
    with left:
        if channel == "email":
            subject = st.text_input(
                _("Subject"), value=state("subject") or "", key="wiz_subject_in"
            )
            set_state("subject", subject)
            formats = list(tpl.FORMATS)
            fmt = st.selectbox(
                _("Body format"),
                formats,
                index=formats.index(state("format") or "markdown"),
                format_func=FORMAT_LABELS.get,
                key="wiz_format_in",
            )
            set_state("format", fmt)
        body = st.text_area(_("Body"), value=state("body") or "", height=300, key="wiz_body_in")
        set_state("body", body)
        if channel == "sms":
            gsm7 = st.toggle(
                _(
                    "Replace diacritics and typographic marks (GSM-7: 160 characters per "
                    "segment instead of 70)"
                ),
                value=bool(state("gsm7", False)),
                key="wiz_gsm7_in",
            )
            set_state("gsm7", gsm7)
            sms_counter(to_gsm7(body) if gsm7 else body, label=_("Template"))
        compiled, error = _compiled(channel)
        if error:
            st.error(error, icon=":material/error:")
        elif compiled.fields:
            st.caption(
                _("Fields used: {fields}").format(
                    fields=", ".join(f"`{f}`" for f in sorted(compiled.fields))
                )
            )
            lacking = selection.missing_field_counts(store, sel, compiled.fields)
            if lacking:
                empty = ", ".join(
                    _("`{field}` empty for {n}").format(field=f, n=number(n))
                    for f, n in lacking.items()
                )
                st.warning(
                    _(
                        "Some recipients lack a field; their messages will be marked "
                        "“missing field” for you to fix or exclude: {fields}. "
                        "Tip: {tip} makes a field optional."
                    ).format(fields=empty, tip="`{{ city | default('') }}`"),
                    icon=":material/warning:",
                )
    with right:
        client = _preview_picker(store, sel) if compiled is not None else None
        if client is not None:
            who = md_escape(client.get("name") or _("this client"))
            st.markdown(_("**Preview for {name}**").format(name=who))
            with st.container(border=True):
                try:
                    r = tpl.render_preview(compiled, tpl.context_for(client))
                except CommsError as exc:
                    st.warning(_("For this client: {error}").format(error=exc))
                else:
                    if channel == "email":
                        st.markdown(
                            _("**Subject:** {subject}").format(subject=md_escape(r.subject))
                        )
                        st.html(r.html or "")
                    else:
                        text = to_gsm7(r.text) if state("gsm7") else r.text
                        st.text(text)
                        sms_counter(text, label=_("This client's message"))

    with st.expander(_("Save as template")):
        save_name = st.text_input(
            _("Template name"),
            value=name or "",
            key="wiz_save_name",
            placeholder=_("e.g. Spring offer"),
        )
        c1, c2 = st.columns(2)
        tid = state("template_id")
        if tid is not None and c1.button(
            _("Update template “{name}”").format(name=name), key="wiz_save_update"
        ):
            _save_template(store, channel, save_name or name, tid)
        if c2.button(_("Save as a new template"), key="wiz_save_new"):
            _save_template(store, channel, save_name, None)

    if nav(CONTENT, channel, can_next=error is None and bool(body.strip())):
        go(next_step(CONTENT, channel))
        st.rerun()


def _save_template(store: Store, channel: str, name: str, template_id: int | None) -> None:
    try:
        tid = tpl.save_as_template(
            store,
            name=name,
            channel=channel,
            subject=state("subject"),
            body=state("body") or "",
            body_format=state("format") or "markdown",
            attachment_ids=state("attachment_ids") or [] if channel == "email" else [],
            template_id=template_id,
        )
    except CommsError as exc:
        st.error(str(exc))
        return
    set_state("template_id", tid)
    set_state("template_name", name)
    set_state("loaded_template", (channel, tid))
    st.success(_("Template “{name}” saved.").format(name=name), icon=":material/check:")


# -- 3. attachments -----------------------------------------------------------------------
def step_attachments(store: Store) -> None:
    st.subheader(_("3. Attachments"))
    ids = list(state("attachment_ids") or [])
    files = att.get_attachments(store, ids)
    limit = att.max_message_bytes()
    total = att.total_size(files)
    flash = state("attach_flash")
    if flash:
        st.success(flash, icon=":material/attach_file:")
        set_state("attach_flash", None)
    attachments_ui.usage_caption(files, _("Every message carries these files."))
    removed = attachments_ui.file_rows(files, key_prefix="wiz_rm")
    if removed is not None:
        set_state("attachment_ids", [i for i in ids if i != removed])
        st.rerun()
    # A file is attached as soon as it is picked: no second button to forget.
    uploads = attachments_ui.uploader(_("Add files"), key=f"wiz_upload_{state('upload_round', 0)}")
    refused = False
    if uploads:
        new = total + sum(u.size for u in uploads)
        if new > limit:
            refused = True
            st.error(
                _(
                    "These files would make {size} per message; the limit is {limit} "
                    "(COMMS_MAX_ATTACHMENT_MB). Remove some of them from the box above."
                ).format(size=size(new), limit=size(limit)),
                icon=":material/error:",
            )
        else:
            try:
                added = [att.add_attachment(store, u.name, u.getvalue()) for u in uploads]
            except CommsError as exc:
                refused = True
                st.error(str(exc), icon=":material/error:")
            else:
                batches.record_attachments_added(store, att.get_attachments(store, added))
                set_state("attachment_ids", list(dict.fromkeys([*ids, *added])))
                set_state("upload_round", state("upload_round", 0) + 1)
                set_state(
                    "attach_flash",
                    _("Attached: {files}.").format(files=", ".join(u.name for u in uploads)),
                )
                st.rerun()
    if nav(
        ATTACHMENTS,
        "email",
        can_next=not refused,
        why_not=_("Remove the files that cannot be attached first."),
    ):
        go(RECIPIENTS)
        st.rerun()


# -- 4. recipients and generate -------------------------------------------------------------
def _mark(ok: Any) -> str:
    return "✓" if bool(ok) else "✗"


def _recipient_rows(df: pd.DataFrame, channel: str) -> pd.DataFrame:
    """The recipients page as shown: text marks, not checkboxes (nothing here is editable)."""
    out = pd.DataFrame(
        {
            _("Name"): df["name"].fillna("").astype(str),
            _("E-mail") if channel == "email" else _("Phone"): df["address"].fillna("").astype(str),
        }
    )
    for col, label, _check in recipients.CHECKS[channel]:
        out[_(label)] = df[col].map(_mark)
    out[_("Problem")] = df["reason"].map(shown_code)
    out[_("Dropped")] = df["dropped"].map(lambda d: _("dropped") if d else "")
    return out


def _earlier_sends(store: Store, channel: str, sel: dict) -> None:
    """Warn when the same template already went to some of these clients."""
    earlier = batches.earlier_sends(
        store,
        sel,
        channel=channel,
        template_id=state("template_id"),
        body=state("body") or "",
        subject=state("subject") if channel == "email" else None,
        exclude_batch=state("batch_id"),
    )
    what = (
        _("template “{name}”").format(name=state("template_name"))
        if state("template_name")
        else _("this text")
    )
    for b in earlier:
        name = f" ({b['name']})" if b.get("name") else ""
        when = format_datetime(pd.Timestamp(b["created_at"]).to_pydatetime())
        if b["went_out"]:
            st.warning(
                _(
                    "You already sent {what} to {clients} of these clients: batch "
                    "#{id}{name} of {when} ({went_out} sent or queued). "
                    "Generating again sends it to them a second time."
                ).format(
                    what=what,
                    clients=number(b["clients"]),
                    id=b["id"],
                    name=name,
                    when=when,
                    went_out=number(b["went_out"]),
                ),
                icon=":material/content_copy:",
            )
        else:
            st.warning(
                ngettext(
                    "Batch #{id}{name} of {when} already holds {what} for {clients} of these "
                    "clients, kept as {n} draft. Review it instead of generating again?",
                    "Batch #{id}{name} of {when} already holds {what} for {clients} of these "
                    "clients, kept as {n} drafts. Review it instead of generating again?",
                    int(b["drafts"]),
                ).format(
                    id=b["id"],
                    name=name,
                    when=when,
                    what=what,
                    clients=number(b["clients"]),
                    n=number(b["drafts"]),
                ),
                icon=":material/content_copy:",
            )
            if st.button(_("Review batch #{id}").format(id=b["id"]), key=f"wiz_earlier_{b['id']}"):
                open_batch(int(b["id"]))
                st.rerun()


def step_recipients(store: Store, channel: str, sel: dict) -> None:
    heading(RECIPIENTS, channel, _("Recipients"))
    dropped = [int(i) for i in state("dropped") or []]
    counts = recipients.recipient_counts(store, sel, channel, dropped)
    c = st.columns(4)
    c[0].metric(_("Selected"), number(counts.total))
    c[1].metric(_("Pass every check"), number(counts.ok))
    c[2].metric(_("With a problem"), number(counts.with_problem))
    c[3].metric(_("Dropped"), number(counts.dropped))
    st.caption(
        _(
            "Each recipient's e-mail address is checked, then the suppression list, consent "
            "and duplicates. A recipient with a problem is generated as invalid with that "
            "reason, unless you drop it; problems of the text (a missing field) show at review."
        )
        if channel == "email"
        else _(
            "Each recipient's phone number (a mobile) is checked, then the suppression list, "
            "consent and duplicates. A recipient with a problem is generated as invalid with "
            "that reason, unless you drop it; problems of the text (a missing field) show at "
            "review."
        )
    )
    if counts.reasons:
        st.markdown(
            _("**Problems found:** {reasons}").format(
                reasons=" · ".join(
                    f"{shown_code(reason)} **{number(n)}**" for reason, n in counts.reasons.items()
                )
            )
        )
    _earlier_sends(store, channel, sel)

    f1, f2 = st.columns([3, 2])
    view = f1.radio(
        _("Show"), list(RECIPIENT_VIEWS), format_func=_, horizontal=True, key="wiz_rcpt_view"
    )
    search = f2.text_input(
        _("Find a recipient"), key="wiz_rcpt_search", placeholder=_("name or address")
    )
    filtered = recipients.recipient_page(
        store, sel, channel, dropped, show=RECIPIENT_VIEWS[view], search=search, limit=1
    )[0]
    pages = max(1, -(-filtered // RECIPIENT_ROWS))
    page = 1
    if pages > 1:
        page = st.pagination(pages, key="wiz_rcpt_page", max_visible_pages=7)
    page = min(int(page or 1), pages)
    _total, df = recipients.recipient_page(
        store,
        sel,
        channel,
        dropped,
        show=RECIPIENT_VIEWS[view],
        search=search,
        limit=RECIPIENT_ROWS,
        offset=(page - 1) * RECIPIENT_ROWS,
    )
    if df.empty:
        st.caption(_("No recipient matches.") if search or view != "All" else _("No recipients."))
        picked: list[int] = []
    else:
        first = (page - 1) * RECIPIENT_ROWS
        shown = f"{number(first + 1)}–{number(first + len(df))}"
        st.caption(
            ngettext(
                "{shown} of {n} recipient. Tick rows to drop or restore them.",
                "{shown} of {n} recipients. Tick rows to drop or restore them.",
                filtered,
            ).format(shown=shown, n=number(filtered))
        )
        picked = id_table(
            _recipient_rows(df, channel),
            [int(i) for i in df["id"]],
            key=RECIPIENT_TABLE,
            keep_hidden=True,  # a selection survives paging and the filters
            hide_index=True,
            width="stretch",
            placeholder="",
        )
    dropped_set = set(dropped)  # once, not once per picked row
    picked_dropped = [i for i in picked if i in dropped_set]
    picked_kept = [i for i in picked if i not in dropped_set]
    row = st.container(horizontal=True)
    if row.button(
        _("Drop {n} selected").format(n=number(len(picked_kept)))
        if picked_kept
        else _("Drop selected"),
        key="wiz_rcpt_drop",
        icon=":material/person_remove:",
        disabled=not picked_kept,
    ):
        set_state("dropped", sorted({*dropped, *picked_kept}))
        clear_picked(RECIPIENT_TABLE)
        st.rerun()
    if row.button(
        _("Restore {n} selected").format(n=number(len(picked_dropped)))
        if picked_dropped
        else _("Restore selected"),
        key="wiz_rcpt_restore",
        icon=":material/person_add:",
        disabled=not picked_dropped,
    ):
        set_state("dropped", sorted(set(dropped) - set(picked_dropped)))
        clear_picked(RECIPIENT_TABLE)
        st.rerun()
    if row.button(
        _("Drop all {n} with a problem").format(n=number(counts.with_problem)),
        key="wiz_rcpt_drop_problems",
        icon=":material/filter_alt_off:",
        disabled=not counts.with_problem,
    ):
        set_state(
            "dropped",
            sorted({*dropped, *recipients.ids_with_problem(store, sel, channel, dropped)}),
        )
        st.rerun()
    if row.button(
        _("Restore all {n} dropped").format(n=number(counts.dropped)),
        key="wiz_rcpt_restore_all",
        icon=":material/undo:",
        disabled=not counts.dropped,
    ):
        set_state("dropped", [])
        st.rerun()
    _generate(store, channel, sel, counts)


def _generate(store: Store, channel: str, sel: dict, counts: recipients.RecipientCounts) -> None:
    st.divider()
    c1, c2 = st.columns(2)
    if channel == "email":
        c1.metric(_("Attachments"), number(len(state("attachment_ids") or [])))
    else:
        c1.metric(_("Diacritics"), _("replaced") if state("gsm7") else _("kept"))
    c2.metric(_("Messages to generate"), number(counts.kept))
    st.caption(
        _("One message per recipient is rendered and checked. Nothing is sent in this step.")
        + (
            " "
            + ngettext(
                "The {n} dropped recipient is generated as excluded "
                "(you can bring it back at review).",
                "The {n} dropped recipients are generated as excluded "
                "(you can bring them back at review).",
                counts.dropped,
            ).format(n=number(counts.dropped))
            if counts.dropped
            else ""
        )
    )
    previous = state("batch_id")
    if previous is not None:
        st.info(
            _(
                "Batch {id} was generated already. Generating again replaces it: its "
                "drafts are cancelled (kept in Communication as cancelled)."
            ).format(id=previous),
            icon=":material/info:",
        )
        if st.button(
            _("Back to batch {id} without regenerating").format(id=previous), key="wiz_to_review"
        ):
            open_batch(int(previous))
            st.rerun()
    if not nav(
        RECIPIENTS,
        channel,
        next_label=ngettext("Generate {n} message", "Generate {n} messages", counts.kept).format(
            n=number(counts.kept)
        ),
        can_next=counts.kept > 0,
        why_not=_("Every recipient is dropped."),
    ):
        return
    bar = st.progress(0.0, text=_("Rendering messages…"))

    def progress(done: int, total: int) -> None:
        bar.progress(
            done / max(total, 1),
            text=_("Rendered {done} of {total}").format(done=number(done), total=number(total)),
        )

    try:
        result = generate.generate_messages(
            store,
            selection=sel,
            template_id=state("template_id"),
            channel=channel,
            subject=state("subject") if channel == "email" else None,
            body=state("body") or "",
            body_format=state("format") if channel == "email" else "text",
            attachment_ids=(state("attachment_ids") or []) if channel == "email" else [],
            gsm7=bool(state("gsm7")) if channel == "sms" else False,
            progress=progress,
        )
        recipients.drop_from_batch(store, result.batch_id, state("dropped") or [])
    except CommsError as exc:
        bar.empty()
        st.error(str(exc), icon=":material/error:")
        return
    if previous is not None:
        outbox.cancel(store, batch_id=previous)
    set_state("batch_id", result.batch_id)
    set_state("at_finish", False)
    st.session_state.pop("wiz_open_select", None)
    open_batch(result.batch_id)
    st.rerun()
