"""Importing a client list: normalise every row, dedupe, and write it all or nothing.

The file is read (comms.clients.reading); then (invariant I1, "per value in
Python, per row in SQL"): every distinct cell value of a column is worked out
once in Python (stripped, the export's formula guard undone; e-mails and phones
checked by comms.clients.checking, the phones in a worker process meanwhile;
tags and lists split; consent words read), and each row only looks its values
up. The rows go to DuckDB as numpy arrays, and SQL does the rest in the write
transaction: names joined, consent per channel, rows left out dropped, rows
that share a valid e-mail (else a valid phone) merged, within the file and then
with the stored clients they match, one UPDATE ... FROM and one INSERT ...
SELECT (the attributes JSON built there), plus the 'import' action-log entry: a
failure anywhere writes nothing. The filter choices follow the rows it updated
and inserted (comms.clients.options). Neither pandas nor pyarrow is loaded on
this path (pyarrow loads pandas), and the cyclic garbage collector waits until
the import is done: bench/bench_import.py measures the whole, against a plain
loop calling the validation libraries.

A file read from this app's own export imports back unchanged: its computed
columns are ignored and the export's formula guard (a leading apostrophe) is
undone.

Consent is on purpose (C1, C2): a channel's consent comes from the file's own
consent column when it has one (ano/ne, yes/no, 1/0, x or a date; a blank or an
unreadable cell is no consent for a new client), else from what the uploader
states (`consent=`); with neither the import is refused (ConsentNotStated).
What was stated, and by whom, goes into the 'import' action-log entry. Stated
consent is recorded for the clients the import adds; a stored client keeps its
flags (an earlier opt-out is never undone by a bulk statement), unless the
file's own column says otherwise.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from comms import actionlog, config
from comms.clients.checking import PhonesBeside, email_answers
from comms.clients.options import Change, write_clients
from comms.clients.reading import (
    ATTRIBUTE,
    FIELDS,
    IGNORE,
    LIST_SEPARATOR,
    RawTable,
    attribute_key,
    check_mapping,
    detect_mapping,
    is_own_export,
    read_source,
    read_table,
)
from comms.clients.workbook import column_letter
from comms.csv_export import FORMULA_PREFIXES
from comms.errors import ConsentNotStated, ImportFailed
from comms.i18n import N_, _
from comms.rules.validation import CHANNEL_NAMES, CHANNELS, EMPTY_ROW
from comms.store import Store

if TYPE_CHECKING:
    import pandas as pd

NO_IDENTITY = N_("no e-mail or phone")  # nothing to send to: not a client to keep
TAG_SPLIT = re.compile(r"\s*[,;|]\s*")
_TRUE = {"1", "true", "yes", "y", "ano", "a", "x", "ok", "souhlas", "souhlasi", "✓", "✔", "t"}
_FALSE = {"0", "false", "no", "n", "ne", "nesouhlas", "nesouhlasi", "f", "-", "✗"}
# A date in a consent column is the day consent was given: 2024-03-01, 1. 3. 2024, 3/1/24 ...
_DATE = re.compile(r"\d{1,4}\s*[-./]\s*\d{1,2}\s*[-./]\s*\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_SEP = "\x1f"  # tags and lists travel to DuckDB as one string split there
# What the uploader may state (C1): the channels these clients consented to.
CONSENT_CHOICES = ("email,sms", "email", "sms", "none")
# Cells the export guarded against formulas ("'=1+1"): the apostrophe is undone.
_GUARDED = frozenset(FORMULA_PREFIXES)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # dropped from attribute values


@dataclass
class ImportPreview:
    """What the upload panel shows before importing: detection results and the mapping."""

    kind: str
    encoding: str | None
    delimiter: str | None
    delimiter_name: str
    header_row: int
    headers: list[str]
    mapping: dict[str, str]  # header -> field | 'attribute' | 'ignore'
    keys: dict[str, str]  # header -> attribute key (template variable) for attribute columns
    rows: int
    sample: pd.DataFrame  # the first rows, with the file's headers
    sheet: str | None = None  # the worksheet read (XLSX)
    sheets: list[str] = field(default_factory=list)  # every worksheet, for a chooser
    notes: list[str] = field(default_factory=list)
    consent_columns: dict[str, str] = field(default_factory=dict)  # channel -> its column

    @property
    def consent_needed(self) -> list[str]:
        """Channels the file has no consent column for: the uploader must state them (C1)."""
        return [c for c in CHANNELS if c not in self.consent_columns]


@dataclass
class ImportReport:
    """The outcome of one import; imported + updated + skipped == data rows in the file.

    Each problem is {row, reason, skipped}: the row's number in the file (a
    spreadsheet's numbering, the header's row counted), why, and whether the row
    was left out (True) or imported with the problem flagged (False).
    """

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)  # [{row, reason, skipped}]
    mapping: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    list_name: str = ""
    rows: int = 0
    kind: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int = 1
    sheet: str | None = None
    # Several worksheets: the first note then names the one read ("Read sheet ... of N").
    sheets: int = 0
    notes: list[str] = field(default_factory=list)
    # channel -> where its consent came from: "column 'Souhlas'", "stated: yes" / "stated: no"
    consent: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attribute_keys(mapping: dict[str, str]) -> dict[str, str]:
    """Unique template-variable keys for the attribute columns, never a core field name."""
    reserved = {"id", "list", "lists", "email_valid", "phone_kind", *FIELDS}
    keys: dict[str, str] = {}
    used: set[str] = set(reserved)
    for header, target in mapping.items():
        if target != ATTRIBUTE:
            continue
        base = attribute_key(header)
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}_{n}"
        used.add(key)
        keys[header] = key
    return keys


def _load(
    source: bytes | str | Path, filename: str | None, sheet: str | None
) -> tuple[RawTable, str | None]:
    data, name = read_source(source)  # refused over the upload limit before it is read
    return read_table(data, filename or name, sheet=sheet), filename or name


def _notes(table: RawTable) -> list[str]:
    notes = list(table.notes)
    if is_own_export(table.headers):
        notes.append(
            _(
                "This is a CSV export of this app: its id, email_valid and phone_kind columns "
                "are worked out again, not imported."
            )
        )
    return notes


def consent_columns(mapping: dict[str, str]) -> dict[str, str]:
    """channel -> the column its consent is read from (a general column covers both)."""
    out: dict[str, str] = {}
    for header, target in mapping.items():
        if target == "consent":
            for channel in CHANNELS:
                out.setdefault(channel, header)
    for header, target in mapping.items():
        if target.startswith("consent_") and target[8:] in CHANNELS:
            out[target[8:]] = header  # the channel's own column wins
    return out


def preview_import(
    source: bytes | str | Path,
    filename: str | None = None,
    sample_rows: int = 5,
    *,
    sheet: str | None = None,
) -> ImportPreview:
    """Read a file and guess its mapping, without writing anything."""
    import pandas as pd  # the panel draws the sample; the import itself does not need pandas

    table, _ = _load(source, filename, sheet)
    mapping = detect_mapping(table.headers)
    sample = pd.DataFrame(table.rows[:sample_rows], columns=table.headers, dtype=object)
    return ImportPreview(
        kind=table.kind,
        encoding=table.encoding,
        delimiter=table.delimiter,
        delimiter_name=table.delimiter_name,
        header_row=table.header_row,
        headers=table.headers,
        mapping=mapping,
        keys=_attribute_keys(mapping),
        rows=len(table.rows),
        sample=sample,
        sheet=table.sheet,
        sheets=table.sheets,
        notes=_notes(table),
        consent_columns=consent_columns(mapping),
    )


def stated_consent(consent: str | Iterable[str] | None) -> set[str] | None:
    """The channels an uploader states consent for (C1): 'email,sms', 'email', 'sms',
    'none', or an iterable of channels; None when nothing is stated."""
    if consent is None:
        return None
    if isinstance(consent, str):
        text = consent.strip().lower()
        if text == "none":
            return set()
        items = [t.strip() for t in text.split(",")]
    else:
        try:
            items = [str(c).strip().lower() for c in consent]
        except TypeError:
            items = [""]
    chosen = {{"e-mail": "email"}.get(c, c) for c in items}
    if not chosen or not chosen <= set(CHANNELS):
        raise ImportFailed(
            _(
                "The stated consent must be one of {choices} (the channels these clients "
                "agreed to be contacted on)."
            ).format(choices=", ".join(CONSENT_CHOICES))
        )
    return chosen


def _consent_word(value: str) -> bool | None | str:
    """True (ano, yes, 1, x, a date ...), False (ne, no, 0 ...), None (blank), or the
    value itself when it is not understood."""
    folded = value.lower()
    if folded in _TRUE or _DATE.fullmatch(folded):
        return True
    if folded in _FALSE:
        return False
    return None if not folded else value


def _clean_cell(v: str) -> str:
    """A cell stripped, with the export's formula guard undone ("'=1+1" -> "=1+1")."""
    return (v[1:] if v[:1] == "'" and v[1:2] in _GUARDED else v).strip()


