"""Which clients a send goes to: a directory selection as SQL, and what the wizard counts.

A selection is {'client_ids': [...]} (clients picked by hand) or
{'filter': {...}, 'count': N} ("all N matching clients"); comms.clients turns
it into a WHERE clause over `clients c`, so a selection of 100,000 clients is
never a Python list of ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from comms import clients
from comms.store import Store
from comms.templates.context import field_name


def selection_where(selection: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """WHERE over `clients c` for a directory selection (explicit ids or a filter)."""
    return clients.selection_where(dict(selection))


def selection_count(store: Store, selection: Mapping[str, Any]) -> int:
    """How many clients a selection holds right now."""
    where, params = selection_where(selection)
    return int(store.scalar(f"SELECT count(*) FROM clients c WHERE {where}", params) or 0)


def missing_field_counts(
    store: Store, selection: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, int]:
    """{field: how many selected clients lack it}, for fields some clients lack."""
    where, params = selection_where(selection)
    fields = sorted(set(fields))
    if not fields:
        return {}
    keys = [
        r["k"]
        for r in store.rows(
            f"SELECT DISTINCT unnest(json_keys(c.attributes)) AS k FROM clients c WHERE {where}",
            params,
        )
    ]
    blank = "coalesce(trim(CAST({} AS VARCHAR)), '') = ''"
    exprs: list[str] = []
    expr_params: list[Any] = []
    for f in fields:
        if f == "first_name":
            expr = f"({blank.format('c.first_name')} AND {blank.format('c.name')})"
        elif f in ("name", "last_name", "email", "phone", "city", "company"):
            expr = blank.format(f"c.{f}")
        elif f in ("list", "lists"):
            expr = "len(c.lists) = 0"
        elif f == "tags":
            expr = "len(c.tags) = 0"
        else:
            matching = [k for k in keys if k == f or field_name(k) == f]
            if not matching:
                expr = "true"
            else:
                parts = []
                for k in matching:
                    parts.append(blank.format("json_extract_string(c.attributes, ?)"))
                    expr_params.append('$."' + k.replace('"', "") + '"')
                expr = "(" + " AND ".join(parts) + ")"
        exprs.append(f"count(*) FILTER (WHERE {expr})")
    row = (
        store.cursor()
        .execute(f"SELECT {', '.join(exprs)} FROM clients c WHERE {where}", [*expr_params, *params])
        .fetchone()
    )
    return {f: int(n) for f, n in zip(fields, row, strict=True) if n}


def first_client_id(store: Store, selection: Mapping[str, Any]) -> int | None:
    """The lowest client id in a selection (the wizard previews with it)."""
    where, params = selection_where(selection)
    value = store.scalar(f"SELECT min(c.id) FROM clients c WHERE {where}", params)
    return int(value) if value is not None else None


def list_names(store: Store) -> list[str]:
    """Every client list's name, sorted."""
    rows = store.rows(
        "SELECT DISTINCT unnest(lists) AS l FROM clients WHERE len(lists) > 0 ORDER BY l"
    )
    return [r["l"] for r in rows if r["l"]]


def client_count(store: Store) -> int:
    """How many clients there are."""
    return int(store.scalar("SELECT count(*) FROM clients") or 0)
