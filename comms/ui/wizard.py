"""The bulk send wizard: template, content, attachments, generate, review, finish.

State lives in st.session_state under `wiz_*` keys, so every step survives
reruns; the batch itself lives in the database from "Generate" on, so the
review and finish steps only read and call comms.messages.generate / comms.outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import streamlit as st

from comms import outbox
from comms import templates as tpl
from comms.errors import CommsError
from comms.messages import editor, generate, selection, testsend
from comms.rules.sms import max_segments, to_gsm7
from comms.sending import dispatcher
from comms.store import Store
from comms.templates import attachments as att
from comms.ui.common import FORMAT_LABELS, md_escape
from comms.ui.communication import CHANNEL_LABELS
from comms.ui.widgets import attachments as attachments_ui
from comms.ui.widgets.sms_counter import sms_counter

STEPS = ("Template", "Content", "Attachments", "Generate", "Review", "Finish")
BLANK = "(blank message)"
STATUS_FILTERS = {"All": None, "Ready (draft)": "draft", "Invalid": "invalid"}
REVIEW_ROWS = 500  # rows drawn in the review table (a batch can hold 100,000)


# -- state ------------------------------------------------------------------------
def _state(key: str, default: Any = None) -> Any:
    return st.session_state.get(f"wiz_{key}", default)


def _set(key: str, value: Any) -> None:
    st.session_state[f"wiz_{key}"] = value


def reset() -> None:
    """Forget the wizard's progress (the generated batch stays in the database)."""
    for key in [k for k in st.session_state if str(k).startswith("wiz_")]:
        del st.session_state[key]


def _go(step: int) -> None:
    _set("step", step)


def _steps_for(channel: str) -> list[int]:
    # SMS has no attachments step.
    return [i for i in range(len(STEPS)) if not (channel == "sms" and STEPS[i] == "Attachments")]


def _heading(step: int, channel: str, text: str) -> None:
    """The step's heading, numbered as in the progress line (SMS has no step 3)."""
    st.subheader(f"{_steps_for(channel).index(step) + 1}. {text}")


def _next(step: int, channel: str) -> int:
    order = _steps_for(channel)
    return order[min(order.index(step) + 1, len(order) - 1)]


def _prev(step: int, channel: str) -> int:
    order = _steps_for(channel)
    return order[max(order.index(step) - 1, 0)]


def _link(where: Any, label: str, page: str, icon: str, key: str) -> None:
    # A button + switch_page rather than st.page_link, which refuses pages that the
    # navigation has not registered (a page run on its own, as in AppTest).
    if where.button(label, icon=icon, key=key):
        st.switch_page(page)


# -- selection ----------------------------------------------------------------------
def _selection() -> dict | None:
    sel = st.session_state.get("comms_selection")
    if isinstance(sel, dict) and ("client_ids" in sel or "filter" in sel):
        return sel
    return None


def _describe_selection(store: Store, sel: dict) -> tuple[int, str]:
    n = selection.selection_count(store, sel)
    if "client_ids" in sel:
        return n, f"{n} selected client{'s' if n != 1 else ''}"
    flt = {k: v for k, v in (sel.get("filter") or {}).items() if v not in (None, "", "equals")}
    what = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in flt.items()) or "every client"
    return n, f"all {n} matching clients ({what})"


def no_selection(store: Store) -> None:
    """Explain how to choose recipients, and offer a whole list as a shortcut."""
    st.info(
        "No recipients chosen yet. Open **Clients**, tick the clients (or choose "
        "“all N matching” after filtering) and press **Send e-mail** or **Send SMS**.",
        icon=":material/group:",
    )
    _link(st, "Go to Clients", "pages/directory.py", ":material/group:", "wiz_go_clients")
    lists = selection.list_names(store)
    total = selection.client_count(store)
    if not total:
        st.caption("There are no clients yet: upload a client list in Clients first.")
        return
    st.subheader("Or send to a whole list")
    choice = st.selectbox(
        "List", ["All clients", *lists], key="wiz_pick_list", help="Every client of this list"
    )
    channel = st.radio(
        "Channel",
        list(CHANNEL_LABELS),
        format_func=CHANNEL_LABELS.get,
        horizontal=True,
        key="wiz_pick_channel",
    )
    if st.button("Use this list", type="primary", icon=":material/checklist:"):
        flt = {} if choice == "All clients" else {"list": choice}
        sel = {"filter": flt}
        sel["count"] = selection.selection_count(store, sel)
        st.session_state["comms_selection"] = sel
        st.session_state["comms_wizard_channel"] = channel
        reset()
        st.rerun()