def _problem(row: int, reason: str, skipped: bool) -> dict[str, Any]:
    """A problem row of the report. Its reason is a code (EMPTY_ROW, NO_IDENTITY, a
    checker's 'invalid e-mail: ...') translated where it is shown, or a sentence made in
    the viewer's language here: the report is shown, never stored."""
    return {"row": int(row), "reason": reason, "skipped": skipped}


def _wide_reason(table: RawTable, cells: int) -> tuple[str, bool]:
    """Why a row with values right of the header's last column is (CSV) or is not skipped."""
    width = len(table.headers)
    if table.kind == "csv":
        sep = _("tab") if table.delimiter == "\t" else f"'{table.delimiter}'"
        return (
            _(
                "{cells} cells where the header has {width} columns: a value holds an "
                "unquoted {sep}, which shifts the cells after it; quote that value or remove "
                "the extra {sep} (row not imported)"
            ).format(cells=cells, width=width, sep=sep),
            True,
        )
    return (
        _(
            "values right of the last named column, up to column {column}, ignored (give "
            "those columns a header to keep them)"
        ).format(column=column_letter(cells)),
        False,
    )


@dataclass
class _Plan:
    """What the import does with lists and consent, decided before any row is read."""

    lists: list[str]  # lists every imported client joins
    fallback_lists: list[str]  # lists of a row whose own lists cell is empty
    consent_default: dict[str, bool]  # channel -> a new client's consent when its cell is blank
    consent: dict[str, str]  # channel -> where it came from (report and action log)


