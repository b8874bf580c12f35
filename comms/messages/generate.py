"""Generate one rendered, validated message per recipient, and the review's reads.

`generate_messages` is the heart of a bulk send: the template is compiled
once, the selected clients are read a chunk at a time, each chunk rendered
(comms.templates.batch: also in a worker process beside this one when a core
is free), validated (address, opt-out, consent, duplicate, missing field,
render error, render budget) and made an Arrow table (comms.messages.chunks),
and the whole batch written in ONE transaction, so a failure leaves no batch
and no message behind.

G1: the store's write lock is never held while a template renders: a slow
template (each render is bounded by its budget, comms.templates.budget) can
delay its own batch, never another writer (the sender, an import, the app).

G2: the storing runs beside the rendering. The batch's transaction only adds
rows (comms.store W2): a thread of its own appends each 16,384 rendered
messages while the next ones render, without the write lock, and writes the
batch row and its log entry last; only its COMMIT takes the lock. Until then
no other session sees any of it (tests/test_concurrency.py races it against
the sender). On two cores an e-mail batch keeps the second core for the
storing; an SMS batch, small to store, gets a render worker there.

Reasons are checked in this order and the first one wins: the recipient
(comms.rules.recipients: the address, opt-out, consent), rendering (missing
field, render error), an empty text, and last `duplicate`, which is only given
to an address that an earlier, otherwise sendable message already uses.
Every message is rendered even when invalid, so fixing the address in review
needs no re-render.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from comms import actionlog
from comms import templates as tpl
from comms.errors import CommsError, NotFound
from comms.i18n import _
from comms.messages import chunks
from comms.messages.selection import selection_count, selection_where
from comms.outbox import SOURCES
from comms.outbox.create import COLUMNS as MESSAGE_COLUMNS
from comms.outbox.create import DRAFT, EDITABLE, INVALID, insert_messages
from comms.rules.recipients import address_key
from comms.rules.validation import DUPLICATE
from comms.store import Store
from comms.templates import attachments as att
from comms.templates import batch
from comms.templates.context import row_columns

CHUNK = 2_000  # clients rendered at a time (a worker's share of work; progress per chunk)
# Rows stored per INSERT at most while generating (G2): a row group of the store.
STORE_ROWS = 16_384
# The columns a chunk of generated messages has (comms.messages.chunks), typed for the insert.
_SCHEMA = pa.schema(
    [
        (k, MESSAGE_COLUMNS[k])
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
    ]
)


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


# What the checks read, per channel: the id, the display name, and the address, what the
# import found about it and the consent (comms.messages.chunks.CHECK_FIELDS).
_CHECK_COLUMNS = {
    channel: ("c.id", "c.name", *(f"c.{name}" for name in names))
    for channel, names in chunks.CHECK_FIELDS.items()
}


def _client_reader(
    store: Store, selection: Mapping[str, Any], channel: str, fields: frozenset[str]
) -> tuple[list[str], duckdb.DuckDBPyConnection]:
    """The selected clients' query, on a cursor of its own: (column names, the cursor).

    What the checks and the template read, in client order. The renderers fetch
    from it a chunk at a time (plain tuples: faster to walk than a DataFrame's
    records, and a fraction of the memory of one dict per client), so rendering
    starts with the first rows. The caller closes the cursor.
    """
    where, params = selection_where(selection)
    columns = list(dict.fromkeys([*_CHECK_COLUMNS[channel], *row_columns(fields)]))
    cur = store.new_cursor()
    try:
        cur.execute(
            f"SELECT {', '.join(columns)} FROM clients c WHERE {where} ORDER BY c.id", params
        )
    except BaseException:
        cur.close()
        raise
    return [d[0] for d in cur.description], cur


def _smtputf8_refused(store: Store, selection: Mapping[str, Any], channel: str) -> str | None:
    """Why no address with non-ASCII letters before the @ can go, or None when it can.

    Asked only when the selection has such an address and e-mail goes out over
    SMTP: one connection to the server (senders.smtp.offers_smtputf8). A server
    that cannot be asked decides at send time, naming the same reason.
    """
    if channel != "email":
        return None
    from comms.sending.senders import backend_name

    if backend_name("email") != "smtp":
        return None  # the outbox folder takes any address
    where, params = selection_where(selection)
    local = "split_part(coalesce(c.email, ''), '@', 1)"
    if not store.scalar(
        f"SELECT count(*) FROM clients c WHERE {where} AND strlen({local}) <> length({local})",
        params,
    ):
        return None
    from comms.sending.senders.config import SmtpConfig
    from comms.sending.senders.smtp import offers_smtputf8

    config = SmtpConfig.from_settings()
    if config is None or offers_smtputf8(config) is not False:
        return None
    return (
        f"the SMTP server {config.host}:{config.port} does not offer SMTPUTF8, which an"
        " address with non-ASCII letters before the @ needs"
    )


def _suppressed(store: Store, channel: str) -> set[str]:
    rows = store.rows("SELECT address FROM suppressions WHERE channel = ?", [channel])
    return {address_key(channel, r["address"]) for r in rows if r["address"]}


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
            raise CommsError(_("Generate needs a template or a body."))
        t = tpl.get_template(store, template_id)
        return _Spec(t.channel, t.subject, t.body, t.body_format, t.id, t.name)
    if channel not in tpl.CHANNELS:
        raise CommsError(
            _("Unknown channel {channel!r}: use email or sms.").format(channel=channel)
        )
    name = None
    if template_id is not None:
        name = tpl.get_template(store, template_id).name
    fmt = body_format or ("markdown" if channel == "email" else "text")
    return _Spec(channel, subject, body, fmt, template_id, name)


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
        raise CommsError(_("Unknown source {source!r}.").format(source=source))
    spec = _spec(store, template_id, channel, subject, body, body_format)
    if spec.channel == "email" and not (spec.subject or "").strip():
        raise CommsError(_("An e-mail needs a subject."))
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
        raise CommsError(_("SMS messages cannot carry attachments."))
    attached = att.get_attachments(store, attachment_ids)
    att.check_total(attached)

    smtputf8_detail = _smtputf8_refused(store, selection, spec.channel)
    checks = chunks.Checks(
        spec.channel,
        gsm7,
        frozenset(_suppressed(store, spec.channel)),
        _SCHEMA,
        DRAFT,
        INVALID,
        smtputf8=smtputf8_detail is None,
        smtputf8_detail=smtputf8_detail,
    )
    if store.in_transaction():  # G2's commit would wait for this thread's own lock
        raise RuntimeError("generate_messages cannot run inside a store transaction")
    user = actionlog.current_user()
    # Worker processes (comms.templates.batch) start now, while the first clients load.
    selected = selection_count(store, selection)
    # Storing e-mails (G2: a kilobyte and more each, compressed and written while the
    # rest renders) takes a core of its own: render workers only for the cores beyond.
    # An SMS is a few dozen bytes to store and slower to check: it keeps the worker.
    workers = batch.workers_for(selected, reserved=1 if spec.channel == "email" else 0)
    fields = frozenset(compiled.fields)
    with batch.Renderers(compiled, workers, (*chunks.FINISH, checks)) as renderers:
        names, reader = _client_reader(store, selection, spec.channel, fields)
        with contextlib.closing(reader):
            first = reader.fetchmany(CHUNK)
            if not first:
                raise CommsError(_("No clients selected: pick clients in Clients first."))
            if progress is not None:
                progress(0, selected)
            storing = _Storing(store, spec, source, user, attachment_ids)
            try:
                counts = _render_all(
                    renderers, names, _then(first, reader.fetchmany), selected, storing, progress
                )
            except BaseException:
                storing.abort()
                raise
    total = counts.total
    valid, reasons, segments = counts.valid, counts.reasons, counts.segments
    result = BatchResult(
        0,
        spec.channel,
        total,
        valid,
        total - valid,
        dict(reasons.most_common()),
        segments if spec.channel == "sms" else None,
    )
    detail = {
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
    }
    result.batch_id = storing.finish(total, valid, detail)
    return result


_ABORT = object()  # what _Storing's thread reads when generation failed


class _Storing:
    """G2: the batch's rows appended by a thread of their own while the rest renders.

    Its one transaction only adds rows (Store.appending: the write lock only for
    COMMIT), so nothing is ever held while a template renders (G1), and the
    storing, most of it DuckDB's own compressing and writing without the GIL,
    runs beside the rendering on a second core. The batch row is written last:
    until COMMIT nobody sees any of it, and a failure anywhere rolls it all back.
    """

    def __init__(
        self, store: Store, spec: _Spec, source: str, user: str, attachment_ids: list[int]
    ) -> None:
        self.store, self.spec, self.source, self.user = store, spec, source, user
        self.attachment_ids = attachment_ids
        self.tables: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.batch_id: int | None = None
        self.thread = threading.Thread(target=self._run, name="comms-generate-store", daemon=True)
        self.thread.start()

    def put(self, table: pa.Table) -> None:
        """Store one chunk's messages (in client order), after any already put."""
        if self.error is not None:  # the store failed: stop rendering for nothing
            self.thread.join()
            raise self.error
        self.tables.put(table)

    def finish(self, total: int, valid: int, detail: dict[str, Any]) -> int:
        """Write the batch row and its log entry, COMMIT, and give the batch id."""
        self.tables.put((total, valid, detail))
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.batch_id is not None
        return self.batch_id

    def abort(self) -> None:
        """Roll back everything stored so far."""
        self.tables.put(_ABORT)
        self.thread.join()

    def _run(self) -> None:
        try:
            with self.store.appending() as cur:
                batch_id = int(cur.execute("SELECT nextval('batch_id_seq')").fetchall()[0][0])
                while (items := self._next()) and items[-1] is not _ABORT:
                    last = items[-1]
                    tables = items[:-1] if isinstance(last, tuple) else items
                    if tables:
                        insert_messages(
                            cur,
                            pa.concat_tables(tables),
                            attachment_ids=self.attachment_ids,
                            ids=False,
                            channel=self.spec.channel,
                            source=self.source,
                            batch_id=batch_id,
                            created_by=self.user,
                        )
                    if isinstance(last, tuple):
                        self._batch(cur, batch_id, *last)
                        self.batch_id = batch_id
                        return
                raise _Aborted
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the generating thread
            self.error = exc  # put() and finish() raise it in the generating thread

    def _next(self) -> list[Any]:
        """The next STORE_ROWS rows' tables, or fewer and then the end (or the abort).

        Chunks are stored STORE_ROWS at a time, in one INSERT: each statement takes
        the GIL back a few times, each time waiting for the generating thread to let
        it go (up to 5 ms, sys.getswitchinterval), so fewer statements store faster.
        """
        items = [self.tables.get()]
        rows = 0
        while not isinstance(items[-1], tuple) and items[-1] is not _ABORT:
            rows += items[-1].num_rows
            if rows >= STORE_ROWS:
                break
            items.append(self.tables.get())  # fewer, bigger INSERTs: see the docstring
        return items

    def _batch(
        self, cur: Any, batch_id: int, total: int, valid: int, detail: dict[str, Any]
    ) -> None:
        spec = self.spec
        cur.execute(
            "INSERT INTO batches (id, template_id, channel, source, name, subject, body,"
            " body_format, created_by, total, valid, invalid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                spec.template_id,
                spec.channel,
                self.source,
                spec.name,
                spec.subject,
                spec.body,
                spec.body_format,
                self.user,
                total,
                valid,
                total - valid,
            ],
        )
        if self.attachment_ids:
            cur.execute(
                "INSERT INTO batch_attachments (batch_id, attachment_id)"
                " SELECT ?, unnest(?::BIGINT[])",
                [batch_id, self.attachment_ids],
            )
        actionlog.record(cur, "generate", batch_id=batch_id, detail=detail, user=self.user)