# -- the page -------------------------------------------------------------------------
def render(store: Store) -> None:
    """Draw the whole wizard for the current selection."""
    sel = _selection()
    if sel is None:
        no_selection(store)
        return
    count, description = _describe_selection(store, sel)
    wanted = st.session_state.get("comms_wizard_channel")
    wanted = wanted if wanted in CHANNEL_LABELS else "email"
    if _state("selection") != sel or _state("origin_channel") != wanted:
        # A new selection (or channel) from the directory starts a new send.
        reset()
        _set("selection", sel)
        _set("origin_channel", wanted)
        _set("channel", wanted)
    channel = _state("channel", "email")
    step = _state("step", 0)

    top, change = st.columns([4, 1], vertical_alignment="center")
    top.markdown(f"**{CHANNEL_LABELS[channel]}** to **{md_escape(description)}**")
    _link(change, "Change recipients", "pages/directory.py", ":material/group:", "wiz_change")
    if count == 0:
        st.warning("The selection holds no clients any more. Choose recipients in Clients.")
        return
    _progress_header(step, channel)

    if step == 0:
        step_template(store, channel)
    elif step == 1:
        step_content(store, channel, sel)
    elif step == 2:
        step_attachments(store)
    elif step == 3:
        step_generate(store, channel, sel, count)
    elif step == 4:
        step_review(store)
    else:
        step_finish(store)


def _progress_header(step: int, channel: str) -> None:
    order = _steps_for(channel)
    labels = []
    for n, i in enumerate(order, start=1):
        name = f"{n}. {STEPS[i]}"
        if i == step:
            labels.append(f"**:blue[{name}]**")
        else:
            labels.append(f":gray[{name}]" if i > step else f":green[✓ {name}]")
    st.markdown(" → ".join(labels))


def _nav(step: int, channel: str, *, next_label: str = "Next", can_next: bool = True) -> bool:
    """Back / Next buttons; returns True when Next was pressed."""
    # One row sized to the labels: fixed columns cut "Generate 1,234 messages" short.
    row = st.container(horizontal=True)
    if step > 0 and row.button("Back", icon=":material/arrow_back:", key=f"wiz_back_{step}"):
        _go(_prev(step, channel))
        st.rerun()
    return row.button(
        next_label,
        type="primary",
        icon=":material/arrow_forward:",
        disabled=not can_next,
        key=f"wiz_next_{step}",
    )


# -- 1. channel and template ---------------------------------------------------------
def _load_template(store: Store, template_id: int | None, channel: str) -> None:
    if template_id is None:
        _set("subject", "")
        _set("body", "")
        _set("format", "markdown" if channel == "email" else "text")
        _set("attachment_ids", [])
        _set("template_name", None)
    else:
        t = tpl.get_template(store, template_id)
        _set("subject", t.subject or "")
        _set("body", t.body)
        _set("format", t.body_format)
        _set("attachment_ids", [a.id for a in t.attachments])
        _set("template_name", t.name)
    _set("loaded_template", (channel, template_id))
    for key in ("wiz_subject_in", "wiz_body_in", "wiz_format_in"):
        st.session_state.pop(key, None)  # the widgets show the newly loaded text