@dataclass
class _Staged:
    """A file's rows ready for SQL (one entry per data row) and the problems found."""

    rows: dict[str, Any]  # numpy arrays: row, skip, the client fields, a0.. (attributes)
    attr_keys: list[str]
    problems: list[dict[str, Any]]
    skipped: int


def _distinct(column: tuple[str, ...], make: Any) -> dict[str, Any]:
    """make(cell) for each distinct cell of a column: per-value work is done once."""
    return {v: make(v) for v in dict.fromkeys(column)}


def _stage(
    table: RawTable, mapping: dict[str, str], keys: dict[str, str], region: str, plan: _Plan
) -> _Staged:
    """Every data row as the client fields it gives, and why rows are left out or flagged.

    Work per value (stripping, the e-mail and phone checks, tags, lists, consent words) is
    done once per distinct cell value; per row only dictionary lookups run here, and the
    rest (names, consent per channel, dedupe, merge) is SQL (I1).
    """
    n = len(table.rows)
    width = len(table.headers)
    columns = list(zip(*table.rows, strict=True)) if n and width else [()] * width
    rownum = table.row_numbers
    col_of = {t: table.headers.index(h) for h, t in mapping.items() if t in FIELDS}
    blank: tuple[str, ...] = ("",) * n
    clean_of: dict[int, dict[str, str]] = {}

    def cleaned(i: int) -> dict[str, str]:
        if i not in clean_of:
            clean_of[i] = _distinct(columns[i], _clean_cell)
        return clean_of[i]

    def raw(target: str) -> tuple[str, ...]:
        i = col_of.get(target)
        return columns[i] if i is not None else blank

    def mapped(target: str, make: Any) -> list[Any]:
        """make(clean cell) for every row of the column mapped to target (None: no column)."""
        i = col_of.get(target)
        if i is None:
            return [None] * n
        values = {v: make(c) for v, c in cleaned(i).items()}
        return [values[v] for v in columns[i]]

    def array(values: list[Any]) -> Any:
        """A column as DuckDB scans it from Python: a numpy object array (None is NULL)."""
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    data: dict[str, Any] = {"row": np.array(rownum, dtype=np.int64)}
    for target in ("name", "first_name", "last_name", "company", "city"):
        data[target] = array(mapped(target, lambda c: c or None))

    # E-mail and phone: each distinct value checked once (comms.clients.checking); the
    # phones in a worker process beside this one while the rest is done here.
    email_cells = cleaned(col_of["email"]) if "email" in col_of else {}
    phone_cells = cleaned(col_of["phone"]) if "phone" in col_of else {}
    phone_values = [c for c in dict.fromkeys(phone_cells.values()) if c]
    phones_beside = PhonesBeside(phone_values, region)
    email_values = [c for c in dict.fromkeys(email_cells.values()) if c]
    emails = dict(zip(email_values, email_answers(email_values), strict=True))
    e_of = {v: emails.get(c) for v, c in email_cells.items()}
    e = [e_of[v] for v in raw("email")] if email_cells else [None] * n  # (ok, address, error)
    data["email"] = array([r[1] if r else None for r in e])
    data["email_valid"] = array([r[0] if r else None for r in e])
    data["email_error"] = array([r[2] if r else None for r in e])

    data["tags"] = array(
        mapped(
            "tags",
            lambda c: (
                _SEP.join(dict.fromkeys(t for t in TAG_SPLIT.split(c) if t)) or None if c else None
            ),
        ),
    )
    if "lists" in col_of:
        data["lists"] = array(mapped("lists", lambda c: _cell_lists(c, plan)))
    else:
        data["lists"] = array([_SEP.join(plan.fallback_lists)] * n)

    # Consent (C1): the file's own column per channel; a blank or unreadable cell says nothing.
    flagged: list[dict[str, Any]] = []
    header_of = {t: h for h, t in mapping.items()}
    for target in ("consent", "consent_email", "consent_sms"):
        words = mapped(target, _consent_word)
        data[target] = array([w if isinstance(w, bool) else None for w in words])
        if target in col_of:
            not_understood = _(
                "consent {value!r} in {column!r} not understood (ano/ne, yes/no, 1/0, x or "
                "a date): no consent recorded"
            )
            flagged += [
                _problem(r, not_understood.format(value=w[:30], column=header_of[target]), False)
                for r, w in zip(rownum, words, strict=True)
                if isinstance(w, str)
            ]
    # ... and whether the channel's own cell was blank (the general column speaks then)
    for channel in CHANNELS:
        data[f"own_{channel}"] = array(mapped(f"consent_{channel}", lambda c: c != ""))

    attr_keys = [keys[h] for h in table.headers if h in keys]
    for j, key in enumerate(attr_keys):
        i = next(i for i, h in enumerate(table.headers) if keys.get(h) == key)
        values = {
            v: (c if c.isprintable() else _CONTROL.sub("", c)) if c else None
            for v, c in cleaned(i).items()
        }
        data[f"a{j}"] = array([values[v] for v in columns[i]])

    phones = dict(zip(phone_values, phones_beside.results(), strict=True))
    p_of = {v: phones.get(c) for v, c in phone_cells.items()}
    p = [p_of[v] for v in raw("phone")] if phone_cells else [None] * n  # (ok, e164, kind, error)
    data["phone"] = array([r[1] if r else None for r in p])
    data["phone_kind"] = array([r[2] if r else None for r in p])
    data["phone_error"] = array([r[3] if r else None for r in p])

    # Skipped rows: nothing in any kept cell, nothing that identifies a client, or (CSV)
    # more cells than the header has columns: one problem each, the reason it was left out.
    # A cell is blank when it is whitespace (the formula guard never leaves a cell empty).
    kept = [columns[i] for i, h in enumerate(table.headers) if mapping.get(h) != IGNORE]
    empty = (
        [not "".join(cells).strip() for cells in zip(*kept, strict=True)] if kept else [True] * n
    )
    anonymous = [x is None and y is None for x, y in zip(e, p, strict=True)]
    skipped_reason: dict[int, str] = {}
    candidates = set(table.wide) | set(table.formulas)
    candidates.update(r for r, a, b in zip(rownum, empty, anonymous, strict=True) if a or b)
    index_of = {r: i for i, r in enumerate(rownum)} if candidates else {}
    for r in sorted(candidates):
        i = index_of[r]
        note = _formula_note(table.formulas.get(r))
        if r in table.wide:
            reason, skip = _wide_reason(table, table.wide[r])
            if skip:
                skipped_reason[r] = reason
                continue
            flagged.append(_problem(r, reason, False))
        if empty[i]:
            skipped_reason[r] = note or EMPTY_ROW
        elif anonymous[i]:
            skipped_reason[r] = (
                _("no e-mail or phone ({note})").format(note=note) if note else NO_IDENTITY
            )
        elif note:
            flagged.append(_problem(r, note, False))
    flagged += [_problem(r, x[2], False) for r, x in zip(rownum, e, strict=True) if x and not x[0]]
    flagged += [_problem(r, x[3], False) for r, x in zip(rownum, p, strict=True) if x and not x[0]]
    problems = [_problem(r, why, True) for r, why in skipped_reason.items()]
    problems += [x for x in flagged if x["row"] not in skipped_reason]
    data["skip"] = array([r in skipped_reason for r in rownum] if skipped_reason else [False] * n)
    return _Staged(data, attr_keys, problems, len(skipped_reason))


