"""The Communication list's pieces: filters, the paged table, one message as it was
sent, the actions on a selection, and a client's timeline.

Queries live in comms.messages.history; every status change goes through comms.outbox
(via comms.messages.compose for drafts). Only one page of messages is ever loaded.

Panels never go stale: a selection is ids, not row positions
(comms.ui.widgets.tables), an action reads the selected messages' statuses when
it is clicked (a message sent meanwhile is named and left alone), and while a
shown message is queued or sending the list refreshes itself until it settles.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from comms import outbox
from comms.clients import profile, suppressions
from comms.config import max_upload_bytes
from comms.errors import CommsError, NotFound
from comms.i18n import N_, TABLE_DATETIME, _, format_datetime, language, ngettext, size
from comms.messages import compose, editor, history
from comms.messages.history import MessageFilter
from comms.rules.sms import sms_info, split_segments
from comms.rules.validation import OPTED_OUT
from comms.sending import dispatcher
from comms.store import Store
from comms.ui.common import (
    CHANNEL_LABELS,
    STATUS_COLORS,
    chart_datetime,
    chart_locale,
    number,
    set_flash,
    show_flash,
    shown_code,
)
from comms.ui.widgets.tables import clear_picked, id_table

PAGE_SIZE = 50
TABLE_KEY = "comm_table"
LIVE_SECONDS = 2  # how often a panel showing a message on its way refreshes
MOVING = frozenset({"queued", "sending"})
# Statuses whose reason / error says something about the message as it is now. A
# message sent after a retry keeps the old failure's text in its row; it is not shown.
REASON_SHOWN = frozenset({"invalid", "failed", "interrupted", "undelivered", "bounced"})
STATUS_BADGES = {
    "draft": ("gray", ":material/edit_note:"),
    "invalid": ("orange", ":material/block:"),
    "queued": ("blue", ":material/schedule_send:"),
    "sending": ("violet", ":material/send:"),
    "sent": ("green", ":material/check_circle:"),
    "failed": ("red", ":material/error:"),
    "cancelled": ("gray", ":material/cancel:"),
    "interrupted": ("orange", ":material/help:"),
    "excluded": ("gray", ":material/remove_circle:"),
    "delivered": ("green", ":material/done_all:"),
    "undelivered": ("red", ":material/sms_failed:"),
    "bounced": ("red", ":material/unsubscribe:"),
}
# A sending attempt's outcomes (message_attempts.outcome), shown through shown_code.
N_("transient")
N_("permanent")
FILTER_KEYS = (
    "comm_f_client",
    "comm_f_channel",
    "comm_f_status",
    "comm_f_source",
    "comm_f_batch",
    "comm_f_dates",
    "comm_f_text",
)


def status_badge(status: str) -> None:
    """A coloured badge for a message status."""
    color, icon = STATUS_BADGES.get(status, ("gray", None))
    st.badge(shown_code(status), color=color, icon=icon)


# -- which client -------------------------------------------------------------------


def client_id_from(state_key: str) -> int | None:
    """A page's client: st.session_state[state_key], else ?client=ID (then remembered).

    The id is also written to the URL, so a link to the view can be shared.
    """
    cid = st.session_state.get(state_key)
    if cid is None:
        raw = st.query_params.get("client")
        if raw and str(raw).strip().isdigit():
            cid = int(str(raw).strip())
            st.session_state[state_key] = cid
    if cid is not None and st.query_params.get("client") != str(cid):
        st.query_params["client"] = str(cid)
    return int(cid) if cid is not None else None


def comm_client_id() -> int | None:
    """The client the Communication page is narrowed to, if any."""
    return client_id_from("comms_comm_client_id")


def clear_client() -> None:
    """Back to every client's messages."""
    st.session_state.pop("comms_comm_client_id", None)
    if "client" in st.query_params:
        del st.query_params["client"]


# -- filters ------------------------------------------------------------------------


def _dates(value: Any) -> tuple[dt.date | None, dt.date | None]:
    if isinstance(value, dt.date):
        return value, value
    values = list(value or ())
    if not values:
        return None, None
    return values[0], values[1] if len(values) > 1 else values[0]


