"""Generate one rendered, validated message per recipient; review and edit them.

`generate_messages` is the heart of a bulk send: the template is compiled
once, rendered per client, every message validated (address, opt-out,
consent, duplicate, missing field, render error) and the whole batch written
in ONE transaction with bulk INSERT ... SELECT from an Arrow table, so a
failure leaves no batch and no message behind.

Reasons are checked in this order and the first one wins: the address
(no / invalid e-mail, no / invalid phone, not a mobile), consent, opt-out,
rendering (missing field, render error), and last `duplicate`, which is only
given to an address that an earlier, otherwise sendable message already uses.
Every message is rendered even when invalid, so fixing the address in review
needs no re-render.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from comms import actionlog
from comms import templates as tpl
from comms.config import default_region
from comms.errors import CommsError, InvalidTransition, NotFound
from comms.rules.sms import is_gsm7, sms_info, to_gsm7
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
    check_email,
    check_phone,
    missing_field,
)
from comms.store import Store
from comms.templates import attachments as att

EMPTY_MESSAGE = "empty message"
CHUNK = 10_000  # clients rendered and inserted at a time
_SEP = "\x1f"
EDITABLE = ("draft", "invalid")
SOURCES = ("bulk", "client detail", "cli", "test")


@dataclass
class BatchResult:
    """What one generation produced."""

    batch_id: int
    channel: str
    total: int
    valid: int
    invalid: int
    reasons: dict[str, int] = field(default_factory=dict)
    segments: int | None = None  # SMS: sum over sendable messages

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.channel != "sms":
            d.pop("segments")
        return d


# -- selection ----------------------------------------------------------------
def selection_where(selection: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """WHERE over `clients c` for a directory selection (explicit ids or a filter)."""
    try:
        from comms.clients import selection_where as clients_where
    except ImportError:  # the directory module is not there: explicit ids only
        clients_where = None
    if clients_where is not None:
        return clients_where(dict(selection))
    if "client_ids" in selection:
        return "list_contains(?::BIGINT[], c.id)", [[int(i) for i in selection["client_ids"]]]
    raise CommsError("Selecting clients by filter needs the Clients directory (comms.clients).")


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
            matching = [k for k in keys if k == f or tpl.field_name(k) == f]
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


_CLIENT_COLUMNS = (
    "c.id, c.name, c.first_name, c.last_name, c.email, c.email_valid, c.email_error,"
    " c.phone, c.phone_kind, c.city, c.company,"
    # Lists as one string each: DuckDB -> Python list conversion costs more than a split.
    " array_to_string(c.lists, chr(31)) AS lists, array_to_string(c.tags, chr(31)) AS tags,"
    " c.consent_email,"
    " c.consent_sms, CAST(c.attributes AS VARCHAR) AS attributes"
)


def _load_clients(
    store: Store, selection: Mapping[str, Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    # Plain tuples from DuckDB: faster to walk than a DataFrame's records, and a
    # fraction of the memory of one dict per client (a dict is made per chunk).
    where, params = selection_where(selection)
    cur = store.cursor().execute(
        f"SELECT {_CLIENT_COLUMNS} FROM clients c WHERE {where} ORDER BY c.id", params
    )
    names = [d[0] for d in cur.description]
    return names, cur.fetchall()


def _suppressed(store: Store, channel: str) -> set[str]:
    rows = store.rows("SELECT address FROM suppressions WHERE channel = ?", [channel])
    return {_address_key(channel, r["address"]) for r in rows if r["address"]}


def _address_key(channel: str, address: str) -> str:
    return address.strip().lower() if channel == "email" else address.strip()


# -- address checks -------------------------------------------------------------
def email_address(raw: Any, valid_flag: Any = None) -> tuple[str, str | None, str | None]:
    """(address, reason, detail) for an e-mail; trusts the import's valid flag."""
    text = "" if raw is None or raw != raw else str(raw).strip()
    if not text:
        return "", NO_EMAIL, None
    if valid_flag is True:
        return text, None, None
    checked = check_email(text)
    if checked.ok:
        return checked.address, None, None
    return text, INVALID_EMAIL, checked.error