def _formula_note(headers: list[str] | None) -> str | None:
    if not headers:
        return None
    # reading.FORMULA_WITHOUT_VALUE in the columns: reading.SAVE_IN_EXCEL, as one sentence
    return _(
        "formula without a saved value in {columns}: open the file in Excel and save it, "
        "then import it again"
    ).format(columns=", ".join(headers))


def _cell_lists(cell: str, plan: _Plan) -> str:
    """A row's lists, joined by _SEP: its own lists cell (the export's 'A | B'), else the
    import's list, and the list named for the whole import in any case."""
    names = [x.strip() for x in cell.split(LIST_SEPARATOR) if x.strip()]
    if not names:
        return _SEP.join(plan.fallback_lists)
    return _SEP.join(dict.fromkeys([*names, *plan.lists]))


# The client fields a merge carries (the last non-empty value of a group wins).
_FIELDS_SQL = (
    "name",
    "first_name",
    "last_name",
    "email",
    "email_valid",
    "email_error",
    "phone",
    "phone_kind",
    "company",
    "city",
    "tags",
    "lists",
    "consent_email",
    "consent_sms",
)

# I1: the rows a file gives, as clients. Names joined; consent per channel (its own column's
# word, else the general one's); rows left out dropped; then rows sharing a key (a valid
# e-mail, else a valid phone, else name|e-mail|phone as given; a row with only a phone joins
# the e-mail row that has the same phone) merge: in a group that has a valid e-mail (phone)
# its rows' invalid ones are forgotten, then each field is the group's last non-empty value
# and the row number its first.
_ROWS_SQL = """
WITH r AS (
    SELECT row, coalesce(name, nullif(trim(coalesce(first_name, '') || ' '
                                           || coalesce(last_name, '')), '')) AS name,
           first_name, last_name, email, email_valid, email_error, phone, phone_kind,
           company, city, tags, lists,
           CASE WHEN own_email THEN consent_email ELSE consent END AS consent_email,
           CASE WHEN own_sms THEN consent_sms ELSE consent END AS consent_sms
           {attrs}
    FROM {staged} WHERE NOT skip
), keyed AS (
    SELECT *,
        email_valid IS TRUE AS ev,
        phone_kind IS NOT NULL AND phone_kind <> 'invalid' AS pv,
        CASE WHEN email_valid IS TRUE THEN 'e:' || lower(email)
             WHEN phone_kind IS NOT NULL AND phone_kind <> 'invalid' THEN 'p:' || phone
             ELSE 'n:' || lower(coalesce(name, '')) || '|' || lower(coalesce(email, ''))
                  || '|' || coalesce(phone, '') END AS key0
    FROM r
), by_phone AS (
    SELECT phone, arg_min(key0, row) AS key FROM keyed WHERE ev AND pv GROUP BY phone
)
SELECT k.*, CASE WHEN NOT k.ev AND k.pv THEN coalesce(b.key, k.key0) ELSE k.key0 END AS key
FROM keyed k LEFT JOIN by_phone b ON NOT k.ev AND k.pv AND b.phone = k.phone
"""


