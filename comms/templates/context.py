"""What a template sees for one client: the context, its field names, sample clients.

`client_context` is built once per recipient by the bulk generator (100,000
times for a big batch), so it skips attributes the template does not use and
leaves blank values out: a blank value is a missing field, not an empty string.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from comms.feedback.links import UNSUBSCRIBE_URL

if TYPE_CHECKING:  # the render worker (comms.templates.batch) imports this without DuckDB
    from comms.store import Store

# Fields every client has (besides its imported attributes), for the field list.
CLIENT_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "company",
    "list",
    "tags",
)
_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


@lru_cache(maxsize=4096)
def field_name(key: str) -> str:
    """An attribute key as a Jinja name: 'Datum narození' -> 'datum_narozeni'."""

    plain = unicodedata.normalize("NFKD", str(key)).encode("ascii", "ignore").decode()
    name = _IDENT.sub("_", plain.strip()).strip("_").lower()
    if not name or name[0].isdigit():
        name = "f_" + name
    return name


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


_CORE = ("name", "first_name", "last_name", "email", "phone", "city", "company")
NON_ATTRIBUTE_FIELDS = frozenset((*_CORE, "list", "lists", "tags"))


def client_context(
    row: Mapping[str, Any],
    attributes: Mapping[str, Any] | None = None,
    only: frozenset[str] | None = None,
) -> dict:
    """The fields a template sees for one client; blank values are left out (missing).

    With `only` (a compiled template's fields), attributes the template does not
    use are skipped: the bulk generator builds 100,000 of these.
    """
    ctx: dict[str, Any] = {}
    if attributes:
        for key, value in attributes.items():
            if value is None or value == "" or _blank(value):
                continue
            ident = field_name(key)
            if only is not None and key not in only and ident not in only:
                continue
            ctx[key] = value
            if ident not in ctx:
                ctx[ident] = value
    for key in _CORE:
        value = row.get(key)
        if value is None or value == "" or (value.__class__ is not str and _blank(value)):
            ctx.pop(key, None)
        elif value.__class__ is str and value[0].isspace() and not value.strip():
            ctx.pop(key, None)
        else:
            ctx[key] = value
    lists = row.get("lists")
    if lists and (only is None or "list" in only or "lists" in only):
        lists = [x for x in lists if not _blank(x)]
        if lists:
            ctx["list"] = ", ".join(lists)
            ctx["lists"] = lists
    tags = row.get("tags")
    if tags and (only is None or "tags" in only):
        tags = [x for x in tags if not _blank(x)]
        if tags:
            ctx["tags"] = tags
    if "first_name" not in ctx and "name" in ctx:
        first = _first_name(str(ctx["name"]))
        if first:
            ctx["first_name"] = first
    ctx["unsubscribe_url"] = UNSUBSCRIBE_URL  # each e-mail's own link, filled in when built
    return ctx


# How the bulk generator selects a client (comms.messages.generate, row_columns):
# lists and tags as one string each, joined by LIST_SEP (DuckDB -> Python list
# conversion costs more than a split), and the attributes as JSON text.
LIST_SEP = "\x1f"
_ROW_COLUMNS = {
    **{k: f"c.{k}" for k in _CORE},
    "lists": "array_to_string(c.lists, chr(31)) AS lists",
    "tags": "array_to_string(c.tags, chr(31)) AS tags",
    "attributes": "CAST(c.attributes AS VARCHAR) AS attributes",
}


def row_columns(only: frozenset[str] | None = None) -> list[str]:
    """The SQL (over `clients c`) of the columns a context of these fields is made of.

    None: every column (a context of every field). A column the fields do not
    need is not read: 100,000 rows of them cost a tenth of a second.
    """
    if only is None:
        return list(_ROW_COLUMNS.values())
    read = set(only) | ({"name"} if "first_name" in only else set())
    keys = [k for k in _CORE if k in read]
    keys += ["lists"] if "list" in only or "lists" in only else []
    keys += ["tags"] if "tags" in only else []
    keys += [] if only <= NON_ATTRIBUTE_FIELDS else ["attributes"]
    return [_ROW_COLUMNS[k] for k in keys]


# json.loads without its Python layers around the C scanner (a third of its cost on a
# small object); anything but one whole JSON object takes the full path.
_scan = json.JSONDecoder().scan_once


def _json_attributes(raw: Any) -> dict:
    if not raw or not isinstance(raw, str) or raw == "{}":
        return {}
    try:
        value, end = _scan(raw, 0)
        if end != len(raw):
            value = json.loads(raw)
    except (StopIteration, ValueError):
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def row_context(row: Mapping[str, Any], only: frozenset[str] | None) -> dict:
    """client_context of one of the bulk generator's rows (row_columns, by name)."""
    fields = dict(row)
    fields["lists"] = row["lists"].split(LIST_SEP) if row.get("lists") else None
    fields["tags"] = row["tags"].split(LIST_SEP) if row.get("tags") else None
    needs_attributes = only is None or not only <= NON_ATTRIBUTE_FIELDS
    attributes = _json_attributes(row.get("attributes")) if needs_attributes else None
    return client_context(fields, attributes, only)


_UNSEEN = object()


class RowContexts:
    """row_context for many rows given as tuples (`names`: row_columns(only)), for one template.

    The bulk generator builds 100,000 of these, so the work is decided once:
    the result is the part of client_context(row, attributes, only) that the
    template reads (`only`: its fields); the core fields it does not read are
    not looked at, and the attributes are parsed only when it reads one.
    """

    def __init__(self, names: list[str], only: frozenset[str]) -> None:
        at = {n: i for i, n in enumerate(names)}
        self._only = only
        read = set(only) | ({"name"} if "first_name" in only else set())
        self._core = [(k, at[k]) for k in _CORE if k in read]
        self._lists = at["lists"] if "list" in only or "lists" in only else None
        self._tags = at["tags"] if "tags" in only else None
        self._attributes = None if only <= NON_ATTRIBUTE_FIELDS else at["attributes"]
        self._first_name = "first_name" in only
        # attribute key -> its Jinja name when the template reads it, else None
        self._idents: dict[str, str | None] = {}

    def __call__(self, values: tuple[Any, ...]) -> dict:
        # The same steps, in the same order, as client_context.
        ctx: dict[str, Any] = {}
        only = self._only
        if self._attributes is not None:
            idents = self._idents
            for key, value in _json_attributes(values[self._attributes]).items():
                ident = idents.get(key, _UNSEEN)
                if ident is _UNSEEN:  # decided once per key, not once per row
                    ident = field_name(key)
                    ident = idents[key] = ident if key in only or ident in only else None
                if ident is None or value is None or value == "" or _blank(value):
                    continue
                ctx[key] = value
                if ident not in ctx:
                    ctx[ident] = value
        for key, i in self._core:
            value = values[i]
            if value is None or value == "" or (value.__class__ is not str and _blank(value)):
                ctx.pop(key, None)
            elif value.__class__ is str and value[0].isspace() and not value.strip():
                ctx.pop(key, None)
            else:
                ctx[key] = value
        if self._lists is not None and values[self._lists]:
            lists = [x for x in values[self._lists].split(LIST_SEP) if not _blank(x)]
            if lists:
                ctx["list"] = ", ".join(lists)
                ctx["lists"] = lists
        if self._tags is not None and values[self._tags]:
            tags = [x for x in values[self._tags].split(LIST_SEP) if not _blank(x)]
            if tags:
                ctx["tags"] = tags
        if self._first_name and "first_name" not in ctx and "name" in ctx:
            first = _first_name(str(ctx["name"]))
            if first:
                ctx["first_name"] = first
        ctx["unsubscribe_url"] = UNSUBSCRIBE_URL
        return ctx


def _first_name(name: str) -> str | None:
    # "Ing. Jana Nováková" -> "Jana": academic titles end with a dot and are skipped.
    for word in name.replace(",", " ").split():
        if not word.endswith("."):
            return word
    return None


def sample_client(store: Store, client_id: int | None = None) -> dict | None:
    """A client row (the given one, else the first) with parsed attributes, for previews."""
    sql = (
        "SELECT id, name, first_name, last_name, email, phone, city, company, lists, tags,"
        " attributes FROM clients"
    )
    rows = (
        store.rows(sql + " WHERE id = ?", [int(client_id)])
        if client_id is not None
        else store.rows(sql + " ORDER BY id LIMIT 1")
    )
    if not rows:
        return None
    row = rows[0]
    raw = row.get("attributes")
    try:
        row["attributes"] = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        row["attributes"] = {}
    return row


def preview_clients(store: Store, limit: int = 200) -> list[dict]:
    """id, name and e-mail of the first clients, for a preview picker."""
    return store.rows("SELECT id, name, email FROM clients ORDER BY id LIMIT ?", [limit])


def context_for(row: Mapping[str, Any]) -> dict:
    """client_context for a row returned by sample_client."""
    return client_context(row, row.get("attributes") or {})
