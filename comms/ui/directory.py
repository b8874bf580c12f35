"""Widgets of the Clients directory: filters, the client table with selection, actions, upload.

The table shows one server-side page of the matching clients at a time
(comms.clients.list_clients with an offset), in the order "Sort by" asks for:
the order clients were added, or name / city / company compared the viewer's
language's way (DuckDB's ICU collation: in Czech Č after C, "Ch" after H). The
selection is a set of client ids (comms.ui.widgets.tables.id_table) that
survives paging, sorting, new filters and imports until the person clears it.
The filter choices are sorted the same way when shown.

A click on a column header sorts only the rows in the browser (Streamlit's
grid, one page): with several pages a caption says so and points to "Sort by".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from comms import config
from comms.clients import (
    ClientFilter,
    count_clients,
    data_version,
    default_list_name,
    export_csv,
    filter_options,
    import_clients,
    page_and_count,
    preview_import,
)
from comms.clients.importing import _attribute_keys, consent_columns
from comms.clients.options import sorted_choices
from comms.clients.queries import SORTS, list_clients
from comms.clients.reading import ATTRIBUTE, TARGETS
from comms.errors import CommsError
from comms.i18n import N_, TABLE_DATETIME, _, collation, language, ngettext
from comms.rules.validation import CHANNEL_NAMES, CHANNELS
from comms.store import Store
from comms.templates import NON_ATTRIBUTE_FIELDS
from comms.ui.common import CHANNEL_LABELS, number, shown_code
from comms.ui.widgets.tables import clear_picked, drawn_ids, id_table

PAGE_ROWS = 2000  # rows per server-side page; "select all N matching" covers every page
TABLE_KEY = "dir_table"
PAGE_KEY = "dir_page_no"
SORT_KEY = "dir_sort"
# The table's sort choices (comms.clients.queries.SORTS) as the viewer reads them.
SORT_LABELS = {
    "id": N_("Order added"),
    "name": N_("Name"),
    "city": N_("City"),
    "company": N_("Company"),
}
# Choice values stay English (what the filter compares); the viewer reads them through _().
ANY, YES, NO = N_("Any"), N_("Yes"), N_("No")
WIZARD, COMMUNICATION, CLIENT = "pages/wizard.py", "pages/communication.py", "pages/client.py"
REPORT_KEY = "dir_import_report"
VERSION_KEY = "dir_data_version"  # bumped by an import: filter choices are read again
# The delimiter names of comms.clients.reading (Detected: ..., delimiter: semicolon).
N_("comma"), N_("semicolon"), N_("tab")


def _tri(label: str, key: str) -> bool | None:
    value = st.selectbox(label, (ANY, YES, NO), key=key, format_func=_)
    return None if value == ANY else value == YES


def _any(value: str) -> str:
    """A filter choice as shown: "Any" in the viewer's language, data values as they are."""
    return _(ANY) if value == ANY else value


def _options(store: Store) -> dict[str, list[str]]:
    """Filter choices in the viewer's language's order, recomputed only when the data
    changed (an import, or a new count) or the language did."""
    version = (st.session_state.get(VERSION_KEY, 0), data_version(store), language())
    cached = st.session_state.get("dir_options")
    if not cached or cached[0] != version:
        cached = (version, sorted_choices(filter_options(store)))
        st.session_state["dir_options"] = cached
    return cached[1]