def filters(store: Store, client_id: int | None) -> MessageFilter:
    """The filter widgets; returns the filter they describe."""
    opts = history.filter_options(store)
    batches = {b["id"]: b["label"] for b in opts["batches"]}
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([2, 1, 2, 1])
        client_text = c1.text_input(
            _("Client"),
            key="comm_f_client",
            placeholder=_("name, e-mail or phone"),
            disabled=client_id is not None,
            help=_("Showing one client's messages") if client_id is not None else None,
        )
        every = _("All")
        channel = c2.selectbox(
            _("Channel"),
            [None, *opts["channels"]],
            format_func=lambda c: every if c is None else CHANNEL_LABELS[c],
            key="comm_f_channel",
        )
        statuses = c3.multiselect(
            _("Status"),
            opts["statuses"],
            format_func=shown_code,
            key="comm_f_status",
            placeholder=every,
        )
        source = c4.selectbox(
            _("Source"),
            [None, *opts["sources"]],
            format_func=lambda s: every if s is None else shown_code(s),
            key="comm_f_source",
        )
        d1, d2, d3 = st.columns([2, 2, 2])
        batch_id = d1.selectbox(
            _("Batch"),
            [None, *batches],
            format_func=lambda b: (
                every if b is None else batches.get(b, _("batch {id}").format(id=b))
            ),
            key="comm_f_batch",
        )
        date_from, date_to = _dates(
            d2.date_input(
                _("Date range"),
                value=(),
                key="comm_f_dates",
                format="DD.MM.YYYY" if language() == "cs" else "YYYY-MM-DD",
            )
        )
        text = d3.text_input(
            _("Text"), key="comm_f_text", placeholder=_("words in the subject, body or address")
        )
    return MessageFilter(
        client_id=client_id,
        client_text=None if client_id is not None else (client_text or None),
        channel=channel,
        statuses=list(statuses),
        source=source,
        batch_id=batch_id,
        date_from=date_from,
        date_to=date_to,
        text=text or None,
    )


def reset_filters() -> None:
    """Clear every filter widget (a callback)."""
    for key in FILTER_KEYS:
        st.session_state.pop(key, None)


# -- the table ----------------------------------------------------------------------


def shown_reason(status: str, reason: Any, error: Any) -> str:
    """The reason / error a person should see for a message in this status ('' for none)."""
    if status not in REASON_SHOWN:
        return ""
    for value in (reason, error):
        if value is not None and value == value and str(value):
            return shown_code(value)
    return ""


def _display(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            _("ID"): df["id"],
            _("Created"): df["created_at"],
            _("Client"): df["client_name"],
            _("Channel"): df["channel"].map(CHANNEL_LABELS),
            _("Status"): df["status"].map(shown_code),
            _("Source"): df["source"].map(shown_code),
            _("To"): df["to_address"],
            _("Subject / text"): df["subject"].fillna(df["snippet"].str.replace("\n", " ")),
            _("Sent"): df["sent_at"],
            _("Attempts"): df["attempts"],
            _("Reason / error"): [
                shown_reason(st_, r, e)
                for st_, r, e in zip(df["status"], df["reason"], df["error"], strict=True)
            ],
        }
    )
    return out


# -- panels that follow their messages ---------------------------------------------


def live(store: Store, f: MessageFilter, fn: Any, *args: Any) -> None:
    """Draw fn(*args, ticking) as a panel that reruns every LIVE_SECONDS while a message
    it lists is on its way (history.count_on_its_way), so it never shows "queued" for a
    message sent seconds ago, nor offers to cancel it (the Outbox's pattern)."""
    ticking = history.count_on_its_way(store, f) > 0
    st.fragment(fn, run_every=LIVE_SECONDS if ticking else None)(*args, ticking)


def settled(df: pd.DataFrame, ticking: bool) -> None:
    """At the end of a live panel: once nothing it shows is on its way, one full run
    stops its timer."""
    if ticking and not history.on_its_way(df):
        st.rerun()