def sms_address(raw: Any, kind: Any = None) -> tuple[str, str | None, str | None]:
    """(E.164, reason, detail) for a phone; trusts the import's mobile kind."""
    text = "" if raw is None or raw != raw else str(raw).strip()
    if not text:
        return "", NO_PHONE, None
    if isinstance(kind, str) and kind in SMS_KINDS and text.startswith("+"):
        return text, None, None
    checked = check_phone(text, default_region())
    if not checked.ok:
        return text, INVALID_PHONE, checked.error
    if not checked.is_mobile:
        return checked.e164, NOT_MOBILE, f"the number is a {checked.kind.replace('_', ' ')} line"
    return checked.e164, None, None


# -- generation -------------------------------------------------------------------
@dataclass
class _Spec:
    channel: str
    subject: str | None
    body: str
    body_format: str
    template_id: int | None
    name: str | None


def _spec(
    store: Store,
    template_id: int | None,
    channel: str | None,
    subject: str | None,
    body: str | None,
    body_format: str | None,
) -> _Spec:
    if body is None:
        if template_id is None:
            raise CommsError("Generate needs a template or a body.")
        t = tpl.get_template(store, template_id)
        return _Spec(t.channel, t.subject, t.body, t.body_format, t.id, t.name)
    if channel not in tpl.CHANNELS:
        raise CommsError(f"Unknown channel {channel!r}: use email or sms.")
    name = None
    if template_id is not None:
        name = tpl.get_template(store, template_id).name
    fmt = body_format or ("markdown" if channel == "email" else "text")
    return _Spec(channel, subject, body, fmt, template_id, name)


def _arrow(rows: dict[str, list[Any]]) -> pa.Table:
    types = {
        "client_id": pa.int64(),
        "to_address": pa.string(),
        "to_name": pa.string(),
        "subject": pa.string(),
        "body_text": pa.string(),
        "body_html": pa.string(),
        "status": pa.string(),
        "reason": pa.string(),
        "error": pa.string(),
        "segments": pa.int32(),
        "encoding": pa.string(),
    }
    return pa.table({k: pa.array(rows[k], type=t) for k, t in types.items()})