def filter_panel(store: Store) -> ClientFilter:
    """The filter widgets; returns the ClientFilter they describe."""
    opts = _options(store)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    search = c1.text_input(
        _("Search"),
        key="dir_search",
        placeholder=_("name, e-mail, phone, company, city, any value"),
    )
    list_name = c2.selectbox(_("List"), [ANY, *opts["lists"]], key="dir_list", format_func=_any)
    tag = c3.selectbox(_("Tag"), [ANY, *opts["tags"]], key="dir_tag", format_func=_any)
    city = c4.selectbox(_("City"), [ANY, *opts["cities"]], key="dir_city", format_func=_any)
    with st.expander(_("More filters: attribute, valid e-mail, mobile, consent")):
        a1, a2, a3 = st.columns([2, 1, 2])
        attribute = a1.selectbox(
            _("Attribute"),
            [ANY, "company", *opts["attributes"]],
            key="dir_attr",
            format_func=_any,
        )
        op = a2.selectbox(
            _("Match"), (N_("equals"), N_("contains")), key="dir_attr_op", format_func=_
        )
        value = a3.text_input(_("Value"), key="dir_attr_value")
        b1, b2, b3, b4 = st.columns(4)
        with b1:
            valid = _tri(_("Has valid e-mail"), "dir_valid_email")
        with b2:
            mobile = _tri(_("Has mobile"), "dir_mobile")
        with b3:
            consent_email = _tri(_("E-mail consent"), "dir_consent_email")
        with b4:
            consent_sms = _tri(_("SMS consent"), "dir_consent_sms")
    return ClientFilter(
        search=search.strip() or None,
        list=None if list_name == ANY else list_name,
        tag=None if tag == ANY else tag,
        city=None if city == ANY else city,
        attribute=None if attribute == ANY else attribute,
        attribute_op=op,
        attribute_value=value.strip() or None,
        has_valid_email=valid,
        has_mobile=mobile,
        consent_email=consent_email,
        consent_sms=consent_sms,
    )