def _staged_sql(attrs: list[str]) -> str:
    """The staged arrays with their SQL types (a column of only NULLs has none of its own)."""
    text = (
        "name",
        "first_name",
        "last_name",
        "company",
        "city",
        "email",
        "email_error",
        "phone",
        "phone_kind",
        "phone_error",
        "tags",
        "lists",
        *attrs,
    )
    flags = (
        "skip",
        "email_valid",
        "consent",
        "consent_email",
        "consent_sms",
        "own_email",
        "own_sms",
    )
    cols = ["row::BIGINT AS row"]
    cols += [f"{c}::VARCHAR AS {c}" for c in text]
    cols += [f"{c}::BOOLEAN AS {c}" for c in flags]
    return f"(SELECT {', '.join(cols)} FROM imp_staged)"


def _merge_sql(source: str, key: str, attrs: list[str], *, keep_key: bool = False) -> str:
    """SQL merging the rows of `source` that share `key` (I1): one row per key (unordered).

    `source` has each row's fields, `ev` / `pv` (its e-mail / phone is valid) and the key;
    keep_key also returns the key column (the stored client's id in the second merge). Only
    the rows of repeated keys (a few per cent) are grouped; the others pass as they are.
    """
    forget = {
        **{c: "ev OR NOT g_ev" for c in ("email", "email_valid", "email_error")},
        **{c: "pv OR NOT g_pv" for c in ("phone", "phone_kind")},
    }
    carried = (*_FIELDS_SQL, *attrs)
    merged = ",\n    ".join(
        f"arg_max({c}, row) FILTER (WHERE {c} IS NOT NULL"
        + (f" AND ({forget[c]})" if c in forget else "")
        + f") AS {c}"
        for c in carried
    )
    kept = f"row, {key + ', ' if keep_key else ''}" + ", ".join(carried)
    return f"""
WITH src AS (SELECT * FROM {source}),
repeated AS (SELECT {key} FROM src GROUP BY {key} HAVING count(*) > 1)
SELECT {kept} FROM src ANTI JOIN repeated USING ({key})
UNION ALL
SELECT min(row) AS row, {key + "," if keep_key else ""}
    {merged}
FROM (
    SELECT *, bool_or(ev) OVER w AS g_ev, bool_or(pv) OVER w AS g_pv
    FROM src SEMI JOIN repeated USING ({key}) WINDOW w AS (PARTITION BY {key})
)
GROUP BY {key}
"""


