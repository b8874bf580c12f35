"""THE one editor of a message before it leaves: a generated message or a draft.

`edit_message` changes the subject, body or address of a draft or invalid
message, whatever made it (a bulk send, the client detail, the CLI), and
re-validates it with one rule, generation's, in its order: the recipient
(comms.rules.recipients: address, opt-out, consent), a `{{ field }}` left in
the text (`missing field: field`), an empty text, and a duplicate address in
its batch. The edited text is final (it is not rendered again);
its HTML comes from comms.templates' body_parts. The message then becomes
draft or invalid with the named reason, through comms.outbox.create's
set_validity, the only move the editor makes.

`revalidate` runs the same rule over messages as they stand (after an
exclusion freed an address, say), and `include` brings excluded messages back
into their batch's work (comms.outbox.include) and re-validates them in the
same transaction, so an included message is never a sendable draft that
the rule would refuse.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

import duckdb

from comms import actionlog, outbox
from comms import templates as tpl
from comms.errors import CommsError, InvalidTransition, NotFound
from comms.i18n import _
from comms.outbox.create import DRAFT, EDITABLE, INVALID, set_validity
from comms.rules.recipients import EMPTY_MESSAGE, address_key, check_recipient
from comms.rules.sms import sms_info
from comms.rules.validation import DUPLICATE, missing_field
from comms.store import Store
from comms.templates import attachments as att


def get_message(store: Store, message_id: int) -> dict[str, Any]:
    """One message with its attachments and its batch's body format."""
    rows = store.rows(
        "SELECT m.*, b.body_format FROM messages m LEFT JOIN batches b ON b.id = m.batch_id"
        " WHERE m.id = ?",
        [int(message_id)],
    )
    if not rows:
        raise NotFound(_("Message {id} does not exist.").format(id=message_id))
    msg = rows[0]
    msg["attachments"] = att.for_message(store, int(message_id))
    return msg


def editable_body(message: Mapping[str, Any]) -> str:
    """What a person edits: the HTML for raw-HTML e-mails, the text otherwise."""
    if message.get("channel") == "email" and message.get("body_format") == "html":
        return message.get("body_html") or ""
    return message.get("body_text") or ""


def _validate_one(
    cur: duckdb.DuckDBPyConnection,
    msg: Mapping[str, Any],
    address: str,
    text: str,
    subject: str | None = None,
    suppressed: Container[str] | None = None,
    pending: Container[int] = (),
) -> tuple[str, str | None, str | None]:
    """(address, reason, detail) for an edited message: generation's rules, in its order.

    `suppressed` (address_keys of the channel's suppression list) is read when not given;
    messages in `pending` (re-validated after this one) do not make it a duplicate.
    """
    channel = msg["channel"]
    consent = True
    if msg.get("client_id") is not None:
        row = cur.execute(
            f"SELECT consent_{channel} FROM clients WHERE id = ?", [msg["client_id"]]
        ).fetchone()
        consent = row is None or row[0] is not False
    if suppressed is None:
        suppressed = _suppressed(cur, channel)
    address, reason, detail = check_recipient(
        channel, address, consent=consent, suppressed=suppressed
    )
    if reason is None:
        left = tpl.PLACEHOLDER_RE.search(text + " " + (subject or ""))
        if left:
            reason = missing_field(left.group(1))
            detail = f"the text still contains {left.group(0)}: replace it with the value"
    if reason is None and not text.strip():
        reason = EMPTY_MESSAGE
    if reason is None and msg.get("batch_id") is not None:
        # lower() narrows the batch's sendable messages to candidates; address_key decides.
        key = address_key(channel, address)
        others = cur.execute(
            "SELECT id, to_address FROM messages WHERE batch_id = ? AND id <> ? AND status = ?"
            " AND NOT excluded AND lower(to_address) = lower(?) ORDER BY id",
            [msg["batch_id"], msg["id"], DRAFT, address],
        ).fetchall()
        other = next(
            (i for i, a in others if i not in pending and address_key(channel, a) == key), None
        )
        if other is not None:
            reason, detail = DUPLICATE, f"message {other} goes to the same address"
    return address, reason, detail


def _suppressed(cur: duckdb.DuckDBPyConnection, channel: str) -> set[str]:
    rows = cur.execute("SELECT address FROM suppressions WHERE channel = ?", [channel]).fetchall()
    return {address_key(channel, r[0]) for r in rows if r[0]}


