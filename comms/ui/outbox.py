"""The Outbox page's pieces: batch cards with progress and actions, loose messages,
interrupted-message resolution, and sending with visible progress.

Every move of a message goes through comms.outbox (the only writer of
messages.status); sending goes through comms.sending.dispatcher; the page's read queries
live in comms.outbox.queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from comms import outbox
from comms.errors import CommsError
from comms.feedback import queries as feedback_queries
from comms.i18n import _
from comms.outbox.queries import (
    batch_messages,
    batch_rates,
    loose_messages,
    recently_moved_batches,
    scheduled_count,
    scheduled_count_all,
)
from comms.sending import dispatcher
from comms.store import Store
from comms.ui.common import confirmed_action, counted, number
from comms.ui.widgets.tables import id_table

# Counts shown for every batch, in this order, with their badge colours.
SHOWN_STATUSES: tuple[tuple[str, str], ...] = (
    ("draft", "gray"),
    ("queued", "blue"),
    ("sending", "violet"),
    ("sent", "green"),
    ("delivered", "green"),
    ("undelivered", "red"),
    ("bounced", "red"),
    ("failed", "red"),
    ("cancelled", "gray"),
    ("interrupted", "orange"),
)
# Out of the batch's work: never sent, not counted in its progress.
OUT_OF_WORK: tuple[tuple[str, str], ...] = (("invalid", "gray"), ("excluded", "gray"))
WENT_OUT = ("sent", "delivered", "undelivered", "bounced")  # handed to the server
FINISHED = (*WENT_OUT, "failed", "cancelled")
ACTIVE = ("draft", "queued", "sending", "failed", "interrupted")
# A batch can be reviewed in the wizard while it has messages a person may still change.
REVIEWABLE = ("draft", "invalid", "excluded")
INTERRUPTED_HELP = (
    "These messages were being handed to the server when the app stopped or the "
    "connection dropped. **Nobody can know whether they arrived**, so they are never "
    "resent automatically. Check the recipient's mailbox or the provider's log if you can, "
    "then decide."
)
RESOLUTION_LABELS = {
    "sent": "Mark as sent (it arrived)",
    "resend": "Send again (the recipient may get it twice)",
    "cancel": "Cancel (do not send it)",
}


# -- formatting ------------------------------------------------------------------


def when(ts: Any) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM' with a relative hint ('in 2 h', '5 min ago')."""
    if ts is None or pd.isna(ts):
        return "now"
    ts = pd.Timestamp(ts).to_pydatetime()
    delta = (ts - outbox.now()).total_seconds()
    rel = _relative(abs(delta))
    hint = f"in {rel}" if delta > 0 else f"{rel} ago" if delta < -60 else "now"
    return f"{ts:%Y-%m-%d %H:%M} ({hint})"


