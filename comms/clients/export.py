"""Exporting clients: the filtered directory as a formula-safe CSV file, written by DuckDB.

Every core field is a column (a client's lists all in one cell, 'A | B'), and
every attribute key of the exported clients too. Text cells follow
comms.csv_export's formula rule, applied in the SQL (`safe_sql`), so a million
rows need no Python loop. The file imports back unchanged (comms.clients.importing
recognises these columns and undoes the formula guard).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from comms.clients.queries import ClientFilter, filter_where
from comms.clients.reading import LIST_SEPARATOR
from comms.csv_export import safe_cell, safe_sql
from comms.store import Store

EXPORT_COLUMNS = (
    "id",
    "name",
    "first_name",
    "last_name",
    "email",
    "email_valid",
    "phone",
    "phone_kind",
    "company",
    "city",
    "lists",
    "tags",
    "consent_email",
    "consent_sms",
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_EXPORT_TEXT = {
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_kind",
    "company",
    "city",
}


# Lists and tags as one cell each, as the import splits them again: a list name may hold
# a comma (never the separator, which the import refuses in list names), a tag cannot.
_JOINED = {
    "lists": f"' {LIST_SEPARATOR} '",
    "tags": "', '",
}


def export_csv(store: Store, f: ClientFilter | None = None, *, delimiter: str = ";") -> bytes:
    """The filtered clients as formula-safe UTF-8 CSV (with BOM, for Excel), attributes as columns.

    DuckDB writes the file (a million rows in seconds); cells are made safe in the SQL.
    """
    where, params = filter_where(f or ClientFilter())
    cur = store.cursor()
    keys = [
        r[0]
        for r in cur.execute(
            f"SELECT DISTINCT unnest(json_keys(c.attributes)) AS k FROM clients c WHERE {where} "
            "ORDER BY k",
            params,
        ).fetchall()
        if r[0] not in EXPORT_COLUMNS
    ]
    cols = []
    for col in EXPORT_COLUMNS:
        if col in _EXPORT_TEXT:
            cols.append(f"{safe_sql('c.' + col)} AS {col}")
        elif col in _JOINED:
            cols.append(f"{safe_sql(f'array_to_string(c.{col}, {_JOINED[col]})')} AS {col}")
        else:
            cols.append(f"c.{col}")
    paths: list[str] = []
    for key in keys:
        # The JSON path appears three times in the CASE expression: one parameter each.
        cols.append(
            f"{safe_sql('json_extract_string(c.attributes, ?)')} AS {_ident(safe_cell(key))}"
        )
        paths += ['$."' + key.replace('"', '\\"') + '"'] * 3
    rel = cur.sql(
        f"SELECT {', '.join(cols)} FROM clients c WHERE {where} ORDER BY c.id",
        params=[*paths, *params],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clients.csv"
        rel.write_csv(str(path), sep=delimiter, header=True)
        return b"\xef\xbb\xbf" + path.read_bytes()
