"""The Action log page: filters, the paged table, export, and one entry in full.

One line per action with its counts; a send run's per-message outcomes (kept in
message_attempts under the run's id) open from its line. Every query is in
comms.actionlog.queries; this module only reads widgets and draws.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from comms import i18n
from comms.actionlog.queries import (
    TABLE_COLUMNS,
    LogFilter,
    count_log,
    detail_rows,
    entry_message_ids,
    entry_outcomes,
    export_log_csv,
    filter_options,
    get_entry,
    has_outcomes,
    messages_now,
    outcome_counts,
    query_log,
)
from comms.i18n import N_, _, ngettext
from comms.store import Store
from comms.ui.common import CHANNEL_LABELS, number, shown_code
from comms.ui.widgets.tables import id_table

TABLE_KEY = "log_table"
PAGE_SIZES = [50, 100, 200, 500]
OUTCOME_ROWS = 500  # per-message outcomes drawn per page
OUTCOME_LABELS = {
    "sent": N_("sent"),
    "transient": N_("temporary error (tried again)"),
    "permanent": N_("refused by the server"),
    "interrupted": N_("interrupted (delivery unknown)"),
}


def outcome_label(outcome: str) -> str:
    """A send run's per-message outcome, in the viewer's language."""
    return _(OUTCOME_LABELS[outcome]) if outcome in OUTCOME_LABELS else shown_code(outcome)


def apply_links() -> None:
    """Other pages link here with ?batch=ID or ?client=ID.

    Applied to the filters once, then dropped from the URL so the person can change
    the filters freely.
    """
    for param, key in (("batch", "log_batch"), ("client", "log_client")):
        raw = st.query_params.get(param)
        if raw is not None:
            if raw.isdigit():
                st.session_state[key] = int(raw) if key == "log_batch" else raw
            del st.query_params[param]


def filters(store: Store) -> LogFilter:
    """The filter widgets; returns the filter they describe."""
    options = filter_options(store)
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        actions = c1.multiselect(
            _("Action"),
            options["actions"],
            format_func=shown_code,
            key="log_actions",
            placeholder=_("any"),
        )
        users = c2.multiselect(
            _("User"), options["users"], key="log_users", placeholder=_("anyone")
        )
        outcomes = c3.multiselect(
            _("Outcome"),
            options["outcomes"],
            format_func=shown_code,
            key="log_outcomes",
            placeholder=_("any"),
        )
        c4, c5, c6, c7 = st.columns([2, 1, 2, 2])
        dates = c4.date_input(
            _("Date range"),
            value=(),
            key="log_dates",
            format="DD.MM.YYYY" if i18n.language() == "cs" else "YYYY-MM-DD",
        )
        batch = c5.number_input(
            _("Batch"), min_value=1, value=None, step=1, key="log_batch", placeholder=_("any")
        )
        client = c6.text_input(
            _("Client"), key="log_client", placeholder=_("ID, name, e-mail or phone")
        ).strip()
        text = c7.text_input(
            _("Text in details"), key="log_text", placeholder=_("e.g. 550")
        ).strip()
    picked = list(dates) if isinstance(dates, (tuple, list)) else [dates]
    picked = [d for d in picked if isinstance(d, date)]
    return LogFilter(
        actions=actions,
        users=users,
        outcomes=outcomes,
        date_from=picked[0] if picked else None,
        date_to=picked[-1] if picked else None,
        batch_id=int(batch) if batch is not None else None,
        client_id=int(client) if client.isdigit() else None,
        client=client if client and not client.isdigit() else None,
        text=text or None,
    )


def pager(store: Store, log_filter: LogFilter, total: int) -> tuple[int, int]:
    """Rows per page, page number, the count and the export; returns (limit, offset)."""
    size_col, page_col, info_col, export_col = st.columns([1, 1, 2, 2], vertical_alignment="bottom")
    page_size = size_col.selectbox(_("Rows per page"), PAGE_SIZES, key="log_page_size")
    pages = max(1, -(-total // page_size))
    # A new filter starts again at page 1.
    signature = (str(log_filter.to_dict()), page_size)
    if st.session_state.get("log_signature") != signature:
        st.session_state["log_signature"] = signature
        st.session_state["log_page"] = 1
    # No page picker that can only say 1, nor "showing 1–4" of 4.
    page = (
        page_col.number_input(_("Page"), min_value=1, max_value=pages, step=1, key="log_page")
        if pages > 1
        else 1
    )
    offset = (int(page) - 1) * page_size
    shown_to = min(offset + page_size, total)
    info_col.markdown(
        ngettext("**{n}** matching entry", "**{n}** matching entries", total).format(
            n=number(total)
        )
        + (
            " · "
            + _("showing {first}–{last}").format(first=number(offset + 1), last=number(shown_to))
            if pages > 1
            else ""
        )
    )
    # The file's header row in the viewer's language (made here, in this run's language).
    headers = {
        "id": _("Entry"),
        "ts": _("When"),
        "user": _("Who"),
        "action": _("Action"),
        "outcome": _("Outcome"),
        "batch_id": _("Batch"),
        "message_id": _("Message"),
        "client_id": _("Client ID"),
        "client_name": _("Client"),
        "detail": _("Details"),
    }
    export_col.download_button(
        _("Export {n} to CSV").format(n=number(total)),
        # Built only when clicked, so a long log does not slow every rerun.
        data=lambda: export_log_csv(store, log_filter, headers),
        file_name=f"action-log-{date.today().isoformat()}.csv",
        mime="text/csv",
        icon=":material/download:",
        disabled=total == 0,
        key="log_export",
        on_click="ignore",
        help=_(
            "Exports every matching entry (not only this page). Cells that a spreadsheet "
            "would read as a formula are prefixed with an apostrophe."
        ),
    )
    return page_size, offset


def log_table(df: pd.DataFrame) -> int | None:
    """One page of entries with single-row selection; the selected entry's id."""
    shown = df[list(TABLE_COLUMNS)].assign(
        action=df["action"].map(shown_code), outcome=df["outcome"].map(shown_code)
    )
    when = i18n.TABLE_DATETIME[i18n.language()] + ":ss"
    picked = id_table(
        shown,
        [int(i) for i in df["id"]],
        key=TABLE_KEY,
        multi=False,
        hide_index=True,
        width="stretch",
        placeholder="",  # an entry about no batch / message / client shows blank cells
        column_config={
            "ts": st.column_config.DatetimeColumn(_("When"), format=when),
            "user": _("Who"),
            "action": _("Action"),
            "outcome": _("Outcome"),
            "batch_id": st.column_config.NumberColumn(_("Batch"), format="%d"),
            "message_id": st.column_config.NumberColumn(_("Message"), format="%d"),
            "client_id": st.column_config.NumberColumn(_("Client ID"), format="%d"),
            "client_name": _("Client"),
            "summary": st.column_config.TextColumn(_("Details"), width="large"),
        },
    )
    return picked[0] if picked else None


