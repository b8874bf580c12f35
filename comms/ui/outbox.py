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

from comms import i18n, outbox
from comms.errors import CommsError
from comms.feedback import queries as feedback_queries
from comms.i18n import N_, _, ngettext
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
from comms.ui.common import CHANNEL_LABELS as CHANNEL_NAMES
from comms.ui.common import Text, confirmed_action, number, shown_code, text_of
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
INTERRUPTED_HELP = N_(
    "These messages were being handed to the server when the app stopped or the "
    "connection dropped. **Nobody can know whether they arrived**, so they are never "
    "resent automatically. Check the recipient's mailbox or the provider's log if you can, "
    "then decide."
)
RESOLUTION_LABELS = {
    "sent": N_("Mark as sent (it arrived)"),
    "resend": N_("Send again (the recipient may get it twice)"),
    "cancel": N_("Cancel (do not send it)"),
}


def _resolved(decision: str, n: int) -> str:
    """What became of n interrupted messages, after a decision (the flash's sentence)."""
    shown = number(n)
    if decision == "sent":
        return ngettext(
            "{n} interrupted message(s): mark as sent.",
            "{n} interrupted message(s): mark as sent.",
            n,
        ).format(n=shown)
    if decision == "resend":
        return ngettext(
            "{n} interrupted message(s): send again.",
            "{n} interrupted message(s): send again.",
            n,
        ).format(n=shown)
    return ngettext(
        "{n} interrupted message(s): cancel.", "{n} interrupted message(s): cancel.", n
    ).format(n=shown)


# -- formatting ------------------------------------------------------------------


def when(ts: Any) -> str:
    """A timestamp in the viewer's format with a relative hint ('in 2 h', '5 min ago')."""
    if ts is None or pd.isna(ts):
        return _("now")
    ts = pd.Timestamp(ts).to_pydatetime()
    delta = (ts - outbox.now()).total_seconds()
    rel = _relative(abs(delta))
    if delta > 0:
        hint = _("in {time}").format(time=rel)
    elif delta < -60:
        hint = _("{time} ago").format(time=rel)
    else:
        hint = _("now")
    return f"{i18n.format_datetime(ts)} ({hint})"


def _relative(seconds: float) -> str:
    if seconds < 90:
        return f"{number(int(seconds))} s"
    if seconds < 90 * 60:
        return f"{number(round(seconds / 60))} min"
    if seconds < 36 * 3600:
        return f"{number(seconds / 3600, 1)} h"
    return _("{n} days").format(n=number(seconds / 86400, 1))


def counts_markdown(counts: dict[str, int]) -> str:
    """Counts by status as coloured badges; statuses with no message are left out."""
    parts = []
    for status, colour in (*SHOWN_STATUSES, *OUT_OF_WORK):
        n = int(counts.get(status, 0) or 0)
        if n:  # eight badges, mostly "0", hid the two that matter
            parts.append(f":{colour}-badge[{shown_code(status)} {number(n)}]")
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
        if not out:
            return 0.0, _("No sendable messages.")
        if counts.get("excluded"):
            text = ngettext(
                "No sendable messages: all {n} are invalid or excluded "
                "(see the reasons in Communication).",
                "No sendable messages: all {n} are invalid or excluded "
                "(see the reasons in Communication).",
                out,
            )
        else:
            text = ngettext(
                "No sendable messages: all {n} are invalid (see the reasons in Communication).",
                "No sendable messages: all {n} are invalid (see the reasons in Communication).",
                out,
            )
        return 0.0, text.format(n=number(out))
    to_go = sendable - finished
    cancelled = _n(counts, "cancelled")
    if not to_go and cancelled == sendable:
        return 1.0, ngettext(
            "Discarded: {n} message cancelled, nothing sent.",
            "Discarded: {n} messages cancelled, nothing sent.",
            cancelled,
        ).format(n=number(cancelled))
    text = _("{sent} of {total} sent").format(sent=number(sent), total=number(sendable))
    if counts.get("failed"):
        text += _(", {n} failed").format(n=number(counts["failed"]))
    if cancelled:
        text += _(", {n} cancelled").format(n=number(cancelled))
    text += _(", {n} to go").format(n=number(to_go)) if to_go else _(", finished")
    if to_go and rate:
        text += f" · {number(rate, 1) if rate < 10 else number(rate)}/s"
        left = (due if due is not None else to_go) / rate
        text += _(" · about {time} left").format(time=_relative(left))
    return finished / sendable, text


