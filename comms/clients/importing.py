"""Importing a client list: normalise every row, dedupe, and write it all or nothing.

The file is read (comms.clients.reading) and every row normalised in memory:
names joined, e-mails and phones checked once per distinct value, tags and lists
split, consent read, every other column kept as an attribute. A file read from
this app's own export imports back unchanged: its computed columns are ignored
and the export's formula guard (a leading apostrophe) is undone.

Consent is on purpose (C1, C2): a channel's consent comes from the file's own
consent column when it has one (ano/ne, yes/no, 1/0, x or a date; a blank or an
unreadable cell is no consent for a new client), else from what the uploader
states (`consent=`); with neither the import is refused (ConsentNotStated).
What was stated, and by whom, goes into the 'import' action-log entry. Stated
consent is recorded for the clients the import adds; a stored client keeps its
flags (an earlier opt-out is never undone by a bulk statement), unless the
file's own column says otherwise. Rows that share a
valid e-mail (else a valid phone) merge into one client, within the file and
with the clients already stored. Then one transaction registers two frames and
runs one UPDATE ... FROM and one INSERT ... SELECT, plus the 'import' action-log
entry: a failure anywhere writes nothing. The filter choices follow the rows it
updated and inserted (comms.clients.options).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from comms import actionlog, config
from comms.clients.options import Change, write_clients
from comms.clients.reading import (
    ATTRIBUTE,
    FIELDS,
    FORMULA_WITHOUT_VALUE,
    IGNORE,
    LIST_SEPARATOR,
    SAVE_IN_EXCEL,
    RawTable,
    attribute_key,
    check_mapping,
    check_values,
    detect_mapping,
    is_own_export,
    read_source,
    read_table,
)
from comms.clients.workbook import column_letter
from comms.csv_export import FORMULA_PREFIXES
from comms.errors import ConsentNotStated, ImportFailed
from comms.rules.validation import CHANNEL_NAMES, CHANNELS, DUPLICATE, EMPTY_ROW
from comms.store import Store

NO_IDENTITY = "no e-mail or phone"  # nothing to send to: not a client to keep
TAG_SPLIT = re.compile(r"\s*[,;|]\s*")
_TRUE = {"1", "true", "yes", "y", "ano", "a", "x", "ok", "souhlas", "souhlasi", "✓", "✔", "t"}
_FALSE = {"0", "false", "no", "n", "ne", "nesouhlas", "nesouhlasi", "f", "-", "✗"}
# A date in a consent column is the day consent was given: 2024-03-01, 1. 3. 2024, 3/1/24 ...
_DATE = re.compile(r"\d{1,4}\s*[-./]\s*\d{1,2}\s*[-./]\s*\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_SEP = "\x1f"  # tags and lists travel to DuckDB as one string split there
# What the uploader may state (C1): the channels these clients consented to.
CONSENT_CHOICES = ("email,sms", "email", "sms", "none")
# Cells the export guarded against formulas ("'=1+1"): the apostrophe is undone.
_GUARDED = tuple("'" + c for c in FORMULA_PREFIXES)


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
            "This is a CSV export of this app: its id, email_valid and phone_kind columns "
            "are worked out again, not imported."
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
            "The stated consent must be one of " + ", ".join(CONSENT_CHOICES) + " (the channels"
            " these clients agreed to be contacted on)."
        )
    return chosen


def _consent(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """True (ano, yes, 1, x, a date ...), False (ne, no, 0 ...), None (blank or unreadable),
    and which non-blank cells were not understood."""
    folded = values.str.lower()
    out = pd.Series(None, index=values.index, dtype=object)
    yes = folded.isin(_TRUE) | folded.str.fullmatch(_DATE)
    no = folded.isin(_FALSE)
    out[yes] = True
    out[no] = False
    return out, ~(yes | no) & (folded != "")


def _checked(email: pd.Series, phone: pd.Series, region: str) -> tuple[dict, dict]:
    """check_email / check_phone run once per distinct non-empty value: {value: result} each."""
    uniq = {
        "email": email[email != ""].unique().tolist(),
        "phone": phone[phone != ""].unique().tolist(),
    }
    res = check_values(uniq, region)
    return (
        dict(zip(uniq["email"], res["email"], strict=True)),
        dict(zip(uniq["phone"], res["phone"], strict=True)),
    )


def _lookup(values: pd.Series, results: dict, fields: dict[str, str]) -> dict[str, pd.Series]:
    """Columns from per-distinct-value check results, gathered with one index lookup."""
    idx = pd.Index(list(results), dtype=object).get_indexer(values.astype(object))
    out = {}
    for name, attr in fields.items():
        # The trailing None is what index -1 (an empty cell) picks.
        table = np.array([getattr(r, attr) for r in results.values()] + [None], dtype=object)
        out[name] = pd.Series(table[idx], index=values.index, dtype=object)
    return out


def _clean(s: pd.Series) -> pd.Series:
    """A column's cells stripped, with the export's formula guard undone ("'=1+1" -> "=1+1")."""
    s = s.astype(str)
    guarded = s.str.startswith(_GUARDED)
    if guarded.any():
        s = s.where(~guarded, s.str[1:])
    return s.str.strip()


def _problem(row: int, reason: str, skipped: bool) -> dict[str, Any]:
    return {"row": int(row), "reason": reason, "skipped": skipped}


def _wide_reason(table: RawTable, cells: int) -> tuple[str, bool]:
    """Why a row with values right of the header's last column is (CSV) or is not skipped."""
    width = len(table.headers)
    if table.kind == "csv":
        sep = {"\t": "tab"}.get(table.delimiter or "", f"'{table.delimiter}'")
        return (
            f"{cells} cells where the header has {width} columns: a value holds an unquoted "
            f"{sep}, which shifts the cells after it; quote that value or remove the extra "
            f"{sep} (row not imported)",
            True,
        )
    return (
        f"values right of the last named column, up to column {column_letter(cells)}, ignored"
        " (give those columns a header to keep them)",
        False,
    )