def step_template(store: Store, channel: str) -> None:
    st.subheader("1. Channel and template")
    chosen = st.radio(
        "Channel",
        list(CHANNEL_LABELS),
        index=list(CHANNEL_LABELS).index(channel),
        format_func=CHANNEL_LABELS.get,
        horizontal=True,
        key="wiz_channel_radio",
    )
    if chosen != channel:
        _set("channel", chosen)
        st.rerun()
    templates = tpl.list_templates(store, channel)
    options: list[int | None] = [None, *[int(t["id"]) for t in templates]]
    names = {int(t["id"]): t["name"] for t in templates}
    current = _state("template_id")
    template_id = st.selectbox(
        "Template",
        options,
        index=(
            options.index(current)
            if "wiz_template_id" in st.session_state and current in options
            else (1 if templates else 0)
        ),
        format_func=lambda i: BLANK if i is None else names[i],
        key="wiz_template_select",
    )
    if not templates:
        st.caption(
            f"No {CHANNEL_LABELS[channel]} templates yet: start blank or create one in Templates."
        )
    if template_id is not None:
        t = tpl.get_template(store, template_id)
        with st.container(border=True):
            if t.subject:
                st.markdown(f"**Subject:** {t.subject}")
            st.code(t.body, language=None, wrap_lines=True)
            if t.attachments:
                st.caption("Attachments: " + ", ".join(a.filename for a in t.attachments))
    if _nav(0, channel):
        _set("template_id", template_id)
        if _state("loaded_template") != (channel, template_id):
            _load_template(store, template_id, channel)
        _go(1)
        st.rerun()


# -- 2. content ---------------------------------------------------------------------------
def _preview_client(store: Store, sel: dict) -> dict | None:
    cid = selection.first_client_id(store, sel)
    return tpl.sample_client(store, cid) if cid is not None else None


def _compiled(channel: str) -> tuple[tpl.CompiledTemplate | None, str | None]:
    try:
        return (
            tpl.compile_template(
                channel, _state("subject"), _state("body") or "", _state("format") or "markdown"
            ),
            None,
        )
    except CommsError as exc:
        return None, str(exc)


def step_content(store: Store, channel: str, sel: dict) -> None:
    st.subheader("2. Content for this send")
    name = _state("template_name")
    st.caption(
        f"Edits here change this send only; template “{name}” stays as it is unless you "
        "save it below."
        if name
        else "Write the message; {{ name }}, {{ city }} and every imported column are available."
    )
    left, right = st.columns([3, 2])
    # Widgets keep their own keys; the wizard's copy is updated from them.
    with left:
        if channel == "email":
            subject = st.text_input("Subject", value=_state("subject") or "", key="wiz_subject_in")
            _set("subject", subject)
            formats = list(tpl.FORMATS)
            fmt = st.selectbox(
                "Body format",
                formats,
                index=formats.index(_state("format") or "markdown"),
                format_func=FORMAT_LABELS.get,
                key="wiz_format_in",
            )
            _set("format", fmt)
        body = st.text_area("Body", value=_state("body") or "", height=300, key="wiz_body_in")
        _set("body", body)
        if channel == "sms":
            gsm7 = st.toggle(
                "Replace diacritics (GSM-7: 160 characters per segment instead of 70)",
                value=bool(_state("gsm7", False)),
                key="wiz_gsm7_in",
            )
            _set("gsm7", gsm7)
            sms_counter(to_gsm7(body) if gsm7 else body, label="Template")
        compiled, error = _compiled(channel)
        if error:
            st.error(error, icon=":material/error:")
        elif compiled.fields:
            st.caption("Fields used: " + ", ".join(f"`{f}`" for f in sorted(compiled.fields)))
            lacking = selection.missing_field_counts(store, sel, compiled.fields)
            if lacking:
                st.warning(
                    "Some recipients lack a field; their messages will be marked "
                    "“missing field” for you to fix or exclude: "
                    + ", ".join(f"`{f}` empty for {n}" for f, n in lacking.items())
                    + ". Tip: `{{ city | default('') }}` makes a field optional.",
                    icon=":material/warning:",
                )
    with right:
        client = _preview_client(store, sel) if compiled is not None else None
        if client is not None:
            st.markdown(f"**Preview for {md_escape(client.get('name') or 'the first client')}**")
            with st.container(border=True):
                try:
                    r = tpl.render_preview(compiled, tpl.context_for(client))
                except CommsError as exc:
                    st.warning(f"For this client: {exc}")
                else:
                    if channel == "email":
                        st.markdown(f"**Subject:** {md_escape(r.subject)}")
                        st.html(r.html or "")
                    else:
                        text = to_gsm7(r.text) if _state("gsm7") else r.text
                        st.text(text)
                        sms_counter(text, label="This client's message")

    with st.expander("Save as template"):
        save_name = st.text_input(
            "Template name", value=name or "", key="wiz_save_name", placeholder="e.g. Spring offer"
        )
        c1, c2 = st.columns(2)
        tid = _state("template_id")
        if tid is not None and c1.button(f"Update template “{name}”", key="wiz_save_update"):
            _save_template(store, channel, save_name or name, tid)
        if c2.button("Save as a new template", key="wiz_save_new"):
            _save_template(store, channel, save_name, None)

    if _nav(1, channel, can_next=error is None and bool(body.strip())):
        _go(_next(1, channel))
        st.rerun()


