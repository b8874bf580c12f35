"""Finding clients: the directory's filter as SQL, counts, pages, selections, lookups.

Filters are SQL over `clients c` (never pandas over the whole table), shared by
the directory page, the CLI, the wizard and the export through `filter_where`
and `selection_where`. Text search compares `fold`ed words with `fold_sql` of
the stored text (comms.rules.text), so 'novak' finds 'Novák'. `data_version` is the stamp that tells a page its cached
counts and rows are still current.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from comms.i18n import collation
from comms.rules.text import fold, fold_sql
from comms.rules.validation import SMS_KINDS
from comms.store import Store

if TYPE_CHECKING:
    import pandas as pd

_CORE_COLUMNS = ("name", "first_name", "last_name", "email", "phone", "company", "city")
_SEARCHED = ("name", "company", "city")  # searched with the e-mail, attributes and phone
_EMPTY = "''"
# An e-mail matches a folded word the way fold_sql(c.email) would, but accents are
# stripped only from e-mails that have non-ASCII letters (strlen counts bytes,
# length characters): at a million clients a search word costs about 10 ms more CPU
# than with ILIKE alone, where stripping every e-mail costs about 30 ms more.
_EMAIL_MATCHES = (
    "(c.email ILIKE ? OR (strlen(c.email) <> length(c.email) AND strip_accents(c.email) ILIKE ?))"
)


@dataclass
class ClientFilter:
    """What the directory filters by; every field None means 'any'."""

    search: str | None = None
    list: str | None = None
    tag: str | None = None
    city: str | None = None
    attribute: str | None = None
    attribute_op: str = "equals"  # equals | contains
    attribute_value: str | None = None
    has_valid_email: bool | None = None
    has_mobile: bool | None = None
    consent_email: bool | None = None
    consent_sms: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ClientFilter:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def is_empty(self) -> bool:
        return self == ClientFilter(attribute_op=self.attribute_op)


def filter_where(f: ClientFilter) -> tuple[str, list[Any]]:
    """SQL WHERE text over alias `c` and its parameters ('true' when nothing is filtered)."""
    clauses: list[str] = []
    params: list[Any] = []
    for term in (f.search or "").split():
        # Each word must appear somewhere, folded (comms.rules.text) on both sides.
        # Names, companies and cities repeat, so DuckDB folds them once per
        # distinct value (dictionary vectors); e-mails and the attributes text are
        # unique per row, so they use ILIKE (case-insensitive by itself), several
        # times cheaper there than lower() + contains().
        folded = fold(term)
        parts = [f"contains({fold_sql(f'coalesce(c.{col}, {_EMPTY})')}, ?)" for col in _SEARCHED]
        params += [folded] * len(_SEARCHED)
        if re.search(r"[%_\\]", folded):  # ESCAPE would lose ILIKE's fast path
            parts.append(f"contains({fold_sql(f'coalesce(c.email, {_EMPTY})')}, ?)")
            parts.append(f"contains({fold_sql('CAST(c.attributes AS VARCHAR)')}, ?)")
            params += [folded] * 2
        else:
            parts.append(_EMAIL_MATCHES)
            parts.append("strip_accents(CAST(c.attributes AS VARCHAR)) ILIKE ?")
            params += [f"%{folded}%"] * 3
        digits = re.sub(r"[\s\-/().]", "", term)
        if digits.lstrip("+").isdigit():
            parts.append("contains(coalesce(c.phone, ''), ?)")
            params.append(digits.lstrip("+").lstrip("0") if digits.startswith("00") else digits)
        clauses.append("(" + " OR ".join(parts) + ")")
    if f.list:
        clauses.append("list_contains(c.lists, ?)")
        params.append(f.list)
    if f.tag:
        clauses.append("list_contains(c.tags, ?)")
        params.append(f.tag)
    if f.city:
        clauses.append("lower(c.city) = lower(?)")
        params.append(f.city)
    if f.attribute and f.attribute_value not in (None, ""):
        if f.attribute in _CORE_COLUMNS:
            expr = f"c.{f.attribute}"
        else:
            expr = "json_extract_string(c.attributes, ?)"
            params.append('$."' + f.attribute.replace('"', "") + '"')
        if f.attribute_op == "contains":
            clauses.append(f"contains({fold_sql(expr)}, ?)")
            params.append(fold(str(f.attribute_value)))
        else:
            clauses.append(f"lower({expr}) = lower(?)")
            params.append(str(f.attribute_value))
    if f.has_valid_email is not None:
        clauses.append("c.email_valid = ?")
        params.append(bool(f.has_valid_email))
    if f.has_mobile is not None:
        kinds = ", ".join(f"'{k}'" for k in sorted(SMS_KINDS))
        clauses.append(f"(coalesce(c.phone_kind IN ({kinds}), false)) = ?")
        params.append(bool(f.has_mobile))
    if f.consent_email is not None:
        clauses.append("c.consent_email = ?")
        params.append(bool(f.consent_email))
    if f.consent_sms is not None:
        clauses.append("c.consent_sms = ?")
        params.append(bool(f.consent_sms))
    return (" AND ".join(clauses) or "true"), params


def selection_where(selection: dict[str, Any]) -> tuple[str, list[Any]]:
    """WHERE over `clients c` for {'client_ids': [...]} or {'filter': {...}, 'count': N}."""
    if not isinstance(selection, dict):
        raise ValueError("a selection is a dict with 'client_ids' or 'filter'")
    if "client_ids" in selection:
        ids = [int(i) for i in selection["client_ids"] or []]
        return "list_contains(?::BIGINT[], c.id)", [ids]
    if "filter" in selection:
        return filter_where(ClientFilter.from_dict(selection["filter"]))
    raise ValueError("a selection is a dict with 'client_ids' or 'filter'")


LIST_COLUMNS = (
    "c.id, c.name, c.email, c.phone, c.lists[-1] AS list, c.city, c.company, c.tags, "
    "c.email_valid, c.phone_kind IN ('mobile', 'fixed_line_or_mobile') AS mobile, "
    "c.consent_email, c.consent_sms, c.created_at"
)


# What the directory can be sorted by: the order clients were added (id), or a text
# column compared the way the viewer's language sorts it (ICU collation, comms.i18n:
# in Czech Č after C, "Ch" after H, Ř after R), clients without one last, and the id
# breaking ties, so every page has one order and paging never repeats or skips a row.
SORTS = ("id", "name", "city", "company")


def order_by(sort: str = "id", lang: str | None = None) -> str:
    """ORDER BY text over alias `c` for a directory sort (comms.i18n.collation for `lang`)."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    if sort == "id":
        return "c.id"
    return f"c.{sort} COLLATE {collation(lang)} NULLS LAST, c.id"


