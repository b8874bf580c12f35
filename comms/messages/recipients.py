"""The recipients of a bulk send before it is generated: every address checked.

The wizard's recipients step shows, for each selected client, the address the
message would use and a flag for each check that needs no rendering, in
generation's order (comms.rules.recipients): a usable address (a valid e-mail;
for SMS a valid number that is a mobile), not opted out (the suppression list),
consent, and not a duplicate of an earlier recipient's address. The checks use
what the import found (email_valid, phone_kind), as generation trusts it; the
generated batch has the last word, with the rendering reasons on top.

The person can drop recipients here. A selection is a filter or a list of ids
(comms.clients.selection_where) that cannot say "all but these", so the
dropped clients are generated too and then excluded (comms.messages.editor
.exclude: status `excluded`, out of the batch's work, reversible in review),
after which a `duplicate` of a dropped client's address is re-validated and
becomes the sendable one. `duplicate` here already ignores dropped clients.

Everything is SQL over `clients c` narrowed by the selection; a page of rows
reaches pandas, never the whole list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from comms import actionlog
from comms.messages import editor
from comms.messages.selection import selection_where
from comms.rules.text import fold, fold_sql
from comms.rules.validation import (
    DUPLICATE,
    INVALID_EMAIL,
    INVALID_PHONE,
    NO_CONSENT,
    NO_EMAIL,
    NO_PHONE,
    NOT_MOBILE,
    OPTED_OUT,
    SMS_KINDS,
)
from comms.store import Store

SHOW = ("all", "problems", "dropped", "ok")  # which rows recipient_page lists
_FOLDED_NAME = fold_sql("coalesce(c.name, '')")

# The checks a person sees as columns, per channel, in generation's order:
# (column, its label, the reasons that mean the check failed).
CHECKS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "email": (
        ("address_ok", "Valid e-mail", (NO_EMAIL, INVALID_EMAIL)),
        ("not_opted_out", "Not opted out", (OPTED_OUT,)),
        ("consent", "Consent", (NO_CONSENT,)),
        ("not_duplicate", "Not a duplicate", (DUPLICATE,)),
    ),
    "sms": (
        ("address_ok", "Valid number", (NO_PHONE, INVALID_PHONE)),
        ("mobile", "Mobile", (NOT_MOBILE,)),
        ("not_opted_out", "Not opted out", (OPTED_OUT,)),
        ("consent", "Consent", (NO_CONSENT,)),
        ("not_duplicate", "Not a duplicate", (DUPLICATE,)),
    ),
}


@dataclass
class RecipientCounts:
    """How the selected clients fare in the checks."""

    total: int = 0  # selected clients
    dropped: int = 0  # dropped by the person
    ok: int = 0  # not dropped, every check passed
    reasons: dict[str, int] = field(default_factory=dict)  # first failing check, not dropped

    @property
    def with_problem(self) -> int:
        return sum(self.reasons.values())

    @property
    def kept(self) -> int:
        return self.total - self.dropped


def _selection_named(selection: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The selection's WHERE with its ? parameters renamed $s0, $s1 ... (DuckDB takes
    either ? or $name in one statement, and the checks below are named)."""
    where, params = selection_where(selection)
    parts = where.split("?")  # the selection's SQL is ours: no literal '?' in it
    assert len(parts) == len(params) + 1
    text = parts[0] + "".join(f"$s{n}{part}" for n, part in enumerate(parts[1:]))
    return text, {f"s{n}": value for n, value in enumerate(params)}