def _save_template(store: Store, channel: str, name: str, template_id: int | None) -> None:
    try:
        tid = tpl.save_as_template(
            store,
            name=name,
            channel=channel,
            subject=_state("subject"),
            body=_state("body") or "",
            body_format=_state("format") or "markdown",
            attachment_ids=_state("attachment_ids") or [] if channel == "email" else [],
            template_id=template_id,
        )
    except CommsError as exc:
        st.error(str(exc))
        return
    _set("template_id", tid)
    _set("template_name", name)
    _set("loaded_template", (channel, tid))
    st.success(f"Template “{name}” saved.", icon=":material/check:")


# -- 3. attachments -----------------------------------------------------------------------
def step_attachments(store: Store) -> None:
    st.subheader("3. Attachments")
    ids = list(_state("attachment_ids") or [])
    files = att.get_attachments(store, ids)
    limit = att.max_message_bytes()
    total = att.total_size(files)
    attachments_ui.usage_caption(files, "Every message carries these files.")
    removed = attachments_ui.file_rows(files, key_prefix="wiz_rm")
    if removed is not None:
        _set("attachment_ids", [i for i in ids if i != removed])
        st.rerun()
    uploads = attachments_ui.uploader("Add files", key=f"wiz_upload_{_state('upload_round', 0)}")
    if uploads and st.button("Attach", icon=":material/upload:", key="wiz_attach"):
        new = total + sum(u.size for u in uploads)
        if new > limit:
            st.error(
                f"These files would make {att.human_size(new)} per message; the limit is "
                f"{att.human_size(limit)} (COMMS_MAX_ATTACHMENT_MB)."
            )
        else:
            try:
                added = [att.add_attachment(store, u.name, u.getvalue()) for u in uploads]
            except CommsError as exc:
                st.error(str(exc))
            else:
                _set("attachment_ids", list(dict.fromkeys([*ids, *added])))
                _set("upload_round", _state("upload_round", 0) + 1)
                st.rerun()
    if _nav(2, "email"):
        _go(3)
        st.rerun()


# -- 4. generate ---------------------------------------------------------------------------
def step_generate(store: Store, channel: str, sel: dict, count: int) -> None:
    _heading(3, channel, "Generate")
    c1, c2, c3 = st.columns(3)
    c1.metric("Recipients", f"{count:,}")
    c2.metric("Channel", CHANNEL_LABELS[channel])
    if channel == "email":
        c3.metric("Attachments", len(_state("attachment_ids") or []))
    else:
        c3.metric("Diacritics", "replaced" if _state("gsm7") else "kept")
    st.caption(
        "One message per recipient is rendered and checked (address, opt-out, consent, "
        "duplicates, missing fields). Nothing is sent in this step."
    )
    previous = _state("batch_id")
    if previous is not None:
        st.info(
            f"Batch {previous} was generated already. Generating again replaces it: its "
            "drafts are cancelled (kept in Communication as cancelled).",
            icon=":material/info:",
        )
        if st.button(f"Back to batch {previous} without regenerating", key="wiz_to_review"):
            _go(4)
            st.rerun()
    if _nav(3, channel, next_label=f"Generate {count:,} messages"):
        bar = st.progress(0.0, text="Rendering messages…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Rendered {done:,} of {total:,}")

        try:
            result = generate.generate_messages(
                store,
                selection=sel,
                template_id=_state("template_id"),
                channel=channel,
                subject=_state("subject") if channel == "email" else None,
                body=_state("body") or "",
                body_format=_state("format") if channel == "email" else "text",
                attachment_ids=(_state("attachment_ids") or []) if channel == "email" else [],
                gsm7=bool(_state("gsm7")) if channel == "sms" else False,
                progress=progress,
            )
        except CommsError as exc:
            bar.empty()
            st.error(str(exc), icon=":material/error:")
            return
        if previous is not None:
            from comms import outbox

            outbox.cancel(store, batch_id=previous)
        _set("batch_id", result.batch_id)
        st.session_state.pop("wiz_open_select", None)
        _go(4)
        st.rerun()