def generate_messages(
    store: Store,
    *,
    selection: Mapping[str, Any],
    template_id: int | None = None,
    channel: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    body_format: str | None = None,
    attachment_ids: Iterable[int] | None = None,
    gsm7: bool = False,
    source: str = "bulk",
    progress: Any = None,
) -> BatchResult:
    """Render and validate one message per selected client, stored as one batch.

    Give template_id alone (the stored template), or channel + subject + body
    (+ body_format), optionally with template_id for the record. attachment_ids
    None means the template's own attachments. progress(done, total) is called
    now and then while rendering.
    """
    if source not in SOURCES:
        raise CommsError(f"Unknown source {source!r}.")
    spec = _spec(store, template_id, channel, subject, body, body_format)
    if spec.channel == "email" and not (spec.subject or "").strip():
        raise CommsError("An e-mail needs a subject.")
    compiled = tpl.compile_template(
        spec.channel, spec.subject, spec.body, spec.body_format, gsm7=gsm7
    )
    if attachment_ids is None:
        attachment_ids = (
            [a.id for a in att.for_template(store, spec.template_id)]
            if spec.template_id is not None
            else []
        )
    attachment_ids = list(dict.fromkeys(int(a) for a in attachment_ids))
    if attachment_ids and spec.channel != "email":
        raise CommsError("SMS messages cannot carry attachments.")
    attached = att.get_attachments(store, attachment_ids)
    att.check_total(attached)

    names, clients = _load_clients(store, selection)
    if not clients:
        raise CommsError("No clients selected: pick clients in Clients first.")
    suppressed = _suppressed(store, spec.channel)
    total = len(clients)
    user = actionlog.current_user()

    def tx(cur: duckdb.DuckDBPyConnection) -> BatchResult:
        # Rendered and written CHUNK clients at a time inside the one transaction:
        # memory stays bounded by a chunk, and a failure anywhere rolls back all.
        batch_id = int(
            cur.execute(
                "INSERT INTO batches (template_id, channel, source, name, subject, body,"
                " body_format, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    spec.template_id,
                    spec.channel,
                    source,
                    spec.name,
                    spec.subject,
                    spec.body,
                    spec.body_format,
                    user,
                ],
            ).fetchone()[0]
        )
        seen: set[str] = set()
        reasons: Counter[str] = Counter()
        valid = segments = 0
        for start in range(0, total, CHUNK):
            rows = _render_chunk(
                compiled, names, clients[start : start + CHUNK], suppressed, gsm7, seen
            )
            for status, reason, n in zip(
                rows["status"], rows["reason"], rows["segments"], strict=True
            ):
                if status == "draft":
                    valid += 1
                    segments += n or 0
                else:
                    reasons[reason] += 1
            table = _arrow(rows)
            del rows
            cur.register("_comms_generated", table)
            try:
                cur.execute(
                    "INSERT INTO messages (client_id, channel, source, batch_id, to_address,"
                    " to_name, subject, body_text, body_html, status, reason, error, segments,"
                    " encoding, created_by) SELECT client_id, ?, ?, ?, to_address, to_name,"
                    " subject, body_text, body_html, status, reason, error, segments,"
                    " encoding, ? FROM _comms_generated",
                    [spec.channel, source, batch_id, user],
                )
            finally:
                cur.unregister("_comms_generated")
            del table
            if progress is not None:
                progress(min(start + CHUNK, total), total)
        cur.execute(
            "UPDATE batches SET total = ?, valid = ?, invalid = ? WHERE id = ?",
            [total, valid, total - valid, batch_id],
        )
        if attachment_ids:
            cur.execute(
                "INSERT INTO batch_attachments (batch_id, attachment_id)"
                " SELECT ?, unnest(?::BIGINT[])",
                [batch_id, attachment_ids],
            )
            cur.execute(
                "INSERT INTO message_attachments (message_id, attachment_id)"
                " SELECT m.id, b.attachment_id FROM messages m"
                " JOIN batch_attachments b ON b.batch_id = m.batch_id WHERE m.batch_id = ?",
                [batch_id],
            )
        result = BatchResult(
            batch_id,
            spec.channel,
            total,
            valid,
            total - valid,
            dict(reasons.most_common()),
            segments if spec.channel == "sms" else None,
        )
        actionlog.record(
            cur,
            "generate",
            batch_id=batch_id,
            detail={
                "channel": spec.channel,
                "template_id": spec.template_id,
                "template": spec.name,
                "source": source,
                "total": total,
                "valid": valid,
                "invalid": total - valid,
                "reasons": result.reasons,
                "segments": result.segments,
                "attachments": [a.filename for a in attached],
                "gsm7": gsm7,
            },
            user=user,
        )
        return result

    if progress is not None:
        progress(0, total)
    return store.write(tx)