@dataclass
class _Plan:
    """What the import does with lists and consent, decided before any row is read."""

    lists: list[str]  # lists every imported client joins
    fallback_lists: list[str]  # lists of a row whose own lists cell is empty
    consent_default: dict[str, bool]  # channel -> a new client's consent when its cell is blank
    consent: dict[str, str]  # channel -> where it came from (report and action log)


def _normalise(
    table: RawTable, mapping: dict[str, str], keys: dict[str, str], region: str, plan: _Plan
) -> tuple[pd.DataFrame, list[str], list[dict[str, Any]], int]:
    """Rows -> one frame of client fields (None = not given), attribute keys, problems, skipped."""
    width = len(table.headers)
    raw = pd.DataFrame(table.rows, columns=range(width), dtype=object) if table.rows else None
    problems: list[dict[str, Any]] = []
    if raw is None:
        return pd.DataFrame(), [], problems, 0
    raw = raw.apply(_clean)
    col_of = {t: table.headers.index(h) for h, t in mapping.items() if t in FIELDS}
    kept = [i for i, h in enumerate(table.headers) if mapping.get(h) != IGNORE]
    rownum = pd.Series(table.row_numbers, dtype="int64")

    def col(target: str) -> pd.Series:
        i = col_of.get(target)
        return raw[i] if i is not None else pd.Series("", index=raw.index, dtype=object)

    def none_if_empty(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s != "", None)

    out = pd.DataFrame({"row": rownum})
    first, last = col("first_name"), col("last_name")
    joined = (first + " " + last).str.strip()
    name = col("name")
    out["name"] = none_if_empty(name.where(name != "", joined))
    out["first_name"] = none_if_empty(first)
    out["last_name"] = none_if_empty(last)
    out["company"] = none_if_empty(col("company"))
    out["city"] = none_if_empty(col("city"))

    # E-mail and phone: each distinct value checked once (the checks are lru_cached too).
    email, phone = col("email"), col("phone")
    checks, pchecks = _checked(email, phone, region)
    for column, values in _lookup(
        email, checks, {"email": "address", "email_valid": "ok", "email_error": "error"}
    ).items():
        out[column] = values
    for column, values in _lookup(
        phone, pchecks, {"phone": "e164", "phone_kind": "kind", "phone_error": "error"}
    ).items():
        out[column] = values

    tags = col("tags")
    out["tags"] = none_if_empty(
        tags.map(lambda v: _SEP.join(dict.fromkeys(t for t in TAG_SPLIT.split(v) if t)))
    )
    out["lists"] = _row_lists(col("lists") if "lists" in col_of else None, raw.index, plan)

    # Consent (C1): the file's own column per channel; a blank or unreadable cell says nothing.
    flagged: list[dict[str, Any]] = []
    header_of = {t: h for h, t in mapping.items()}
    both, both_bad = _consent(col("consent"))
    unreadable = [("consent", both_bad, col("consent"))]
    for channel in CHANNELS:
        own = col(f"consent_{channel}")
        value, bad = _consent(own)
        out[f"consent_{channel}"] = value.where(own != "", both)
        unreadable.append((f"consent_{channel}", bad, own))
    for target, bad, cells in unreadable:
        for n, cell in zip(rownum[bad], cells[bad], strict=True):
            flagged.append(
                _problem(
                    n,
                    f"consent {cell[:30]!r} in {header_of[target]!r} not understood (ano/ne, "
                    "yes/no, 1/0, x or a date): no consent recorded",
                    False,
                )
            )

    attr_keys = [keys[h] for h in table.headers if h in keys]
    for h, key in keys.items():
        out["a:" + key] = none_if_empty(raw[table.headers.index(h)])

    # Skipped rows: nothing in any kept cell, nothing that identifies a client, or (CSV)
    # more cells than the header has columns: one problem each, the reason it was left out.
    empty = ~(raw[kept] != "").any(axis=1) if kept else pd.Series(True, index=raw.index)
    anonymous = ~empty & out["email"].isna() & out["phone"].isna()
    empty_rows, anonymous_rows = set(rownum[empty].tolist()), set(rownum[anonymous].tolist())
    skipped_reason: dict[int, str] = {}
    for n in sorted(set(table.wide) | set(table.formulas) | empty_rows | anonymous_rows):
        note = _formula_note(table.formulas.get(n))
        if n in table.wide:
            reason, skip = _wide_reason(table, table.wide[n])
            if skip:
                skipped_reason[n] = reason
                continue
            flagged.append(_problem(n, reason, False))
        if n in empty_rows:
            skipped_reason[n] = note or EMPTY_ROW
        elif n in anonymous_rows:
            skipped_reason[n] = NO_IDENTITY + (f" ({note})" if note else "")
        elif note:
            flagged.append(_problem(n, note, False))
    wide = rownum.isin([n for n in table.wide if n in skipped_reason])
    keep = ~(empty | anonymous | wide)
    bad_email = keep & out["email_valid"].eq(False)
    for n, err in zip(rownum[bad_email], out.loc[bad_email, "email_error"], strict=True):
        flagged.append(_problem(n, err, False))
    bad_phone = keep & out["phone_kind"].eq("invalid")
    for n, err in zip(rownum[bad_phone], out.loc[bad_phone, "phone_error"], strict=True):
        flagged.append(_problem(n, err, False))
    problems = [_problem(n, r, True) for n, r in skipped_reason.items()]
    problems += [p for p in flagged if p["row"] not in skipped_reason]
    skipped = int((~keep).sum())
    return (
        out[keep].drop(columns=["phone_error"]).reset_index(drop=True),
        attr_keys,
        problems,
        skipped,
    )