# -- 5. review -----------------------------------------------------------------------------
def _counts(store: Store, batch_id: int, info: dict) -> None:
    c = st.columns(4)
    c[0].metric("Messages", info["total"])
    c[1].metric("Ready to send", info["sendable"])
    c[2].metric("Invalid", info["by_status"].get("invalid", 0))
    c[3].metric("Excluded", info["excluded"])
    reasons = generate.reason_counts(store, batch_id)
    if reasons:
        st.markdown(
            "**Why messages cannot be sent:** "
            + " · ".join(f"{reason} **{n}**" for reason, n in reasons.items())
        )
    if info["channel"] == "sms":
        st.caption(f"SMS segments to send: {info['sendable_segments']}")


def step_review(store: Store) -> None:
    batch_id = _state("batch_id")
    info = generate.batch_info(store, batch_id)
    _heading(4, info["channel"], f"Review batch {batch_id}")
    _counts(store, batch_id, info)
    c1, c2 = st.columns([2, 3])
    status = c1.radio("Show", list(STATUS_FILTERS), horizontal=True, key="wiz_review_filter")
    search = c2.text_input(
        "Find a recipient", key="wiz_review_search", placeholder="name or address"
    )
    table = generate.review(
        store, batch_id, STATUS_FILTERS[status], search=search, limit=REVIEW_ROWS
    )
    if len(table) == REVIEW_ROWS:
        total = generate.review_count(store, batch_id, STATUS_FILTERS[status], search=search)
        st.caption(
            f"Showing the first {REVIEW_ROWS:,} of {total:,} messages; "
            "find a recipient or filter by status to see others."
        )
    table["reason"] = table["reason"].fillna("")
    table["subject"] = table["subject"].fillna("")
    # Status, reason and the exclusion first: the long text columns scroll off the right.
    detail = "segments" if info["channel"] == "sms" else "subject"
    columns = ["recipient", "address", "status", "reason", "excluded", detail, "first_line"]
    event = st.dataframe(
        table.set_index("id")[columns],
        width="stretch",
        height=min(400, 38 + 35 * max(len(table), 1)),
        on_select="rerun",
        selection_mode="single-row",
        key="wiz_review_table",
        column_config={
            "id": st.column_config.NumberColumn("Message", format="%d"),
            "recipient": "Recipient",
            "address": "Address",
            "subject": "Subject",
            "first_line": st.column_config.TextColumn("First line"),
            "segments": st.column_config.NumberColumn("Segments", format="%d"),
            "status": "Status",
            "reason": "Why not sendable",
            "excluded": st.column_config.CheckboxColumn("Excluded"),
        },
        placeholder="",
    )
    ids = [int(i) for i in table["id"]]
    picked = None
    # A row clicked in the table opens that message (once per click: the selectbox
    # below stays the person's choice afterwards).
    rows = getattr(getattr(event, "selection", None), "rows", None) if event is not None else None
    if rows:
        picked = ids[rows[0]] if rows[0] < len(ids) else None
    if picked is not None and picked != _state("last_pick"):
        _set("last_pick", picked)
        st.session_state["wiz_open_select"] = picked
    if st.session_state.get("wiz_open_select") not in ids:
        st.session_state.pop("wiz_open_select", None)
    labels = {
        int(r.id): f"#{r.id} {r.recipient or ''} <{r.address or '-'}> · {r.status}"
        for r in table.itertuples()
    }
    if ids:
        opened = st.selectbox(
            "Open message",
            ids,
            index=None,
            format_func=labels.get,
            placeholder="Choose a message to see it as the recipient will",
            key="wiz_open_select",
        )
        if opened is not None:
            message_panel(store, int(opened))
    if _nav(4, info["channel"], next_label="Continue to sending"):
        _go(5)
        st.rerun()


