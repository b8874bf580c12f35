"""Importing a client list: normalise every row, dedupe, and write it all or nothing.

The file is read (comms.clients.reading) and every row normalised in memory:
names joined, e-mails and phones checked once per distinct value, tags split,
consent words read, every other column kept as an attribute. Rows that share a
valid e-mail (else a valid phone) merge into one client, within the file and
with the clients already stored. Then one transaction registers two frames and
runs one UPDATE ... FROM and one INSERT ... SELECT, plus the 'import' action-log
entry: a failure anywhere writes nothing. The filter choices follow the rows it
updated and inserted (comms.clients.options).
"""

from __future__ import annotations

import re
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
    IGNORE,
    RawTable,
    attribute_key,
    check_mapping,
    check_values,
    detect_mapping,
    read_source,
    read_table,
)
from comms.errors import ImportFailed
from comms.rules.validation import DUPLICATE, EMPTY_ROW
from comms.store import Store

NO_IDENTITY = "no e-mail or phone"  # nothing to send to: not a client to keep
TAG_SPLIT = re.compile(r"\s*[,;|]\s*")
_TRUE = {"1", "true", "yes", "y", "ano", "a", "x", "ok", "souhlas", "souhlasi", "✓", "✔", "t"}
_FALSE = {"0", "false", "no", "n", "ne", "nesouhlas", "nesouhlasi", "f", "-", "✗"}
_SEP = "\x1f"  # tags travel to DuckDB as one string split there


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


@dataclass
class ImportReport:
    """The outcome of one import; imported + updated + skipped == data rows in the file."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)  # [{row, reason}]
    mapping: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    list_name: str = ""
    rows: int = 0
    kind: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int = 1

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


def _load(source: bytes | str | Path, filename: str | None) -> tuple[RawTable, str | None]:
    data, name = read_source(source)
    limit = config.max_upload_bytes()
    if len(data) > limit:
        raise ImportFailed(
            f"The file is {len(data) / 1048576:.1f} MB; the upload limit is "
            f"{limit / 1048576:.0f} MB (setting COMMS_MAX_UPLOAD_MB)."
        )
    return read_table(data, filename or name), filename or name


def preview_import(
    source: bytes | str | Path, filename: str | None = None, sample_rows: int = 5
) -> ImportPreview:
    """Read a file and guess its mapping, without writing anything."""
    table, _ = _load(source, filename)
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
    )


def _consent(values: pd.Series) -> pd.Series:
    folded = values.str.lower()
    out = pd.Series(None, index=values.index, dtype=object)
    out[folded.isin(_TRUE)] = True
    out[folded.isin(_FALSE)] = False
    return out


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


def _normalise(
    table: RawTable, mapping: dict[str, str], keys: dict[str, str], region: str
) -> tuple[pd.DataFrame, list[str], list[dict[str, Any]], int]:
    """Rows -> one frame of client fields (None = not given), attribute keys, problems, skipped."""
    width = len(table.headers)
    raw = pd.DataFrame(table.rows, columns=range(width), dtype=object) if table.rows else None
    problems: list[dict[str, Any]] = []
    if raw is None:
        return pd.DataFrame(), [], problems, 0
    raw = raw.apply(lambda s: s.astype(str).str.strip())
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
    both = _consent(col("consent"))
    out["consent_email"] = _consent(col("consent_email")).where(col("consent_email") != "", both)
    out["consent_sms"] = _consent(col("consent_sms")).where(col("consent_sms") != "", both)

    attr_keys = [keys[h] for h in table.headers if h in keys]
    for h, key in keys.items():
        out["a:" + key] = none_if_empty(raw[table.headers.index(h)])

    # Skipped rows: nothing in any kept cell, or nothing that identifies a client.
    empty = ~(raw[kept] != "").any(axis=1) if kept else pd.Series(True, index=raw.index)
    anonymous = ~empty & out["email"].isna() & out["phone"].isna()
    for n in rownum[empty]:
        problems.append({"row": int(n), "reason": EMPTY_ROW})
    for n in rownum[anonymous]:
        problems.append({"row": int(n), "reason": NO_IDENTITY})
    for n, extra in table.ragged.items():
        problems.append({"row": n, "reason": f"{extra} cell(s) beyond the last column ignored"})
    keep = ~(empty | anonymous)
    bad_email = keep & out["email_valid"].eq(False)
    for n, err in zip(rownum[bad_email], out.loc[bad_email, "email_error"], strict=True):
        problems.append({"row": int(n), "reason": err})
    bad_phone = keep & out["phone_kind"].eq("invalid")
    for n, err in zip(rownum[bad_phone], out.loc[bad_phone, "phone_error"], strict=True):
        problems.append({"row": int(n), "reason": err})
    skipped = int((~keep).sum())
    return (
        out[keep].drop(columns=["phone_error"]).reset_index(drop=True),
        attr_keys,
        problems,
        skipped,
    )


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
        {"row": int(r), "reason": f"{DUPLICATE} of row {int(f)}: merged into one client"}
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
    lists = CASE WHEN list_contains(c.lists, $list) THEN c.lists
                 ELSE list_append(c.lists, $list) END,
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
       phone, phone_kind, company, city, [$list],
       CASE WHEN tags IS NULL THEN [] ELSE string_split(tags, chr(31)) END,
       coalesce(consent_email::BOOLEAN, true), coalesce(consent_sms::BOOLEAN, true),
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


def import_clients(
    store: Store,
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    list_name: str | None = None,
    mapping: dict[str, str] | None = None,
    region: str | None = None,
) -> ImportReport:
    """Import a CSV / XLSX client list as a named list; all or nothing (ImportFailed)."""
    table, filename = _load(source, filename)
    full = check_mapping(table.headers, mapping or {})
    keys = _attribute_keys(full)
    region = (region or config.default_region()).upper()
    list_name = (list_name or "").strip() or default_list_name(filename)
    frame, attr_keys, problems, skipped = _normalise(table, full, keys, region)
    report = ImportReport(
        mapping=full,
        keys=keys,
        list_name=list_name,
        rows=len(table.rows),
        kind=table.kind,
        encoding=table.encoding,
        delimiter=table.delimiter,
        header_row=table.header_row,
    )
    if len(frame):
        frame, dup_problems = _merge(frame, _dedupe_key(frame))
        problems += dup_problems
        skipped += len(dup_problems)
    report.problems = sorted(problems, key=lambda p: p["row"])

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
                cur.execute(_UPDATE_SQL, {"list": list_name})
                change.add(_UPDATED)
                cur.unregister("imp_upd")
            if len(ins):
                cur.register("imp_ins", _db_frame(ins, attr_keys))
                new_ids = cur.execute(_INSERT_SQL, {"list": list_name}).df()
                cur.unregister("imp_ins")
                cur.register("imp_new", new_ids)
                change.add(_INSERTED)
                cur.unregister("imp_new")
            imported, updated = len(ins), len(upd)
            report.skipped = skipped + len(more)
        else:
            report.skipped = skipped
        report.imported, report.updated = imported, updated
        actionlog.record(
            cur,
            "import",
            detail={
                "list": list_name,
                "file": filename,
                "rows": report.rows,
                "imported": imported,
                "updated": updated,
                "skipped": report.skipped,
                "problems": len(report.problems),
                "encoding": table.encoding,
                "delimiter": table.delimiter,
            },
        )

    write_clients(store, write)
    return report