def _refresh_counts(cur: duckdb.DuckDBPyConnection, batch_id: int | None) -> None:
    if batch_id is None:
        return
    cur.execute(
        "UPDATE batches SET valid = (SELECT count(*) FROM messages WHERE batch_id = $batch"
        " AND status <> $invalid), invalid = (SELECT count(*) FROM messages"
        " WHERE batch_id = $batch AND status = $invalid) WHERE id = $batch",
        {"batch": batch_id, "invalid": INVALID},
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
            _("Message {id} is {status}; only drafts and invalid messages can be edited.").format(
                id=message_id, status=_(msg["status"])
            )
        )
    channel = msg["channel"]
    new_subject = msg["subject"] if subject is None else " ".join(subject.split())
    if channel == "email" and not (new_subject or "").strip():
        raise CommsError(_("An e-mail needs a subject."))
    new_body = editable_body(msg) if body is None else body
    text, html = tpl.body_parts(channel, msg.get("body_format"), new_body)
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
        status = INVALID if reason else DRAFT
        cur.execute(
            "UPDATE messages SET subject = ?, body_text = ?, body_html = ?, to_address = ?,"
            " segments = ?, encoding = ?, updated_at = current_timestamp WHERE id = ?",
            [
                new_subject if channel == "email" else None,
                text,
                html,
                address or None,
                segments,
                encoding,
                message_id,
            ],
        )
        set_validity(cur, [message_id], status, reason, detail if reason else None)
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


def _revalidate_in(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> dict[str, int]:
    """Re-validate draft / invalid messages as they stand, in id order; {status: count}."""
    from comms.store import dicts

    rows = dicts(
        cur,
        "SELECT id, channel, client_id, batch_id, to_address, subject, body_text, status"
        " FROM messages WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
        [ids],
    )
    suppressed: dict[str, set[str]] = {}
    counts = {DRAFT: 0, INVALID: 0}
    # Generation's order: of two messages to one address the earlier one is the draft,
    # so a message is compared with the others already decided, not the ones after it.
    pending = {m["id"] for m in rows}
    for msg in rows:
        pending.discard(msg["id"])
        if msg["status"] not in EDITABLE:
            continue
        channel = msg["channel"]
        if channel not in suppressed:
            suppressed[channel] = _suppressed(cur, channel)
        address, reason, detail = _validate_one(
            cur,
            msg,
            msg["to_address"] or "",
            msg["body_text"] or "",
            msg["subject"],
            suppressed[channel],
            pending,
        )
        status = INVALID if reason else DRAFT
        set_validity(cur, [msg["id"]], status, reason, detail if reason else None)
        counts[status] += 1
    for batch_id in sorted({m["batch_id"] for m in rows if m["batch_id"] is not None}):
        _refresh_counts(cur, batch_id)
    return counts


def revalidate(store: Store, message_ids: Iterable[int]) -> dict[str, int]:
    """Apply the rule again to draft / invalid messages as they are; {status: count}.

    For a change around them, not in them: an exclusion that freed an address
    (a `duplicate` may now be the first), consent or the suppression list edited.
    """
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return {DRAFT: 0, INVALID: 0}

    def tx(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
        counts = _revalidate_in(cur, ids)
        actionlog.record(
            cur, "revalidate", detail={"count": len(ids), **counts, "message_ids": ids[:50]}
        )
        return counts

    return store.write(tx)


def include(store: Store, message_ids: Iterable[int]) -> dict[str, int]:
    """Excluded messages back into their batch's work, re-validated; {status: count}.

    One transaction: comms.outbox.include makes them drafts, the rule then
    decides draft or invalid, before anything else can queue them.
    """
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return {DRAFT: 0, INVALID: 0}
    with store.transaction() as cur:
        outbox.include(store, ids)
        return _revalidate_in(cur, ids)


def exclude(store: Store, message_ids: Iterable[int]) -> int:
    """Draft / invalid messages out of their batch's work (comms.outbox.exclude); how many.

    A `duplicate` of an excluded message's address is re-validated in the same
    transaction: with the earlier message gone it may be the one to send.
    """
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return 0
    with store.transaction() as cur:
        moved = outbox.exclude(store, ids)
        freed = [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT d.id FROM messages x JOIN messages d"
                " ON d.batch_id = x.batch_id AND lower(d.to_address) = lower(x.to_address)"
                " WHERE x.id IN (SELECT unnest(?::BIGINT[])) AND d.status = ? AND d.reason = ?",
                [ids, INVALID, DUPLICATE],
            ).fetchall()
        ]
        if freed:
            _revalidate_in(cur, freed)
        return moved