def message_panel(store: Store, message_id: int) -> None:
    """One message as the recipient will see it, with edit and exclude."""
    msg = editor.get_message(store, message_id)
    with st.container(border=True):
        st.markdown(
            f"**To:** {md_escape(msg['to_name'] or '')} · {md_escape(msg['to_address'] or '—')}"
        )
        if msg["status"] == "invalid":
            detail = f" — {msg['error']}" if msg.get("error") else ""
            st.error(f"Cannot be sent: {msg['reason']}{detail}", icon=":material/block:")
        if msg["excluded"]:
            st.info("Excluded: this message will not be sent.", icon=":material/remove_circle:")
        if msg["channel"] == "email":
            st.markdown(f"**Subject:** {md_escape(msg['subject'] or '')}")
            st.html(msg["body_html"] or "")
            if msg["attachments"]:
                st.caption(
                    "Attachments: "
                    + ", ".join(
                        f"{a.filename} ({att.human_size(a.size)})" for a in msg["attachments"]
                    )
                )
        else:
            st.text(msg["body_text"] or "")
            sms_counter(msg["body_text"] or "", label="This message")
        if msg["status"] not in editor.EDITABLE:
            st.caption(f"This message is {msg['status']}; it can no longer be edited.")
            return
        with st.form(f"wiz_edit_{message_id}"):
            address = st.text_input(
                "E-mail address" if msg["channel"] == "email" else "Phone number",
                value=msg["to_address"] or "",
            )
            subject = None
            if msg["channel"] == "email":
                subject = st.text_input("Subject", value=msg["subject"] or "")
            body = st.text_area("Body", value=editor.editable_body(msg), height=200)
            saved = st.form_submit_button("Save changes", icon=":material/save:")
        if saved:
            try:
                updated = editor.edit_message(
                    store, message_id, subject=subject, body=body, to_address=address
                )
            except CommsError as exc:
                st.error(str(exc))
            else:
                if updated["status"] == "draft":
                    st.session_state["wiz_flash"] = f"Message #{message_id} saved: ready to send."
                else:
                    st.session_state["wiz_flash"] = (
                        f"Message #{message_id} saved but still invalid: {updated['reason']}."
                    )
                st.rerun()
        flash = st.session_state.pop("wiz_flash", None)
        if flash:
            st.success(flash, icon=":material/check:")
        if msg["excluded"]:
            if st.button(
                "Include again", key=f"wiz_include_{message_id}", icon=":material/add_circle:"
            ):
                generate.set_excluded(store, [message_id], False)
                st.rerun()
        elif st.button(
            "Exclude from this send",
            key=f"wiz_exclude_{message_id}",
            icon=":material/remove_circle:",
        ):
            generate.set_excluded(store, [message_id], True)
            st.rerun()