def filter_key(f: ClientFilter) -> str:
    """A short stamp of a filter (the toggle "select all N matching" is per filter)."""
    blob = json.dumps(f.to_dict(), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _display(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["name", "email", "phone", "list", "city", "company"]].astype(object).fillna("")
    out["tags"] = df["tags"].map(lambda t: ", ".join(t) if t is not None else "")
    out["valid e-mail"] = df["email_valid"].astype(bool)
    out["mobile"] = df["mobile"].fillna(False).astype(bool)
    out["consent"] = (df["consent_email"] & df["consent_sms"]).astype(bool)
    out["added"] = df["created_at"]
    return out


def _count(store: Store, f: ClientFilter, key: str, sort: str) -> int:
    """The match count, reused while neither the filter nor the data changed: ticking a
    row must not filter a million clients again. The first page comes with it."""
    stamp = data_version(store)
    cached = st.session_state.get("dir_count")
    if cached and cached[0] == (key, stamp):
        return cached[1]
    lang = language()
    total, first = page_and_count(store, f, limit=PAGE_ROWS, sort=sort, lang=lang)
    st.session_state["dir_count"] = ((key, stamp), total)
    st.session_state["dir_page"] = ((key, sort, collation(lang), stamp, 1), first)
    return total


def _page(store: Store, f: ClientFilter, key: str, sort: str, page: int) -> pd.DataFrame:
    """One server-side page of the matching clients in `sort` order, kept while nothing
    changed (filter, sort, language, data, page)."""
    stamp = data_version(store)
    lang = language()
    wanted = (key, sort, collation(lang), stamp, page)
    cached = st.session_state.get("dir_page")
    if cached and cached[0] == wanted:
        return cached[1]
    df = list_clients(
        store, f, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS, sort=sort, lang=lang
    )
    st.session_state["dir_page"] = (wanted, df)
    return df


def _sort_choice(where: Any) -> str:
    """The "Sort by" select: a server-side order over every matching client."""
    return where.selectbox(  # first choice: the order added, as before there was a choice
        _("Sort by"),
        SORTS,
        key=SORT_KEY,
        format_func=lambda s: _(SORT_LABELS[s]),
        help=_(
            "Sorts every matching client, across all pages, the way your language "
            "sorts names. A click on a column header sorts only the rows shown."
        ),
    )


@dataclass
class Selection:
    """What the user picked: explicit ids or every client matching the filter."""

    payload: dict[str, Any] | None  # the comms_selection hand-off, None when nothing
    count: int
    client_id: int | None  # the one client when exactly one row is ticked


def client_table(store: Store, f: ClientFilter) -> Selection:
    """Count, one page of rows with multi-row selection, and 'select all N matching'."""
    key = filter_key(f)
    head, order, pager = st.columns([3, 1, 2], vertical_alignment="bottom")
    sort = _sort_choice(order)
    total = _count(store, f, key, sort)
    pages = max(1, -(-total // PAGE_ROWS))
    view = (key, sort, collation())
    if st.session_state.get("dir_page_filter") != view:
        st.session_state["dir_page_filter"] = view
        st.session_state[PAGE_KEY] = 1  # a new filter or order starts at its first page
    page = 1
    if pages > 1:
        with pager:
            page = int(st.pagination(pages, key=PAGE_KEY, max_visible_pages=5) or 1)
        page = min(max(page, 1), pages)
    df = _page(store, f, key, sort, page)
    shown = ""
    if pages > 1:
        first = (page - 1) * PAGE_ROWS
        shown = " " + _("(showing {first}–{last})").format(
            first=number(first + 1), last=number(first + len(df))
        )
    matching = ngettext("{n} matching client", "{n} matching clients", total).format(
        n=number(total)
    )
    head.markdown(f"**{matching}**{shown}")
    if pages > 1:  # the grid's own header sort reorders one page in the browser only
        st.caption(
            ngettext(
                "A click on a column header sorts only the rows of this page; "
                "“Sort by” sorts the {n} matching client.",
                "A click on a column header sorts only the rows of this page; "
                "“Sort by” sorts all {n} matching clients.",
                total,
            ).format(n=number(total))
        )
    select_all = st.toggle(
        ngettext("Select all {n} matching client", "Select all {n} matching clients", total).format(
            n=number(total)
        ),
        key="dir_all_" + key,
        disabled=total == 0,
        help=_("Use the whole filtered list, including rows on other pages."),
    )
    ids = id_table(
        _display(df),
        [int(i) for i in df["id"]],
        key=TABLE_KEY,
        keep_hidden=True,  # ticked on another page or under another filter: still ticked
        hide_index=True,
        width="stretch",
        column_config={
            "name": st.column_config.TextColumn(_("Name")),
            "email": st.column_config.TextColumn(_("E-mail")),
            "phone": st.column_config.TextColumn(_("Phone")),
            "list": st.column_config.TextColumn(_("List")),
            "city": st.column_config.TextColumn(_("City")),
            "company": st.column_config.TextColumn(_("Company")),
            "tags": st.column_config.TextColumn(_("Tags")),
            "valid e-mail": st.column_config.CheckboxColumn(_("Valid e-mail")),
            "mobile": st.column_config.CheckboxColumn(_("Mobile")),
            "consent": st.column_config.CheckboxColumn(_("Consent")),
            "added": st.column_config.DatetimeColumn(_("Added"), format=TABLE_DATETIME[language()]),
        },
    )
    if select_all and total:
        return Selection({"filter": f.to_dict(), "count": total}, total, None)
    if not ids:
        return Selection(None, 0, None)
    return Selection({"client_ids": ids}, len(ids), ids[0] if len(ids) == 1 else None)


def selection_line(sel: Selection, shown_ids: list[int] | None = None) -> None:
    """ "N selected" (with how many are on other pages or filtered out) and a clear button."""
    row = st.container(horizontal=True, vertical_alignment="center")
    if not sel.count:
        row.caption(_("Nothing selected."))
        return
    hidden = ""
    if sel.payload and "client_ids" in sel.payload and shown_ids is not None:
        elsewhere = len(set(sel.payload["client_ids"]) - set(shown_ids))
        if elsewhere:
            hidden = " " + ngettext(
                "({n} not on this page)", "({n} not on this page)", elsewhere
            ).format(n=number(elsewhere))
    row.caption(
        ngettext("Selected: {n} client", "Selected: {n} clients", sel.count).format(
            n=number(sel.count)
        )
        + hidden
    )
    if sel.payload and "client_ids" in sel.payload:
        row.button(
            _("Deselect all"),
            key="dir_clear_selection",
            icon=":material/deselect:",
            type="tertiary",
            on_click=clear_picked,
            args=(TABLE_KEY,),
        )


def _go(page: str, state: dict[str, Any]) -> None:
    st.session_state.update(state)
    try:
        st.switch_page(page)
    except StreamlitAPIException:
        # The page runs alone (not under app.py's navigation): the hand-off is saved.
        st.info(_("Saved; open {page} to continue.").format(page=page))


def actions(sel: Selection) -> None:
    """The four actions on the selection, each enabled only when the selection fits it."""
    some = None if sel.count else _("Select at least one client first.")
    one = None if sel.client_id is not None else _("Select exactly one client (tick one row).")
    wizard = {"comms_selection": sel.payload}
    buttons = (
        # label, key, why it is disabled (None: enabled), page, what the page is handed
        (
            _("Send e-mail to selected clients"),
            "dir_act_email",
            some,
            WIZARD,
            {**wizard, "comms_wizard_channel": "email"},
        ),
        (
            _("Send SMS to selected clients"),
            "dir_act_sms",
            some,
            WIZARD,
            {**wizard, "comms_wizard_channel": "sms"},
        ),
        (
            _("Show communication of the selected client"),
            "dir_act_comm",
            one,
            COMMUNICATION,
            {"comms_comm_client_id": sel.client_id},
        ),
        (
            _("Open client detail"),
            "dir_act_client",
            one,
            CLIENT,
            {"comms_client_id": sel.client_id},
        ),
    )
    # One row that wraps, so no label is cut short ("Show communication of the sel…").
    row = st.container(horizontal=True)
    for label, key, why, page, state in buttons:
        if row.button(label, key=key, disabled=why is not None, help=why):
            _go(page, state)


def download(store: Store, f: ClientFilter) -> None:
    """Download of the filtered list as formula-safe CSV (built only when clicked)."""
    st.download_button(
        _("Download the filtered list (CSV)"),
        data=lambda: export_csv(store, f),
        file_name="clients.csv",
        mime="text/csv",
        key="dir_download",
        on_click="ignore",
    )


def template_variables(mapping: dict[str, str]) -> dict[str, str]:
    """Header -> the {{ variable }} its values will be in templates, for this mapping:
    the field it fills, or the attribute key the import gives it ("" for none)."""
    keys = _attribute_keys(mapping)
    return {
        h: keys.get(h, "")
        if target == ATTRIBUTE
        else (target if target in NON_ATTRIBUTE_FIELDS else "")
        for h, target in mapping.items()
    }


def _mapping_frame(preview: Any, mapping: dict[str, str]) -> pd.DataFrame:
    examples = []
    for h in preview.headers:
        values = [v for v in preview.sample[h].tolist() if v]
        examples.append(values[0] if values else "")
    variables = template_variables(mapping)
    return pd.DataFrame(
        {
            "column": preview.headers,
            "maps to": [mapping[h] for h in preview.headers],
            "template variable": [variables[h] for h in preview.headers],
            "example": examples,
        }
    )


def upload_panel(store: Store, expanded: bool = False) -> None:
    """Upload, detection results, the sheet, an editable mapping, consent, list name, Import,
    then the report."""
    with st.expander(_("Upload a client list (CSV or XLSX)"), expanded=expanded):
        try:
            limit_mb = config.max_upload_bytes() // 1048576
        except CommsError as exc:  # a malformed setting: named, and the page goes on
            st.error(str(exc))
            return
        up = st.file_uploader(
            _("Client list"),
            type=["csv", "txt", "tsv", "xlsx"],
            key="dir_upload",
            help=_(
                "At most {mb} MB. Excel exports welcome: "
                "UTF-8 or Windows-1250, separated by ; , or tab."
            ).format(mb=number(limit_mb)),
        )
        if up is not None:
            _upload_form(store, up.name, up.getvalue())
    show_report()


# What the uploader may state about consent (comms.clients.importing, C1), by the channels
# the file has no consent column for: label -> the import's `consent=`.
_CONSENT_OPTIONS = {
    ("email", "sms"): {
        N_("E-mail and SMS"): "email,sms",
        N_("E-mail only"): "email",
        N_("SMS only"): "sms",
        N_("Neither"): "none",
    },
    ("email",): {N_("Yes, to e-mail"): "email", N_("No"): "none"},
    ("sms",): {N_("Yes, to SMS"): "sms", N_("No"): "none"},
}
CONSENT_REMINDER = N_(
    "Required: marketing e-mail and SMS may only go to people who agreed to them (GDPR); "
    "clients without consent are left out when you send."
)


def _preview(data: bytes, filename: str, file_key: str, sheet: str | None) -> Any:
    """The file's preview for a sheet, read once per file and sheet (every widget reruns)."""
    cached = st.session_state.get("dir_preview")
    if cached and cached[0] == (file_key, sheet):
        return cached[1]
    preview = preview_import(data, filename, sheet=sheet)
    st.session_state["dir_preview"] = ((file_key, sheet), preview)
    return preview


def _consent_choice(
    preview: Any, mapping: dict[str, str], file_key: str
) -> tuple[bool, str | None]:
    """(whether consent is settled, the consent= to import with): the file's own columns
    first, else the uploader's required choice."""
    columns = consent_columns(mapping)
    needed = tuple(c for c in CHANNELS if c not in columns)
    if columns:
        st.caption(
            _("Consent from the file: {sources}").format(
                sources="; ".join(
                    _("{channel} from column '{column}'").format(
                        channel=CHANNEL_LABELS[c], column=h
                    )
                    for c, h in columns.items()
                )
            )
        )
    if not needed:
        return True, None
    options = _CONSENT_OPTIONS[needed]
    channels = _(" and ").join(_(CHANNEL_NAMES[c]) for c in needed)
    choice = st.radio(
        _("Consent these clients gave to {channels}").format(channels=channels),
        list(options),
        format_func=_,
        index=None,
        horizontal=True,
        key=f"dir_consent_{file_key}_{'_'.join(needed)}",
    )
    st.caption(_(CONSENT_REMINDER))
    return choice is not None, None if choice is None else options[choice]


def _upload_form(store: Store, filename: str, data: bytes) -> None:
    file_key = hashlib.sha1(data).hexdigest()[:10]
    sheet = st.session_state.get("dir_sheet_" + file_key)
    try:
        preview = _preview(data, filename, file_key, sheet)
    except CommsError as exc:  # the file, or a setting it is read with (one sentence each)
        st.error(str(exc))
        return
    if len(preview.sheets) > 1:
        st.selectbox(
            _("Sheet"),
            preview.sheets,
            index=preview.sheets.index(preview.sheet),
            key="dir_sheet_" + file_key,
            help=_("The first sheet with a header row is chosen; pick another to import it."),
        )
    detected = ngettext(
        "{kind}, {n} row, header on row {header}",
        "{kind}, {n} rows, header on row {header}",
        int(preview.rows),
    ).format(kind=preview.kind.upper(), n=number(preview.rows), header=preview.header_row)
    if preview.kind == "csv":
        detected += _(", encoding {encoding}, delimiter: {delimiter}").format(
            encoding=preview.encoding, delimiter=_(preview.delimiter_name)
        )
    if preview.sheet:
        detected += _(", sheet '{sheet}'").format(sheet=preview.sheet)
    st.caption(_("Detected: {what}").format(what=detected))
    for note in preview.notes[1:] if len(preview.sheets) > 1 else preview.notes:
        st.info(note)  # the first note of a workbook ("Read sheet ...") is in Detected
    # The mapping as the person set it; the frame is drawn from it, so the template
    # variable column follows a remapped column (it kept the old name before).
    mapping_key = f"dir_mapping_now_{file_key}_{preview.sheet}"
    current = st.session_state.get(mapping_key) or dict(preview.mapping)
    edited = st.data_editor(
        _mapping_frame(preview, current),
        key=f"dir_mapping_{file_key}" + (f"_{preview.sheet}" if preview.sheet else ""),
        hide_index=True,
        disabled=["column", "template variable", "example"],
        column_config={
            "column": st.column_config.TextColumn(_("column")),
            "maps to": st.column_config.SelectboxColumn(
                _("maps to"), options=list(TARGETS), required=True
            ),
            "template variable": st.column_config.TextColumn(_("template variable")),
            "example": st.column_config.TextColumn(_("example")),
        },
        width="stretch",
    )
    mapping = dict(zip(edited["column"], edited["maps to"], strict=True))
    if mapping != current:
        st.session_state[mapping_key] = mapping
        st.rerun()
    consent_ok, consent = _consent_choice(preview, mapping, file_key)
    own_lists = "lists" in mapping.values()
    c1, c2 = st.columns([3, 1])
    list_name = c1.text_input(
        _("List name"),
        value="" if own_lists else default_list_name(filename),
        key="dir_list_name_" + file_key,
        help=_("Leave empty to keep the lists of the file's lists column.")
        if own_lists
        else _("Every imported client joins this list."),
    )
    region = c2.text_input(
        _("Default phone region"),
        value=config.default_region(),
        key="dir_region_" + file_key,
        max_chars=2,
    )
    if st.button(
        _("Import"),
        type="primary",
        key="dir_import_" + file_key,
        disabled=not consent_ok,
        help=None if consent_ok else _("Choose the consent these clients gave first."),
    ):
        try:
            report = import_clients(
                store,
                data,
                filename=filename,
                list_name=list_name or None,
                mapping=mapping,
                region=region or None,
                sheet=preview.sheet,
                consent=consent,
            )
        except CommsError as exc:
            st.error(str(exc))
            return
        st.session_state[REPORT_KEY] = report.to_dict()
        st.session_state[VERSION_KEY] = st.session_state.get(VERSION_KEY, 0) + 1
        st.rerun()


def _problem_summary(problems: list[dict[str, Any]]) -> str:
    """What the problem rows are, in words that fit every one of them."""
    left_out = sum(1 for p in problems if p.get("skipped"))
    flagged = len(problems) - left_out
    parts = []
    if left_out:
        parts.append(
            ngettext("{n} row not imported", "{n} rows not imported", left_out).format(
                n=number(left_out)
            )
        )
    if flagged:
        parts.append(
            ngettext(
                "{n} row imported with a problem flagged",
                "{n} rows imported with a problem flagged",
                flagged,
            ).format(n=number(flagged))
        )
    return _("{problems}; each is listed below with its reason.").format(
        problems=_(" and ").join(parts)
    )


# Where a channel's consent came from, as the import reports it (comms.clients.importing).
N_("stated: yes"), N_("stated: no")


def _consent_source(where: str) -> str:
    """ "column 'Souhlas'" / "stated: yes" in the viewer's language (the column name is data)."""
    if where.startswith("column "):
        return _("column {name}").format(name=where.removeprefix("column "))
    return _(where)


def show_report() -> None:
    """The last import's counts, notes, consent and problem rows."""
    report = st.session_state.get(REPORT_KEY)
    if not report:
        return
    sheet = (
        " " + _("(sheet '{sheet}')").format(sheet=report["sheet"]) if report.get("sheet") else ""
    )
    title = (
        _("List '{name}'").format(name=report["list_name"])
        if report["list_name"]
        else _("The file's lists")
    )
    st.success(
        _("{title}: {imported} imported, {updated} updated, {skipped} skipped.").format(
            title=title + sheet,
            imported=number(report["imported"]),
            updated=number(report["updated"]),
            skipped=number(report["skipped"]),
        )
    )
    consent = report.get("consent") or {}
    if consent:
        st.caption(
            _("Consent: {what}").format(
                what="; ".join(
                    f"{CHANNEL_LABELS[c]}: {_consent_source(w)}" for c, w in consent.items()
                )
            )
        )
    notes = report.get("notes") or []
    # the note naming the sheet read (a workbook of several) is in the summary above
    for note in notes[1:] if (report.get("sheets") or 0) > 1 else notes:
        st.info(note)
    if st.button(_("Hide the import report"), key="dir_hide_report", type="tertiary"):
        del st.session_state[REPORT_KEY]
        st.rerun()
    problems = report["problems"]
    if problems:
        st.warning(_problem_summary(problems))
        st.dataframe(
            pd.DataFrame(
                {
                    "row": [p["row"] for p in problems],
                    "reason": [shown_code(p["reason"]) for p in problems],
                    "imported": [_("no") if p.get("skipped") else _("yes") for p in problems],
                }
            ),
            column_config={
                # a row of the file, as the spreadsheet numbers it: no grouping
                "row": st.column_config.NumberColumn(_("row"), format="%d"),
                "reason": st.column_config.TextColumn(_("reason")),
                "imported": st.column_config.TextColumn(_("imported")),
            },
            hide_index=True,
            key="dir_problems",
            width="stretch",
        )


def render(store: Store) -> None:
    """The whole directory page."""
    st.title(_("Client directory"))
    total_all = count_clients(store)
    upload_panel(store, expanded=total_all == 0)
    if total_all == 0:
        st.info(_("No clients yet: upload a client list above."))
        return
    f = filter_panel(store)
    sel = client_table(store, f)
    selection_line(sel, drawn_ids(TABLE_KEY))
    actions(sel)
    download(store, f)