def _only_batch(batch_id: int) -> None:
    st.session_state["log_batch"] = batch_id


def entry_panel(store: Store, entry: dict[str, Any]) -> None:
    """One entry in full: who / when / what, its detail, its messages as they are now."""
    with st.container(border=True):
        st.subheader(
            _("Entry #{id}: {action}").format(id=entry["id"], action=shown_code(entry["action"]))
        )
        meta = {
            _("When"): i18n.format_datetime(entry["ts"]) + entry["ts"].strftime(":%S"),
            _("Who"): entry["user"],
            _("Outcome"): shown_code(entry["outcome"]) or None,
            _("Batch"): entry["batch_id"],
            _("Message"): entry["message_id"],
            _("Client"): (
                _("{name} (ID {id})").format(
                    name=entry["client_name"] or _("(no name)"), id=entry["client_id"]
                )
                if entry["client_id"] is not None
                else None
            ),
        }
        st.markdown("  \n".join(f"**{k}:** {v}" for k, v in meta.items() if v is not None))
        if entry["detail"]:
            st.dataframe(
                detail_rows(entry["detail"]),
                hide_index=True,
                width="stretch",
                key="log_detail",
                column_config={"Field": _("Field"), "Value": _("Value")},
            )
            with st.expander(_("As recorded (JSON)")):
                st.json(entry["detail"], expanded=2)
        shown = run_outcomes(store, entry) if has_outcomes(entry) else 0
        ids = [] if shown else entry_message_ids(entry)
        if ids:
            st.markdown(
                ngettext("**This message now**", "**These {n} messages now**", len(ids)).format(
                    n=number(len(ids))
                )
            )
            now = messages_now(store, ids)
            st.dataframe(
                now.assign(
                    channel=now["channel"].map(CHANNEL_LABELS),
                    status=now["status"].map(shown_code),
                    error=now["error"].map(shown_code),
                ),
                hide_index=True,
                width="stretch",
                placeholder="",
                key="log_entry_messages",
                # When it was sent before the (often empty) error, which takes the rest.
                column_order=(
                    "id",
                    "status",
                    "channel",
                    "client_name",
                    "to_address",
                    "sent_at",
                    "provider_id",
                    "error",
                ),
                column_config={
                    "id": st.column_config.NumberColumn(_("Message"), format="%d"),
                    "status": _("Status"),
                    "channel": _("Channel"),
                    "client_name": _("Client"),
                    "to_address": _("To"),
                    "error": st.column_config.TextColumn(_("Last error"), width="large"),
                    "sent_at": st.column_config.DatetimeColumn(
                        _("Sent at"), format=i18n.TABLE_DATETIME[i18n.language()] + ":ss"
                    ),
                    "provider_id": _("Provider id"),
                },
            )
        entry_actions(entry)