# The rows a merge folded into an earlier one: (row, the row it joined).
_FOLDED_SQL = """
WITH repeated AS (SELECT {key} FROM {source} GROUP BY {key} HAVING count(*) > 1)
SELECT row, first FROM (
    SELECT row, min(row) OVER (PARTITION BY {key}) AS first
    FROM {source} SEMI JOIN repeated USING ({key})
)
WHERE row <> first ORDER BY row
"""


# Stored clients a row updates: same valid e-mail; else same valid phone when one
# side has no valid e-mail; else (no valid address at all) same name, e-mail and phone.
_MATCH_SQL = """
WITH s AS (
    SELECT row AS i,
        CASE WHEN email_valid THEN lower(email) END AS ekey,
        CASE WHEN phone_kind <> 'invalid' THEN phone END AS pkey,
        lower(coalesce(name, '')) AS nkey,
        lower(coalesce(email, '')) AS raw_email,
        coalesce(phone, '') AS raw_phone
    FROM imp_clients
), em AS (
    SELECT s.i, min(c.id) AS id FROM s JOIN clients c
    ON c.email_valid AND lower(c.email) = s.ekey
    GROUP BY s.i
), ph AS (
    SELECT s.i, min(c.id) AS id FROM s JOIN clients c
    ON c.phone = s.pkey AND c.phone_kind <> 'invalid'
    WHERE s.ekey IS NULL OR NOT c.email_valid
    GROUP BY s.i
), nm AS (
    SELECT s.i, min(c.id) AS id FROM s JOIN clients c
    ON lower(coalesce(c.name, '')) = s.nkey AND lower(coalesce(c.email, '')) = s.raw_email
       AND coalesce(c.phone, '') = s.raw_phone
    WHERE s.ekey IS NULL AND s.pkey IS NULL AND NOT c.email_valid
      AND coalesce(c.phone_kind, 'invalid') = 'invalid'
    GROUP BY s.i
)
SELECT s.i AS row, coalesce(em.id, ph.id, nm.id) AS id
FROM s LEFT JOIN em USING (i) LEFT JOIN ph USING (i) LEFT JOIN nm USING (i)
"""

_UPDATE_SQL = """
UPDATE clients AS c SET
    name = coalesce(s.name, c.name),
    first_name = coalesce(s.first_name, c.first_name),
    last_name = coalesce(s.last_name, c.last_name),
    email = CASE WHEN s.keep_email THEN c.email ELSE s.email END,
    email_valid = CASE WHEN s.keep_email THEN c.email_valid ELSE s.email_valid END,
    email_error = CASE WHEN s.keep_email THEN c.email_error ELSE s.email_error END,
    phone = CASE WHEN s.keep_phone THEN c.phone ELSE s.phone END,
    phone_kind = CASE WHEN s.keep_phone THEN c.phone_kind ELSE s.phone_kind END,
    company = coalesce(s.company, c.company),
    city = coalesce(s.city, c.city),
    lists = list_concat(c.lists, list_filter(string_split(s.lists, chr(31)),
                                             lambda x: NOT list_contains(c.lists, x))),
    tags = CASE WHEN s.tags IS NULL THEN c.tags ELSE list_concat(c.tags,
        list_filter(string_split(s.tags, chr(31)), lambda x: NOT list_contains(c.tags, x))) END,
    consent_email = coalesce(s.consent_email, c.consent_email),
    consent_sms = coalesce(s.consent_sms, c.consent_sms),
    attributes = json_merge_patch(c.attributes, s.attributes),
    updated_at = current_timestamp
FROM (
    SELECT u.*, {attributes} AS attributes,
        -- a stored valid address is never replaced by a missing or invalid one
        u.email IS NULL OR (NOT u.email_valid AND k.email_valid) AS keep_email,
        u.phone IS NULL OR (u.phone_kind = 'invalid' AND coalesce(k.phone_kind, 'invalid')
                            <> 'invalid') AS keep_phone
    FROM imp_upd u JOIN clients k ON k.id = u.id
) AS s
WHERE c.id = s.id
"""

