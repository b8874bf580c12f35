"""The bulk send wizard's second half: the generated batch, as its messages say.

Review (the counts, the reasons, a table whose Exclude column excludes and
includes, one message to see, edit or exclude), finish (send now, schedule,
keep for later, a test message, discard after a confirmation) and what became
of the batch. Everything is read from the database for the batch the URL names
(comms.ui.wizard_flow), so a reload or a bookmark lands on the same step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from comms import outbox
from comms.errors import CommsError, NotFound
from comms.i18n import N_, _, format_datetime, language, ngettext, size
from comms.messages import batches, editor, generate, testsend
from comms.rules.sms import max_segments
from comms.sending import dispatcher
from comms.store import Store
from comms.ui.common import CHANNEL_LABELS, confirmed_action, md_escape, number, shown_code
from comms.ui.widgets.sms_counter import sms_counter
from comms.ui.wizard_flow import (
    FINISH,
    RECIPIENTS,
    REVIEW,
    STEPS,
    close_batch,
    done_text,
    go,
    handed_selection,
    heading,
    link,
    open_batch,
    progress_header,
    reset,
    set_done,
    set_state,
    state,
)

# Labels (msgids, translated where shown) -> the status they filter on.
STATUS_FILTERS = {
    N_("All"): None,
    N_("Ready (draft)"): "draft",
    N_("Invalid"): "invalid",
    N_("Excluded"): "excluded",
}
REVIEW_ROWS = 500  # rows drawn in the review table (a batch can hold 100,000)
MOVING = ("queued", "sending")  # a message on its way: panels showing it refresh


# -- the generated batch ---------------------------------------------------------------------
def render_batch(store: Store, batch_id: int) -> None:
    """A generated batch: review, finish, or what became of it, as its messages say."""
    _apply_exclusions(store)  # before the counts: they include what the ticks did
    try:
        info = generate.batch_info(store, batch_id)
    except NotFound:
        st.error(_("Batch {id} does not exist.").format(id=batch_id), icon=":material/error:")
        if st.button(_("Prepare a new send"), key="wiz_missing_new"):
            close_batch()
            st.rerun()
        return
    info["excluded"] = int(info["by_status"].get("excluded", 0))
    channel = info["channel"]
    name = f": {md_escape(info['name'])}" if info.get("name") else ""
    created = format_datetime(pd.Timestamp(info["created_at"]).to_pydatetime())
    who = ngettext("{n} recipient", "{n} recipients", info["total"]).format(n=number(info["total"]))
    generated = (
        _("generated {when} by {user}").format(when=created, user=md_escape(info["created_by"]))
        if info.get("created_by")
        else _("generated {when}").format(when=created)
    )
    st.markdown(
        _("**{channel}** · batch **#{id}**{name} · {recipients} · {generated}").format(
            channel=CHANNEL_LABELS[channel],
            id=batch_id,
            name=name,
            recipients=who,
            generated=generated,
        )
    )
    done = done_text(batch_id)
    if done or batches.stage(info["by_status"]) == batches.DONE:
        progress_header(len(STEPS), channel)
        step_done(store, info, done)
        return
    at_finish = st.query_params.get("step") == "finish"
    progress_header(FINISH if at_finish else REVIEW, channel)
    if at_finish:
        step_finish(store, info)
    else:
        step_review(store, info)


def _counts(store: Store, batch_id: int, info: dict) -> None:
    c = st.columns(4)
    c[0].metric(_("Messages"), number(info["total"]))
    c[1].metric(_("Ready to send"), number(info["sendable"]))
    c[2].metric(_("Invalid"), number(info["by_status"].get("invalid", 0)))
    c[3].metric(_("Excluded"), number(info["excluded"]))
    reasons = generate.reason_counts(store, batch_id)
    if reasons:
        st.markdown(
            _("**Why messages cannot be sent:** {reasons}").format(
                reasons=" · ".join(
                    f"{shown_code(reason)} **{number(n)}**" for reason, n in reasons.items()
                )
            )
        )
    if info["channel"] == "sms":
        st.caption(_("SMS segments to send: {n}").format(n=number(info["sendable_segments"])))


def _review_key(batch_id: int) -> str:
    return f"wiz_review_{batch_id}_{state('review_round', 0)}"


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
        set_state("review_flash", ("error", str(exc)))
    else:
        parts = []
        if excluded:
            parts.append(
                ngettext("{n} message excluded", "{n} messages excluded", excluded).format(
                    n=number(excluded)
                )
            )
        if included:
            n = sum(included.values())
            bad = included.get("invalid", 0)
            parts.append(
                ngettext("{n} message included again", "{n} messages included again", n).format(
                    n=number(n)
                )
                + (" " + _("({n} still invalid)").format(n=number(bad)) if bad else "")
            )
        if parts:
            set_state("review_flash", ("success", "; ".join(parts) + "."))
    set_state("review_round", state("review_round", 0) + 1)


def step_review(store: Store, info: dict) -> None:
    batch_id = int(info["id"])
    heading(REVIEW, info["channel"], _("Review batch {id}").format(id=batch_id))
    _counts(store, batch_id, info)
    flash = state("review_flash")
    if flash:
        getattr(st, flash[0])(flash[1])
        set_state("review_flash", None)
    c1, c2 = st.columns([2, 3])
    status = c1.radio(
        _("Show"), list(STATUS_FILTERS), format_func=_, horizontal=True, key="wiz_review_filter"
    )
    search = c2.text_input(
        _("Find a recipient"), key="wiz_review_search", placeholder=_("name or address")
    )
    table = generate.review(
        store, batch_id, STATUS_FILTERS[status], search=search, limit=REVIEW_ROWS
    )
    if len(table) == REVIEW_ROWS:
        total = generate.review_count(store, batch_id, STATUS_FILTERS[status], search=search)
        st.caption(
            ngettext(
                "Showing the first {shown} of {n} message; "
                "find a recipient or filter by status to see others.",
                "Showing the first {shown} of {n} messages; "
                "find a recipient or filter by status to see others.",
                total,
            ).format(shown=number(REVIEW_ROWS), n=number(total))
        )
    table["exclude"] = table["status"] == "excluded"
    table["reason"] = table["reason"].map(shown_code)
    table["status"] = table["status"].map(shown_code)
    table["subject"] = table["subject"].fillna("")
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
                _("Exclude"),
                help=_("Tick to take the message out of this send; untick to bring it back."),
            ),
            "recipient": _("Recipient"),
            "address": _("Address"),
            "subject": _("Subject"),
            "first_line": st.column_config.TextColumn(_("First line")),
            "segments": st.column_config.NumberColumn(_("Segments"), format="%d"),
            "status": _("Status"),
            "reason": _("Why not sendable"),
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
            _("Open message"),
            ids,
            index=None,
            format_func=labels.get,
            placeholder=_("Choose a message to see it as the recipient will"),
            key="wiz_open_select",
        )
        if opened is not None:
            message_panel(store, int(opened))
    row = st.container(horizontal=True)
    if state("batch_id") == batch_id and handed_selection() is not None:
        if row.button(_("Back to recipients"), icon=":material/arrow_back:", key="wiz_back_review"):
            close_batch()
            go(RECIPIENTS)
            st.rerun()
    if row.button(
        _("Continue to sending"),
        type="primary",
        icon=":material/arrow_forward:",
        key="wiz_next_review",
    ):
        set_state("at_finish", True)
        open_batch(batch_id, finish=True)
        st.rerun()


def message_panel(store: Store, message_id: int) -> None:
    """One message as the recipient will see it, with edit and exclude."""
    msg = editor.get_message(store, message_id)
    excluded = msg["status"] == "excluded"
    with st.container(border=True):
        st.markdown(
            _("**To:** {name} · {address}").format(
                name=md_escape(msg["to_name"] or ""), address=md_escape(msg["to_address"] or "—")
            )
        )
        if msg["status"] == "invalid":
            detail = f" — {msg['error']}" if msg.get("error") else ""
            st.error(
                _("Cannot be sent: {reason}").format(reason=shown_code(msg["reason"])) + detail,
                icon=":material/block:",
            )
        if excluded:
            st.info(
                _("Excluded: this message will not be sent. Include it again to edit it."),
                icon=":material/remove_circle:",
            )
        if msg["channel"] == "email":
            st.markdown(_("**Subject:** {subject}").format(subject=md_escape(msg["subject"] or "")))
            st.html(msg["body_html"] or "")
            if msg["attachments"]:
                st.caption(
                    _("Attachments: {files}").format(
                        files=", ".join(
                            f"{a.filename} ({size(a.size)})" for a in msg["attachments"]
                        )
                    )
                )
        else:
            st.text(msg["body_text"] or "")
            sms_counter(msg["body_text"] or "", label=_("This message"))
        if excluded:
            if st.button(
                _("Include again"), key=f"wiz_include_{message_id}", icon=":material/add_circle:"
            ):
                _include_one(store, message_id)
            return
        if msg["status"] not in editor.EDITABLE:
            st.caption(
                _("This message is {status}; it can no longer be edited.").format(
                    status=shown_code(msg["status"])
                )
            )
            return
        with st.form(f"wiz_edit_{message_id}"):
            address = st.text_input(
                _("E-mail address") if msg["channel"] == "email" else _("Phone number"),
                value=msg["to_address"] or "",
            )
            subject = None
            if msg["channel"] == "email":
                subject = st.text_input(_("Subject"), value=msg["subject"] or "")
            body = st.text_area(_("Body"), value=editor.editable_body(msg), height=200)
            saved = st.form_submit_button(_("Save changes"), icon=":material/save:")
        if saved:
            try:
                updated = editor.edit_message(
                    store, message_id, subject=subject, body=body, to_address=address
                )
            except CommsError as exc:
                st.error(str(exc))
            else:
                if updated["status"] == "draft":
                    st.session_state["wiz_flash"] = _("Message #{id} saved: ready to send.").format(
                        id=message_id
                    )
                else:
                    st.session_state["wiz_flash"] = _(
                        "Message #{id} saved but still invalid: {reason}."
                    ).format(id=message_id, reason=shown_code(updated["reason"]))
                set_state("review_round", state("review_round", 0) + 1)
                st.rerun()
        flash = st.session_state.pop("wiz_flash", None)
        if flash:
            st.success(flash, icon=":material/check:")
        if st.button(
            _("Exclude from this send"),
            key=f"wiz_exclude_{message_id}",
            icon=":material/remove_circle:",
        ):
            try:
                editor.exclude(store, [message_id])
            except CommsError as exc:
                st.error(str(exc))
                return
            set_state("review_round", state("review_round", 0) + 1)
            st.rerun()


def _include_one(store: Store, message_id: int) -> None:
    try:
        counts = editor.include(store, [message_id])
    except CommsError as exc:
        st.error(str(exc))
        return
    if counts.get("invalid"):
        st.session_state["wiz_flash"] = _("Message #{id} is back, but invalid.").format(
            id=message_id
        )
    set_state("review_round", state("review_round", 0) + 1)
    st.rerun()


# -- 6. finish ------------------------------------------------------------------------------
def step_finish(store: Store, info: dict) -> None:
    batch_id = int(info["id"])
    heading(FINISH, info["channel"], _("Finish"))
    n = info["sendable"]
    segments = int(info["sendable_segments"] or 0) if info["channel"] == "sms" else 0
    extra = (
        " "
        + ngettext("({n} SMS segment)", "({n} SMS segments)", segments).format(n=number(segments))
        if info["channel"] == "sms"
        else ""
    )
    of_total = ngettext("of {n} message", "of {n} messages", info["total"]).format(
        n=number(info["total"])
    )
    st.markdown(
        ngettext(
            "**{ready}** {of_total} is ready to send{extra}. Invalid and excluded messages "
            "stay behind as they are.",
            "**{ready}** {of_total} are ready to send{extra}. Invalid and excluded messages "
            "stay behind as they are.",
            n,
        ).format(ready=number(n), of_total=of_total, extra=extra)
    )
    if n == 0:
        st.warning(
            _(
                "Nothing can be sent: every message is invalid or excluded. Go back to the "
                "review to fix them (the reasons are listed there; a field made optional with "
                "`| default('')` fixes “missing field”), or discard this batch."
            ),
            icon=":material/block:",
        )
    if info["channel"] == "sms" and n:
        worst = info["max_segments"]
        if worst and worst > max_segments():
            st.warning(
                _("Some messages need {n} segments (limit {limit}).").format(
                    n=number(worst), limit=number(max_segments())
                )
            )

    c1, c2, c3 = st.columns(3)
    with c1.container(border=True):
        st.markdown("**" + _("Send now") + "**")
        st.caption(_("Queued to go immediately."))
        if st.button(
            _("Send now"),
            type="primary",
            disabled=n == 0,
            key="wiz_send_now",
            icon=":material/send:",
        ):
            _queue(store, batch_id, None)
    with c2.container(border=True):
        st.markdown("**" + _("Schedule") + "**")
        tomorrow = (datetime.now() + timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        day = st.date_input(
            _("Date"),
            value=tomorrow.date(),
            key="wiz_sched_date",
            format="DD.MM.YYYY" if language() == "cs" else "YYYY/MM/DD",
        )
        at = st.time_input(_("Time"), value=tomorrow.time(), key="wiz_sched_time", step=300)
        when = datetime.combine(day, at)
        if st.button(
            _("Schedule for {when}").format(when=format_datetime(when)),
            disabled=n == 0,
            key="wiz_schedule",
            icon=":material/schedule:",
        ):
            if when <= datetime.now():
                st.error(_("Choose a time in the future."))
            else:
                _queue(store, batch_id, when)
    with c3.container(border=True):
        st.markdown("**" + _("Keep for later") + "**")
        st.caption(_("Leave them as drafts; send them later from Outbox or Communication."))
        if st.button(
            _("Keep for later"), disabled=n == 0, key="wiz_keep", icon=":material/inventory_2:"
        ):
            batches.record_kept(store, batch_id, n)
            set_done(
                batch_id,
                lambda: ngettext(
                    "{n} message kept as a draft in batch {id}. Send it later from Outbox "
                    "(its Review button brings you back here) or Communication.",
                    "{n} messages kept as drafts in batch {id}. Send them later from Outbox "
                    "(its Review button brings you back here) or Communication.",
                    n,
                ).format(n=number(n), id=batch_id),
            )
            st.rerun()

    _send_test(store, batch_id, info["channel"])
    st.divider()
    row = st.container(horizontal=True)
    if row.button(_("Back to review"), icon=":material/arrow_back:", key="wiz_back_finish"):
        set_state("at_finish", False)
        open_batch(batch_id)
        st.rerun()
    drafts = int(info["by_status"].get("draft", 0))
    if confirmed_action(
        "wiz_discard",
        _("Discard this batch"),
        question=ngettext(
            "Discard batch {id}? Its {n} draft will be cancelled and never sent "
            "(it stays in Communication as cancelled).",
            "Discard batch {id}? Its {n} drafts will be cancelled and never sent "
            "(they stay in Communication as cancelled).",
            drafts,
        ).format(id=batch_id, n=number(drafts)),
        confirm_label=ngettext("Yes, discard {n} draft", "Yes, discard {n} drafts", drafts).format(
            n=number(drafts)
        ),
        keep_label=_("Keep the batch"),
        container=row,
        disabled=drafts == 0,
        icon=":material/delete:",
    ):
        moved = outbox.cancel(store, batch_id=batch_id)
        set_done(
            batch_id,
            lambda: ngettext(
                "Batch {id} discarded: {n} draft cancelled.",
                "Batch {id} discarded: {n} drafts cancelled.",
                moved,
            ).format(id=batch_id, n=number(moved)),
        )
        st.rerun()


def _queue(store: Store, batch_id: int, when: datetime | None) -> None:
    try:
        n = outbox.queue(store, batch_id=batch_id, scheduled_at=when)
    except CommsError as exc:
        st.error(str(exc))
        return
    if when is None:
        dispatcher.wake(store)  # due now: the background sender need not wait for its poll
        set_done(
            batch_id,
            lambda: ngettext(
                "{n} message queued to send now.", "{n} messages queued to send now.", n
            ).format(n=number(n)),
        )
    else:
        set_done(
            batch_id,
            lambda: ngettext(
                "{n} message scheduled for {when}.", "{n} messages scheduled for {when}.", n
            ).format(n=number(n), when=format_datetime(when)),
        )
    st.rerun()


def _summary(by_status: dict[str, int]) -> str:
    parts = [f"{number(by_status[s])} {shown_code(s)}" for s in outbox.STATUSES if by_status.get(s)]
    return ", ".join(parts) or _("no messages")


def step_done(store: Store, info: dict, done: str | None) -> None:
    """What became of the batch, and the ways on."""
    batch_id = int(info["id"])
    by_status = info["by_status"]
    if done:
        st.success(done, icon=":material/check_circle:")
    elif not any(by_status.get(s) for s in batches.WENT_OUT):
        st.info(
            _("Batch {id} was discarded: nothing of it was sent ({summary}).").format(
                id=batch_id, summary=_summary(by_status)
            ),
            icon=":material/delete:",
        )
    else:
        st.info(
            _("Batch {id} has left the wizard: {summary}. Follow it in Outbox.").format(
                id=batch_id, summary=_summary(by_status)
            ),
            icon=":material/outbox:",
        )
    row = st.container(horizontal=True)
    link(row, _("Follow it in Outbox"), "pages/outbox.py", ":material/outbox:", "wiz_outbox")
    if row.button(_("See them in Communication"), icon=":material/forum:", key="wiz_comm"):
        st.session_state["comm_f_batch"] = batch_id
        st.session_state.pop("comms_comm_client_id", None)
        st.switch_page("pages/communication.py")
    if by_status.get("draft"):
        if row.button(_("Back to the sending options"), icon=":material/undo:", key="wiz_reopen"):
            set_done(batch_id, None)
            open_batch(batch_id, finish=True)
            st.rerun()
    if row.button(_("Start a new send"), icon=":material/restart_alt:", key="wiz_restart"):
        st.session_state.pop("comms_selection", None)
        reset()
        close_batch()
        st.rerun()


def _send_test(store: Store, batch_id: int, channel: str) -> None:
    with st.expander(_("Send a test"), expanded=state("test_id") is not None):
        sample = generate.first_sendable(store, batch_id)
        label = (
            _("Send the first ready message to (e-mail)")
            if channel == "email"
            else _("Send the first ready message to (phone)")
        )
        address = st.text_input(label, key="wiz_test_address")
        if st.button(
            _("Send a test"),
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
            set_state("test_id", test_id)
        if state("test_id") is not None:
            show_test_status(store, int(state("test_id")))


def show_test_status(store: Store, message_id: int) -> None:
    """Where the test message stands, refreshed every 2 s until it has its outcome."""
    moving = outbox.get_message(store, message_id)["status"] in MOVING
    st.fragment(_test_status, run_every=2 if moving else None)(store, message_id, moving)


def _test_status(store: Store, message_id: int, ticking: bool) -> None:
    msg = outbox.get_message(store, message_id)
    to = msg["to_address"]
    if msg["status"] in MOVING:
        st.info(
            _(
                "Test message #{id} to {to} is {status}: the background sender sends it "
                "within seconds."
            ).format(id=message_id, to=to, status=shown_code(msg["status"])),
            icon=":material/hourglass_top:",
        )
        return
    if ticking:
        st.rerun()  # settled: one full run stops the timer
    if msg["status"] in ("sent", "delivered"):
        st.success(
            _("Test sent to {to} (message #{id}).").format(to=to, id=message_id),
            icon=":material/check:",
        )
    else:
        st.warning(
            _("Test message #{id} is {status}: {why}.").format(
                id=message_id,
                status=shown_code(msg["status"]),
                why=msg.get("error") or shown_code(msg.get("reason")) or _("see Outbox"),
            )
        )
