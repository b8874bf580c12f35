"""The bulk send wizard: template, content, attachments, recipients, review, finish.

Until "Generate", the send being prepared lives in st.session_state under
`wiz_*` keys (the selection handed over by Clients, the template and text, the
attachments, the recipients dropped). From "Generate" on, the batch in the
database IS the wizard's state: the URL carries it (`?batch=N`, and
`&step=finish` on the last step), and the step shown is derived from the
batch's messages (comms.messages.batches.stage), so a reload, a bookmark or
Outbox's "Review" lands on the same step. Every write goes through
comms.messages (generate, editor, recipients, batches) and comms.outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from comms import outbox
from comms import templates as tpl
from comms.errors import CommsError, NotFound
from comms.messages import batches, editor, generate, recipients, selection, testsend
from comms.rules.sms import max_segments, to_gsm7
from comms.sending import dispatcher
from comms.store import Store
from comms.templates import attachments as att
from comms.ui.common import (
    CHANNEL_LABELS,
    FORMAT_LABELS,
    confirmed_action,
    counted,
    md_escape,
    number,
)
from comms.ui.widgets import attachments as attachments_ui
from comms.ui.widgets.sms_counter import sms_counter
from comms.ui.widgets.tables import clear_picked, id_table

STEPS = ("Template", "Content", "Attachments", "Recipients", "Review", "Finish")
TEMPLATE, CONTENT, ATTACHMENTS, RECIPIENTS, REVIEW, FINISH = range(len(STEPS))
BLANK = 0  # the template picker's "blank message" (template ids start at 1)
BLANK_LABEL = "(blank message)"
STATUS_FILTERS = {
    "All": None,
    "Ready (draft)": "draft",
    "Invalid": "invalid",
    "Excluded": "excluded",
}
RECIPIENT_VIEWS = {
    "All": "all",
    "With a problem": "problems",
    "Passing every check": "ok",
    "Dropped": "dropped",
}
REVIEW_ROWS = 500  # rows drawn in the review table (a batch can hold 100,000)
RECIPIENT_ROWS = 200  # rows per page of the recipients list
RECIPIENT_TABLE = "wiz_rcpt_table"
DONE_KEY = "wiz_done"  # {batch id: what the last action on it did}, this session only
MOVING = ("queued", "sending")  # a message on its way: panels showing it refresh


# -- state ------------------------------------------------------------------------
def _state(key: str, default: Any = None) -> Any:
    return st.session_state.get(f"wiz_{key}", default)


def _set(key: str, value: Any) -> None:
    st.session_state[f"wiz_{key}"] = value


def reset() -> None:
    """Forget the send being prepared (a generated batch stays in the database)."""
    for key in [k for k in st.session_state if str(k).startswith("wiz_")]:
        del st.session_state[key]


def _go(step: int) -> None:
    _set("step", step)


def batch_in_url() -> int | None:
    """The batch the URL names (?batch=N), if any."""
    raw = st.query_params.get("batch")
    return int(raw) if raw is not None and str(raw).strip().isdigit() else None


def open_batch(batch_id: int, *, finish: bool = False) -> None:
    """Show batch_id from now on: the URL carries it, so a reload lands here too."""
    _set("at_batch", True)
    st.query_params["batch"] = str(int(batch_id))
    if finish:
        st.query_params["step"] = "finish"
    elif "step" in st.query_params:
        del st.query_params["step"]


def close_batch() -> None:
    """Back to preparing a send (the URL no longer names a batch)."""
    _set("at_batch", False)
    for param in ("batch", "step"):
        if param in st.query_params:
            del st.query_params[param]


def _done(batch_id: int) -> str | None:
    return (st.session_state.get(DONE_KEY) or {}).get(int(batch_id))


def _set_done(batch_id: int, text: str | None) -> None:
    done = dict(st.session_state.get(DONE_KEY) or {})
    if text is None:
        done.pop(int(batch_id), None)
    else:
        done[int(batch_id)] = text
    st.session_state[DONE_KEY] = done


def _steps_for(channel: str) -> list[int]:
    # SMS has no attachments step.
    return [i for i in range(len(STEPS)) if not (channel == "sms" and i == ATTACHMENTS)]


def _heading(step: int, channel: str, text: str) -> None:
    """The step's heading, numbered as in the progress line (SMS has no attachments step)."""
    st.subheader(f"{_steps_for(channel).index(step) + 1}. {text}")