class _Aborted(Exception):
    """Generation failed in the generating thread: roll back."""


@dataclass
class _Counts:
    total: int = 0
    valid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    segments: int = 0

    def add(self, table: pa.Table) -> None:
        sendable = pc.equal(table["status"], DRAFT)
        self.valid += int(pc.sum(sendable).as_py() or 0)
        others = pc.filter(table["reason"], pc.invert(sendable))
        for item in pc.value_counts(others).to_pylist():
            self.reasons[item["values"]] += item["counts"]
        self.segments += int(pc.sum(pc.filter(table["segments"], sendable)).as_py() or 0)


def _then(first: list[Any], fetch: Any) -> Any:
    """fetch(n), except that the first call gives `first` (rows already fetched)."""
    pending = [first]

    def fetch_next(n: int) -> list[Any]:
        return pending.pop() if pending else fetch(n)

    return fetch_next


def _render_all(
    renderers: batch.Renderers,
    names: list[str],
    fetch: Any,
    selected: int,
    storing: _Storing,
    progress: Any,
) -> _Counts:
    """Every client rendered, checked and handed to `storing` in client order; the counts.

    Each chunk comes back checked and converted (comms.messages.chunks), from
    this process or a render worker, in the order chunks finish; `duplicate`
    is given in client order, to an address that an earlier, otherwise
    sendable message already uses, before the chunk is stored.
    """
    done = 0
    waiting: dict[int, tuple[pa.Table, list[str | None]]] = {}  # finished ahead of their turn
    seen: set[str] = set()
    counts = _Counts()
    turn = 0  # the start of the next chunk in client order
    for start, checked in renderers.render(names, fetch, CHUNK):
        waiting[start] = checked
        done += len(checked[1])
        while turn in waiting:
            table, keys = waiting.pop(turn)
            table = _mark_duplicates(table, keys, seen)
            counts.add(table)
            storing.put(table)
            turn += len(keys)
        if progress is not None:
            progress(done, max(done, selected))
    counts.total = done
    return counts