FLASH_SECONDS = 20  # an action's outcome stays this long (a live refresh reruns the page)


def flash(message: Text, kind: str = "success") -> None:
    """Show a message after the rerun that follows an action (and the live refreshes
    of the next FLASH_SECONDS: a batch that finishes at once reruns the page again).

    A callable message is written when shown: it follows a language switch."""
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
        getattr(st, kind)(text_of(message))


def run_action(fn: Callable[[], Text]) -> None:
    """Run one outbox action, report its result (best a callable writing the sentence,
    see flash) or its domain error, and rerun."""
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
) -> Callable[[], str]:
    """Make drafts and queued messages due now and wake the background sender; what it
    did (a callable writing the sentence in the viewer's language when shown).

    The page never sends: the app's background sender does, and the batch card
    shows its progress live. A message already being sent is not sent again.
    """
    moved = outbox.send_now(store, batch_id=batch_id, message_ids=message_ids)
    woke = bool(moved) and dispatcher.wake(store)
    return lambda: _sent_soon(moved, woke)


def _sent_soon(moved: int, woke: bool) -> str:
    if not moved:
        return _("Nothing to send: no draft or queued message is left.")
    if woke:
        return ngettext(
            "{n} message(s) are going out now; progress shows below.",
            "{n} message(s) are going out now; progress shows below.",
            moved,
        ).format(n=number(moved))
    return ngettext(
        "{n} message(s) are due now. The background sender is not running in this "
        "process, so they go out when it runs (or with `comms send`).",
        "{n} message(s) are due now. The background sender is not running in this "
        "process, so they go out when it runs (or with `comms send`).",
        moved,
    ).format(n=number(moved))


# -- drawing --------------------------------------------------------------------

CHANNEL_ICONS = {"email": ":material/mail:", "sms": ":material/sms:"}
LIVE_SECONDS = 3
MAX_BATCHES = 50  # cards drawn at most, newest first


def channel_label(channel: str) -> str:
    """':material/mail: E-mail': the channel's icon and its name in the viewer's language."""
    name = CHANNEL_NAMES.get(channel, channel)
    icon = CHANNEL_ICONS.get(channel)
    return f"{icon} {name}" if icon else name