# -- 6. finish ------------------------------------------------------------------------------
def step_finish(store: Store) -> None:
    batch_id = _state("batch_id")
    info = generate.batch_info(store, batch_id)
    _heading(5, info["channel"], "Finish")
    done = _state("done")
    if done:
        st.success(done, icon=":material/check_circle:")
        c1, c2 = st.columns(2)
        _link(
            c1,
            "See them in Communication",
            "pages/communication.py",
            ":material/forum:",
            "wiz_comm",
        )
        if c2.button("Start a new send", icon=":material/restart_alt:", key="wiz_restart"):
            st.session_state.pop("comms_selection", None)
            reset()
            st.rerun()
        return
    n = info["sendable"]
    extra = f" ({info['sendable_segments']} SMS segments)" if info["channel"] == "sms" else ""
    st.markdown(
        f"**{n}** of {info['total']} messages {'is' if n == 1 else 'are'} ready to send"
        f"{extra}. Invalid and excluded messages stay behind as they are."
    )
    if n == 0:
        st.warning(
            "Nothing can be sent: every message is invalid or excluded. Go back to the "
            "review to fix them (the reasons are listed there; a field made optional with "
            "`| default('')` fixes “missing field”), or discard this batch.",
            icon=":material/block:",
        )
    if info["channel"] == "sms" and n:
        worst = info["max_segments"]
        if worst and worst > max_segments():
            st.warning(f"Some messages need {worst} segments (limit {max_segments()}).")

    c1, c2, c3 = st.columns(3)
    with c1.container(border=True):
        st.markdown("**Send now**")
        st.caption("Queued to go immediately.")
        if st.button(
            "Send now", type="primary", disabled=n == 0, key="wiz_send_now", icon=":material/send:"
        ):
            _queue(store, batch_id, None)
    with c2.container(border=True):
        st.markdown("**Schedule**")
        tomorrow = (datetime.now() + timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        day = st.date_input("Date", value=tomorrow.date(), key="wiz_sched_date")
        at = st.time_input("Time", value=tomorrow.time(), key="wiz_sched_time", step=300)
        when = datetime.combine(day, at)
        if st.button(
            f"Schedule for {when:%Y-%m-%d %H:%M}",
            disabled=n == 0,
            key="wiz_schedule",
            icon=":material/schedule:",
        ):
            if when <= datetime.now():
                st.error("Choose a time in the future.")
            else:
                _queue(store, batch_id, when)
    with c3.container(border=True):
        st.markdown("**Keep for later**")
        st.caption("Leave them as drafts; send them later from Communication.")
        if st.button(
            "Keep for later", disabled=n == 0, key="wiz_keep", icon=":material/inventory_2:"
        ):
            _set(
                "done",
                f"{n} messages kept as drafts in batch {batch_id}. Send them later from Communication.",
            )
            st.rerun()

    _send_test(store, batch_id, info["channel"])
    st.divider()
    row = st.container(horizontal=True)
    if row.button("Back to review", icon=":material/arrow_back:", key="wiz_back_5"):
        _go(4)
        st.rerun()
    if row.button("Discard this batch", icon=":material/delete:", key="wiz_discard"):
        moved = outbox.cancel(store, batch_id=batch_id)
        _set("done", f"Batch {batch_id} discarded: {moved} drafts cancelled.")
        st.rerun()


def _queue(store: Store, batch_id: int, when: datetime | None) -> None:
    try:
        n = outbox.queue(store, batch_id=batch_id, scheduled_at=when)
    except CommsError as exc:
        st.error(str(exc))
        return
    if when is None:
        dispatcher.wake(store)  # due now: the background sender need not wait for its poll
    if when is None:
        _set("done", f"{n} messages queued to send now.")
    else:
        _set("done", f"{n} messages scheduled for {when:%Y-%m-%d %H:%M}.")
    st.rerun()


def _send_test(store: Store, batch_id: int, channel: str) -> None:
    with st.expander("Send a test"):
        sample = generate.first_sendable(store, batch_id)
        label = "Send the first ready message to" + (
            " (e-mail)" if channel == "email" else " (phone)"
        )
        address = st.text_input(label, key="wiz_test_address")
        if st.button(
            "Send a test",
            disabled=sample is None,
            key="wiz_send_test",
            icon=":material/science:",
        ):
            try:
                test_id = testsend.copy_as_test_message(store, sample, address)
                outbox.queue(store, message_ids=[test_id])
                outcome = dispatcher.send_now(store, [test_id])
            except CommsError as exc:
                st.error(str(exc))
                return
            row = next((m for m in outcome.get("messages", []) if m["id"] == test_id), {})
            if row.get("status") == "sent":
                st.success(f"Test sent to {address} (message #{test_id}).", icon=":material/check:")
            else:
                st.warning(
                    f"Test message #{test_id} is {row.get('status', 'not sent')}: "
                    f"{row.get('error') or 'see Outbox'}."
                )
