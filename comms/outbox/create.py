"""The only code that creates `messages` rows, and the editor's one status move.

- `insert_messages`: new messages (and their `message_attachments`) in a
  creation status (states.INITIAL). Every creator calls it: the bulk generator
  (an Arrow table per chunk of 10,000, one INSERT ... SELECT each),
  compose-one-message, the test messages and "copy to draft".
- `set_validity`: the editor's re-validation, which moves a message only
  between `draft` and `invalid` (comms.messages.editor); any other status
  raises InvalidTransition. Every other move of `status` is comms.outbox's.

Both run on the caller's cursor, inside the caller's transaction (the store's
one writer), so a message, its attachments and its action-log entry land
together. Neither writes the action log: the caller records what it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from comms import actionlog
from comms.i18n import _
from comms.outbox import refusals
from comms.outbox.states import INITIAL, SOURCES, TRANSITIONS, target
from comms.rules.validation import CHANNELS

# The sources by name, for the creators that pass one.
SOURCE_BULK, SOURCE_DETAIL, SOURCE_CLI, SOURCE_TEST = SOURCES
# The editor's re-validation moves (comms.outbox.states.TRANSITIONS).
VALIDITY_MOVES: dict[str, tuple[frozenset[str], str]] = {
    action: TRANSITIONS[action] for action in ("validate", "invalidate")
}
DRAFT, INVALID = target("validate"), target("invalidate")
# The statuses the editor may change.
EDITABLE: frozenset[str] = frozenset().union(*(allowed for allowed, _ in VALIDITY_MOVES.values()))

# The columns a creator may give, with their Arrow types.
COLUMNS: dict[str, pa.DataType] = {
    "client_id": pa.int64(),
    "channel": pa.string(),
    "source": pa.string(),
    "batch_id": pa.int64(),
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
    "created_by": pa.string(),
}
_REQUIRED = ("channel", "source", "status")
_VIEW = "_comms_new_messages"


def _table(rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    given = {k for row in rows for k in row}
    unknown = given - set(COLUMNS)
    if unknown:
        raise ValueError(f"not columns of a new message: {', '.join(sorted(unknown))}")
    schema = pa.schema([(k, t) for k, t in COLUMNS.items() if k in given])
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


def _check(table: pa.Table, common: Mapping[str, Any]) -> None:
    """Refuse unknown columns, a column given twice, and unknown statuses / sources / channels."""
    names = set(table.column_names)
    unknown = (names | set(common)) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not columns of a new message: {', '.join(sorted(unknown))}")
    twice = names & set(common)
    if twice:
        raise ValueError(f"given per row and for all rows: {', '.join(sorted(twice))}")
    missing = [k for k in _REQUIRED if k not in names and common.get(k) is None]
    if missing:
        raise ValueError(f"a new message needs {', '.join(missing)}")
    for column, allowed in (("status", INITIAL), ("source", SOURCES), ("channel", CHANNELS)):
        values = set(pc.unique(table[column]).to_pylist()) if column in names else {common[column]}
        bad = values - set(allowed)
        if bad:
            raise ValueError(
                f"a new message's {column} must be one of {', '.join(sorted(allowed))},"
                f" not {', '.join(sorted(map(str, bad)))}"
            )


def insert_messages(
    cur: duckdb.DuckDBPyConnection,
    rows: pa.Table | Sequence[Mapping[str, Any]],
    *,
    attachment_ids: Iterable[int] = (),
    ids: bool = True,
    **common: Any,
) -> list[int]:
    """Insert new messages, each linked to attachment_ids; returns their ids (ascending).

    rows: an Arrow table (the bulk path: typed columns, no Python row objects)
    or a few dicts. `common` gives the values every row shares (channel, source,
    batch_id, status ...); a column neither in the rows nor in `common` is NULL,
    except created_by, which defaults to the acting user. ids=False: the caller
    does not need them (an empty list comes back unless attachments need them);
    the bulk generator's thread then holds the GIL for 16,384 fewer ints.
    """
    table = _table(rows)
    if table.num_rows == 0:
        return []
    common = dict(common)
    if "created_by" not in table.column_names:
        common.setdefault("created_by", actionlog.current_user())
    _check(table, common)
    per_row = list(table.column_names)
    shared = list(common)
    values = ", ".join([*per_row, *("?" for _ in shared)])
    files = sorted({int(a) for a in attachment_ids})
    returning = " RETURNING id" if ids or files else ""
    cur.register(_VIEW, table)
    try:
        inserted = cur.execute(
            f"INSERT INTO messages ({', '.join(per_row + shared)})"
            f" SELECT {values} FROM {_VIEW}{returning}",
            [common[k] for k in shared],
        ).fetchall()
    finally:
        cur.unregister(_VIEW)
    new_ids = sorted(int(r[0]) for r in inserted) if returning else []
    if files:
        cur.execute(
            "INSERT INTO message_attachments (message_id, attachment_id)"
            " SELECT m, a FROM unnest(?::BIGINT[]) t(m), unnest(?::BIGINT[]) u(a)",
            [new_ids, files],
        )
    return new_ids if ids else []


def set_validity(
    cur: duckdb.DuckDBPyConnection,
    message_ids: Iterable[int],
    status: str,
    reason: str | None = None,
    error: str | None = None,
) -> None:
    """The editor's re-validation: draft / invalid messages -> `status` ('draft' or 'invalid').

    reason and error are the message's named reason and its detail (None for a
    draft). A message in any other status raises InvalidTransition and nothing moves.
    """
    action = next((a for a, (_, to) in VALIDITY_MOVES.items() if to == status), None)
    if action is None:
        raise ValueError(f"status must be {DRAFT} or {INVALID}, not {status!r}")
    allowed, target = VALIDITY_MOVES[action]
    if (target == INVALID) != (reason is not None):
        raise ValueError("an invalid message needs its reason, and a draft has none")
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return
    found = dict(
        cur.execute(
            "SELECT id, status FROM messages WHERE id IN (SELECT unnest(?::BIGINT[]))", [ids]
        ).fetchall()
    )
    missing = [i for i in ids if i not in found]
    if missing:
        raise refusals.no_message(", ".join(map(str, missing[:10])), len(missing))
    bad = [(i, found[i]) for i in ids if found[i] not in allowed]
    if bad:
        names = [_(s) for s in sorted(allowed)]
        # "draft and invalid" (a list of statuses a message may be in)
        both = _("{first} and {last}").format(first=", ".join(names[:-1]), last=names[-1])
        raise refusals.wrong_status(
            action,
            refusals.with_status(bad[:10]),
            len(bad),
            both if names[:-1] else names[0],
            target,
        )
    cur.execute(
        "UPDATE messages SET status = ?, reason = ?, error = ?, updated_at = current_timestamp"
        " WHERE id IN (SELECT unnest(?::BIGINT[])) AND list_contains(?::VARCHAR[], status)",
        [target, reason, error, ids, sorted(allowed)],
    )