def _next(step: int, channel: str) -> int:
    order = _steps_for(channel)
    return order[min(order.index(step) + 1, len(order) - 1)]


def _prev(step: int, channel: str) -> int:
    order = _steps_for(channel)
    return order[max(order.index(step) - 1, 0)]


def _link(where: Any, label: str, page: str, icon: str, key: str, **params: str) -> None:
    # A button + switch_page rather than st.page_link, which refuses pages that the
    # navigation has not registered (a page run on its own, as in AppTest).
    if where.button(label, icon=icon, key=key):
        st.switch_page(page, query_params=params or None)


# -- selection ----------------------------------------------------------------------
def _selection() -> dict | None:
    sel = st.session_state.get("comms_selection")
    if isinstance(sel, dict) and ("client_ids" in sel or "filter" in sel):
        return sel
    return None


def _wanted_channel() -> str:
    wanted = st.session_state.get("comms_wizard_channel")
    return wanted if wanted in CHANNEL_LABELS else "email"


def _describe_selection(store: Store, sel: dict) -> tuple[int, str]:
    n = selection.selection_count(store, sel)
    if "client_ids" in sel:
        return n, f"{counted(n, 'selected client')}"
    flt = {k: v for k, v in (sel.get("filter") or {}).items() if v not in (None, "", "equals")}
    what = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in flt.items()) or "every client"
    return n, f"all {counted(n, 'matching client')} ({what})"


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
    """Draw the wizard: the batch the URL names, else the send being prepared."""
    batch_id = batch_in_url()
    sel = _selection()
    if (
        batch_id is None
        and _state("batch_id") is not None
        and _state("at_batch", True)
        and _same_send(sel)
    ):
        # Back on the page (from the menu) after generating: the batch, not step 1.
        batch_id = int(_state("batch_id"))
        open_batch(batch_id, finish=bool(_state("at_finish")))
    if batch_id is not None:
        render_batch(store, batch_id)
        return
    if sel is None:
        no_selection(store)
        return
    count, description = _describe_selection(store, sel)
    if not _same_send(sel):
        # A new selection (or channel) from the directory starts a new send.
        reset()
        _set("selection", sel)
        _set("origin_channel", _wanted_channel())
        _set("channel", _wanted_channel())
    channel = _state("channel", "email")
    step = min(_state("step", TEMPLATE), RECIPIENTS)

    top, change = st.columns([4, 1], vertical_alignment="center")
    top.markdown(f"**{CHANNEL_LABELS[channel]}** to **{md_escape(description)}**")
    _link(change, "Change recipients", "pages/directory.py", ":material/group:", "wiz_change")
    if count == 0:
        st.warning("The selection holds no clients any more. Choose recipients in Clients.")
        return
    _progress_header(step, channel)

    if step == TEMPLATE:
        step_template(store, channel)
    elif step == CONTENT:
        step_content(store, channel, sel)
    elif step == ATTACHMENTS:
        step_attachments(store)
    else:
        step_recipients(store, channel, sel)


def _same_send(sel: dict | None) -> bool:
    """Whether the session's send being prepared is for this selection and channel."""
    return (
        sel is not None
        and _state("selection") == sel
        and _state("origin_channel") == _wanted_channel()
    )


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


