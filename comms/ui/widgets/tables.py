"""Tables whose selection is a set of ids, never row positions.

st.dataframe reports a selection as positions in the table as the browser
last drew it. Between that drawing and the click the list may change (a
message was sent, a new one arrived, another page of the directory is shown),
so a position alone could make an action hit a different row. `id_table`
therefore keeps, per table key:

- `<key>__drawn`: the ids in the order they were drawn in the previous run,
  which is what the browser's positions refer to;
- `<key>__picked`: the selected ids.

Each run maps the browser's positions to ids through `__drawn`, updates
`__picked`, then draws the new rows with the picked ids' new positions set as
the table's selection, so what is highlighted is always what an action hits.

The widget's own key (`<key>__widget`) changes with the ids it shows: the
browser clears a table's selection when its rows change and reports that as a
selection of nothing, which would read as "the person unticked everything". A
new list is a new widget, drawn with the picked rows as its selection_default;
the same list keeps its widget (live panels refresh statuses without a remount).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd
import streamlit as st


def _drawn_key(key: str) -> str:
    return f"{key}__drawn"


def _picked_key(key: str) -> str:
    return f"{key}__picked"


def _widget_key(key: str) -> str:
    return f"{key}__widget"


def widget_key(key: str) -> str | None:
    """The key of the widget that drew table `key` last (it changes with the rows shown)."""
    return st.session_state.get(_widget_key(key))


def picked_ids(key: str) -> list[Any]:
    """The ids selected in table `key` (as of the last run that drew it)."""
    return list(st.session_state.get(_picked_key(key)) or [])


def drawn_ids(key: str) -> list[Any]:
    """The ids of table `key` as last drawn, in their order."""
    return list(st.session_state.get(_drawn_key(key)) or [])


def set_picked(key: str, ids: Sequence[Hashable]) -> None:
    """Replace the table's selection (drawn so on its next run)."""
    st.session_state[_picked_key(key)] = [_plain(i) for i in ids]


def clear_picked(key: str) -> None:
    """Select nothing in table `key` (a callback, or before the table is drawn).

    The browser's selection of the last drawing is forgotten too: it is not
    mapped on the next run, and the table is drawn with nothing selected.
    """
    set_picked(key, [])
    st.session_state.pop(_drawn_key(key), None)
    st.session_state[f"{key}__round"] = int(st.session_state.get(f"{key}__round", 0)) + 1


def _plain(value: Any) -> Any:
    """An id as plain Python (numpy integers become int; tuples stay tuples of plain values)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value.item() if hasattr(value, "item") else value


def id_table(
    df: pd.DataFrame,
    ids: Sequence[Hashable],
    *,
    key: str,
    multi: bool = True,
    keep_hidden: bool = False,
    **dataframe_args: Any,
) -> list[Any]:
    """Draw `df` (row i is the row of ids[i]) with row selection; the selected ids.

    An id is anything hashable: a message id, or (address, channel) for the
    suppression list. keep_hidden: ids selected earlier but not drawn now stay selected (the
    directory's selection survives paging and filters); otherwise the selection
    is what this run shows.
    """
    ids = [_plain(i) for i in ids]
    drawn = list(st.session_state.get(_drawn_key(key)) or [])
    picked = picked_ids(key)
    previous = widget_key(key)
    state = st.session_state.get(previous) if previous else None
    rows = _rows_of(state)
    if state is not None and drawn:
        clicked = [drawn[r] for r in rows if 0 <= r < len(drawn)]
        shown_before = set(drawn)
        if multi:
            picked = [i for i in picked if i not in shown_before] + clicked
        else:
            # One row: the click made in the table, else the earlier pick.
            picked = clicked[:1] if clicked or set(picked) <= shown_before else picked
    present = set(ids)
    if not keep_hidden:
        picked = [i for i in picked if i in present]
    picked = list(dict.fromkeys(picked))
    if not multi:
        picked = picked[-1:]
    position = {i: n for n, i in enumerate(ids)}
    wanted = sorted(position[i] for i in picked if i in position)
    digest = hashlib.sha1(repr(ids).encode()).hexdigest()[:10]
    widget = f"{key}-{digest}-{st.session_state.get(f'{key}__round', 0)}"
    selection = {"selection": {"rows": wanted, "columns": [], "cells": []}}
    default = None
    if widget == previous and state is not None:
        if wanted != sorted(rows):
            st.session_state[widget] = selection  # the same rows: set what is picked
    elif wanted:
        default = selection  # new rows, a new widget: drawn with the picked ones ticked
    st.session_state[_picked_key(key)] = picked
    st.session_state[_drawn_key(key)] = ids
    st.session_state[_widget_key(key)] = widget
    st.dataframe(
        df,
        key=widget,
        on_select="rerun",
        selection_mode="multi-row" if multi else "single-row",
        selection_default=default,
        **dataframe_args,
    )
    return picked


def _rows_of(state: Any) -> list[int]:
    """The row positions in a dataframe's selection state (any shape it comes in)."""
    if state is None:
        return []
    selection = state.get("selection") if hasattr(state, "get") else None
    if selection is None:
        selection = getattr(state, "selection", None)
    if selection is None:
        return []
    rows = selection.get("rows") if hasattr(selection, "get") else getattr(selection, "rows", [])
    return [int(r) for r in rows or []]