def run_outcomes(store: Store, entry: dict[str, Any]) -> int:
    """What became of each message of a send run (or of an older per-message send entry):
    its attempt's outcome and the message as it is now, a page at a time; how many."""
    counts = outcome_counts(store, entry)
    total = sum(counts.values())
    if not total and not (entry.get("detail") or {}).get("run"):
        return 0  # an older entry without its attempt: the message as it is now instead
    st.markdown(
        _("**Per-message outcomes ({n})**").format(n=number(total))
        + (
            ": " + " · ".join(f"{outcome_label(o)} **{number(n)}**" for o, n in counts.items())
            if counts
            else ""
        )
    )
    if not total:
        st.caption(_("No message was handed to a server in this run."))
        return 0
    chosen = st.multiselect(
        _("Outcome"),
        list(counts),
        format_func=outcome_label,
        key=f"log_outcome_filter_{entry['id']}",
        placeholder=_("all"),
    )
    shown = sum(counts[o] for o in chosen) if chosen else total
    pages = max(1, -(-shown // OUTCOME_ROWS))
    page = 1
    if pages > 1:
        page = int(st.pagination(pages, key=f"log_outcome_page_{entry['id']}") or 1)
    df = entry_outcomes(
        store,
        entry,
        outcomes=chosen or None,
        limit=OUTCOME_ROWS,
        offset=(min(page, pages) - 1) * OUTCOME_ROWS,
    )
    if pages > 1:
        first = (page - 1) * OUTCOME_ROWS
        st.caption(
            ngettext(
                "{first}–{last} of {n} message", "{first}–{last} of {n} messages", shown
            ).format(first=number(first + 1), last=number(first + len(df)), n=number(shown))
        )
    st.dataframe(
        df.assign(
            channel=df["channel"].map(CHANNEL_LABELS),
            outcome=df["outcome"].map(outcome_label),
            status=df["status"].map(shown_code),
        ),
        hide_index=True,
        width="stretch",
        placeholder="",
        key="log_entry_outcomes",
        column_order=(
            "message_id",
            "outcome",
            "detail",
            "status",
            "channel",
            "client_name",
            "to_address",
            "attempt",
            "ts",
        ),
        column_config={
            "message_id": st.column_config.NumberColumn(_("Message"), format="%d"),
            "outcome": _("Outcome"),
            "detail": st.column_config.TextColumn(
                _("Provider id / server's answer"), width="large"
            ),
            "status": _("Status now"),
            "channel": _("Channel"),
            "client_name": _("Client"),
            "to_address": _("To"),
            "attempt": st.column_config.NumberColumn(_("Attempt"), format="%d"),
            "ts": st.column_config.DatetimeColumn(
                _("When"), format=i18n.TABLE_DATETIME[i18n.language()] + ":ss"
            ),
        },
    )
    return total


def entry_actions(entry: dict[str, Any]) -> None:
    """Open the entry's client, their communication, or only the entry's batch."""
    b1, b2, b3 = st.columns(3)
    client_id = entry["client_id"]
    if b1.button(
        _("Open client detail"),
        icon=":material/person:",
        disabled=client_id is None,
        key="log_open_client",
    ):
        st.session_state["comms_client_id"] = int(client_id)
        st.switch_page("pages/client.py", query_params={"client": str(client_id)})
    if b2.button(
        _("Show the client's communication"),
        icon=":material/forum:",
        disabled=client_id is None,
        key="log_open_comm",
    ):
        st.session_state["comms_comm_client_id"] = int(client_id)
        st.switch_page("pages/communication.py", query_params={"client": str(client_id)})
    b3.button(
        _("Only this batch"),
        icon=":material/filter_alt:",
        disabled=entry["batch_id"] is None,
        key="log_only_batch",
        on_click=_only_batch,
        args=(int(entry["batch_id"]) if entry["batch_id"] is not None else 0,),
    )


def render(store: Store) -> None:
    """The whole Action log page."""
    st.title(_("Action log"))
    st.caption(
        _(
            "Every import, template change, generation, edit, queueing, send run and failure: "
            "who, when, what, and the outcome for each message. Newest first."
        )
    )
    apply_links()
    log_filter = filters(store)
    # Kept for the export and for other pages that want to reuse the current view.
    st.session_state["comms_log_filter"] = log_filter.to_dict()
    total = count_log(store, log_filter)
    limit, offset = pager(store, log_filter, total)
    if total == 0:
        st.info(
            _("No entries match these filters.")
            if any(log_filter.to_dict().values())
            else _("Nothing has been recorded yet.")
        )
        return
    entry_id = log_table(query_log(store, log_filter, limit=limit, offset=offset))
    if entry_id is None:
        st.caption(_("Select a row to see its full details and open its client."))
        return
    entry = get_entry(store, entry_id)
    if entry is not None:  # None: deleted between the query and the click
        entry_panel(store, entry)