def paged_table(store: Store, f: MessageFilter, ticking: bool = False) -> list[int] | None:
    """Count, page picker and the table; the selected rows' ids (None: nothing listed)."""
    total = history.count_messages(store, f)
    pages = max(1, -(-total // PAGE_SIZE))
    signature = json.dumps(f.to_dict(), default=str, sort_keys=True)
    if st.session_state.get("comm_signature") != signature:
        # New filters: back to page 1 and no selection.
        st.session_state["comm_signature"] = signature
        st.session_state["comm_page"] = 1
        clear_picked(TABLE_KEY)
    if st.session_state.get("comm_page", 1) > pages:
        st.session_state["comm_page"] = pages
    if total == 0:
        if f != MessageFilter(client_id=f.client_id):
            st.info(_("No message matches these filters."), icon=":material/search_off:")
        elif f.client_id is not None:
            st.info(_("Nothing has been written to this client yet."), icon=":material/inbox:")
        else:
            st.info(
                _(
                    "No messages yet. Send to clients from **Bulk send** or from a client's "
                    "detail; every message then appears here."
                ),
                icon=":material/inbox:",
            )
        return None
    head, pager = st.columns([4, 1], vertical_alignment="bottom")
    counted = ngettext("**{n} message**, newest first", "**{n} messages**, newest first", total)
    counted = counted.format(n=number(total))
    if pages == 1:  # no page picker that can only say 1
        head.markdown(counted)
        page = 1
    else:
        head.markdown(
            counted
            + " · "
            + ngettext(
                "{pages} page of {size} messages", "{pages} pages of {size} messages", pages
            ).format(pages=number(pages), size=number(PAGE_SIZE))
        )
        page = pager.number_input(_("Page"), min_value=1, max_value=pages, step=1, key="comm_page")
    df = history.list_messages(store, f, limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE)
    st.session_state["comm_page_rows"] = df
    # One client's view: their name in the header, not in every row.
    return message_table(df, key=TABLE_KEY, hide=(N_("Client"),) if f.client_id is not None else ())


def message_table(df: pd.DataFrame, *, key: str, hide: Sequence[str] = ()) -> list[int]:
    """Messages (as history.list_messages returns them) with multi-row selection.

    `hide` names display columns to leave out (English names: msgids); returns the
    selected messages' ids (mapped from the rows as drawn, so a new message at the top
    shifts nothing).
    """
    when = TABLE_DATETIME[language()]
    return id_table(
        _display(df).drop(columns=[_(h) for h in hide]),
        [int(i) for i in df["id"]],
        key=key,
        hide_index=True,
        column_config={
            _("ID"): st.column_config.NumberColumn(format="%d", width="small"),
            _("Created"): st.column_config.DatetimeColumn(format=when),
            _("Sent"): st.column_config.DatetimeColumn(format=when),
            _("Attempts"): st.column_config.NumberColumn(width="small"),
            _("Source"): st.column_config.TextColumn(width="medium"),  # "client detail" whole
            _("Status"): st.column_config.TextColumn(width="small"),
        },
        placeholder="",  # a draft has no "Sent", a sent message no "Reason / error"
    )


# -- actions ------------------------------------------------------------------------


def clear_selection(table_key: str) -> None:
    """Forget a table's selected messages."""
    clear_picked(table_key)


def _act(
    store: Store,
    flash_key: str,
    label: str,
    fn,
    ids: Sequence[int],
    allowed: frozenset[str],
) -> None:
    """Run one action on the selected messages that can still take it (a button callback).

    The statuses are read now, at the click, not when the buttons were drawn: a
    message the background sender sent meanwhile is named and left alone instead
    of failing the whole action ("Cannot cancel message 14 (sent)").
    """
    now = history.statuses_of(store, ids)
    able = [i for i in ids if now.get(i) in allowed]
    moved_on = {i: now[i] for i in ids if i in now and now[i] not in allowed}

    def note() -> str:
        if not moved_on:
            return ""
        listed = ", ".join(
            _("{id} is {status} now").format(id=i, status=shown_code(s))
            for i, s in moved_on.items()
        )
        return " " + _("(message {list}: left as it is)").format(list=listed)

    # The outcomes are written when shown (set_flash): they follow a language switch.
    if not able:
        set_flash(
            flash_key,
            "warning",
            lambda: _("{action}: nothing to do").format(action=_(label)) + note() + ".",
        )
        return
    try:
        n = fn(able)
    except CommsError as exc:
        error = str(exc)
        set_flash(
            flash_key, "error", lambda: _("{action}: {error}").format(action=_(label), error=error)
        )
    else:
        set_flash(
            flash_key,
            "success",
            lambda: (
                _("{action}: {done}").format(
                    action=_(label),
                    done=ngettext("{n} message", "{n} messages", n).format(n=number(n)),
                )
                + note()
                + "."
            ),
        )


def _copy(store: Store, message_id: int, flash_key: str, table_key: str) -> None:
    try:
        new_id = compose.copy_to_draft(store, message_id)
    except CommsError as exc:
        error = str(exc)
        set_flash(flash_key, "error", lambda: _("Copy: {error}").format(error=error))
        return
    set_flash(
        flash_key,
        "success",
        lambda: _("Copied into a new draft (message {id}); it is at the top of the list.").format(
            id=new_id
        ),
    )
    clear_selection(table_key)  # the copy, at the top, is the one to look at next


def _counted(n: int, some: str, none: str) -> str:
    """A button label: "Send 2 drafts", or "Send drafts" (disabled), never "Send 0 …"."""
    return some.format(n=number(n)) if n else none


def _woken(store: Store, n: int) -> int:
    """After a move that made messages due now: wake the background sender (never send here)."""
    if n:
        dispatcher.wake(store)
    return n


def _send_drafts(store: Store, ids: Sequence[int]) -> int:
    return _woken(store, compose.send_drafts(store, ids))


def actions(
    store: Store, ids: Sequence[int], *, key: str = "comm", table_key: str = TABLE_KEY
) -> None:
    """Buttons for what can be done with the selected messages."""
    flash_key = f"{key}_flash"
    show_flash(flash_key)
    if not ids:
        st.caption(_("Select messages in the table to send drafts, retry, cancel or copy them."))
        return
    by: dict[str, list[int]] = {}
    for mid, status in history.statuses_of(store, ids).items():
        by.setdefault(status, []).append(mid)
    drafts_ids, failed, queued = by.get("draft", []), by.get("failed", []), by.get("queued", [])
    # One wrapping row: four fixed columns cut "Copy into a new draft" short.
    row = st.container(horizontal=True)
    row.button(
        _counted(
            len(drafts_ids),
            ngettext("Send {n} draft", "Send {n} drafts", len(drafts_ids)),
            _("Send drafts"),
        ),
        icon=":material/send:",
        type="primary",
        disabled=not drafts_ids,
        key=f"{key}_send_drafts",
        on_click=_act,
        args=(
            store,
            flash_key,
            N_("Queued to send now"),
            lambda ids: _send_drafts(store, ids),
            drafts_ids,
            frozenset({"draft"}),
        ),
        help=_("Queue the selected drafts; the background sender sends them within seconds."),
    )
    row.button(
        _counted(
            len(failed),
            ngettext("Retry {n} failed", "Retry {n} failed", len(failed)),
            _("Retry failed"),
        ),
        icon=":material/replay:",
        disabled=not failed,
        key=f"{key}_retry",
        on_click=_act,
        args=(
            store,
            flash_key,
            N_("Queued again"),
            lambda ids: _woken(store, outbox.retry(store, message_ids=ids)),
            failed,
            frozenset({"failed"}),
        ),
    )
    row.button(
        _counted(
            len(queued),
            ngettext("Cancel {n} queued", "Cancel {n} queued", len(queued)),
            _("Cancel queued"),
        ),
        icon=":material/cancel_schedule_send:",
        disabled=not queued,
        key=f"{key}_cancel",
        on_click=_act,
        args=(
            store,
            flash_key,
            N_("Cancelled"),
            lambda ids: outbox.cancel(store, message_ids=ids),
            queued,
            frozenset({"queued"}),
        ),
        help=_("Queued messages that have not left yet are cancelled."),
    )
    row.button(
        _("Copy into a new draft"),
        icon=":material/content_copy:",
        key=f"{key}_copy",
        disabled=len(ids) != 1,
        help=None if len(ids) == 1 else _("Select exactly one message to copy it."),
        on_click=_copy,
        args=(store, ids[0], flash_key, table_key),
    )


# -- one message --------------------------------------------------------------------


def _when(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return "—"
    return format_datetime(pd.Timestamp(value).to_pydatetime())


def message_view(store: Store, message_id: int, *, key: str = "comm_msg") -> None:
    """One message as it was sent: headers, body, attachments, provider id, attempts."""
    try:
        msg = history.get_message(store, message_id)
    except CommsError as exc:
        st.error(str(exc))
        return
    with st.container(border=True):
        top = st.columns([3, 1], vertical_alignment="center")
        title = msg["subject"] if msg["channel"] == "email" else "SMS"
        top[0].markdown(f"#### {CHANNEL_LABELS[msg['channel']]} {message_id}: {title or ''}")
        with top[1]:
            status_badge(msg["status"])
        batch = (
            f"{msg['batch_name'] or _('batch')} ({msg['batch_id']})" if msg["batch_id"] else None
        )
        client = (
            _("{name} (ID {id})").format(name=msg["client_name"] or "—", id=msg["client_id"])
            if msg["client_id"] is not None
            else None
        )
        reason = shown_reason(msg["status"], msg.get("reason"), None)
        facts = (
            (_("To"), f"{msg.get('to_name') or ''} <{msg['to_address'] or '—'}>"),
            (_("Client"), client),
            (_("Source"), shown_code(msg["source"])),
            (_("Batch"), batch),
            (_("Created"), _when(msg["created_at"])),
            (_("Scheduled"), _when(msg["scheduled_at"])),
            (_("Sent"), _when(msg["sent_at"])),
            (_("Provider id"), msg["provider_id"]),
            (_("Attempts"), msg["attempts"]),
            (_("Reason"), reason or None),
        )
        # What has not happened (no batch, not scheduled, not sent) is left out, not "—".
        meta = {k: v for k, v in facts if v not in (None, "", "—")}
        st.markdown("  \n".join(f"**{k}:** {v}" for k, v in meta.items()))
        if msg.get("error") and msg["status"] == "invalid":
            # An invalid message never reached a server: the error is ours (render, address).
            st.warning(
                _("Cannot be sent: {reason}").format(reason=msg["error"]), icon=":material/block:"
            )
        elif msg.get("error") and msg["status"] in REASON_SHOWN:
            st.error(_("Last error: {error}").format(error=msg["error"]), icon=":material/error:")
        elif msg.get("error") and msg["status"] == "queued" and msg.get("next_attempt_at"):
            # Deferred after a temporary error; a retried message (attempts from 0) is not.
            st.info(
                _("The last attempt failed for now ({error}); it is tried again at {when}.").format(
                    error=msg["error"], when=_when(msg["next_attempt_at"])
                ),
                icon=":material/schedule:",
            )
        if msg["channel"] == "email":
            _email_body(store, msg, key)
        else:
            _sms_body(msg)
        if msg["attempt_log"]:
            st.markdown("**" + _("Attempts") + "**")
            attempts = pd.DataFrame(msg["attempt_log"])
            st.dataframe(
                attempts.assign(outcome=attempts["outcome"].map(shown_code)).rename(
                    columns={
                        "attempt": "#",
                        "ts": _("When"),
                        "outcome": _("Outcome"),
                        "detail": _("Detail"),
                    }
                ),
                hide_index=True,
                key=f"{key}_attempts_{message_id}",
                placeholder="",
                column_config={
                    "#": st.column_config.NumberColumn(format="%d", width="small"),
                    _("When"): st.column_config.DatetimeColumn(
                        format=TABLE_DATETIME[language()] + ":ss"
                    ),
                },
            )
        else:
            st.caption(_("No sending attempt yet."))
        if msg["status"] in editor.EDITABLE:
            _edit_draft(store, msg, key)
        if msg["client_id"] is not None:
            if st.button(
                _("Open client detail"), icon=":material/person:", key=f"{key}_open_client"
            ):
                from comms.ui.client import open_client_detail  # avoids an import cycle

                open_client_detail(int(msg["client_id"]))


def _email_body(store: Store, msg: dict, key: str) -> None:
    st.markdown(_("**Subject:** {subject}").format(subject=msg["subject"] or "—"))
    with st.container(border=True):
        if msg.get("body_html"):
            # st.html sanitises (no scripts, no event handlers): safe for stored HTML.
            st.html(msg["body_html"])
        else:
            st.text(msg["body_text"] or "")
    with st.expander(_("Plain-text part")):
        st.text(msg["body_text"] or "")
    if msg["attachments"]:
        st.markdown("**" + _("Attachments") + "**")
        for a in msg["attachments"]:
            cols = st.columns([3, 1, 1], vertical_alignment="center")
            cols[0].markdown(f":material/attach_file: {a['filename']}")
            cols[1].caption(f"{a['content_type']}, {size(a['size'])}")
            name, ctype, data = history.attachment_data(store, a["id"])
            cols[2].download_button(
                _("Download"),
                data=data,
                file_name=name,
                mime=ctype,
                key=f"{key}_att_{msg['id']}_{a['id']}",
            )
    else:
        st.caption(_("No attachments."))


def _sms_body(msg: dict) -> None:
    text = msg["body_text"] or ""
    info = sms_info(text)
    st.caption(info.describe())
    parts = split_segments(text)
    for i, part in enumerate(parts, start=1):
        with st.container(border=True):
            if len(parts) > 1:
                st.caption(_("Segment {n} of {total}").format(n=i, total=len(parts)))
            st.text(part)


def _edit_draft(store: Store, msg: dict, key: str) -> None:
    with st.expander(_("Edit this draft"), icon=":material/edit:"):
        with st.form(f"{key}_edit_{msg['id']}"):
            subject = (
                st.text_input(_("Subject"), value=msg["subject"] or "")
                if msg["channel"] == "email"
                else None
            )
            body = st.text_area(_("Text"), value=editor.editable_body(msg), height=200)
            if msg["channel"] == "sms":
                st.caption(sms_info(body).describe())
            if st.form_submit_button(_("Save the draft"), icon=":material/save:"):
                try:
                    editor.edit_message(store, msg["id"], subject=subject, body=body)
                except CommsError as exc:
                    st.error(str(exc))
                else:
                    st.success(_("Draft saved."))
                    st.rerun()


# -- the timeline ---------------------------------------------------------------------


def timeline(store: Store, client_id: int) -> None:
    """Messages of one client over time, by channel (rows) and status (colour).

    Titles, channels and statuses in the viewer's language; dates in its format
    (chart_datetime) and Vega's numbers and month names in its locale (chart_locale).
    """
    df = history.client_timeline(store, client_id)
    if df.empty:
        st.info(_("This client has no messages yet."), icon=":material/forum:")
        return
    codes = [s for s in STATUS_COLORS if s in set(df["status"])]
    df = df.assign(channel=df["channel"].map(CHANNEL_LABELS), status=df["status"].map(shown_code))
    when = chart_datetime()
    chart = (
        alt.Chart(df)
        .mark_circle(size=140, opacity=0.85)
        .encode(
            x=alt.X("ts:T", title=None, axis=alt.Axis(format=when, labelAngle=0)),
            y=alt.Y("channel:N", title=None, sort=list(CHANNEL_LABELS.values())),
            color=alt.Color(
                "status:N",
                title=_("Status"),
                scale=alt.Scale(
                    domain=[shown_code(s) for s in codes], range=[STATUS_COLORS[s] for s in codes]
                ),
            ),
            tooltip=[
                alt.Tooltip("id:Q", title=_("Message"), format="d"),  # an id: no grouping
                alt.Tooltip("ts:T", title=_("When"), format=when),
                alt.Tooltip("channel:N", title=_("Channel")),
                alt.Tooltip("status:N", title=_("Status")),
                alt.Tooltip("title:N", title=_("Subject / text")),
            ],
        )
        .properties(height=150)
        .configure(locale=chart_locale())
    )
    st.altair_chart(chart, width="stretch")


# -- the suppression list -------------------------------------------------------------


# Reasons the panel fills in (stored as these codes, shown translated).
UPLOADED_LIST = N_("uploaded list")
ASKED_TO_STOP = N_("asked to stop")
SUPP_FLASH = "supp_flash"


def _reason(typed: str, code: str) -> str:
    """The reason to store: the code when the person left the filled-in one as it was."""
    text = (typed or "").strip()
    return code if text in ("", code, _(code)) else text


def _upload_preview(store: Store, uploaded: Any, reason: str, nonce: int) -> None:
    """Parse an uploaded address list, report bad lines, offer to add the rest."""

    data = uploaded.getvalue()
    if len(data) > max_upload_bytes():
        st.error(
            _("{name} is too large; the limit is {size}.").format(
                name=uploaded.name, size=size(max_upload_bytes())
            )
        )
        return
    try:
        parsed = suppressions.parse_address_list(data)
    except CommsError as exc:
        st.error(_("{name}: {error}").format(name=uploaded.name, error=exc))
        return
    total = len(parsed.entries)
    emails = sum(1 for _a, _n, ch in parsed.entries if ch == "email")
    notes = [
        ngettext(
            "{n} address(es): {emails} e-mail, {phones} phone",
            "{n} address(es): {emails} e-mail, {phones} phone",
            total,
        ).format(n=number(total), emails=number(emails), phones=number(total - emails))
    ]
    if parsed.duplicates:
        notes.append(
            ngettext(
                "{n} repeated line(s) counted once",
                "{n} repeated line(s) counted once",
                parsed.duplicates,
            ).format(n=number(parsed.duplicates))
        )
    if parsed.header_skipped:
        notes.append(_("the header line was skipped"))
    st.markdown("; ".join(notes) + ".")
    if parsed.errors:
        st.warning(
            ngettext(
                "{n} line(s) are not an e-mail or phone number and will be left out:",
                "{n} line(s) are not an e-mail or phone number and will be left out:",
                len(parsed.errors),
            ).format(n=number(len(parsed.errors)))
        )
        st.dataframe(
            pd.DataFrame(parsed.errors, columns=["Line", "Text", "Problem"]),
            hide_index=True,
            key="supp_bad_lines",
            placeholder="",
            column_config={
                "Line": st.column_config.NumberColumn(_("Line"), format="%d"),
                "Text": _("Text"),
                "Problem": _("Problem"),
            },
        )

    def add_all() -> None:
        n = suppressions.import_suppressions(store, parsed, reason)
        set_flash(
            SUPP_FLASH,
            "success",
            lambda: ngettext(
                "{n} address(es) added to the suppression list ({known} were already on it).",
                "{n} address(es) added to the suppression list ({known} were already on it).",
                n,
            ).format(n=number(n), known=number(total - n)),
        )
        st.session_state["supp_nonce"] = nonce + 1

    st.button(
        ngettext("Add {n} address(es)", "Add {n} address(es)", total).format(n=number(total)),
        type="primary",
        disabled=not parsed.entries,
        key="supp_import",
        on_click=add_all,
    )


def suppression_panel(store: Store) -> None:
    """Opted-out addresses: upload a list, add one by hand, search, remove."""
    show_flash(SUPP_FLASH)
    total = suppressions.count_suppressions(store)
    st.caption(
        ngettext(
            "{n} address. Nobody on this list is sent bulk messages (reason “{reason}”), "
            "and one-off messages to them are refused.",
            "{n} addresses. Nobody on this list is sent bulk messages (reason “{reason}”), "
            "and one-off messages to them are refused.",
            total,
        ).format(n=number(total), reason=shown_code(OPTED_OUT))
    )
    up, hand = st.columns(2)
    with up:
        st.markdown(_("**Upload a list** (CSV or TXT, one e-mail or phone per line)"))
        nonce = st.session_state.get("supp_nonce", 0)
        uploaded = st.file_uploader(_("Addresses"), type=["csv", "txt"], key=f"supp_upload_{nonce}")
        reason = st.text_input(_("Reason"), value=_(UPLOADED_LIST), key="supp_upload_reason")
        if uploaded is not None:
            _upload_preview(store, uploaded, _reason(reason, UPLOADED_LIST), nonce)
    with hand:
        st.markdown("**" + _("Add one address") + "**")
        address = st.text_input(_("E-mail or phone"), key="supp_address")
        hand_reason = st.text_input(_("Reason"), value=_(ASKED_TO_STOP), key="supp_hand_reason")
        if st.button(_("Add to the list"), key="supp_add", disabled=not address.strip()):
            try:
                norm, channel = suppressions.add_suppression(
                    store, address, _reason(hand_reason, ASKED_TO_STOP)
                )
            except CommsError as exc:
                st.error(str(exc))
            else:
                set_flash(
                    SUPP_FLASH,
                    "success",
                    lambda: _("{address} ({channel}) is suppressed.").format(
                        address=norm, channel=CHANNEL_LABELS.get(channel, channel)
                    ),
                )
                st.rerun()
    search = st.text_input(_("Search the list"), key="supp_search", placeholder=_("address"))
    listed = suppressions.list_suppressions(store, search=search or None, limit=1000)
    if listed.empty:
        return
    chosen = id_table(
        listed.assign(
            channel=listed["channel"].map(lambda c: CHANNEL_LABELS.get(c, c)),
            reason=listed["reason"].map(shown_code),
        ),
        list(zip(listed["address"], listed["channel"], strict=True)),
        key="supp_table",
        hide_index=True,
        placeholder="",
        column_config={
            "address": _("Address"),
            "channel": _("Channel"),
            "reason": _("Reason"),
            "created_by": _("Added by"),
            "created_at": st.column_config.DatetimeColumn(
                _("Added on"), format=TABLE_DATETIME[language()]
            ),
        },
    )
    if st.button(
        _("Remove {n} selected").format(n=number(len(chosen))),
        disabled=not chosen,
        key="supp_remove",
        help=_("Only when the person asked to receive messages again."),
    ):
        for address, channel in chosen:
            suppressions.remove_suppression(store, address, channel)
        removed = len(chosen)
        set_flash(
            SUPP_FLASH,
            "success",
            lambda: ngettext("Removed {n} address.", "Removed {n} addresses.", removed).format(
                n=number(removed)
            ),
        )
        st.rerun()


# -- the page -------------------------------------------------------------------------


def client_header(store: Store, client_id: int) -> bool:
    """The narrowed-to client's name, the way back to everyone, and the timeline.

    False (and back to every client) when that client does not exist.
    """
    from comms.ui.client import open_client_detail  # avoids an import cycle

    try:
        client = profile.load_client(store, client_id)
    except NotFound:
        st.warning(_("Client {id} does not exist; showing every message.").format(id=client_id))
        clear_client()
        return False
    head, b1, b2 = st.columns([3, 1, 1], vertical_alignment="center")
    head.subheader(
        _("{name} · client {id}").format(name=client["name"] or _("(no name)"), id=client_id)
    )
    b1.button(_("Show every client"), icon=":material/groups:", on_click=clear_client)
    if b2.button(_("Open client detail"), icon=":material/person:"):
        open_client_detail(client_id)
    timeline(store, client_id)
    return True


def _list_panel(store: Store, flt: MessageFilter, ticking: bool) -> None:
    """The list, the actions on its selection and the selected message (a live panel)."""
    selected = paged_table(store, flt, ticking)
    if selected is not None:  # no "select messages…" hint under an empty list
        actions(store, selected)
        if len(selected) == 1:
            message_view(store, selected[0])
        elif len(selected) > 1:
            st.caption(
                _("{n} messages selected; select one to see it as it was sent.").format(
                    n=number(len(selected))
                )
            )
        settled(st.session_state.pop("comm_page_rows"), ticking)


def render(store: Store) -> None:
    """The whole Communication page: every message, or one client's."""
    st.title(_("Communication"))
    client_id = comm_client_id()
    if client_id is not None and not client_header(store, client_id):
        client_id = None
    if client_id is None:
        st.caption(_("Every message from bulk sends, client details and the command line."))
    flt = filters(store, client_id)
    st.button(_("Clear filters"), icon=":material/filter_alt_off:", on_click=reset_filters)
    live(store, flt, _list_panel, store, flt)
    st.divider()
    with st.expander(_("Suppression list (opted-out addresses)"), icon=":material/block:"):
        suppression_panel(store)