def _checked(
    selection: Mapping[str, Any], channel: str, dropped: Sequence[int]
) -> tuple[str, dict[str, Any]]:
    """A CTE body: one row per selected client with its address, checks and reason."""
    where, named = _selection_named(selection)
    kinds = ", ".join(f"'{k}'" for k in sorted(SMS_KINDS))  # constants only
    if channel == "email":
        address = "nullif(trim(coalesce(c.email, '')), '')"
        key = f"lower({address})"
        supp_key = "lower(trim(s.address))"
        address_reason = (
            f"CASE WHEN {address} IS NULL THEN $no_address"
            " WHEN NOT c.email_valid THEN $bad_address END"
        )
        mobile = "true"
        consent = "c.consent_email"
    elif channel == "sms":
        address = "nullif(trim(coalesce(c.phone, '')), '')"
        key = address
        supp_key = "trim(s.address)"
        address_reason = (
            f"CASE WHEN {address} IS NULL THEN $no_address"
            " WHEN coalesce(c.phone_kind, 'invalid') = 'invalid' THEN $bad_address"
            f" WHEN c.phone_kind NOT IN ({kinds}) THEN $not_mobile END"
        )
        mobile = f"coalesce(c.phone_kind IN ({kinds}), false)"
        consent = "c.consent_sms"
    else:
        raise ValueError(f"unknown channel {channel!r}")
    sql = f"""
        sel AS (SELECT c.* FROM clients c WHERE {where}),
        dropped AS (SELECT DISTINCT unnest($dropped::BIGINT[]) AS id),
        supp AS (SELECT DISTINCT {supp_key} AS k FROM suppressions s WHERE s.channel = $channel),
        base AS (
            SELECT c.id, c.name, {address} AS address, {key} AS k,
                   {address_reason} AS address_reason, {mobile} AS mobile,
                   coalesce({consent}, true) AS consent_given,
                   supp.k IS NOT NULL AS suppressed, d.id IS NOT NULL AS is_dropped
            FROM sel c
            LEFT JOIN supp ON supp.k = {key}
            LEFT JOIN dropped d ON d.id = c.id
        ),
        ranked AS (
            SELECT *, coalesce(address_reason,
                       CASE WHEN suppressed THEN $opted_out END,
                       CASE WHEN NOT consent_given THEN $no_consent END) AS first_reason,
                   -- generation's rule: the first otherwise sendable use of an address
                   -- keeps it; dropped clients use none
                   row_number() OVER (
                       PARTITION BY k, (is_dropped OR address_reason IS NOT NULL
                                        OR suppressed OR NOT consent_given)
                       ORDER BY id) AS use_n
            FROM base
        ),
        checked AS (
            SELECT id, name, address, is_dropped,
                   address_reason IS NULL OR address_reason = $not_mobile AS address_ok,
                   mobile, NOT suppressed AS not_opted_out, consent_given AS consent,
                   NOT (first_reason IS NULL AND NOT is_dropped AND use_n > 1) AS not_duplicate,
                   coalesce(first_reason,
                            CASE WHEN NOT is_dropped AND use_n > 1 THEN $duplicate END) AS reason
            FROM ranked
        )"""
    named = {
        **named,
        "dropped": [int(i) for i in dropped],
        "channel": channel,
        "no_address": NO_EMAIL if channel == "email" else NO_PHONE,
        "bad_address": INVALID_EMAIL if channel == "email" else INVALID_PHONE,
        "not_mobile": NOT_MOBILE,
        "opted_out": OPTED_OUT,
        "no_consent": NO_CONSENT,
        "duplicate": DUPLICATE,
    }
    return sql, named


def _run(store: Store, body: str, named: dict[str, Any], tail: str) -> Any:
    return store.cursor().execute(f"WITH {body} {tail}", named)