def _mark_duplicates(table: pa.Table, keys: list[str | None], seen: set[str]) -> pa.Table:
    """`duplicate` for each sendable message whose address an earlier one uses (adds to seen)."""
    repeated = [False] * len(keys)
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key in seen:
            repeated[i] = True
        else:
            seen.add(key)
    if not any(repeated):
        return table
    mask = pa.array(repeated)
    for column, value in (("status", INVALID), ("reason", DUPLICATE)):
        at = table.schema.get_field_index(column)
        replaced = pc.if_else(mask, pa.scalar(value, pa.string()), table[column])
        table = table.set_column(at, column, replaced)
    return table


# -- review -----------------------------------------------------------------------
def batch_info(store: Store, batch_id: int) -> dict[str, Any]:
    """A batch row with its live counts (NotFound when it does not exist)."""
    rows = store.rows("SELECT * FROM batches WHERE id = ?", [int(batch_id)])
    if not rows:
        raise NotFound(_("Batch {batch} does not exist.").format(batch=batch_id))
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


def set_excluded(store: Store, message_ids: Iterable[int], excluded: bool) -> int:
    """Exclude draft / invalid messages from sending (or include them again); how many changed."""
    ids = [int(i) for i in message_ids]
    if not ids:
        return 0

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        rows = cur.execute(
            "UPDATE messages SET excluded = ?, updated_at = current_timestamp"
            " WHERE list_contains(?::BIGINT[], id) AND list_contains(?::VARCHAR[], status)"
            " AND excluded <> ? RETURNING id, batch_id",
            [bool(excluded), ids, sorted(EDITABLE), bool(excluded)],
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


def first_sendable(store: Store, batch_id: int) -> int | None:
    """The id of the batch's first draft that is not excluded (for "Send a test")."""
    value = store.scalar(
        "SELECT min(id) FROM messages WHERE batch_id = ? AND status = 'draft' AND NOT excluded",
        [int(batch_id)],
    )
    return int(value) if value is not None else None
