"""A bulk send's batch as the wizard comes back to it, and the decisions that move no message.

- `stage`: where a batch stands for the wizard, from its messages alone (so a
  reload, a bookmark or Outbox's "Review" lands on the right step).
- `earlier_sends`: batches that already sent the same template to some of
  the same clients, for the warning before generating again.
- `record_kept` / `record_attachments_added`: the action-log entries of
  "Keep for later" and of files attached for one send (no status moves:
  comms.outbox moves statuses, comms.actionlog writes the log).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from comms import actionlog
from comms.messages.selection import selection_where
from comms.outbox.create import DRAFT, INVALID
from comms.outbox.states import FINAL, STATUSES
from comms.store import Store
from comms.templates.attachments import Attachment

REVIEW, DONE = "review", "done"
# Statuses a message reaches only after a person queued it, cancelled it or more.
_MOVED_ON = frozenset(FINAL | {"queued", "sending", "interrupted"}) - {"excluded"}
# A batch whose messages reached these statuses sent (or is sending) to its clients.
WENT_OUT = frozenset(STATUSES) - {DRAFT, INVALID, "excluded", "cancelled"}


def stage(by_status: Mapping[str, int]) -> str:
    """REVIEW while drafts wait (or nothing has moved on yet), else DONE."""
    drafts = int(by_status.get(DRAFT, 0) or 0)
    moved = sum(int(n or 0) for s, n in by_status.items() if s in _MOVED_ON)
    return DONE if drafts == 0 and moved > 0 else REVIEW


def earlier_sends(
    store: Store,
    selection: Mapping[str, Any],
    *,
    channel: str,
    template_id: int | None,
    body: str,
    subject: str | None = None,
    exclude_batch: int | None = None,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """Earlier batches of the same template (or, blank, the same text) to these clients.

    Only batches whose messages went out or are going (queued, sent, failed ...)
    or wait as drafts count: a discarded batch sent nothing. Newest first, each
    with id, name, created_at, created_by, `clients` (how many of the selected
    clients it reached) and `went_out` / `drafts` among them.
    """
    where, params = selection_where(selection)
    if template_id is not None:
        same, same_params = "b.template_id = ?", [int(template_id)]
    else:
        same = "b.template_id IS NULL AND b.body = ? AND coalesce(b.subject, '') = ?"
        same_params = [body, subject or ""]
    went_out = ", ".join(f"'{s}'" for s in sorted(WENT_OUT))  # constants only
    sql = f"""
        WITH sel AS (SELECT c.id FROM clients c WHERE {where}),
        same AS (
            SELECT b.id, b.name, b.created_at, b.created_by FROM batches b
            WHERE b.channel = ? AND {same} AND b.id <> ?
        )
        SELECT s.id, s.name, s.created_at, s.created_by,
               count(DISTINCT m.client_id) AS clients,
               count(*) FILTER (WHERE m.status IN ({went_out})) AS went_out,
               count(*) FILTER (WHERE m.status = ?) AS drafts
        FROM same s JOIN messages m ON m.batch_id = s.id
        SEMI JOIN sel ON sel.id = m.client_id
        GROUP BY ALL
        HAVING count(*) FILTER (WHERE m.status IN ({went_out}) OR m.status = ?) > 0
        ORDER BY s.id DESC LIMIT ?
    """
    return store.rows(
        sql,
        [
            *params,
            channel,
            *same_params,
            int(exclude_batch or -1),
            DRAFT,
            DRAFT,
            int(limit),
        ],
    )


def record_kept(store: Store, batch_id: int, drafts: int) -> None:
    """'keep for later': the person left the batch's drafts to send later."""
    store.write(
        lambda cur: actionlog.record(
            cur, "keep for later", batch_id=int(batch_id), detail={"count": int(drafts)}
        )
    )


def record_attachments_added(
    store: Store, files: Sequence[Attachment], *, channel: str = "email"
) -> None:
    """'attach': files a person added to a bulk send before generating it."""
    if not files:
        return

    def tx(cur: duckdb.DuckDBPyConnection) -> None:
        actionlog.record(
            cur,
            "attach",
            detail={
                "count": len(files),
                "files": [f.filename for f in files],
                "bytes": sum(int(f.size) for f in files),
                "attachment_ids": [int(f.id) for f in files],
                "where": "bulk send",
                "channel": channel,
            },
        )

    store.write(tx)