def _formula_note(headers: list[str] | None) -> str | None:
    if not headers:
        return None
    return f"{FORMULA_WITHOUT_VALUE} in {', '.join(headers)}: {SAVE_IN_EXCEL}"


def _row_lists(cells: pd.Series | None, index: pd.Index, plan: _Plan) -> pd.Series:
    """Each row's lists, joined by _SEP: its own lists cell (the export's 'A | B'), else the
    import's list, and the list named for the whole import in any case."""
    if cells is None:
        return pd.Series(_SEP.join(plan.fallback_lists), index=index, dtype=object)
    fallback = _SEP.join(plan.fallback_lists)

    def one(cell: str) -> str:
        names = [n.strip() for n in cell.split(LIST_SEPARATOR) if n.strip()]
        if not names:
            return fallback
        return _SEP.join(dict.fromkeys([*names, *plan.lists]))

    return cells.map(one).astype(object)


def _drop_invalid_beside_valid(groups: pd.DataFrame) -> pd.DataFrame:
    """In a group that has a valid e-mail (phone), forget its rows' invalid ones, so a
    later typo never replaces a good address when rows merge."""
    groups = groups.copy()
    by = groups["_key"]
    for value, cols, valid in (
        ("email", ["email", "email_valid", "email_error"], groups["email_valid"].eq(True)),
        (
            "phone",
            ["phone", "phone_kind", "phone_error"],
            groups["phone_kind"].notna() & groups["phone_kind"].ne("invalid"),
        ),
    ):
        if value not in groups:
            continue
        group_has_valid = valid.groupby(by).transform("any")
        forget = group_has_valid & ~valid & groups[value].notna()
        groups.loc[forget, [c for c in cols if c in groups]] = None
    return groups


