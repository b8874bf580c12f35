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
from typing import Any

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