def recipient_counts(
    store: Store, selection: Mapping[str, Any], channel: str, dropped: Sequence[int] = ()
) -> RecipientCounts:
    """Totals over the selection: dropped, fine, and each first failing check."""
    body, params = _checked(selection, channel, dropped)
    rows = _run(
        store,
        body,
        params,
        "SELECT is_dropped, reason, count(*) FROM checked GROUP BY ALL",
    ).fetchall()
    counts = RecipientCounts()
    for is_dropped, reason, n in rows:
        counts.total += int(n)
        if is_dropped:
            counts.dropped += int(n)
        elif reason is None:
            counts.ok += int(n)
        else:
            counts.reasons[reason] = counts.reasons.get(reason, 0) + int(n)
    counts.reasons = dict(sorted(counts.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return counts


def _view_where(show: str, search: str | None) -> tuple[str, dict[str, Any]]:
    if show not in SHOW:
        raise ValueError(f"show must be one of {', '.join(SHOW)}")
    clauses = {
        "all": "true",
        "problems": "NOT is_dropped AND reason IS NOT NULL",
        "dropped": "is_dropped",
        "ok": "NOT is_dropped AND reason IS NULL",
    }
    where, named = clauses[show], {}
    for n, word in enumerate((search or "").split()):
        where += (
            f" AND (contains({fold_sql('coalesce(name, $empty)')}, $w{n})"
            f" OR contains(lower(coalesce(address, $empty)), $w{n}))"
        )
        named[f"w{n}"] = fold(word)
        named["empty"] = ""
    return where, named


def recipient_page(
    store: Store,
    selection: Mapping[str, Any],
    channel: str,
    dropped: Sequence[int] = (),
    *,
    show: str = "all",
    search: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> tuple[int, pd.DataFrame]:
    """(how many rows match, one page of them by client id) with the channel's check columns."""
    body, named = _checked(selection, channel, dropped)
    where, more = _view_where(show, search)
    named = {**named, **more, "limit": int(limit), "offset": int(offset)}
    columns = ", ".join(col for col, _, _ in CHECKS[channel])
    df = _run(
        store,
        body,
        named,
        f"""SELECT count(*) OVER () AS _total, id, name, address, {columns}, reason,
                   is_dropped AS dropped
            FROM checked WHERE {where} ORDER BY id LIMIT $limit OFFSET $offset""",
    ).df()
    total = int(df["_total"].iloc[0]) if len(df) else 0
    if not len(df) and offset:
        named = {k: v for k, v in named.items() if k not in ("limit", "offset")}
        total = int(
            _run(store, body, named, f"SELECT count(*) FROM checked WHERE {where}").fetchone()[0]
        )
    return total, df.drop(columns=["_total"])


def ids_with_problem(
    store: Store, selection: Mapping[str, Any], channel: str, dropped: Sequence[int] = ()
) -> list[int]:
    """The clients, not dropped yet, that fail a check (for "drop every one with a problem")."""
    body, params = _checked(selection, channel, dropped)
    rows = _run(
        store,
        body,
        params,
        "SELECT id FROM checked WHERE NOT is_dropped AND reason IS NOT NULL ORDER BY id",
    ).fetchall()
    return [int(r[0]) for r in rows]


def preview_clients(
    store: Store, selection: Mapping[str, Any], search: str | None = None, *, limit: int = 50
) -> list[dict[str, Any]]:
    """Selected clients to preview a message for: id, name, e-mail, phone (by id)."""
    where, params = selection_where(selection)
    sql = f"SELECT c.id, c.name, c.email, c.phone FROM clients c WHERE {where}"
    for word in (search or "").split():
        sql += (
            f" AND (contains({_FOLDED_NAME}, ?)"
            " OR contains(lower(coalesce(c.email, '')), ?) OR contains(coalesce(c.phone, ''), ?))"
        )
        params = [*params, fold(word), word.lower(), word]
    sql += " ORDER BY c.id LIMIT ?"
    return store.rows(sql, [*params, int(limit)])


def drop_from_batch(store: Store, batch_id: int, client_ids: Iterable[int]) -> int:
    """Exclude the batch's messages to clients dropped before generating; how many.

    Through comms.messages.editor.exclude, which re-validates the duplicates
    they leave behind; one action-log entry names the dropped clients' count.
    """
    ids = sorted({int(i) for i in client_ids})
    if not ids:
        return 0

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        message_ids = [
            r[0]
            for r in cur.execute(
                "SELECT m.id FROM messages m JOIN (SELECT unnest(?::BIGINT[]) AS id) d"
                " ON d.id = m.client_id WHERE m.batch_id = ? ORDER BY m.id",
                [ids, int(batch_id)],
            ).fetchall()
        ]
        moved = editor.exclude(store, message_ids) if message_ids else 0
        actionlog.record(
            cur,
            "drop recipients",
            batch_id=int(batch_id),
            detail={"clients": len(ids), "excluded": moved},
        )
        return moved

    with store.transaction() as cur:
        return tx(cur)