def _merge(frame: pd.DataFrame, key: pd.Series) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Rows sharing a key become one: later non-empty values win; the first row number stays."""
    dup = key.duplicated(keep=False)
    if not dup.any():
        return frame, []
    groups = frame[dup].assign(_key=key[dup].values)
    groups = _drop_invalid_beside_valid(groups)
    first_row = groups.groupby("_key", sort=False)["row"].transform("min")
    problems = [
        _problem(r, f"{DUPLICATE} of row {int(f)}: merged into one client", True)
        for r, f in zip(groups["row"], first_row, strict=True)
        if r != f
    ]
    merged = groups.groupby("_key", sort=False).last()  # last non-null value per column
    merged["row"] = groups.groupby("_key", sort=False)["row"].min()
    merged = merged.reset_index(drop=True)
    out = pd.concat([frame[~dup], merged], ignore_index=True).sort_values("row")
    return out.reset_index(drop=True), problems


def _text(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "").astype(str)


def _dedupe_key(frame: pd.DataFrame) -> pd.Series:
    """e:<valid e-mail, lowercased>, else p:<valid phone>, else n:<name|e-mail|phone as given>.

    Only valid addresses identify a client: placeholders such as '-' or 'n/a' in
    the e-mail column must not merge different people. A row with only a phone
    joins the row with an e-mail that has the same phone.
    """
    valid_email = frame["email_valid"].eq(True)
    valid_phone = frame["phone_kind"].notna() & frame["phone_kind"].ne("invalid")
    email = _text(frame["email"]).str.lower().where(valid_email, "")
    phone = _text(frame["phone"]).where(valid_phone, "")
    fallback = (
        "n:"
        + _text(frame["name"]).str.lower()
        + "|"
        + _text(frame["email"]).str.lower()
        + "|"
        + _text(frame["phone"])
    )
    key = pd.Series(
        np.where(email != "", "e:" + email, np.where(phone != "", "p:" + phone, fallback)),
        index=frame.index,
        dtype=object,
    )
    with_both = frame[(email != "") & (phone != "")]
    by_phone = pd.Series(key[with_both.index].values, index=phone[with_both.index].values)
    by_phone = by_phone[~by_phone.index.duplicated()]
    phone_only = (email == "") & (phone != "")
    linked = phone[phone_only].map(by_phone).astype(object)
    key[phone_only] = linked.where(linked.notna(), key[phone_only])
    return key


# Stored clients a row updates: same valid e-mail; else same valid phone when one
# side has no valid e-mail; else (no valid address at all) same name, e-mail and phone.
_MATCH_SQL = """
WITH em AS (
    SELECT s.i, min(c.id) AS id FROM imp_keys s JOIN clients c
    ON c.email_valid AND lower(c.email) = s.ekey
    GROUP BY s.i
), ph AS (
    SELECT s.i, min(c.id) AS id FROM imp_keys s JOIN clients c
    ON c.phone = s.pkey AND c.phone_kind <> 'invalid'
    WHERE s.ekey IS NULL OR NOT c.email_valid
    GROUP BY s.i
), nm AS (
    SELECT s.i, min(c.id) AS id FROM imp_keys s JOIN clients c
    ON lower(coalesce(c.name, '')) = s.nkey AND lower(coalesce(c.email, '')) = s.raw_email
       AND coalesce(c.phone, '') = s.raw_phone
    WHERE s.ekey IS NULL AND s.pkey IS NULL AND NOT c.email_valid
      AND coalesce(c.phone_kind, 'invalid') = 'invalid'
    GROUP BY s.i
)
SELECT s.i, coalesce(em.id, ph.id, nm.id) AS id
FROM imp_keys s LEFT JOIN em USING (i) LEFT JOIN ph USING (i) LEFT JOIN nm USING (i)
ORDER BY s.i
"""

_UPDATE_SQL = """
UPDATE clients AS c SET
    name = coalesce(s.name, c.name),
    first_name = coalesce(s.first_name, c.first_name),
    last_name = coalesce(s.last_name, c.last_name),
    email = CASE WHEN s.keep_email THEN c.email ELSE s.email END,
    email_valid = CASE WHEN s.keep_email THEN c.email_valid ELSE s.email_valid::BOOLEAN END,
    email_error = CASE WHEN s.keep_email THEN c.email_error ELSE s.email_error END,
    phone = CASE WHEN s.keep_phone THEN c.phone ELSE s.phone END,
    phone_kind = CASE WHEN s.keep_phone THEN c.phone_kind ELSE s.phone_kind END,
    company = coalesce(s.company, c.company),
    city = coalesce(s.city, c.city),
    lists = list_concat(c.lists, list_filter(string_split(s.lists, chr(31)),
                                             lambda x: NOT list_contains(c.lists, x))),
    tags = CASE WHEN s.tags IS NULL THEN c.tags ELSE list_concat(c.tags,
        list_filter(string_split(s.tags, chr(31)), lambda x: NOT list_contains(c.tags, x))) END,
    consent_email = coalesce(s.consent_email::BOOLEAN, c.consent_email),
    consent_sms = coalesce(s.consent_sms::BOOLEAN, c.consent_sms),
    attributes = json_merge_patch(c.attributes, s.attributes::JSON),
    updated_at = current_timestamp