def count_clients(store: Store, f: ClientFilter | None = None) -> int:
    """How many clients match the filter."""
    where, params = filter_where(f or ClientFilter())
    return int(store.scalar(f"SELECT count(*) FROM clients c WHERE {where}", params))


def list_clients(
    store: Store,
    f: ClientFilter | None = None,
    *,
    limit: int = 2000,
    offset: int = 0,
    sort: str = "id",
    lang: str | None = None,
) -> pd.DataFrame:
    """`limit` matching clients from `offset` (by id, or by `sort` the way `lang` sorts
    text: the viewer's language by default) with the directory's columns."""
    where, params = filter_where(f or ClientFilter())
    order = order_by(sort, lang)
    if sort == "id":
        sql = (
            f"SELECT {LIST_COLUMNS} FROM clients c WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        )
    else:  # the ICU sort over (id, key) alone, then the page's rows: about half the time
        sql = f"""SELECT {LIST_COLUMNS} FROM clients c SEMI JOIN (
            SELECT c.id FROM clients c WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?
        ) p ON c.id = p.id ORDER BY {order}"""
    return store.df(sql, [*params, int(limit), int(offset)])


def page_and_count(
    store: Store,
    f: ClientFilter | None = None,
    *,
    limit: int = 2000,
    sort: str = "id",
    lang: str | None = None,
) -> tuple[int, pd.DataFrame]:
    """The match count and the first `limit` matching clients (ordered as list_clients),
    filtering the table once."""
    f = f or ClientFilter()
    where, params = filter_where(f)
    if where == "true":
        return count_clients(store), list_clients(store, f, limit=limit, sort=sort, lang=lang)
    order = order_by(sort, lang)
    key = "" if sort == "id" else f", c.{sort}"
    df = store.df(
        f"""WITH m AS MATERIALIZED (SELECT c.id{key} FROM clients c WHERE {where})
        SELECT (SELECT count(*) FROM m) AS _total, {LIST_COLUMNS}
        FROM clients c SEMI JOIN (SELECT c.id FROM m c ORDER BY {order} LIMIT ?) p ON c.id = p.id
        ORDER BY {order}""",
        [*params, int(limit)],
    )
    if df.empty:
        return 0, df.drop(columns=["_total"])
    return int(df["_total"].iloc[0]), df.drop(columns=["_total"])


def _client_dict(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    attrs = row.get("attributes")
    row["attributes"] = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
    row["lists"] = list(row.get("lists") or [])
    row["tags"] = list(row.get("tags") or [])
    row["list"] = row["lists"][-1] if row["lists"] else None
    return row


def get_client(store: Store, client_id: int) -> dict[str, Any] | None:
    """One client as a dict (attributes parsed, `list` = latest list), or None."""
    rows = store.rows("SELECT * FROM clients WHERE id = ?", [int(client_id)])
    return _client_dict(rows[0]) if rows else None


def clients_for_ids(store: Store, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Clients by id, in id order (unknown ids are left out)."""
    ids = [int(i) for i in ids]
    if not ids:
        return []
    rows = store.rows(
        "SELECT * FROM clients c WHERE list_contains(?::BIGINT[], c.id) ORDER BY c.id", [ids]
    )
    return [_client_dict(r) for r in rows]


def clients_for_selection(store: Store, selection: dict[str, Any]) -> list[dict[str, Any]]:
    """Every client of a directory selection (explicit ids or 'all N matching'), by id."""
    where, params = selection_where(selection)
    rows = store.rows(f"SELECT * FROM clients c WHERE {where} ORDER BY c.id", params)
    return [_client_dict(r) for r in rows]


def query_clients(
    store: Store, f: ClientFilter | None = None, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Matching clients as dicts with attributes flattened beside the core fields (CLI)."""
    where, params = filter_where(f or ClientFilter())
    sql = f"SELECT * FROM clients c WHERE {where} ORDER BY c.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    out = []
    for row in store.rows(sql, params):
        client = _client_dict(row)
        attrs = client.pop("attributes")
        for key in ("created_at", "updated_at"):
            client[key] = str(client[key]) if client.get(key) is not None else None
        out.append({**{k: v for k, v in attrs.items() if k not in client}, **client})
    return out


def search_clients(store: Store, text: str | None, *, limit: int = 20) -> pd.DataFrame:
    """Clients whose id, name, e-mail or phone matches, for a picker (newest first)."""
    text = (text or "").strip()
    if not text:
        return store.df(
            "SELECT id, name, email, phone, city FROM clients ORDER BY id DESC LIMIT ?",
            [int(limit)],
        )
    like = f"%{text}%"
    id_match = int(text) if text.isdigit() else -1
    return store.df(
        """
        SELECT id, name, email, phone, city FROM clients
        WHERE id = ? OR name ILIKE ? OR email ILIKE ? OR phone ILIKE ?
        ORDER BY (id = ?) DESC, name, id LIMIT ?
        """,
        [id_match, like, like, like.replace(" ", ""), id_match, int(limit)],
    )


# Every write to clients sets updated_at (an insert by its default), so the stamp
# moves with each write: a new count, or a later newest change.
DATA_VERSION_SQL = "SELECT count(*) || ':' || coalesce(max(updated_at)::VARCHAR, '') FROM clients"


def data_version(store: Store) -> str:
    """A stamp that changes whenever clients are added, removed or updated.

    The directory keeps its filter choices and its first page while this stays the same.
    """
    return str(store.scalar(DATA_VERSION_SQL))