def _attrs(raw: Any) -> dict:
    if not raw or not isinstance(raw, str) or raw == "{}":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _render_chunk(
    compiled: tpl.CompiledTemplate,
    names: list[str],
    clients: list[tuple[Any, ...]],
    suppressed: set[str],
    gsm7: bool,
    seen: set[str],
) -> dict[str, list[Any]]:
    """Render and validate clients (plain Python lists: the fastest shape here).

    `seen` carries the addresses already used across chunks (for `duplicate`).
    """
    channel = compiled.channel
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "client_id",
            "to_address",
            "to_name",
            "subject",
            "body_text",
            "body_html",
            "status",
            "reason",
            "error",
            "segments",
            "encoding",
        )
    }
    consent_col = "consent_email" if channel == "email" else "consent_sms"
    needed = frozenset(compiled.fields)
    needs_attributes = not needed <= tpl.NON_ATTRIBUTE_FIELDS
    for values in clients:
        row = dict(zip(names, values, strict=True))
        row["lists"] = row["lists"].split(_SEP) if row["lists"] else None
        row["tags"] = row["tags"].split(_SEP) if row["tags"] else None
        if channel == "email":
            address, reason, detail = email_address(row["email"], row["email_valid"])
        else:
            address, reason, detail = sms_address(row["phone"], row["phone_kind"])
        if reason is None and row[consent_col] is False:
            reason = NO_CONSENT
        if reason is None and _address_key(channel, address) in suppressed:
            reason = OPTED_OUT
        subject = text = html = None
        try:
            attrs = _attrs(row["attributes"]) if needs_attributes else None
            rendered = compiled.render(tpl.client_context(row, attrs, needed))
            subject, text, html = rendered.subject, rendered.text, rendered.html
        except tpl.RenderFailed as exc:
            if reason is None:
                reason, detail = exc.reason, exc.detail
            # Keep what can be rendered, `{{ field }}` marking what is missing, so
            # the review shows the message and a person can complete it by hand.
            draft = compiled.render_draft(tpl.client_context(row, _attrs(row["attributes"])))
            if draft is not None:
                subject, text, html = draft.subject, draft.text, draft.html
        segments = encoding = None
        if channel == "sms" and text is not None:
            if gsm7 and not is_gsm7(text):  # the template did most of it already
                text = to_gsm7(text)
            info = sms_info(text)
            segments, encoding = info.segments, info.encoding
        if reason is None and text is not None and not text.strip():
            reason = EMPTY_MESSAGE
        if reason is None:
            key = _address_key(channel, address)
            if key in seen:
                reason = DUPLICATE
            else:
                seen.add(key)
        name = row["name"]
        out["client_id"].append(int(row["id"]))
        out["to_address"].append(address or None)
        # A display name ends up in a header: one line, always.
        out["to_name"].append(None if name is None or name != name else " ".join(str(name).split()))
        out["subject"].append(subject)
        out["body_text"].append(text)
        out["body_html"].append(html)
        out["status"].append("invalid" if reason else "draft")
        out["reason"].append(reason)
        out["error"].append(detail)
        out["segments"].append(segments)
        out["encoding"].append(encoding)
    return out


# -- review -----------------------------------------------------------------------
def batch_info(store: Store, batch_id: int) -> dict[str, Any]:
    """A batch row with its live counts (NotFound when it does not exist)."""
    rows = store.rows("SELECT * FROM batches WHERE id = ?", [int(batch_id)])
    if not rows:
        raise NotFound(f"Batch {batch_id} does not exist.")
    info = rows[0]
    counts = store.rows(
        "SELECT status, count(*) AS n, count(*) FILTER (WHERE excluded) AS excluded,"
        " sum(segments) FILTER (WHERE NOT excluded) AS segments"
        " FROM messages WHERE batch_id = ? GROUP BY status",
        [int(batch_id)],
    )
    info["by_status"] = {r["status"]: int(r["n"]) for r in counts}
    info["excluded"] = sum(int(r["excluded"]) for r in counts)
    info["sendable"] = int(
        store.scalar(
            "SELECT count(*) FROM messages WHERE batch_id = ? AND status = 'draft'"
            " AND NOT excluded",
            [int(batch_id)],
        )
    )
    info["max_segments"] = int(
        store.scalar(
            "SELECT coalesce(max(segments), 0) FROM messages WHERE batch_id = ?"
            " AND status = 'draft' AND NOT excluded",
            [int(batch_id)],
        )
    )
    info["sendable_segments"] = int(
        store.scalar(
            "SELECT coalesce(sum(segments), 0) FROM messages WHERE batch_id = ?"
            " AND status = 'draft' AND NOT excluded",
            [int(batch_id)],
        )
    )
    return info