FROM (
    SELECT u.*,
        -- a stored valid address is never replaced by a missing or invalid one
        u.email IS NULL OR (NOT u.email_valid::BOOLEAN AND k.email_valid) AS keep_email,
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
SELECT name, first_name, last_name, email, coalesce(email_valid::BOOLEAN, false), email_error,
       phone, phone_kind, company, city, string_split(lists, chr(31)),
       CASE WHEN tags IS NULL THEN [] ELSE string_split(tags, chr(31)) END,
       coalesce(consent_email::BOOLEAN, $consent_email), coalesce(consent_sms::BOOLEAN, $consent_sms),
       attributes::JSON
FROM imp_ins ORDER BY row
RETURNING id
"""
# The stored clients an import changed and the ones it added (for the filter choices).
_UPDATED = "c.id IN (SELECT id FROM imp_upd)"
_INSERTED = "c.id IN (SELECT id FROM imp_new)"

_CORE = [
    "row",
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
]


_CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _attributes_json(frame: pd.DataFrame, attr_keys: list[str]) -> list[str]:
    """One JSON object per row of the non-empty attribute cells, built column-wise."""
    if not attr_keys or not len(frame):
        return ["{}"] * len(frame)
    body = pd.Series("", index=frame.index, dtype="string")
    for key in attr_keys:  # keys are ASCII snake_case (attribute_key): nothing to escape
        v = frame["a:" + key].astype("string")
        v = v.where(v != "")
        esc = (
            v.str.replace("\\", "\\\\", regex=False)
            .str.replace('"', '\\"', regex=False)
            .str.replace("\n", "\\n", regex=False)
            .str.replace("\r", "\\r", regex=False)
            .str.replace("\t", "\\t", regex=False)
            .str.replace(_CONTROL_CHARS, "", regex=True)
        )
        body = body + ('"' + key + '":"' + esc + '",').fillna("")
    return ("{" + body.str.rstrip(",") + "}").tolist()


def _db_frame(frame: pd.DataFrame, attr_keys: list[str]) -> pd.DataFrame:
    """The frame DuckDB reads: text, booleans as 'true'/'false' text cast in SQL."""
    out = pd.DataFrame({c: frame[c].astype(object) for c in _CORE})
    for c in ("email_valid", "consent_email", "consent_sms"):
        out[c] = out[c].map(lambda v: None if v is None or v is np.nan else str(bool(v)).lower())
    out["attributes"] = _attributes_json(frame, attr_keys) if len(frame) else []
    if "id" in frame:
        out["id"] = frame["id"].astype("int64").values
    return out.astype({c: object for c in out.columns if c not in ("row", "id")})


def _nullable(s: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in s]


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
            f"A list name cannot contain '{LIST_SEPARATOR}' (exports use it between lists)."
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
    table, filename = _load(source, filename, sheet)
    full = check_mapping(table.headers, mapping or {})
    keys = _attribute_keys(full)
    region = (region or config.default_region()).upper()
    plan = _plan(table, full, filename, list_name, consent)
    # "" when every client keeps the lists of the file's own lists column (the export's)
    list_name = plan.lists[0] if plan.lists else ""
    frame, attr_keys, problems, skipped = _normalise(table, full, keys, region, plan)
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
        notes=_notes(table),
        consent=plan.consent,
    )
    if len(frame):
        frame, dup_problems = _merge(frame, _dedupe_key(frame))
        problems += dup_problems
        skipped += len(dup_problems)
    report.problems = sorted(problems, key=lambda p: p["row"])
    params = {f"consent_{c}": plan.consent_default[c] for c in CHANNELS}

    def write(cur: duckdb.DuckDBPyConnection, change: Change) -> None:
        nonlocal frame
        imported = updated = 0
        if len(frame):
            valid_phone = frame["phone_kind"].notna() & frame["phone_kind"].ne("invalid")
            keys_df = pd.DataFrame(
                {
                    "i": np.arange(len(frame), dtype="int64"),
                    "ekey": _nullable(
                        _text(frame["email"]).str.lower().where(frame["email_valid"].eq(True))
                    ),
                    "pkey": _nullable(_text(frame["phone"]).where(valid_phone)),
                    "nkey": _text(frame["name"]).str.lower().astype(object),
                    "raw_email": _text(frame["email"]).str.lower().astype(object),
                    "raw_phone": _text(frame["phone"]).astype(object),
                }
            )
            cur.register("imp_keys", keys_df)
            ids = cur.execute(_MATCH_SQL).df()["id"]
            cur.unregister("imp_keys")
            frame = frame.assign(id=ids.values)
            matched = frame["id"].notna()
            # Two rows of the file that match the same stored client update it once.
            upd, more = _merge(
                frame[matched].reset_index(drop=True),
                frame.loc[matched, "id"].astype("int64").astype(str).reset_index(drop=True),
            )
            report.problems = sorted(report.problems + more, key=lambda p: p["row"])
            ins = frame[~matched].drop(columns=["id"]).reset_index(drop=True)
            if len(upd):
                cur.register("imp_upd", _db_frame(upd, attr_keys))
                change.remove(_UPDATED)
                cur.execute(_UPDATE_SQL)
                change.add(_UPDATED)
                cur.unregister("imp_upd")
            if len(ins):
                cur.register("imp_ins", _db_frame(ins, attr_keys))
                new_ids = cur.execute(_INSERT_SQL, params).df()
                cur.unregister("imp_ins")
                cur.register("imp_new", new_ids)
                change.add(_INSERTED)
                cur.unregister("imp_new")
            imported, updated = len(ins), len(upd)
            report.skipped = skipped + len(more)
        else:
            report.skipped = skipped
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