_INSERT_SQL = """
INSERT INTO clients (name, first_name, last_name, email, email_valid, email_error, phone,
                     phone_kind, company, city, lists, tags, consent_email, consent_sms,
                     attributes)
SELECT name, first_name, last_name, email, coalesce(email_valid, false), email_error,
       phone, phone_kind, company, city, string_split(lists, chr(31)),
       CASE WHEN tags IS NULL THEN [] ELSE string_split(tags, chr(31)) END,
       coalesce(consent_email, $consent_email), coalesce(consent_sms, $consent_sms),
       {attributes}
FROM {source} ORDER BY row
RETURNING id
"""
# The stored clients an import changed and the ones it added (for the filter choices).
_UPDATED = "c.id IN (SELECT id FROM imp_upd)"
_INSERTED = "c.id IN (SELECT id FROM imp_new)"


def _attributes_sql(attr_keys: list[str], alias: str = "") -> str:
    """The attributes JSON of a row in SQL: its non-empty attribute cells (merge-patching
    into {} drops the null ones)."""
    if not attr_keys:
        return "'{}'::JSON"
    pairs = ", ".join(
        "'" + key.replace("'", "''") + f"', {alias}a{j}" for j, key in enumerate(attr_keys)
    )
    return f"json_merge_patch('{{}}', json_object({pairs}))"


def default_list_name(filename: str | None) -> str:
    """A list name from the file name, else the date and time."""
    stem = Path(filename).stem.strip() if filename else ""
    return stem or "Import " + datetime.now().strftime("%Y-%m-%d %H:%M")


def _plan(
    table: RawTable,
    mapping: dict[str, str],
    filename: str | None,
    list_name: str | None,
    consent: str | Iterable[str] | None,
) -> _Plan:
    """Lists and consent for this import; ConsentNotStated when neither the file nor the
    uploader says what a channel's clients agreed to (C1)."""
    named = (list_name or "").strip()
    if LIST_SEPARATOR in named:
        raise ImportFailed(
            _("A list name cannot contain '{separator}' (exports use it between lists).").format(
                separator=LIST_SEPARATOR
            )
        )
    has_lists = "lists" in mapping.values()
    # A file with its own lists column (the export's) keeps them; a named list is added.
    fallback = [named or default_list_name(filename)]
    always = [named] if named else ([] if has_lists else fallback)
    columns = consent_columns(mapping)
    stated = stated_consent(consent)
    missing = [c for c in CHANNELS if c not in columns]
    if missing and stated is None:
        raise ConsentNotStated([CHANNEL_NAMES[c] for c in missing])
    where: dict[str, str] = {}
    default: dict[str, bool] = {}
    for channel in CHANNELS:
        if channel in columns:
            where[channel] = f"column {columns[channel]!r}"
            default[channel] = False  # a blank cell is no consent for a new client
        else:
            default[channel] = channel in (stated or set())
            where[channel] = "stated: " + ("yes" if default[channel] else "no")
    return _Plan(always, fallback, default, where)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a list is imported: it builds millions of small
    objects and no cycles, and the collector's full passes over them cost about a quarter
    of the import (bench_import). Process-wide, so only for the import's few seconds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_clients(
    store: Store,
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    list_name: str | None = None,
    mapping: dict[str, str] | None = None,
    region: str | None = None,
    sheet: str | None = None,
    consent: str | Iterable[str] | None = None,
) -> ImportReport:
    """Import a CSV / XLSX client list as a named list; all or nothing (ImportFailed).

    list_name: the list every client joins (default: the file's name; a file with its
    own lists column, like the export, keeps each client's lists and needs none).
    sheet: the XLSX worksheet (default: the first whose header names a known column).
    consent: what the uploader states these clients agreed to, for the channels the
    file has no consent column for: 'email,sms', 'email', 'sms' or 'none' (or channels
    as an iterable); without it such a file is refused with ConsentNotStated (C1).
    """
    with _collector_paused():
        return _import(store, source, filename, list_name, mapping, region, sheet, consent)