def _review_where(batch_id: int, status: str | None, search: str | None) -> tuple[str, list[Any]]:
    where = "batch_id = ?"
    params: list[Any] = [int(batch_id)]
    if status:
        where += " AND status = ?"
        params.append(status)
    if search and search.strip():
        where += (
            " AND (contains(lower(coalesce(to_name, '')), lower(?))"
            " OR contains(lower(coalesce(to_address, '')), lower(?)))"
        )
        params += [search.strip(), search.strip()]
    return where, params


def review(
    store: Store,
    batch_id: int,
    status: str | None = None,
    *,
    search: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The batch's messages for the review table: one status, a text search, the first N."""
    where, params = _review_where(batch_id, status, search)
    first_line = "split_part(trim(coalesce(body_text, '')), chr(10), 1)"
    fmt = store.scalar("SELECT body_format FROM batches WHERE id = ?", [int(batch_id)])
    if fmt == "markdown":
        # The text part of a Markdown e-mail is its source: show "Dear Jana," in the
        # table, not "Dear **Jana**," (a heading's leading #s and bold/strike marks go).
        first_line = (
            f"regexp_replace(regexp_replace({first_line}, '^#+\\s*', ''), '\\*\\*|__|~~', '', 'g')"
        )
    sql = (
        "SELECT id, client_id, to_name AS recipient, to_address AS address, subject,"
        f" {first_line} AS first_line,"
        f" segments, encoding, status, reason, excluded FROM messages WHERE {where} ORDER BY id"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    return store.df(sql, params)


def review_count(
    store: Store, batch_id: int, status: str | None = None, *, search: str | None = None
) -> int:
    """How many messages review() would return without a limit."""
    where, params = _review_where(batch_id, status, search)
    return int(store.scalar(f"SELECT count(*) FROM messages WHERE {where}", params))


def reason_counts(store: Store, batch_id: int) -> dict[str, int]:
    """{reason: count} over the batch's invalid messages, most common first."""
    rows = store.rows(
        "SELECT reason, count(*) AS n FROM messages WHERE batch_id = ? AND reason IS NOT NULL"
        " AND status = 'invalid' GROUP BY reason ORDER BY n DESC, reason",
        [int(batch_id)],
    )
    return {r["reason"]: int(r["n"]) for r in rows}


def get_message(store: Store, message_id: int) -> dict[str, Any]:
    """One message with its attachments and its batch's body format."""
    rows = store.rows(
        "SELECT m.*, b.body_format FROM messages m LEFT JOIN batches b ON b.id = m.batch_id"
        " WHERE m.id = ?",
        [int(message_id)],
    )
    if not rows:
        raise NotFound(f"Message {message_id} does not exist.")
    msg = rows[0]
    msg["attachments"] = att.for_message(store, int(message_id))
    return msg


def editable_body(message: Mapping[str, Any]) -> str:
    """What a person edits: the HTML for raw-HTML e-mails, the text otherwise."""
    if message.get("channel") == "email" and message.get("body_format") == "html":
        return message.get("body_html") or ""
    return message.get("body_text") or ""


def _body_parts(channel: str, body_format: str | None, body: str) -> tuple[str, str | None]:
    """(text, html) for an edited body (no Jinja: the content is final)."""
    if channel == "sms":
        return body, None
    if body_format == "html":
        return tpl.html_to_text(body), body
    if body_format == "text":
        return body, tpl.text_to_html(body)
    # Markdown from a person: escape HTML first so the message cannot carry markup
    # that the review did not show as text.
    import html as _html

    return body, tpl.markdown_to_html(_html.escape(body, quote=False))


def _validate_one(
    cur: duckdb.DuckDBPyConnection,
    msg: Mapping[str, Any],
    address: str,
    text: str,
    subject: str | None = None,
) -> tuple[str, str | None, str | None]:
    """(address, reason, detail) for an edited message."""
    channel = msg["channel"]
    if channel == "email":
        address, reason, detail = email_address(address)
        consent_col = "consent_email"
    else:
        address, reason, detail = sms_address(address)
        consent_col = "consent_sms"
    if reason is None and msg.get("client_id") is not None:
        consent = cur.execute(
            f"SELECT {consent_col} FROM clients WHERE id = ?", [msg["client_id"]]
        ).fetchone()
        if consent is not None and consent[0] is False:
            reason = NO_CONSENT
    if reason is None:
        rows = cur.execute(
            "SELECT address FROM suppressions WHERE channel = ?", [channel]
        ).fetchall()
        if _address_key(channel, address) in {_address_key(channel, r[0]) for r in rows}:
            reason = OPTED_OUT
    if reason is None and not text.strip():
        reason = EMPTY_MESSAGE
    if reason is None:
        left = tpl.PLACEHOLDER_RE.search(text + " " + (subject or ""))
        if left:
            reason = missing_field(left.group(1))
            detail = f"the text still contains {left.group(0)}: replace it with the value"
    if reason is None and msg.get("batch_id") is not None:
        other = cur.execute(
            "SELECT id FROM messages WHERE batch_id = ? AND id <> ? AND status = 'draft'"
            " AND NOT excluded AND "
            + ("lower(to_address) = lower(?)" if channel == "email" else "to_address = ?"),
            [msg["batch_id"], msg["id"], address],
        ).fetchone()
        if other:
            reason, detail = DUPLICATE, f"message {other[0]} goes to the same address"
    return address, reason, detail


def _refresh_counts(cur: duckdb.DuckDBPyConnection, batch_id: int | None) -> None:
    if batch_id is None:
        return
    cur.execute(
        "UPDATE batches SET valid = (SELECT count(*) FROM messages WHERE batch_id = ?"
        " AND status <> 'invalid'), invalid = (SELECT count(*) FROM messages"
        " WHERE batch_id = ? AND status = 'invalid') WHERE id = ?",
        [batch_id, batch_id, batch_id],
    )


def edit_message(
    store: Store,
    message_id: int,
    *,
    subject: str | None = None,
    body: str | None = None,
    to_address: str | None = None,
) -> dict[str, Any]:
    """Change a draft / invalid message's subject, body or address; re-validate; log it.

    Returns the updated message. The status becomes draft or invalid with the
    new reason.
    """
    msg = get_message(store, message_id)
    if msg["status"] not in EDITABLE:
        raise InvalidTransition(
            f"Message {message_id} is {msg['status']}; only drafts and invalid messages "
            "can be edited."
        )
    channel = msg["channel"]
    new_subject = msg["subject"] if subject is None else " ".join(subject.split())
    if channel == "email" and not (new_subject or "").strip():
        raise CommsError("An e-mail needs a subject.")
    new_body = editable_body(msg) if body is None else body
    text, html = _body_parts(channel, msg.get("body_format"), new_body)
    if body is None:
        text, html = msg["body_text"] or "", msg["body_html"]
    raw_address = (msg["to_address"] or "") if to_address is None else to_address
    segments = encoding = None
    if channel == "sms":
        info = sms_info(text)
        segments, encoding = info.segments, info.encoding
    changed = [
        k
        for k, old, new in (
            ("subject", msg["subject"], new_subject),
            ("body", editable_body(msg), new_body),
            ("address", msg["to_address"] or "", raw_address.strip()),
        )
        if (old or "") != (new or "")
    ]

    def tx(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        address, reason, detail = _validate_one(cur, msg, raw_address, text, new_subject)
        status = "invalid" if reason else "draft"
        cur.execute(
            "UPDATE messages SET subject = ?, body_text = ?, body_html = ?, to_address = ?,"
            " status = ?, reason = ?, error = ?, segments = ?, encoding = ?,"
            " updated_at = current_timestamp WHERE id = ?",
            [
                new_subject if channel == "email" else None,
                text,
                html,
                address or None,
                status,
                reason,
                detail,
                segments,
                encoding,
                message_id,
            ],
        )
        _refresh_counts(cur, msg["batch_id"])
        actionlog.record(
            cur,
            "edit",
            batch_id=msg["batch_id"],
            message_id=message_id,
            client_id=msg["client_id"],
            outcome=status,
            detail={
                "changed": changed,
                "from_address": msg["to_address"],
                "to_address": address,
                "status": status,
                "reason": reason,
            },
        )
        return {"status": status, "reason": reason, "to_address": address}

    store.write(tx)
    return get_message(store, message_id)


def set_excluded(store: Store, message_ids: Iterable[int], excluded: bool) -> int:
    """Exclude messages from sending (or include them again); returns how many changed."""
    ids = [int(i) for i in message_ids]
    if not ids:
        return 0

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        rows = cur.execute(
            "UPDATE messages SET excluded = ?, updated_at = current_timestamp"
            " WHERE list_contains(?::BIGINT[], id) AND status IN ('draft', 'invalid')"
            " AND excluded <> ? RETURNING id, batch_id",
            [bool(excluded), ids, bool(excluded)],
        ).fetchall()
        if rows:
            batches = {r[1] for r in rows}
            actionlog.record(
                cur,
                "exclude" if excluded else "include",
                batch_id=next(iter(batches)) if len(batches) == 1 else None,
                message_id=rows[0][0] if len(rows) == 1 else None,
                detail={"message_ids": sorted(r[0] for r in rows), "count": len(rows)},
            )
        return len(rows)

    return store.write(tx)


def save_as_template(
    store: Store,
    *,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    body_format: str = "markdown",
    attachment_ids: Iterable[int] = (),
    template_id: int | None = None,
) -> int:
    """Store this send's text as a template: update template_id, or create a new one."""
    if template_id is None:
        return tpl.create_template(
            store,
            name=name,
            channel=channel,
            subject=subject,
            body=body,
            body_format=body_format,
            attachment_ids=attachment_ids,
        )
    tpl.update_template(
        store, template_id, name=name, subject=subject, body=body, body_format=body_format
    )
    return template_id


def create_test_message(store: Store, message_id: int, to_address: str) -> int:
    """A copy of a generated message addressed to a tester (source 'test', draft)."""
    msg = get_message(store, message_id)
    channel = msg["channel"]
    if channel == "email":
        address, reason, detail = email_address(to_address)
    else:
        address, reason, detail = sms_address(to_address)
    if reason:
        raise CommsError(f"Test address {to_address!r}: {detail or reason}")

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        new_id = cur.execute(
            "INSERT INTO messages (client_id, channel, source, batch_id, to_address, to_name,"
            " subject, body_text, body_html, status, segments, encoding, created_by)"
            " VALUES (NULL, ?, 'test', NULL, ?, NULL, ?, ?, ?, 'draft', ?, ?, ?) RETURNING id",
            [
                channel,
                address,
                ("[TEST] " + (msg["subject"] or "")) if channel == "email" else None,
                msg["body_text"],
                msg["body_html"],
                msg["segments"],
                msg["encoding"],
                actionlog.current_user(),
            ],
        ).fetchone()[0]
        cur.execute(
            "INSERT INTO message_attachments (message_id, attachment_id)"
            " SELECT ?, attachment_id FROM message_attachments WHERE message_id = ?",
            [new_id, message_id],
        )
        actionlog.record(
            cur,
            "test message",
            batch_id=msg["batch_id"],
            message_id=int(new_id),
            detail={"copied_from": message_id, "to_address": address},
        )
        return int(new_id)

    return store.write(tx)


def first_sendable(store: Store, batch_id: int) -> int | None:
    """The id of the batch's first draft that is not excluded (for "Send a test")."""
    value = store.scalar(
        "SELECT min(id) FROM messages WHERE batch_id = ? AND status = 'draft' AND NOT excluded",
        [int(batch_id)],
    )
    return int(value) if value is not None else None