def _relative(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def counts_markdown(counts: dict[str, int]) -> str:
    """Counts by status as coloured badges; statuses with no message are left out."""
    parts = []
    for status, colour in (*SHOWN_STATUSES, *OUT_OF_WORK):
        n = int(counts.get(status, 0) or 0)
        if n:  # eight badges, mostly "0", hid the two that matter
            parts.append(f":{colour}-badge[{status} {number(n)}]")
    return " ".join(parts)


def _n(counts: dict[str, int], *statuses: str) -> int:
    return sum(int(counts.get(s, 0) or 0) for s in statuses)


def progress_of(
    counts: dict[str, int], rate: float | None = None, due: int | None = None
) -> tuple[float, str]:
    """Share of the batch's work that is finished, and a sentence saying so.

    Invalid and excluded messages are out of the work. `rate` (messages per
    second lately) and `due` (how many are still to be handed over) add the
    speed and an estimate of the time left.
    """
    sendable = _n(counts, *(s for s, _ in SHOWN_STATUSES))
    finished = _n(counts, *FINISHED)
    sent = _n(counts, *WENT_OUT)
    if sendable == 0:
        out = _n(counts, "invalid", "excluded")
        why = ""
        if out:
            why = f": all {number(out)} are invalid or excluded (see the reasons in Communication)"
            if not counts.get("excluded"):
                why = f": all {number(out)} are invalid (see the reasons in Communication)"
        return 0.0, f"No sendable messages{why}."
    to_go = sendable - finished
    cancelled = _n(counts, "cancelled")
    if not to_go and cancelled == sendable:
        return 1.0, f"Discarded: {counted(cancelled, 'message')} cancelled, nothing sent."
    text = f"{number(sent)} of {number(sendable)} sent"
    if counts.get("failed"):
        text += f", {number(counts['failed'])} failed"
    if cancelled:
        text += f", {number(cancelled)} cancelled"
    text += f", {number(to_go)} to go" if to_go else ", finished"
    if to_go and rate:
        text += f" · {number(rate, 1) if rate < 10 else number(rate)}/s"
        left = (due if due is not None else to_go) / rate
        text += f" · about {_relative(left)} left"
    return finished / sendable, text


FLASH_SECONDS = 20  # an action's outcome stays this long (a live refresh reruns the page)


def flash(message: str, kind: str = "success") -> None:
    """Show a message after the rerun that follows an action (and the live refreshes
    of the next FLASH_SECONDS: a batch that finishes at once reruns the page again)."""
    fresh = st.session_state.get("outbox_flash_action") != st.session_state.get("outbox_action")
    kept = [] if fresh else list(st.session_state.get("outbox_flash", []))
    st.session_state["outbox_flash"] = [*kept, (kind, message, time.monotonic())]
    st.session_state["outbox_flash_action"] = st.session_state.get("outbox_action")


def show_flashes() -> None:
    """Draw what the last action reported, for FLASH_SECONDS."""
    now = time.monotonic()
    kept = [f for f in st.session_state.get("outbox_flash", []) if now - f[2] < FLASH_SECONDS]
    st.session_state["outbox_flash"] = kept
    for kind, message, _made in kept:
        getattr(st, kind)(message)


def run_action(fn: Callable[[], str]) -> None:
    """Run one outbox action, report its result or its domain error, and rerun."""
    _new_action()
    try:
        flash(fn())
    except CommsError as exc:
        flash(str(exc), "error")
    st.rerun()


# -- sending now ----------------------------------------------------------------


def woken(store: Store, moved: int) -> int:
    """After a move that made messages due now (retry, send again): wake the background
    sender so it need not wait for its next poll. The page never sends itself."""
    if moved:
        dispatcher.wake(store)
    return moved


def send_soon(
    store: Store, *, batch_id: int | None = None, message_ids: list[int] | None = None
) -> str:
    """Make drafts and queued messages due now and wake the background sender; a sentence.

    The page never sends: the app's background sender does, and the batch card
    shows its progress live. A message already being sent is not sent again.
    """
    moved = outbox.send_now(store, batch_id=batch_id, message_ids=message_ids)
    if not moved:
        return "Nothing to send: no draft or queued message is left."
    if dispatcher.wake(store):
        return f"{number(moved)} message(s) are going out now; progress shows below."
    return (
        f"{number(moved)} message(s) are due now. The background sender is not running in this "
        "process, so they go out when it runs (or with `comms send`)."
    )


# -- drawing --------------------------------------------------------------------

CHANNEL_LABELS = {"email": ":material/mail: E-mail", "sms": ":material/sms: SMS"}
LIVE_SECONDS = 3
MAX_BATCHES = 50  # cards drawn at most, newest first
COLUMNS = {
    "id": st.column_config.NumberColumn("Message", format="%d"),
    "client": "Client",
    "to_address": "To",
    "attempts": st.column_config.NumberColumn("Attempts", format="%d"),
    "error": st.column_config.TextColumn("Last error", width="large"),
    "channel": "Channel",
    "status": "Status",
    "subject": "Subject",
    "due_at": "Due",
    "source": "Source",
    "updated_at": st.column_config.DatetimeColumn("Interrupted at", format="YYYY-MM-DD HH:mm:ss"),
}


def moving(store: Store) -> bool:
    """True while something is due now or being sent (worth refreshing the page for)."""
    return outbox.due_count(store) > 0 or outbox.progress(store)["sending"] > 0


def render_outbox(store: Store, *, live: bool) -> None:
    """Everything below the page title; refreshed every few seconds while messages move."""
    was_moving = moving(store)
    every = LIVE_SECONDS if live and was_moving else None
    st.fragment(_render_body, run_every=every)(store, was_moving and live)


def _render_body(store: Store, ticking: bool) -> None:
    render_overview(store)
    show_all = st.toggle("Show finished batches too", key="outbox_show_all")
    batches = outbox.batch_progress(store)
    # Batches acted on in this session, or that moved lately, stay visible after they finish.
    recent = set(st.session_state.get("outbox_recent", ())) | recently_moved_batches(store)
    active = [b for b in batches if b["batch_id"] in recent or any(b.get(s) for s in ACTIVE)]
    shown = (batches if show_all else active)[:MAX_BATCHES]
    st.subheader("Batches")
    if not shown:
        st.caption(
            "No batch is waiting or sending."
            + ("" if show_all or not batches else " Finished batches are hidden.")
        )
    rates = batch_rates(
        store, [b["batch_id"] for b in shown if b.get("sending") or b.get("queued")]
    )
    feedback = {
        int(r["batch_id"]): r
        for r in feedback_queries.batch_results(store, [b["batch_id"] for b in shown]).to_dict(
            "records"
        )
    }
    for batch in shown:
        render_batch(
            store, batch, rates.get(int(batch["batch_id"])), feedback.get(int(batch["batch_id"]))
        )
    hidden = len(batches if show_all else active) - len(shown)
    if hidden > 0:
        st.caption(
            f"{number(hidden)} older batch(es) not shown; see Communication for every message."
        )
    render_loose(store)
    if ticking and not moving(store):
        st.rerun()  # everything settled: one full run stops the timer


def render_overview(store: Store) -> dict[str, int]:
    """Totals over every message that is still moving; returns the counts."""
    counts = outbox.progress(store)
    later = scheduled_count_all(store)
    cols = st.columns(5)
    cols[0].metric(
        "Due now",
        number(outbox.due_count(store)),
        help="Queued, due and not paused: the dispatcher sends these next.",
    )
    cols[1].metric("Scheduled", number(later))
    cols[2].metric("Sending", number(counts["sending"]))
    cols[3].metric("Failed", number(counts["failed"]))
    cols[4].metric("Interrupted", number(counts["interrupted"]))
    if counts["interrupted"]:
        st.warning(
            f"{number(counts['interrupted'])} message(s) were interrupted mid-send: delivery is "
            "unknown. Decide about them below (batch cards and single messages).",
            icon=":material/help:",
        )
    return counts


def render_batch(
    store: Store,
    b: dict[str, Any],
    rate: float | None = None,
    feedback: dict[str, Any] | None = None,
) -> None:
    """One batch: title, progress (with its speed and time left), counts, what became of
    what was sent (unsubscribes, complaints), schedule, actions."""
    bid = int(b["batch_id"])
    counts = {s: int(b.get(s) or 0) for s in outbox.STATUSES}
    with st.container(border=True, key=f"batch_card_{bid}"):
        head, tag = st.columns([5, 1])
        title = f"Batch #{bid}" + (f": {b['name']}" if b.get("name") else "")
        head.markdown(f"**{title}**")
        created = b.get("created_at")
        head.caption(
            f"{CHANNEL_LABELS.get(b['channel'], b['channel'])} · created "
            f"{pd.Timestamp(created):%Y-%m-%d %H:%M}"
            + (f" by {b['created_by']}" if b.get("created_by") else "")
        )
        if b.get("paused"):
            tag.markdown(":orange-badge[:material/pause: Paused]")
        due = counts["sending"] + counts["queued"] - scheduled_count(store, bid) if rate else None
        fraction, text = progress_of(counts, rate, due)
        st.progress(fraction, text=text)
        st.markdown(counts_markdown(counts))
        after = [
            text.format(n=number(int((feedback or {}).get(key) or 0)))
            for key, text in (
                ("unsubscribed", _(":material/unsubscribe: {n} unsubscribed")),
                ("complained", _(":material/report: {n} complained")),
            )
            if (feedback or {}).get(key)
        ]
        if after:
            st.caption(" · ".join(after))
        _schedule_line(store, b, counts)
        _batch_actions(store, bid, counts, bool(b.get("paused")))
        if counts["interrupted"]:
            with st.expander(f"Resolve {number(counts['interrupted'])} interrupted", expanded=True):
                ids = batch_messages(store, bid, ("interrupted",))
                render_resolution(store, ids, key=f"resolve_{bid}")
        if counts["failed"]:
            with st.expander(f"Why {number(counts['failed'])} failed"):
                failed = batch_messages(store, bid, ("failed",))
                st.dataframe(
                    failed[["id", "client", "to_address", "attempts", "error"]],
                    hide_index=True,
                    width="stretch",
                    column_config=COLUMNS,
                    placeholder="",
                )


def _schedule_line(store: Store, b: dict[str, Any], counts: dict[str, int]) -> None:
    if not counts["queued"]:
        if counts["draft"]:
            st.caption(
                f"{number(counts['draft'])} draft(s) kept to send later: Send now queues them, "
                "Review opens them in Bulk send."
            )
        return
    later = scheduled_count(store, int(b["batch_id"]))
    if b.get("paused"):
        st.caption(":material/pause: Paused: nothing of this batch is sent until you resume.")
    elif later and later == counts["queued"]:
        st.caption(f":material/schedule: Scheduled for {when(b.get('next_due_at'))}.")
    elif later:
        st.caption(
            f":material/schedule: {number(counts['queued'] - later)} due now, {number(later)} scheduled "
            f"(next {when(b.get('next_due_at'))})."
        )
    else:
        st.caption(":material/send: Due now: the app's dispatcher sends them within seconds.")


def _batch_actions(store: Store, bid: int, counts: dict[str, int], paused: bool) -> None:
    # One row that wraps: five fixed columns cut "Cancel unsent" and "In action log" short.
    row = st.container(horizontal=True)
    c1 = c2 = c3 = c4 = c5 = row
    sendable = counts["draft"] + counts["queued"]
    if any(counts.get(s) for s in REVIEWABLE) and not any(
        counts.get(s) for s in ("queued", "sending", *FINISHED)
    ):
        if row.button(
            "Review",
            key=f"review_{bid}",
            icon=":material/rate_review:",
            help="Open the batch in Bulk send: see, edit or exclude its messages, then send.",
        ):
            st.switch_page("pages/wizard.py", query_params={"batch": str(bid)})
    if c1.button(
        "Send now",
        key=f"send_{bid}",
        icon=":material/send:",
        type="primary",
        disabled=sendable == 0,
        help="Queue the drafts, make scheduled messages due now and send the whole batch.",
    ):
        send_batch_now(store, bid, paused)
    if paused:
        if c2.button("Resume", key=f"resume_{bid}", icon=":material/play_arrow:"):
            run_action(lambda: (outbox.resume(store, bid), f"Batch #{bid} resumed.")[1])
    elif c2.button(
        "Pause",
        key=f"pause_{bid}",
        icon=":material/pause:",
        disabled=counts["queued"] == 0 and counts["sending"] == 0,
        help="Stop picking this batch's queued messages; the ones being sent finish.",
    ):
        run_action(lambda: (outbox.pause(store, bid), f"Batch #{bid} paused.")[1])
    if c3.button(
        "Retry failed",
        key=f"retry_{bid}",
        icon=":material/replay:",
        disabled=counts["failed"] == 0,
        help="Queue the failed messages again, due now, with a fresh set of attempts.",
    ):
        run_action(
            lambda: (
                f"{number(woken(store, outbox.retry(store, batch_id=bid)))} failed message(s) of "
                "batch "
                f"#{bid} queued again."
            )
        )
    unsent = counts["queued"] + counts["draft"]
    cancel = confirmed_action(
        f"cancel_{bid}",
        "Cancel unsent",  # drafts too, not only queued ones
        question=f"Cancel {number(unsent)} unsent message(s) of batch #{bid} "
        f"({number(counts['queued'])} queued, {number(counts['draft'])} draft)? They will not "
        "be sent; messages already sent are not affected.",
        confirm_label="Yes, cancel them",
        container=c4,
        disabled=unsent == 0,
        icon=":material/cancel:",
    )
    if c5.button("In action log", key=f"log_{bid}", icon=":material/history:"):
        st.switch_page("pages/action_log.py", query_params={"batch": str(bid)})
    if cancel:
        run_action(
            lambda: (
                f"{number(outbox.cancel(store, batch_id=bid))} message(s) of batch #{bid} "
                "cancelled."
            )
        )


def _new_action() -> None:
    """A person's action: its outcome replaces the earlier ones' (see flash)."""
    st.session_state["outbox_action"] = int(st.session_state.get("outbox_action", 0)) + 1


def send_batch_now(store: Store, bid: int, paused: bool) -> None:
    """Resume, queue the drafts and make everything due now; the background sender sends."""
    _new_action()
    st.session_state["outbox_recent"] = [*st.session_state.get("outbox_recent", []), bid]
    try:
        if paused:
            outbox.resume(store, bid)
        flash(f"Batch #{bid}: " + send_soon(store, batch_id=bid))
    except CommsError as exc:
        flash(str(exc), "error")
    st.rerun()


def render_resolution(store: Store, interrupted: pd.DataFrame, *, key: str) -> None:
    """Let a person decide about interrupted messages: sent, resend or cancel."""
    st.markdown(INTERRUPTED_HELP)
    st.dataframe(
        interrupted[["id", "client", "to_address", "attempts", "error", "updated_at"]],
        hide_index=True,
        width="stretch",
        column_config=COLUMNS,
        placeholder="",
    )
    ids = [int(i) for i in interrupted["id"]]
    chosen = st.multiselect("Messages", ids, default=ids, key=f"{key}_ids")
    decision = st.radio(
        "Decision",
        list(RESOLUTION_LABELS),
        format_func=RESOLUTION_LABELS.get,
        key=f"{key}_decision",
        index=None,
    )
    sure = True
    if decision == "resend":
        sure = st.checkbox(
            "I understand that a recipient who already got it will get it twice.",
            key=f"{key}_sure",
        )
    if st.button(
        f"Apply to {number(len(chosen))} message(s)",
        key=f"{key}_apply",
        disabled=not chosen or decision is None or not sure,
    ):
        run_action(
            lambda: (
                f"{number(woken(store, outbox.resolve_interrupted(store, chosen, decision)))} "
                "interrupted "
                f"message(s): {RESOLUTION_LABELS[decision].split(' (')[0].lower()}."
            )
        )


def render_loose(store: Store) -> None:
    """Messages outside any batch (client detail, CLI, tests), with actions on a selection."""
    df = loose_messages(store)
    st.subheader("Single messages")
    if df.empty:
        st.caption("No single message is waiting, sending, failed or interrupted.")
        return
    shown = df.assign(
        due_at=[
            when(t) if s == "queued" else ""
            for t, s in zip(df["due_at"], df["status"], strict=True)
        ]
    )
    # The selection is ids (comms.ui.widgets.tables): the list may change between the
    # drawing and the click (a message sent, a new one failed); a message that left the
    # list is no longer picked, and no position can point at another message.
    chosen = id_table(
        shown[
            [
                "id",
                "channel",
                "status",
                "client",
                "to_address",
                "subject",
                "due_at",
                "attempts",
                "error",
                "source",
            ]
        ],
        [int(i) for i in df["id"]],
        key="loose_table",
        hide_index=True,
        width="stretch",
        column_config=COLUMNS,
        placeholder="",
    )
    picked = df[df["id"].isin(chosen)]
    by_status = {
        s: [int(i) for i in picked.loc[picked["status"] == s, "id"]] for s in outbox.STATUSES
    }
    st.caption(f"{number(len(picked))} selected." if chosen else "Select messages to act on them.")
    row = st.container(horizontal=True)
    if row.button(
        f"Send {number(len(by_status['queued']))} now",
        key="loose_send",
        icon=":material/send:",
        type="primary",
        disabled=not by_status["queued"],
    ):
        run_action(lambda: send_soon(store, message_ids=by_status["queued"]))
    if row.button(
        f"Retry {number(len(by_status['failed']))} failed",
        key="loose_retry",
        icon=":material/replay:",
        disabled=not by_status["failed"],
    ):
        run_action(
            lambda: (
                f"{number(woken(store, outbox.retry(store, message_ids=by_status['failed'])))} "
                "message(s) "
                "queued again."
            )
        )
    if confirmed_action(
        "loose_cancel",
        f"Cancel {number(len(by_status['queued']))} queued",
        question=f"Cancel {number(len(by_status['queued']))} queued message(s)? They will not "
        "be sent.",
        confirm_label="Yes, cancel them",
        container=row,
        disabled=not by_status["queued"],
        icon=":material/cancel:",
    ):
        run_action(
            lambda: (
                f"{number(outbox.cancel(store, message_ids=by_status['queued']))} message(s) "
                "cancelled."
            )
        )
    # Every interrupted single message waits for a decision, selected or not.
    interrupted = df[df["status"] == "interrupted"]
    if not interrupted.empty:
        with st.expander(f"Resolve {number(len(interrupted))} interrupted", expanded=True):
            render_resolution(store, interrupted, key="loose_resolve")