def _import(
    store: Store,
    source: bytes | str | Path,
    filename: str | None,
    list_name: str | None,
    mapping: dict[str, str] | None,
    region: str | None,
    sheet: str | None,
    consent: str | Iterable[str] | None,
) -> ImportReport:
    table, filename = _load(source, filename, sheet)
    full = check_mapping(table.headers, mapping or {})
    keys = _attribute_keys(full)
    region = (region or config.default_region()).upper()
    plan = _plan(table, full, filename, list_name, consent)
    # "" when every client keeps the lists of the file's own lists column (the export's)
    list_name = plan.lists[0] if plan.lists else ""
    staged = _stage(table, full, keys, region, plan)
    attr_keys, problems, skipped = staged.attr_keys, staged.problems, staged.skipped
    attrs = [f"a{j}" for j in range(len(attr_keys))]
    report = ImportReport(
        mapping=full,
        keys=keys,
        list_name=list_name,
        rows=len(table.rows),
        kind=table.kind,
        encoding=table.encoding,
        delimiter=table.delimiter,
        header_row=table.header_row,
        sheet=table.sheet,
        sheets=len(table.sheets),
        notes=_notes(table),
        consent=plan.consent,
    )
    report.problems = sorted(problems, key=lambda x: x["row"])
    params = {f"consent_{c}": plan.consent_default[c] for c in CHANNELS}
    keyed_sql = "CREATE TEMP TABLE imp_keyed AS " + _ROWS_SQL.format(
        staged=_staged_sql(attrs), attrs="".join(f", {a}" for a in attrs)
    )
    merged_sql = "CREATE TEMP TABLE imp_clients AS " + _merge_sql("imp_keyed", "key", attrs)
    update_sql = _UPDATE_SQL.format(attributes=_attributes_sql(attr_keys, "u."))
    # Two rows of the file that match the same stored client update it once (I1 again).
    by_id = (
        "(SELECT *, email_valid IS TRUE AS ev, phone_kind <> 'invalid' IS TRUE AS pv"
        " FROM imp_matched)"
    )

    merged = _("duplicate of row {row}: merged into one client")

    def folded(cur: duckdb.DuckDBPyConnection, key: str, source: str) -> list[dict[str, Any]]:
        return [
            _problem(r, merged.format(row=first), True)
            for r, first in cur.execute(_FOLDED_SQL.format(key=key, source=source)).fetchall()
        ]

    def write(cur: duckdb.DuckDBPyConnection, change: Change) -> None:
        imported = updated = 0
        more: list[dict[str, Any]] = []
        temp = ("imp_keyed", "imp_clients", "imp_matched", "imp_upd")
        if len(staged.rows["row"]):
            # The file's rows as clients, deduped and merged (I1), in this transaction.
            cur.register("imp_staged", staged.rows)
            cur.execute(keyed_sql)
            cur.unregister("imp_staged")
            more = folded(cur, "key", "imp_keyed")
            cur.execute(merged_sql)
            clients = cur.execute("SELECT count(*) FROM imp_clients").fetchone()[0]
            # ... and with the stored clients they match.
            cur.execute(
                "CREATE TEMP TABLE imp_matched AS SELECT c.*, m.id FROM imp_clients c "
                f"JOIN ({_MATCH_SQL}) m USING (row) WHERE m.id IS NOT NULL"
            )
            more += folded(cur, "id", "imp_matched")
            cur.execute(
                "CREATE TEMP TABLE imp_upd AS " + _merge_sql(by_id, "id", attrs, keep_key=True)
            )
            updated = cur.execute("SELECT count(*) FROM imp_upd").fetchone()[0]
            if updated:
                change.remove(_UPDATED)
                cur.execute(update_sql)
                change.add(_UPDATED)
            matched = cur.execute("SELECT count(*) FROM imp_matched").fetchone()[0]
            imported = clients - matched
            if imported:
                source = (
                    "(SELECT * FROM imp_clients ANTI JOIN imp_matched USING (row))"
                    if matched
                    else "imp_clients"
                )
                insert = _INSERT_SQL.format(attributes=_attributes_sql(attr_keys), source=source)
                returned = cur.execute(insert, params).fetchall()
                cur.register("imp_new", {"id": np.array([r[0] for r in returned], np.int64)})
                change.add(_INSERTED)
                cur.unregister("imp_new")
            for name in temp:
                cur.execute(f"DROP TABLE {name}")
        report.problems = sorted(report.problems + more, key=lambda x: x["row"])
        report.skipped = skipped + len(more)
        report.imported, report.updated = imported, updated
        stated = stated_consent(consent)
        actionlog.record(
            cur,
            "import",
            detail={
                "list": list_name or None,
                "lists_from_file": "lists" in full.values(),
                "file": filename,
                "sheet": table.sheet,
                "rows": report.rows,
                "imported": imported,
                "updated": updated,
                "skipped": report.skipped,
                "problems": len(report.problems),
                "encoding": table.encoding,
                "delimiter": table.delimiter,
                # C2: what the uploader stated, and who (the entry's user) stated it
                "consent": plan.consent,
                "consent_stated": None
                if stated is None
                else (",".join(c for c in CHANNELS if c in stated) or "none"),
                "consent_stated_by": None if stated is None else actionlog.current_user(),
            },
        )

    write_clients(store, write)
    return report
