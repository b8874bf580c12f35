"""The outbox: message states and the only code that moves messages between them.

Every other module reads `messages.status`; only this package writes it, and
only through the store's one writer (comms.store, W1).

- `states`: the statuses, the allowed moves (TRANSITIONS) and the retry rule, as data.
- `create`: the only code that inserts messages (in a creation status) and re-validates them.
- `moves`: what a person does: queue, send now, cancel, retry, resolve, pause, resume.
- `claims`: what the dispatcher does: claim due messages, record the servers' answers.
- `queries`: counts, progress and lists for the pages (no writes).

Callers use the names below (`from comms import outbox; outbox.cancel(...)`).
"""

from comms.outbox.claims import (
    ClaimCache,
    ClaimScope,
    Result,
    attachment_ids,
    record_and_claim,
    record_and_claim_many,
    recover_interrupted,
    scope_has_attachments,
)
from comms.outbox.moves import (
    cancel,
    exclude,
    include,
    pause,
    queue,
    reschedule,
    resolve_interrupted,
    resume,
    retry,
    send_now,
)
from comms.outbox.queries import batch_progress, due_count, get_message, progress
from comms.outbox.states import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    FINAL,
    PROCESS_TOKEN,
    REASON_NOT_SENDABLE,
    REASON_REJECTED,
    REASON_RETRIES_EXHAUSTED,
    RESOLUTIONS,
    SOURCES,
    STATUSES,
    TRANSITIONS,
    RetryPolicy,
    local_time,
    now,
    sources,
    status_in,
    target,
    worker_name,
)

__all__ = [
    "DEFAULT_BACKOFF_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "FINAL",
    "PROCESS_TOKEN",
    "REASON_NOT_SENDABLE",
    "REASON_REJECTED",
    "REASON_RETRIES_EXHAUSTED",
    "RESOLUTIONS",
    "SOURCES",
    "STATUSES",
    "TRANSITIONS",
    "ClaimCache",
    "ClaimScope",
    "Result",
    "RetryPolicy",
    "attachment_ids",
    "batch_progress",
    "cancel",
    "exclude",
    "include",
    "due_count",
    "get_message",
    "local_time",
    "now",
    "pause",
    "progress",
    "queue",
    "record_and_claim",
    "record_and_claim_many",
    "recover_interrupted",
    "reschedule",
    "resolve_interrupted",
    "resume",
    "retry",
    "scope_has_attachments",
    "send_now",
    "sources",
    "status_in",
    "target",
    "worker_name",
]