def _nav(
    step: int,
    channel: str,
    *,
    next_label: str = "Next",
    can_next: bool = True,
    why_not: str | None = None,
) -> bool:
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
        help=None if can_next else why_not,
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
    # BLANK, not None: a None value reads as "nothing chosen" ("Choose an option").
    options: list[int] = [BLANK, *[int(t["id"]) for t in templates]]
    names = {int(t["id"]): t["name"] for t in templates}
    current = _state("template_id")
    current = BLANK if current is None else current
    picked = st.selectbox(
        "Template",
        options,
        index=(
            options.index(current)
            if "wiz_template_id" in st.session_state and current in options
            else (1 if templates else 0)
        ),
        format_func=lambda i: BLANK_LABEL if i == BLANK else names.get(i, f"template {i}"),
        key="wiz_template_select",
    )
    template_id = None if picked in (None, BLANK) else int(picked)
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
    if _nav(TEMPLATE, channel):
        _set("template_id", template_id)
        if _state("loaded_template") != (channel, template_id):
            _load_template(store, template_id, channel)
        _go(CONTENT)
        st.rerun()


# -- 2. content ---------------------------------------------------------------------------
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


def _preview_picker(store: Store, sel: dict) -> dict | None:
    """Which recipient to preview for: the first, or any one found by name / address."""
    search = st.text_input(
        "Preview for",
        key="wiz_preview_search",
        placeholder="find a recipient: name, e-mail or phone",
    )
    found = recipients.preview_clients(store, sel, search, limit=50)
    if not found:
        st.caption("No selected client matches." if search else "No recipient to preview.")
        return None
    labels = {
        int(c["id"]): f"{c['name'] or '(no name)'} · {c['email'] or c['phone'] or 'no address'}"
        for c in found
    }
    ids = list(labels)
    chosen = st.selectbox(
        "Recipient",
        ids,
        format_func=labels.get,
        key="wiz_preview_client",
        label_visibility="collapsed",
    )
    return tpl.sample_client(store, int(chosen if chosen in labels else ids[0]))


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
                "Replace diacritics and typographic marks (GSM-7: 160 characters per segment "
                "instead of 70)",
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
                    + ", ".join(f"`{f}` empty for {number(n)}" for f, n in lacking.items())
                    + ". Tip: `{{ city | default('') }}` makes a field optional.",
                    icon=":material/warning:",
                )
    with right:
        client = _preview_picker(store, sel) if compiled is not None else None
        if client is not None:
            st.markdown(f"**Preview for {md_escape(client.get('name') or 'this client')}**")
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

    if _nav(CONTENT, channel, can_next=error is None and bool(body.strip())):
        _go(_next(CONTENT, channel))
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
    flash = _state("attach_flash")
    if flash:
        st.success(flash, icon=":material/attach_file:")
        _set("attach_flash", None)
    attachments_ui.usage_caption(files, "Every message carries these files.")
    removed = attachments_ui.file_rows(files, key_prefix="wiz_rm")
    if removed is not None:
        _set("attachment_ids", [i for i in ids if i != removed])
        st.rerun()
    # A file is attached as soon as it is picked: no second button to forget.
    uploads = attachments_ui.uploader("Add files", key=f"wiz_upload_{_state('upload_round', 0)}")
    refused = False
    if uploads:
        new = total + sum(u.size for u in uploads)
        if new > limit:
            refused = True
            st.error(
                f"These files would make {att.human_size(new)} per message; the limit is "
                f"{att.human_size(limit)} (COMMS_MAX_ATTACHMENT_MB). Remove some of them "
                "from the box above.",
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
                _set("attachment_ids", list(dict.fromkeys([*ids, *added])))
                _set("upload_round", _state("upload_round", 0) + 1)
                _set("attach_flash", "Attached: " + ", ".join(u.name for u in uploads) + ".")
                st.rerun()
    if _nav(
        ATTACHMENTS,
        "email",
        can_next=not refused,
        why_not="Remove the files that cannot be attached first.",
    ):
        _go(RECIPIENTS)
        st.rerun()


# -- 4. recipients and generate -------------------------------------------------------------
def _mark(ok: Any) -> str:
    return "✓" if bool(ok) else "✗"


def _recipient_rows(df: pd.DataFrame, channel: str) -> pd.DataFrame:
    """The recipients page as shown: text marks, not checkboxes (nothing here is editable)."""
    out = pd.DataFrame(
        {
            "Name": df["name"].fillna("").astype(str),
            "E-mail" if channel == "email" else "Phone": df["address"].fillna("").astype(str),
        }
    )
    for col, label, _ in recipients.CHECKS[channel]:
        out[label] = df[col].map(_mark)
    out["Problem"] = df["reason"].fillna("").astype(str)
    out["Dropped"] = df["dropped"].map(lambda d: "dropped" if d else "")
    return out


def _earlier_sends(store: Store, channel: str, sel: dict) -> None:
    """Warn when the same template already went to some of these clients."""
    earlier = batches.earlier_sends(
        store,
        sel,
        channel=channel,
        template_id=_state("template_id"),
        body=_state("body") or "",
        subject=_state("subject") if channel == "email" else None,
        exclude_batch=_state("batch_id"),
    )
    what = f"template “{_state('template_name')}”" if _state("template_name") else "this text"
    for b in earlier:
        name = f" ({b['name']})" if b.get("name") else ""
        when = pd.Timestamp(b["created_at"]).strftime("%Y-%m-%d %H:%M")
        if b["went_out"]:
            st.warning(
                f"You already sent {what} to {number(b['clients'])} of these clients: batch "
                f"#{b['id']}{name} of {when} ({number(b['went_out'])} sent or queued). "
                "Generating again sends it to them a second time.",
                icon=":material/content_copy:",
            )
        else:
            st.warning(
                f"Batch #{b['id']}{name} of {when} already holds {what} for "
                f"{number(b['clients'])} of these clients, kept as "
                f"{counted(b['drafts'], 'draft')}. Review it instead of generating again?",
                icon=":material/content_copy:",
            )
            if st.button(f"Review batch #{b['id']}", key=f"wiz_earlier_{b['id']}"):
                open_batch(int(b["id"]))
                st.rerun()


def step_recipients(store: Store, channel: str, sel: dict) -> None:
    _heading(RECIPIENTS, channel, "Recipients")
    dropped = [int(i) for i in _state("dropped") or []]
    counts = recipients.recipient_counts(store, sel, channel, dropped)
    c = st.columns(4)
    c[0].metric("Selected", number(counts.total))
    c[1].metric("Pass every check", number(counts.ok))
    c[2].metric("With a problem", number(counts.with_problem))
    c[3].metric("Dropped", number(counts.dropped))
    address = "e-mail address" if channel == "email" else "phone number (a mobile)"
    st.caption(
        f"Each recipient's {address} is checked, then the suppression list, consent and "
        "duplicates. A recipient with a problem is generated as invalid with that reason, "
        "unless you drop it; problems of the text (a missing field) show at review."
    )
    if counts.reasons:
        st.markdown(
            "**Problems found:** "
            + " · ".join(f"{reason} **{number(n)}**" for reason, n in counts.reasons.items())
        )
    _earlier_sends(store, channel, sel)

    f1, f2 = st.columns([3, 2])
    view = f1.radio("Show", list(RECIPIENT_VIEWS), horizontal=True, key="wiz_rcpt_view")
    search = f2.text_input("Find a recipient", key="wiz_rcpt_search", placeholder="name or address")
    filtered = recipients.recipient_page(
        store, sel, channel, dropped, show=RECIPIENT_VIEWS[view], search=search, limit=1
    )[0]
    pages = max(1, -(-filtered // RECIPIENT_ROWS))
    page = 1
    if pages > 1:
        page = st.pagination(pages, key="wiz_rcpt_page", max_visible_pages=7)
    page = min(int(page or 1), pages)
    _, df = recipients.recipient_page(
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
        st.caption("No recipient matches." if search or view != "All" else "No recipients.")
        picked: list[int] = []
    else:
        first = (page - 1) * RECIPIENT_ROWS
        shown = f"{number(first + 1)}–{number(first + len(df))}"
        st.caption(
            f"{shown} of {counted(filtered, 'recipient')}. Tick rows to drop or restore them."
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
    picked_dropped = [i for i in picked if i in set(dropped)]
    picked_kept = [i for i in picked if i not in set(dropped)]
    row = st.container(horizontal=True)
    if row.button(
        f"Drop {number(len(picked_kept))} selected" if picked_kept else "Drop selected",
        key="wiz_rcpt_drop",
        icon=":material/person_remove:",
        disabled=not picked_kept,
    ):
        _set("dropped", sorted({*dropped, *picked_kept}))
        clear_picked(RECIPIENT_TABLE)
        st.rerun()
    if row.button(
        f"Restore {number(len(picked_dropped))} selected" if picked_dropped else "Restore selected",
        key="wiz_rcpt_restore",
        icon=":material/person_add:",
        disabled=not picked_dropped,
    ):
        _set("dropped", sorted(set(dropped) - set(picked_dropped)))
        clear_picked(RECIPIENT_TABLE)
        st.rerun()
    if row.button(
        f"Drop all {number(counts.with_problem)} with a problem",
        key="wiz_rcpt_drop_problems",
        icon=":material/filter_alt_off:",
        disabled=not counts.with_problem,
    ):
        _set(
            "dropped",
            sorted({*dropped, *recipients.ids_with_problem(store, sel, channel, dropped)}),
        )
        st.rerun()
    if row.button(
        f"Restore all {number(counts.dropped)} dropped",
        key="wiz_rcpt_restore_all",
        icon=":material/undo:",
        disabled=not counts.dropped,
    ):
        _set("dropped", [])
        st.rerun()
    _generate(store, channel, sel, counts)


def _generate(store: Store, channel: str, sel: dict, counts: recipients.RecipientCounts) -> None:
    st.divider()
    c1, c2 = st.columns(2)
    if channel == "email":
        c1.metric("Attachments", number(len(_state("attachment_ids") or [])))
    else:
        c1.metric("Diacritics", "replaced" if _state("gsm7") else "kept")
    c2.metric("Messages to generate", number(counts.kept))
    st.caption(
        "One message per recipient is rendered and checked. Nothing is sent in this step."
        + (
            f" The {counted(counts.dropped, 'dropped recipient')} are generated as excluded "
            "(you can bring them back at review)."
            if counts.dropped
            else ""
        )
    )
    previous = _state("batch_id")
    if previous is not None:
        st.info(
            f"Batch {previous} was generated already. Generating again replaces it: its "
            "drafts are cancelled (kept in Communication as cancelled).",
            icon=":material/info:",
        )
        if st.button(f"Back to batch {previous} without regenerating", key="wiz_to_review"):
            open_batch(int(previous))
            st.rerun()
    if not _nav(
        RECIPIENTS,
        channel,
        next_label=f"Generate {counted(counts.kept, 'message')}",
        can_next=counts.kept > 0,
        why_not="Every recipient is dropped.",
    ):
        return
    bar = st.progress(0.0, text="Rendering messages…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Rendered {number(done)} of {number(total)}")

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
        recipients.drop_from_batch(store, result.batch_id, _state("dropped") or [])
    except CommsError as exc:
        bar.empty()
        st.error(str(exc), icon=":material/error:")
        return
    if previous is not None:
        outbox.cancel(store, batch_id=previous)
    _set("batch_id", result.batch_id)
    _set("at_finish", False)
    st.session_state.pop("wiz_open_select", None)
    open_batch(result.batch_id)
    st.rerun()


# -- the generated batch ---------------------------------------------------------------------
def render_batch(store: Store, batch_id: int) -> None:
    """A generated batch: review, finish, or what became of it, as its messages say."""
    _apply_exclusions(store)  # before the counts: they include what the ticks did
    try:
        info = generate.batch_info(store, batch_id)
    except NotFound:
        st.error(f"Batch {batch_id} does not exist.", icon=":material/error:")
        if st.button("Prepare a new send", key="wiz_missing_new"):
            close_batch()
            st.rerun()
        return
    info["excluded"] = int(info["by_status"].get("excluded", 0))
    channel = info["channel"]
    name = f": {md_escape(info['name'])}" if info.get("name") else ""
    created = pd.Timestamp(info["created_at"]).strftime("%Y-%m-%d %H:%M")
    by = f" by {md_escape(info['created_by'])}" if info.get("created_by") else ""
    st.markdown(
        f"**{CHANNEL_LABELS[channel]}** · batch **#{batch_id}**{name} · "
        f"{counted(info['total'], 'recipient')} · generated {created}{by}"
    )
    done = _done(batch_id)
    if done or batches.stage(info["by_status"]) == batches.DONE:
        _progress_header(len(STEPS), channel)
        step_done(store, info, done)
        return
    at_finish = st.query_params.get("step") == "finish"
    _progress_header(FINISH if at_finish else REVIEW, channel)
    if at_finish:
        step_finish(store, info)
    else:
        step_review(store, info)


def _counts(store: Store, batch_id: int, info: dict) -> None:
    c = st.columns(4)
    c[0].metric("Messages", number(info["total"]))
    c[1].metric("Ready to send", number(info["sendable"]))
    c[2].metric("Invalid", number(info["by_status"].get("invalid", 0)))
    c[3].metric("Excluded", number(info["excluded"]))
    reasons = generate.reason_counts(store, batch_id)
    if reasons:
        st.markdown(
            "**Why messages cannot be sent:** "
            + " · ".join(f"{reason} **{number(n)}**" for reason, n in reasons.items())
        )
    if info["channel"] == "sms":
        st.caption(f"SMS segments to send: {number(info['sendable_segments'])}")


def _review_key(batch_id: int) -> str:
    return f"wiz_review_{batch_id}_{_state('review_round', 0)}"


def _apply_exclusions(store: Store) -> None:
    """The review table's Exclude ticks of the last run: exclude or include those messages.

    Positions are mapped to the ids drawn then; the table is then drawn afresh under a
    new key, from the database, so a tick shows the message's status, not a pending edit.
    """
    drawn_key, drawn = st.session_state.get("wiz_review_drawn") or (None, [])
    edits = (st.session_state.get(drawn_key) or {}).get("edited_rows") if drawn_key else None
    if not edits:
        return
    out, back = [], []
    for row, change in edits.items():
        r = int(row)
        if "exclude" in change and 0 <= r < len(drawn):
            (out if change["exclude"] else back).append(drawn[r])
    try:
        excluded = editor.exclude(store, out) if out else 0
        included = editor.include(store, back) if back else {}
    except CommsError as exc:
        _set("review_flash", ("error", str(exc)))
    else:
        parts = []
        if excluded:
            parts.append(f"{counted(excluded, 'message')} excluded")
        if included:
            n = sum(included.values())
            bad = included.get("invalid", 0)
            parts.append(
                f"{counted(n, 'message')} included again"
                + (f" ({number(bad)} still invalid)" if bad else "")
            )
        if parts:
            _set("review_flash", ("success", "; ".join(parts) + "."))
    _set("review_round", _state("review_round", 0) + 1)


def step_review(store: Store, info: dict) -> None:
    batch_id = int(info["id"])
    _heading(REVIEW, info["channel"], f"Review batch {batch_id}")
    _counts(store, batch_id, info)
    flash = _state("review_flash")
    if flash:
        getattr(st, flash[0])(flash[1])
        _set("review_flash", None)
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
            f"Showing the first {number(REVIEW_ROWS)} of {counted(total, 'message')}; "
            "find a recipient or filter by status to see others."
        )
    table["reason"] = table["reason"].fillna("")
    table["subject"] = table["subject"].fillna("")
    table["exclude"] = table["status"] == "excluded"
    # The exclusion, status and reason first: the long text columns scroll off the right.
    detail = "segments" if info["channel"] == "sms" else "subject"
    columns = ["exclude", "recipient", "address", "status", "reason", detail, "first_line"]
    ids = [int(i) for i in table["id"]]
    key = _review_key(batch_id)
    st.session_state["wiz_review_drawn"] = (key, ids)
    st.data_editor(
        table[columns],
        key=key,
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * max(len(table), 1)),
        disabled=[c for c in columns if c != "exclude"],
        column_config={
            "exclude": st.column_config.CheckboxColumn(
                "Exclude",
                help="Tick to take the message out of this send; untick to bring it back.",
            ),
            "recipient": "Recipient",
            "address": "Address",
            "subject": "Subject",
            "first_line": st.column_config.TextColumn("First line"),
            "segments": st.column_config.NumberColumn("Segments", format="%d"),
            "status": "Status",
            "reason": "Why not sendable",
        },
        placeholder="",
    )
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
    row = st.container(horizontal=True)
    if _state("batch_id") == batch_id and _selection() is not None:
        if row.button("Back to recipients", icon=":material/arrow_back:", key="wiz_back_review"):
            close_batch()
            _go(RECIPIENTS)
            st.rerun()
    if row.button(
        "Continue to sending",
        type="primary",
        icon=":material/arrow_forward:",
        key="wiz_next_review",
    ):
        _set("at_finish", True)
        open_batch(batch_id, finish=True)
        st.rerun()


def message_panel(store: Store, message_id: int) -> None:
    """One message as the recipient will see it, with edit and exclude."""
    msg = editor.get_message(store, message_id)
    excluded = msg["status"] == "excluded"
    with st.container(border=True):
        st.markdown(
            f"**To:** {md_escape(msg['to_name'] or '')} · {md_escape(msg['to_address'] or '—')}"
        )
        if msg["status"] == "invalid":
            detail = f" — {msg['error']}" if msg.get("error") else ""
            st.error(f"Cannot be sent: {msg['reason']}{detail}", icon=":material/block:")
        if excluded:
            st.info(
                "Excluded: this message will not be sent. Include it again to edit it.",
                icon=":material/remove_circle:",
            )
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
        if excluded:
            if st.button(
                "Include again", key=f"wiz_include_{message_id}", icon=":material/add_circle:"
            ):
                _include_one(store, message_id)
            return
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
                _set("review_round", _state("review_round", 0) + 1)
                st.rerun()
        flash = st.session_state.pop("wiz_flash", None)
        if flash:
            st.success(flash, icon=":material/check:")
        if st.button(
            "Exclude from this send",
            key=f"wiz_exclude_{message_id}",
            icon=":material/remove_circle:",
        ):
            try:
                editor.exclude(store, [message_id])
            except CommsError as exc:
                st.error(str(exc))
                return
            _set("review_round", _state("review_round", 0) + 1)
            st.rerun()


def _include_one(store: Store, message_id: int) -> None:
    try:
        counts = editor.include(store, [message_id])
    except CommsError as exc:
        st.error(str(exc))
        return
    if counts.get("invalid"):
        st.session_state["wiz_flash"] = f"Message #{message_id} is back, but invalid."
    _set("review_round", _state("review_round", 0) + 1)
    st.rerun()


# -- 6. finish ------------------------------------------------------------------------------
def step_finish(store: Store, info: dict) -> None:
    batch_id = int(info["id"])
    _heading(FINISH, info["channel"], "Finish")
    n = info["sendable"]
    extra = (
        f" ({number(info['sendable_segments'])} SMS segments)" if info["channel"] == "sms" else ""
    )
    st.markdown(
        f"**{number(n)}** of {counted(info['total'], 'message')} "
        f"{'is' if n == 1 else 'are'} ready to send{extra}. Invalid and excluded messages "
        "stay behind as they are."
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
        st.caption("Leave them as drafts; send them later from Outbox or Communication.")
        if st.button(
            "Keep for later", disabled=n == 0, key="wiz_keep", icon=":material/inventory_2:"
        ):
            batches.record_kept(store, batch_id, n)
            _set_done(
                batch_id,
                f"{counted(n, 'message')} kept as drafts in batch {batch_id}. Send them later "
                "from Outbox (its Review button brings you back here) or Communication.",
            )
            st.rerun()

    _send_test(store, batch_id, info["channel"])
    st.divider()
    row = st.container(horizontal=True)
    if row.button("Back to review", icon=":material/arrow_back:", key="wiz_back_finish"):
        _set("at_finish", False)
        open_batch(batch_id)
        st.rerun()
    drafts = int(info["by_status"].get("draft", 0))
    if confirmed_action(
        "wiz_discard",
        "Discard this batch",
        question=f"Discard batch {batch_id}? Its {counted(drafts, 'draft')} will be cancelled "
        "and never sent (they stay in Communication as cancelled).",
        confirm_label=f"Yes, discard {counted(drafts, 'draft')}",
        keep_label="Keep the batch",
        container=row,
        disabled=drafts == 0,
        icon=":material/delete:",
    ):
        moved = outbox.cancel(store, batch_id=batch_id)
        _set_done(batch_id, f"Batch {batch_id} discarded: {counted(moved, 'draft')} cancelled.")
        st.rerun()


def _queue(store: Store, batch_id: int, when: datetime | None) -> None:
    try:
        n = outbox.queue(store, batch_id=batch_id, scheduled_at=when)
    except CommsError as exc:
        st.error(str(exc))
        return
    if when is None:
        dispatcher.wake(store)  # due now: the background sender need not wait for its poll
        _set_done(batch_id, f"{counted(n, 'message')} queued to send now.")
    else:
        _set_done(batch_id, f"{counted(n, 'message')} scheduled for {when:%Y-%m-%d %H:%M}.")
    st.rerun()


def _summary(by_status: dict[str, int]) -> str:
    parts = [f"{number(by_status[s])} {s}" for s in outbox.STATUSES if by_status.get(s)]
    return ", ".join(parts) or "no messages"


def step_done(store: Store, info: dict, done: str | None) -> None:
    """What became of the batch, and the ways on."""
    batch_id = int(info["id"])
    by_status = info["by_status"]
    if done:
        st.success(done, icon=":material/check_circle:")
    elif not any(by_status.get(s) for s in batches.WENT_OUT):
        st.info(
            f"Batch {batch_id} was discarded: nothing of it was sent ({_summary(by_status)}).",
            icon=":material/delete:",
        )
    else:
        st.info(
            f"Batch {batch_id} has left the wizard: {_summary(by_status)}. Follow it in Outbox.",
            icon=":material/outbox:",
        )
    row = st.container(horizontal=True)
    _link(row, "Follow it in Outbox", "pages/outbox.py", ":material/outbox:", "wiz_outbox")
    if row.button("See them in Communication", icon=":material/forum:", key="wiz_comm"):
        st.session_state["comm_f_batch"] = batch_id
        st.session_state.pop("comms_comm_client_id", None)
        st.switch_page("pages/communication.py")
    if by_status.get("draft"):
        if row.button("Back to the sending options", icon=":material/undo:", key="wiz_reopen"):
            _set_done(batch_id, None)
            open_batch(batch_id, finish=True)
            st.rerun()
    if row.button("Start a new send", icon=":material/restart_alt:", key="wiz_restart"):
        st.session_state.pop("comms_selection", None)
        reset()
        close_batch()
        st.rerun()


def _send_test(store: Store, batch_id: int, channel: str) -> None:
    with st.expander("Send a test", expanded=_state("test_id") is not None):
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
                outbox.send_now(store, message_ids=[test_id])
            except CommsError as exc:
                st.error(str(exc))
                return
            # The page never sends: the background sender does, woken for it.
            dispatcher.wake(store)
            _set("test_id", test_id)
        if _state("test_id") is not None:
            test_status(store, int(_state("test_id")))


def test_status(store: Store, message_id: int) -> None:
    """Where the test message stands, refreshed every 2 s until it has its outcome."""
    moving = outbox.get_message(store, message_id)["status"] in MOVING
    st.fragment(_test_status, run_every=2 if moving else None)(store, message_id, moving)


def _test_status(store: Store, message_id: int, ticking: bool) -> None:
    msg = outbox.get_message(store, message_id)
    to = msg["to_address"]
    if msg["status"] in MOVING:
        st.info(
            f"Test message #{message_id} to {to} is {msg['status']}: the background sender "
            "sends it within seconds.",
            icon=":material/hourglass_top:",
        )
        return
    if ticking:
        st.rerun()  # settled: one full run stops the timer
    if msg["status"] in ("sent", "delivered"):
        st.success(f"Test sent to {to} (message #{message_id}).", icon=":material/check:")
    else:
        st.warning(
            f"Test message #{message_id} is {msg['status']}: "
            f"{msg.get('error') or msg.get('reason') or 'see Outbox'}."
        )
