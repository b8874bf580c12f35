"""The Home page: the figures that matter, the next step for a new user, recent batches.

Figures and batches come from comms.messages.history.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from comms.messages import history
from comms.store import Store
from comms.ui.client import switch
from comms.ui.common import STATUS_COLORS, number

DAYS = 30  # the window of the "sent" and "failed" figures


def go(label: str, page: str, key: str, *, primary: bool = True) -> None:
    """A button leading to another page."""
    if st.button(
        label,
        key=key,
        type="primary" if primary else "secondary",
        icon=":material/arrow_forward:",
    ):
        switch(page)


def metrics(stats: history.HomeStats) -> None:
    """The five figures in one row."""
    m = st.columns(5)
    m[0].metric("Clients", number(stats.clients))
    m[1].metric(f"Sent, last {stats.days} days", number(stats.sent))
    m[2].metric(f"Failed, last {stats.days} days", number(stats.failed))
    m[3].metric("Waiting to send", number(stats.queued))
    # Drafts only: an excluded message is out of its batch's work, not waiting in it.
    m[4].metric("Drafts", number(stats.drafts))


def next_step(stats: history.HomeStats) -> None:
    """What to do next: load clients, write a template, or send; and any failures."""
    with st.container(border=True):
        if stats.clients == 0:
            st.markdown(
                "**First step: load your clients.** Open **Clients** and upload a client list "
                "(CSV or XLSX, as exported from Excel or your CRM)."
            )
            go("Go to Clients and upload a list", "pages/directory.py", "home_go_clients")
        elif stats.templates == 0:
            st.markdown(
                "**Next step: write a template.** Open **Templates** and create an e-mail or SMS "
                "template; fields like `{{ name }}` are filled in for each client."
            )
            go("Go to Templates", "pages/templates.py", "home_go_templates")
        else:
            st.markdown(
                "**Ready.** Pick clients in **Clients**, then send them an e-mail or SMS; "
                "everything sent appears in **Communication**."
            )
            with st.container(horizontal=True):
                go("Go to Clients", "pages/directory.py", "home_go_clients")
                go("Go to Communication", "pages/communication.py", "home_go_comm", primary=False)
        if stats.failed:
            st.warning(
                f"{number(stats.failed)} message(s) failed in the last {stats.days} days: see "
                "them in "
                "**Communication** to retry them."
            )
            if st.button(
                "Show failed messages",
                key="home_show_failed",
                icon=":material/error:",
            ):
                st.session_state["comm_f_status"] = ["failed"]  # the Communication status filter
                st.session_state.pop("comms_comm_client_id", None)
                switch("pages/communication.py")


def batch_chart(batches: pd.DataFrame) -> alt.Chart:
    """One bar per batch, stacked by message status."""
    statuses = [s for s in STATUS_COLORS if s in set(batches["status"])]
    order = list(dict.fromkeys(batches["batch"]))
    return (
        alt.Chart(batches)
        .mark_bar()
        .encode(
            # Full batch names, every one labelled (Vega hid every other and cut them short).
            y=alt.Y(
                "batch:N",
                sort=order,
                title=None,
                axis=alt.Axis(labelLimit=260, labelOverlap=False),
            ),
            # Whole messages only: Vega's default ticks ran 0, 0.5, 1, 1.5 … on a small batch.
            x=alt.X("sum(messages):Q", title="Messages", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=statuses, range=[STATUS_COLORS[s] for s in statuses]),
            ),
            tooltip=[
                "batch:N",
                "status:N",
                "messages:Q",
                alt.Tooltip("created_at:T", title="Created"),
            ],
        )
        .properties(height=alt.Step(30))
    )


def recent_batches(store: Store) -> None:
    """The last ten bulk sends and how their messages stand."""
    st.subheader("Recent batches")
    batches = history.recent_batches(store, limit=10)
    if batches.empty:
        st.caption("No bulk send yet. Batches appear here with their results.")
        return
    st.caption("The last bulk sends, newest on top: each bar counts its messages by status now.")
    st.altair_chart(batch_chart(batches), width="stretch")


def render(store: Store) -> None:
    """The whole Home page."""
    st.title("Client communication desk")
    stats = history.home_stats(store, days=DAYS)
    metrics(stats)
    next_step(stats)
    recent_batches(store)
