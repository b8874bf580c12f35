"""Ticking rows of an st.dataframe in a real browser, through the grid's accessibility table.

Streamlit's grid (glide-data-grid) draws on a canvas, but keeps an accessible
table inside it: `role="grid"`, one `tr role="row"` per visible row with
`aria-selected`, `td role="gridcell"` per cell. Its row-selection checkboxes
are drawn, not elements; the keyboard path to them is the grid's own: focus a
cell of the row, then Shift+Space toggles that row's checkbox. A row is found
by its text, never by pixel position, and `aria-selected` says whether the
tick took.
"""

from __future__ import annotations

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect


def grid_of(page: Page, key: str | None = None) -> Locator:
    """The accessible grid of a dataframe (by its widget key's st-key- class, or the last)."""
    frames = page.locator(f"[class*='st-key-{key}-'] [data-testid='stDataFrame']") if key else None
    frame = frames if frames is not None else page.get_by_test_id("stDataFrame").last
    return frame.locator('[role="grid"]')


def row_of(grid: Locator, text: str) -> Locator:
    """The grid row that shows `text` in one of its cells."""
    return grid.locator('tr[role="row"]').filter(
        has=grid.page.locator('td[role="gridcell"]', has_text=text)
    )


def settle(page: Page) -> None:
    """Wait until the script run has finished: no running indicator, no stale elements."""
    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0)
    expect(page.locator('[data-stale="true"]')).to_have_count(0)


def tick(page: Page, text: str, *, key: str | None = None, on: bool = True) -> None:
    """Tick (or untick) the row showing `text` with the grid's row checkbox, and wait
    until the grid says it is selected (aria-selected) after the rerun it causes."""
    for attempt in range(4):
        settle(page)
        grid = grid_of(page, key)
        row = row_of(grid, text)
        try:
            expect(row).to_have_count(1, timeout=10_000)
            if (row.get_attribute("aria-selected") == "true") == on:
                return
            selected = grid.locator('tr[aria-selected="true"]').count()
            # Focus another cell first: the grid's first focus lands on its first row,
            # and it redraws its accessible rows then, so the row is looked up again.
            row.locator('td[role="gridcell"]').last.focus()
            cell = row_of(grid, text).locator('td[role="gridcell"]').first
            cell.focus()
            expect(cell).to_be_focused(timeout=2_000)
            page.keyboard.press("Shift+Space")
            settle(page)
            grid = grid_of(page, key)
            expect(row_of(grid, text)).to_have_attribute(
                "aria-selected", "true" if on else "false", timeout=10_000
            )
            # This row and no other: a tick that landed on a grid being redrawn fails here.
            expect(grid.locator('tr[aria-selected="true"]')).to_have_count(
                selected + (1 if on else -1)
            )
            return
        except (PlaywrightError, AssertionError):  # a rerun replaced the grid meanwhile
            if attempt == 3:
                raise


def state_consent(page: Page) -> None:
    """In the upload panel, state that the clients consented to e-mail and SMS (a file
    without consent columns is imported only once the uploader has said so)."""
    import re

    asks = re.compile(r"consent", re.IGNORECASE)
    both = re.compile(r"(e-?mail.*sms|sms.*e-?mail|both)", re.IGNORECASE)
    group = page.get_by_role("radiogroup", name=asks)
    expect(group).to_have_count(1)
    group.get_by_text(both).first.click()
    expect(group.get_by_role("radio", name=both).first).to_be_checked()
    settle(page)


# -- the same tables under AppTest -------------------------------------------------


def select_rows(at, key: str, rows: list[int]):
    """AppTest cannot click rows: set the selection of the widget that drew table `key`
    (comms.ui.widgets.tables.id_table: its widget key changes with the rows shown)."""
    widget = at.session_state[f"{key}__widget"]
    at.session_state[widget] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    return at.run()


def ticked_rows(at, key: str) -> list[int]:
    """The rows table `key` is drawn with ticked (set this run, or its new widget's default)."""
    import json

    widget = at.session_state[f"{key}__widget"]
    frame = table_of(at, key)
    for raw in (frame.proto.selection_state, frame.proto.selection_default):
        if raw:
            return list(json.loads(raw)["selection"]["rows"])
    try:
        return list(at.session_state[widget]["selection"]["rows"])
    except KeyError:
        return []


def table_of(at, key: str):
    """The AppTest element of table `key` (drawn by id_table under its current widget key)."""
    widget = at.session_state[f"{key}__widget"]
    return next(d for d in at.dataframe if d.proto.id and d.proto.id.endswith(widget))


def toggle_checkbox(page: Page, text: str, *, key: str | None = None) -> None:
    """Toggle the checkbox in the first cell of the editable row showing `text`
    (an st.data_editor's CheckboxColumn): focus the cell, Space."""
    settle(page)
    row = row_of(grid_of(page, key), text)
    expect(row).to_have_count(1, timeout=10_000)
    cells = row.locator('td[role="gridcell"]')
    cells.last.focus()
    cell = row_of(grid_of(page, key), text).locator('td[role="gridcell"]').first
    cell.focus()
    expect(cell).to_be_focused(timeout=2_000)
    page.keyboard.press(" ")
    settle(page)
