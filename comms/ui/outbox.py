"""The Outbox page's pieces: batch cards with progress and actions, loose messages,
interrupted-message resolution, and sending with visible progress.

Every move of a message goes through comms.outbox (the only writer of
messages.status); sending goes through comms.sending.dispatcher; the page's read queries
live in comms.outbox.queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from comms import outbox
from comms.errors import CommsError
from comms.outbox.queries import (
    batch_messages,
    loose_messages,
    recently_moved_batches,
    scheduled_count,
    scheduled_count_all,
)
from comms.sending import dispatcher
from comms.store import Store

# Counts shown for every batch, in this order, with their badge colours.
SHOWN_STATUSES: tuple[tuple[str, str], ...] = (
    ("draft", "gray"),
    ("queued", "blue"),
    ("sending", "violet"),
    ("sent", "green"),
    ("failed", "red"),
    ("cancelled", "gray"),
    ("interrupted", "orange"),
)
ACTIVE = ("draft", "queued", "sending", "failed", "interrupted")
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
    for status, colour in SHOWN_STATUSES:
        n = int(counts.get(status, 0) or 0)
        if n:  # eight badges, mostly "0", hid the two that matter
            parts.append(f":{colour}-badge[{status} {n:,}]")
    if counts.get("invalid"):
        parts.append(f":gray-badge[invalid {int(counts['invalid']):,}]")
    return " ".join(parts)


def progress_of(counts: dict[str, int]) -> tuple[float, str]:
    """Share of sendable messages that are finished, and a sentence saying so."""
    sendable = sum(int(counts.get(s, 0) or 0) for s, _ in SHOWN_STATUSES)
    finished = sum(int(counts.get(s, 0) or 0) for s in ("sent", "failed", "cancelled"))
    sent = int(counts.get("sent", 0) or 0)
    if sendable == 0:
        invalid = int(counts.get("invalid", 0) or 0)
        why = f": all {invalid:,} are invalid (see the reasons in Communication)" if invalid else ""
        return 0.0, f"No sendable messages{why}."
    to_go = sendable - finished
    text = f"{sent:,} of {sendable:,} sent"
    if counts.get("failed"):
        text += f", {int(counts['failed']):,} failed"
    text += f", {to_go:,} to go" if to_go else ", finished"
    return finished / sendable, text


# -- confirmation of destructive actions -------------------------------------------


def confirmed_action(
    key: str,
    label: str,
    *,
    question: str,
    confirm_label: str,
    container: Any,
    disabled: bool = False,
    icon: str | None = None,
    help: str | None = None,
) -> bool:
    """A button that asks first: True only in the run where the person confirmed."""
    flag = f"confirm_{key}"
    if container.button(label, key=key, disabled=disabled, icon=icon, help=help):
        st.session_state[flag] = True
    if not st.session_state.get(flag):
        return False
    st.warning(question, icon=":material/warning:")
    yes, no = st.columns([1, 3])
    if yes.button(confirm_label, key=f"{key}_yes", type="primary"):
        st.session_state[flag] = False
        return True
    if no.button("Keep them", key=f"{key}_no"):
        st.session_state[flag] = False
        st.rerun()
    return False


def flash(message: str, kind: str = "success") -> None:
    """Show a message after the rerun that follows an action."""
    st.session_state.setdefault("outbox_flash", []).append((kind, message))


def show_flashes() -> None:
    """Draw (once) what earlier actions reported."""
    for kind, message in st.session_state.pop("outbox_flash", []):
        getattr(st, kind)(message)


def run_action(fn: Callable[[], str]) -> None:
    """Run one outbox action, report its result or its domain error, and rerun."""
    try:
        flash(fn())
    except CommsError as exc:
        flash(str(exc), "error")
    st.rerun()


# -- sending now ----------------------------------------------------------------


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
        return f"{moved:,} message(s) are going out now; progress shows below."
    return (
        f"{moved:,} message(s) are due now. The background sender is not running in this "
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
    for batch in shown:
        render_batch(store, batch)
    hidden = len(batches if show_all else active) - len(shown)
    if hidden > 0:
        st.caption(f"{hidden:,} older batch(es) not shown; see Communication for every message.")
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
        f"{outbox.due_count(store):,}",
        help="Queued, due and not paused: the dispatcher sends these next.",
    )
    cols[1].metric("Scheduled", f"{later:,}")
    cols[2].metric("Sending", f"{counts['sending']:,}")
    cols[3].metric("Failed", f"{counts['failed']:,}")
    cols[4].metric("Interrupted", f"{counts['interrupted']:,}")
    if counts["interrupted"]:
        st.warning(
            f"{counts['interrupted']:,} message(s) were interrupted mid-send: delivery is "
            "unknown. Decide about them below (batch cards and single messages).",
            icon=":material/help:",
        )
    return counts


def render_batch(store: Store, b: dict[str, Any]) -> None:
    """One batch: title, progress, counts, schedule and its actions."""
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
        fraction, text = progress_of(counts)
        st.progress(fraction, text=text)
        st.markdown(counts_markdown(counts))
        _schedule_line(store, b, counts)
        _batch_actions(store, bid, counts, bool(b.get("paused")))
        if counts["interrupted"]:
            with st.expander(f"Resolve {counts['interrupted']:,} interrupted", expanded=True):
                ids = batch_messages(store, bid, ("interrupted",))
                render_resolution(store, ids, key=f"resolve_{bid}")
        if counts["failed"]:
            with st.expander(f"Why {counts['failed']:,} failed"):
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
            st.caption(f"{counts['draft']:,} draft(s) kept to send later: Send now queues them.")
        return
    later = scheduled_count(store, int(b["batch_id"]))
    if b.get("paused"):
        st.caption(":material/pause: Paused: nothing of this batch is sent until you resume.")
    elif later and later == counts["queued"]:
        st.caption(f":material/schedule: Scheduled for {when(b.get('next_due_at'))}.")
    elif later:
        st.caption(
            f":material/schedule: {counts['queued'] - later:,} due now, {later:,} scheduled "
            f"(next {when(b.get('next_due_at'))})."
        )
    else:
        st.caption(":material/send: Due now: the app's dispatcher sends them within seconds.")


def _batch_actions(store: Store, bid: int, counts: dict[str, int], paused: bool) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    sendable = counts["draft"] + counts["queued"]
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
                f"{outbox.retry(store, batch_id=bid):,} failed message(s) of batch "
                f"#{bid} queued again."
            )
        )
    with c5:
        if st.button("In action log", key=f"log_{bid}", icon=":material/history:"):
            st.switch_page("pages/action_log.py", query_params={"batch": str(bid)})
    unsent = counts["queued"] + counts["draft"]
    if confirmed_action(
        f"cancel_{bid}",
        "Cancel unsent",  # drafts too, not only queued ones
        question=f"Cancel {unsent:,} unsent message(s) of batch #{bid} "
        f"({counts['queued']:,} queued, {counts['draft']:,} draft)? They will not be sent; "
        "messages already sent are not affected.",
        confirm_label="Yes, cancel them",
        container=c4,
        disabled=unsent == 0,
        icon=":material/cancel:",
    ):
        run_action(
            lambda: f"{outbox.cancel(store, batch_id=bid):,} message(s) of batch #{bid} cancelled."
        )


def send_batch_now(store: Store, bid: int, paused: bool) -> None:
    """Resume, queue the drafts and make everything due now; the background sender sends."""
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
        f"Apply to {len(chosen):,} message(s)",
        key=f"{key}_apply",
        disabled=not chosen or decision is None or not sure,
    ):
        run_action(
            lambda: (
                f"{outbox.resolve_interrupted(store, chosen, decision):,} interrupted "
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
    event = st.dataframe(
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
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key="loose_table",
        column_config=COLUMNS,
        placeholder="",
    )
    rows = event.selection.rows if event is not None else []
    # The selection is positions in the table as last drawn; the list may have changed
    # since (a message sent, a new one failed), so positions map to the ids drawn then,
    # and those ids to their rows now. A message that left the list is no longer picked.
    drawn = st.session_state.get("loose_table_ids") or []
    chosen = {drawn[i] for i in rows if i < len(drawn)}
    st.session_state["loose_table_ids"] = [int(i) for i in df["id"]]
    picked = df[df["id"].isin(chosen)]
    by_status = {
        s: [int(i) for i in picked.loc[picked["status"] == s, "id"]] for s in outbox.STATUSES
    }
    st.caption(f"{len(picked):,} selected." if rows else "Select messages to act on them.")
    c1, c2, c3 = st.columns(3)
    if c1.button(
        f"Send {len(by_status['queued']):,} now",
        key="loose_send",
        icon=":material/send:",
        type="primary",
        disabled=not by_status["queued"],
    ):
        run_action(lambda: send_soon(store, message_ids=by_status["queued"]))
    if c2.button(
        f"Retry {len(by_status['failed']):,} failed",
        key="loose_retry",
        icon=":material/replay:",
        disabled=not by_status["failed"],
    ):
        run_action(
            lambda: (
                f"{outbox.retry(store, message_ids=by_status['failed']):,} message(s) queued again."
            )
        )
    if confirmed_action(
        "loose_cancel",
        f"Cancel {len(by_status['queued']):,} queued",
        question=f"Cancel {len(by_status['queued']):,} queued message(s)? They will not be sent.",
        confirm_label="Yes, cancel them",
        container=c3,
        disabled=not by_status["queued"],
        icon=":material/cancel:",
    ):
        run_action(
            lambda: (
                f"{outbox.cancel(store, message_ids=by_status['queued']):,} message(s) cancelled."
            )
        )
    # Every interrupted single message waits for a decision, selected or not.
    interrupted = df[df["status"] == "interrupted"]
    if not interrupted.empty:
        with st.expander(f"Resolve {len(interrupted):,} interrupted", expanded=True):
            render_resolution(store, interrupted, key="loose_resolve")
