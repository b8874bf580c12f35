"""The Home page: the figures that matter, the next step for a new user, recent batches.

Figures and batches come from comms.messages.history.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from comms.feedback import queries as feedback_queries
from comms.i18n import N_, _, ngettext
from comms.messages import history
from comms.store import Store
from comms.ui.client import switch
from comms.ui.common import STATUS_COLORS, chart_datetime, chart_locale, number, shown_code

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
    m[0].metric(_("Clients"), number(stats.clients))
    m[1].metric(_("Sent, last {days} days").format(days=stats.days), number(stats.sent))
    m[2].metric(_("Failed, last {days} days").format(days=stats.days), number(stats.failed))
    m[3].metric(_("Waiting to send"), number(stats.queued))
    # Drafts only: an excluded message is out of its batch's work, not waiting in it.
    m[4].metric(_("Drafts"), number(stats.drafts))


def next_step(stats: history.HomeStats) -> None:
    """What to do next: load clients, write a template, or send; and any failures."""
    with st.container(border=True):
        if stats.clients == 0:
            st.markdown(
                _(
                    "**First step: load your clients.** Open **Clients** and upload a client "
                    "list (CSV or XLSX, as exported from Excel or your CRM)."
                )
            )
            go(_("Go to Clients and upload a list"), "pages/directory.py", "home_go_clients")
        elif stats.templates == 0:
            st.markdown(
                _(
                    "**Next step: write a template.** Open **Templates** and create an e-mail "
                    "or SMS template; fields like `{{ name }}` are filled in for each client."
                )
            )
            go(_("Go to Templates"), "pages/templates.py", "home_go_templates")
        else:
            st.markdown(
                _(
                    "**Ready.** Pick clients in **Clients**, then send them an e-mail or SMS; "
                    "everything sent appears in **Communication**."
                )
            )
            with st.container(horizontal=True):
                go(_("Go to Clients"), "pages/directory.py", "home_go_clients")
                go(
                    _("Go to Communication"),
                    "pages/communication.py",
                    "home_go_comm",
                    primary=False,
                )
        if stats.failed:
            st.warning(
                ngettext(
                    "{n} message failed in the last {days} days: see it in "
                    "**Communication** to retry it.",
                    "{n} messages failed in the last {days} days: see them in "
                    "**Communication** to retry them.",
                    int(stats.failed),
                ).format(n=number(stats.failed), days=stats.days)
            )
            if st.button(
                _("Show failed messages"),
                key="home_show_failed",
                icon=":material/error:",
            ):
                st.session_state["comm_f_status"] = ["failed"]  # the Communication status filter
                st.session_state.pop("comms_comm_client_id", None)
                switch("pages/communication.py")


def batch_chart(batches: pd.DataFrame) -> alt.Chart:
    """One bar per batch, stacked by message status."""
    # Statuses are stored codes: the chart shows them in the viewer's language.
    batches = batches.assign(status=batches["status"].map(shown_code))
    codes = [s for s in STATUS_COLORS if shown_code(s) in set(batches["status"])]
    statuses = [shown_code(s) for s in codes]
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
            x=alt.X(
                "sum(messages):Q", title=_("Messages"), axis=alt.Axis(tickMinStep=1, format="d")
            ),
            color=alt.Color(
                "status:N",
                title=_("Status"),
                scale=alt.Scale(domain=statuses, range=[STATUS_COLORS[s] for s in codes]),
            ),
            tooltip=[
                alt.Tooltip("batch:N", title=_("Batch")),
                alt.Tooltip("status:N", title=_("Status")),
                alt.Tooltip("messages:Q", title=_("Messages")),
                alt.Tooltip("created_at:T", title=_("Created"), format=chart_datetime()),
            ],
        )
        .properties(height=alt.Step(30))
        .configure(locale=chart_locale())  # Vega's numbers in the viewer's format
    )


def recent_batches(store: Store) -> None:
    """The last ten bulk sends and how their messages stand."""
    st.subheader(_("Recent batches"))
    batches = history.recent_batches(store, limit=10)
    if batches.empty:
        st.caption(_("No bulk send yet. Batches appear here with their results."))
        return
    st.caption(_("The last bulk sends, newest on top: each bar counts its messages by status now."))
    st.altair_chart(batch_chart(batches), width="stretch")
    results_table(store, batches)


RESULT_LABELS = {
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "bounced": N_("Bounced"),
    "undelivered": N_("Undelivered"),
    "unsubscribed": N_("Unsubscribed"),
    "complained": N_("Complained"),
}


def results_table(store: Store, batches: pd.DataFrame) -> None:
    """What became of each recent batch once sent: delivered, bounced, unsubscribed, ..."""
    names = batches.drop_duplicates("batch_id").set_index("batch_id")["batch"]
    results = feedback_queries.batch_results(store, list(names.index))
    results = results[results["sent"] > 0]
    if results.empty:
        return
    shown = results.assign(batch=results["batch_id"].map(names)).sort_values(
        "batch_id", ascending=False
    )
    st.markdown("**" + _("What became of them") + "**")
    st.dataframe(
        shown[["batch", *RESULT_LABELS]],
        hide_index=True,
        width="stretch",
        column_config={
            "batch": _("Batch"),
            **{
                k: st.column_config.NumberColumn(_(label), format="localized")
                for k, label in RESULT_LABELS.items()
            },
        },
    )


def render(store: Store) -> None:
    """The whole Home page."""
    st.title(_("Client communication desk"))
    stats = history.home_stats(store, days=DAYS)
    metrics(stats)
    next_step(stats)
    recent_batches(store)
