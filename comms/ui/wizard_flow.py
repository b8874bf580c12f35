"""The bulk send wizard's state and navigation, shared by its two halves.

Before "Generate" (comms.ui.wizard) the send being prepared lives in
st.session_state under `wiz_*` keys. From "Generate" on (comms.ui.wizard_batch)
the batch in the database is the state and the URL names it: `?batch=N`, and
`&step=finish` on the last step. This module holds both: the session keys, the
URL, the steps and the Back / Next row.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from comms.i18n import N_, _
from comms.ui.common import CHANNEL_LABELS, Text, text_of

# The steps' names, translated where they are shown.
STEPS = (
    N_("Template"),
    N_("Content"),
    N_("Attachments"),
    N_("Recipients"),
    N_("Review"),
    N_("Finish"),
)
TEMPLATE, CONTENT, ATTACHMENTS, RECIPIENTS, REVIEW, FINISH = range(len(STEPS))
DONE_KEY = "wiz_done"  # {batch id: what the last action on it did}, this session only


# -- state ------------------------------------------------------------------------
def state(key: str, default: Any = None) -> Any:
    """One value of the send being prepared (st.session_state["wiz_<key>"])."""
    return st.session_state.get(f"wiz_{key}", default)


def set_state(key: str, value: Any) -> None:
    """Set one value of the send being prepared."""
    st.session_state[f"wiz_{key}"] = value


def reset() -> None:
    """Forget the send being prepared (a generated batch stays in the database)."""
    for key in [k for k in st.session_state if str(k).startswith("wiz_")]:
        del st.session_state[key]


def go(step: int) -> None:
    """Show this step of the send being prepared on the next run."""
    set_state("step", step)


def batch_in_url() -> int | None:
    """The batch the URL names (?batch=N), if any."""
    raw = st.query_params.get("batch")
    return int(raw) if raw is not None and str(raw).strip().isdigit() else None


def open_batch(batch_id: int, *, finish: bool = False) -> None:
    """Show batch_id from now on: the URL carries it, so a reload lands here too."""
    set_state("at_batch", True)
    st.query_params["batch"] = str(int(batch_id))
    if finish:
        st.query_params["step"] = "finish"
    elif "step" in st.query_params:
        del st.query_params["step"]


def close_batch() -> None:
    """Back to preparing a send (the URL no longer names a batch)."""
    set_state("at_batch", False)
    for param in ("batch", "step"):
        if param in st.query_params:
            del st.query_params[param]


def done_text(batch_id: int) -> str | None:
    """What the last action on the batch did, in the viewer's language now."""
    text = (st.session_state.get(DONE_KEY) or {}).get(int(batch_id))
    return None if text is None else text_of(text)


def set_done(batch_id: int, text: Text | None) -> None:
    """Remember what an action did to the batch (a callable: written when shown, so it
    follows a language switch)."""
    done = dict(st.session_state.get(DONE_KEY) or {})
    if text is None:
        done.pop(int(batch_id), None)
    else:
        done[int(batch_id)] = text
    st.session_state[DONE_KEY] = done


def steps_for(channel: str) -> list[int]:
    # SMS has no attachments step.
    return [i for i in range(len(STEPS)) if not (channel == "sms" and i == ATTACHMENTS)]


def heading(step: int, channel: str, text: str) -> None:
    """The step's heading, numbered as in the progress line (SMS has no attachments step)."""
    st.subheader(f"{steps_for(channel).index(step) + 1}. {text}")


def next_step(step: int, channel: str) -> int:
    order = steps_for(channel)
    return order[min(order.index(step) + 1, len(order) - 1)]


def prev_step(step: int, channel: str) -> int:
    order = steps_for(channel)
    return order[max(order.index(step) - 1, 0)]


def link(where: Any, label: str, page: str, icon: str, key: str, **params: str) -> None:
    # A button + switch_page rather than st.page_link, which refuses pages that the
    # navigation has not registered (a page run on its own, as in AppTest).
    if where.button(label, icon=icon, key=key):
        st.switch_page(page, query_params=params or None)


# -- selection ----------------------------------------------------------------------
def handed_selection() -> dict | None:
    sel = st.session_state.get("comms_selection")
    if isinstance(sel, dict) and ("client_ids" in sel or "filter" in sel):
        return sel
    return None


def wanted_channel() -> str:
    wanted = st.session_state.get("comms_wizard_channel")
    return wanted if wanted in CHANNEL_LABELS else "email"


def same_send(sel: dict | None) -> bool:
    """Whether the session's send being prepared is for this selection and channel."""
    return (
        sel is not None
        and state("selection") == sel
        and state("origin_channel") == wanted_channel()
    )


def progress_header(step: int, channel: str) -> None:
    order = steps_for(channel)
    labels = []
    for n, i in enumerate(order, start=1):
        name = f"{n}. {_(STEPS[i])}"
        if i == step:
            labels.append(f"**:blue[{name}]**")
        else:
            labels.append(f":gray[{name}]" if i > step else f":green[✓ {name}]")
    st.markdown(" → ".join(labels))


def nav(
    step: int,
    channel: str,
    *,
    next_label: str | None = None,
    can_next: bool = True,
    why_not: str | None = None,
) -> bool:
    """Back / Next buttons; returns True when Next was pressed."""
    # One row sized to the labels: fixed columns cut "Generate 1,234 messages" short.
    row = st.container(horizontal=True)
    if step > 0 and row.button(_("Back"), icon=":material/arrow_back:", key=f"wiz_back_{step}"):
        go(prev_step(step, channel))
        st.rerun()
    return row.button(
        next_label or _("Next"),
        type="primary",
        icon=":material/arrow_forward:",
        disabled=not can_next,
        help=None if can_next else why_not,
        key=f"wiz_next_{step}",
    )