def columns() -> dict[str, Any]:
    """The message tables' column headers, in the viewer's language (built per run)."""
    return {
        "id": st.column_config.NumberColumn(_("Message"), format="%d"),
        "client": _("Client"),
        "to_address": _("To"),
        "attempts": st.column_config.NumberColumn(_("Attempts"), format="%d"),
        "error": st.column_config.TextColumn(_("Last error"), width="large"),
        "channel": _("Channel"),
        "status": _("Status"),
        "subject": _("Subject"),
        "due_at": _("Due"),
        "source": _("Source"),
        "updated_at": st.column_config.DatetimeColumn(
            _("Interrupted at"), format=i18n.TABLE_DATETIME[i18n.language()] + ":ss"
        ),
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
    show_all = st.toggle(_("Show finished batches too"), key="outbox_show_all")
    batches = outbox.batch_progress(store)
    # Batches acted on in this session, or that moved lately, stay visible after they finish.
    recent = set(st.session_state.get("outbox_recent", ())) | recently_moved_batches(store)
    active = [b for b in batches if b["batch_id"] in recent or any(b.get(s) for s in ACTIVE)]
    shown = (batches if show_all else active)[:MAX_BATCHES]
    st.subheader(_("Batches"))
    if not shown:
        st.caption(
            _("No batch is waiting or sending.")
            + ("" if show_all or not batches else " " + _("Finished batches are hidden."))
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
            ngettext(
                "{n} older batch(es) not shown; see Communication for every message.",
                "{n} older batch(es) not shown; see Communication for every message.",
                hidden,
            ).format(n=number(hidden))
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
        _("Due now"),
        number(outbox.due_count(store)),
        help=_("Queued, due and not paused: the dispatcher sends these next."),
    )
    cols[1].metric(_("Scheduled"), number(later))
    cols[2].metric(_("Sending"), number(counts["sending"]))
    cols[3].metric(_("Failed"), number(counts["failed"]))
    cols[4].metric(_("Interrupted"), number(counts["interrupted"]))
    if counts["interrupted"]:
        st.warning(
            ngettext(
                "{n} message(s) were interrupted mid-send: delivery is "
                "unknown. Decide about them below (batch cards and single messages).",
                "{n} message(s) were interrupted mid-send: delivery is "
                "unknown. Decide about them below (batch cards and single messages).",
                counts["interrupted"],
            ).format(n=number(counts["interrupted"])),
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
        title = _("Batch #{id}").format(id=bid) + (f": {b['name']}" if b.get("name") else "")
        head.markdown(f"**{title}**")
        created = i18n.format_datetime(pd.Timestamp(b.get("created_at")).to_pydatetime())
        if b.get("created_by"):
            made = _("created {when} by {user}").format(when=created, user=b["created_by"])
        else:
            made = _("created {when}").format(when=created)
        head.caption(f"{channel_label(b['channel'])} · {made}")
        if b.get("paused"):
            tag.markdown(":orange-badge[:material/pause: " + _("Paused") + "]")
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
            with st.expander(
                _("Resolve {n} interrupted").format(n=number(counts["interrupted"])), expanded=True
            ):
                ids = batch_messages(store, bid, ("interrupted",))
                render_resolution(store, ids, key=f"resolve_{bid}")
        if counts["failed"]:
            with st.expander(_("Why {n} failed").format(n=number(counts["failed"]))):
                failed = batch_messages(store, bid, ("failed",))
                failed = failed.assign(error=failed["error"].map(shown_code))
                st.dataframe(
                    failed[["id", "client", "to_address", "attempts", "error"]],
                    hide_index=True,
                    width="stretch",
                    column_config=columns(),
                    placeholder="",
                )


def _schedule_line(store: Store, b: dict[str, Any], counts: dict[str, int]) -> None:
    if not counts["queued"]:
        if counts["draft"]:
            st.caption(
                ngettext(
                    "{n} draft(s) kept to send later: Send now queues them, "
                    "Review opens them in Bulk send.",
                    "{n} draft(s) kept to send later: Send now queues them, "
                    "Review opens them in Bulk send.",
                    counts["draft"],
                ).format(n=number(counts["draft"]))
            )
        return
    later = scheduled_count(store, int(b["batch_id"]))
    if b.get("paused"):
        st.caption(
            ":material/pause: " + _("Paused: nothing of this batch is sent until you resume.")
        )
    elif later and later == counts["queued"]:
        st.caption(
            ":material/schedule: "
            + _("Scheduled for {when}.").format(when=when(b.get("next_due_at")))
        )
    elif later:
        st.caption(
            ":material/schedule: "
            + _("{due} due now, {later} scheduled (next {when}).").format(
                due=number(counts["queued"] - later),
                later=number(later),
                when=when(b.get("next_due_at")),
            )
        )
    else:
        st.caption(
            ":material/send: " + _("Due now: the app's dispatcher sends them within seconds.")
        )


def _batch_actions(store: Store, bid: int, counts: dict[str, int], paused: bool) -> None:
    # One row that wraps: five fixed columns cut "Cancel unsent" and "In action log" short.
    row = st.container(horizontal=True)
    c1 = c2 = c3 = c4 = c5 = row
    sendable = counts["draft"] + counts["queued"]
    if any(counts.get(s) for s in REVIEWABLE) and not any(
        counts.get(s) for s in ("queued", "sending", *FINISHED)
    ):
        if row.button(
            _("Review"),
            key=f"review_{bid}",
            icon=":material/rate_review:",
            help=_("Open the batch in Bulk send: see, edit or exclude its messages, then send."),
        ):
            st.switch_page("pages/wizard.py", query_params={"batch": str(bid)})
    if c1.button(
        _("Send now"),
        key=f"send_{bid}",
        icon=":material/send:",
        type="primary",
        disabled=sendable == 0,
        help=_("Queue the drafts, make scheduled messages due now and send the whole batch."),
    ):
        send_batch_now(store, bid, paused)
    if paused:
        if c2.button(_("Resume"), key=f"resume_{bid}", icon=":material/play_arrow:"):
            run_action(
                lambda: (
                    outbox.resume(store, bid),
                    lambda: _("Batch #{id} resumed.").format(id=bid),
                )[1]
            )
    elif c2.button(
        _("Pause"),
        key=f"pause_{bid}",
        icon=":material/pause:",
        disabled=counts["queued"] == 0 and counts["sending"] == 0,
        help=_("Stop picking this batch's queued messages; the ones being sent finish."),
    ):
        run_action(
            lambda: (outbox.pause(store, bid), lambda: _("Batch #{id} paused.").format(id=bid))[1]
        )
    if c3.button(
        _("Retry failed"),
        key=f"retry_{bid}",
        icon=":material/replay:",
        disabled=counts["failed"] == 0,
        help=_("Queue the failed messages again, due now, with a fresh set of attempts."),
    ):

        def retry() -> Text:
            n = woken(store, outbox.retry(store, batch_id=bid))
            return lambda: ngettext(
                "{n} failed message(s) of batch #{id} queued again.",
                "{n} failed message(s) of batch #{id} queued again.",
                n,
            ).format(n=number(n), id=bid)

        run_action(retry)
    unsent = counts["queued"] + counts["draft"]
    cancel = confirmed_action(
        f"cancel_{bid}",
        _("Cancel unsent"),  # drafts too, not only queued ones
        question=ngettext(
            "Cancel {n} unsent message(s) of batch #{id} ({queued} queued, {draft} draft)? "
            "They will not be sent; messages already sent are not affected.",
            "Cancel {n} unsent message(s) of batch #{id} ({queued} queued, {draft} draft)? "
            "They will not be sent; messages already sent are not affected.",
            unsent,
        ).format(
            n=number(unsent),
            id=bid,
            queued=number(counts["queued"]),
            draft=number(counts["draft"]),
        ),
        confirm_label=_("Yes, cancel them"),
        container=c4,
        disabled=unsent == 0,
        icon=":material/cancel:",
    )
    if c5.button(_("In action log"), key=f"log_{bid}", icon=":material/history:"):
        st.switch_page("pages/action_log.py", query_params={"batch": str(bid)})
    if cancel:

        def cancel_batch() -> Text:
            n = outbox.cancel(store, batch_id=bid)
            return lambda: ngettext(
                "{n} message(s) of batch #{id} cancelled.",
                "{n} message(s) of batch #{id} cancelled.",
                n,
            ).format(n=number(n), id=bid)

        run_action(cancel_batch)


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
        said = send_soon(store, batch_id=bid)
        flash(lambda: _("Batch #{id}").format(id=bid) + ": " + said())
    except CommsError as exc:
        flash(str(exc), "error")
    st.rerun()


def render_resolution(store: Store, interrupted: pd.DataFrame, *, key: str) -> None:
    """Let a person decide about interrupted messages: sent, resend or cancel."""
    st.markdown(_(INTERRUPTED_HELP))
    st.dataframe(
        interrupted.assign(error=interrupted["error"].map(shown_code))[
            ["id", "client", "to_address", "attempts", "error", "updated_at"]
        ],
        hide_index=True,
        width="stretch",
        column_config=columns(),
        placeholder="",
    )
    ids = [int(i) for i in interrupted["id"]]
    chosen = st.multiselect(_("Messages"), ids, default=ids, key=f"{key}_ids")
    decision = st.radio(
        _("Decision"),
        list(RESOLUTION_LABELS),
        format_func=lambda d: _(RESOLUTION_LABELS[d]),
        key=f"{key}_decision",
        index=None,
    )
    sure = True
    if decision == "resend":
        sure = st.checkbox(
            _("I understand that a recipient who already got it will get it twice."),
            key=f"{key}_sure",
        )
    if st.button(
        ngettext("Apply to {n} message(s)", "Apply to {n} message(s)", len(chosen)).format(
            n=number(len(chosen))
        ),
        key=f"{key}_apply",
        disabled=not chosen or decision is None or not sure,
    ):

        def resolve() -> Text:
            n = woken(store, outbox.resolve_interrupted(store, chosen, decision))
            return lambda: _resolved(decision, n)

        run_action(resolve)


def render_loose(store: Store) -> None:
    """Messages outside any batch (client detail, CLI, tests), with actions on a selection."""
    df = loose_messages(store)
    st.subheader(_("Single messages"))
    if df.empty:
        st.caption(_("No single message is waiting, sending, failed or interrupted."))
        return
    shown = df.assign(
        due_at=[
            when(t) if s == "queued" else ""
            for t, s in zip(df["due_at"], df["status"], strict=True)
        ],
        channel=df["channel"].map(lambda c: CHANNEL_NAMES.get(c, c)),
        status=df["status"].map(shown_code),
        source=df["source"].map(shown_code),
        error=df["error"].map(shown_code),
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
        column_config=columns(),
        placeholder="",
    )
    picked = df[df["id"].isin(chosen)]
    by_status = {
        s: [int(i) for i in picked.loc[picked["status"] == s, "id"]] for s in outbox.STATUSES
    }
    st.caption(
        _("{n} selected.").format(n=number(len(picked)))
        if chosen
        else _("Select messages to act on them.")
    )
    row = st.container(horizontal=True)
    if row.button(
        _("Send {n} now").format(n=number(len(by_status["queued"]))),
        key="loose_send",
        icon=":material/send:",
        type="primary",
        disabled=not by_status["queued"],
    ):
        run_action(lambda: send_soon(store, message_ids=by_status["queued"]))
    if row.button(
        ngettext("Retry {n} failed", "Retry {n} failed", len(by_status["failed"])).format(
            n=number(len(by_status["failed"]))
        ),
        key="loose_retry",
        icon=":material/replay:",
        disabled=not by_status["failed"],
    ):

        def retry() -> Text:
            n = woken(store, outbox.retry(store, message_ids=by_status["failed"]))
            return lambda: ngettext(
                "{n} message(s) queued again.", "{n} message(s) queued again.", n
            ).format(n=number(n))

        run_action(retry)
    if confirmed_action(
        "loose_cancel",
        ngettext("Cancel {n} queued", "Cancel {n} queued", len(by_status["queued"])).format(
            n=number(len(by_status["queued"]))
        ),
        question=ngettext(
            "Cancel {n} queued message(s)? They will not be sent.",
            "Cancel {n} queued message(s)? They will not be sent.",
            len(by_status["queued"]),
        ).format(n=number(len(by_status["queued"]))),
        confirm_label=_("Yes, cancel them"),
        container=row,
        disabled=not by_status["queued"],
        icon=":material/cancel:",
    ):

        def cancel_loose() -> Text:
            n = outbox.cancel(store, message_ids=by_status["queued"])
            return lambda: ngettext(
                "{n} message(s) cancelled.", "{n} message(s) cancelled.", n
            ).format(n=number(n))

        run_action(cancel_loose)
    # Every interrupted single message waits for a decision, selected or not.
    interrupted = df[df["status"] == "interrupted"]
    if not interrupted.empty:
        with st.expander(
            _("Resolve {n} interrupted").format(n=number(len(interrupted))), expanded=True
        ):
            render_resolution(store, interrupted, key="loose_resolve")
