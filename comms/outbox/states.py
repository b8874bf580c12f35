"""Message states, the moves between them, and the retry rule: declared once, as data.

Every other module derives from these tables: the SQL of each move
(`status_in`), the labels and counts of the pages, the CLI's choices. Nothing
restates a status set or the backoff formula as a literal.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

STATUSES: tuple[str, ...] = (
    "draft",  # generated, editable, not yet meant to leave
    "invalid",  # generated with a named reason (bad address, opted out, ...); never sent
    "queued",  # waiting for its time (scheduled_at / next_attempt_at); the only sendable state
    "sending",  # claimed by one connection and committed before the hand-off
    "sent",  # the server accepted it (provider_id = Message-ID / Twilio SID)
    "failed",  # permanent error, or transient errors exhausted; reason + server text
    "cancelled",  # a person withdrew it
    "interrupted",  # was `sending` when its process died or the link dropped: delivery unknown
    "excluded",  # a person took it out of its batch before sending; never sent
    # what became of a sent message (delivery reports, bounces): reachable only from sent
    "delivered",  # the carrier confirmed delivery (SMS)
    "undelivered",  # the carrier gave up (SMS), with its error code
    "bounced",  # the recipient's server refused it after accepting the hand-off (e-mail)
)

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    # a person's moves
    "queue": (frozenset({"draft"}), "queued"),
    "send now": (frozenset({"draft", "queued"}), "queued"),  # due now; drafts are queued
    "reschedule": (frozenset({"queued"}), "queued"),  # a new due time
    "cancel": (frozenset({"draft", "queued"}), "cancelled"),
    "retry": (frozenset({"failed", "interrupted"}), "queued"),
    "resolve sent": (frozenset({"interrupted"}), "sent"),
    "resolve resend": (frozenset({"interrupted"}), "queued"),
    "resolve cancel": (frozenset({"interrupted"}), "cancelled"),
    "exclude": (frozenset({"draft", "invalid"}), "excluded"),
    "include": (frozenset({"excluded"}), "draft"),  # the editor then re-validates it
    # the editor's re-validation of a generated message or a draft
    "invalidate": (frozenset({"draft", "invalid"}), "invalid"),
    "validate": (frozenset({"draft", "invalid"}), "draft"),
    # the dispatcher's moves
    "claim": (frozenset({"queued"}), "sending"),
    "sent": (frozenset({"sending"}), "sent"),
    "fail": (frozenset({"sending"}), "failed"),
    "defer": (frozenset({"sending"}), "queued"),  # transient error, attempts left
    "interrupt": (frozenset({"sending"}), "interrupted"),
    # what the recipient's side reported later; a late report never moves a status back
    "deliver": (frozenset({"sent"}), "delivered"),
    "undeliver": (frozenset({"sent"}), "undelivered"),
    "bounce": (frozenset({"sent", "delivered"}), "bounced"),
}

# Statuses after which nothing more happens to a message (Outbox: "finished").
FINAL: frozenset[str] = frozenset(
    {"sent", "failed", "cancelled", "excluded", "delivered", "undelivered", "bounced"}
)

# Statuses a message is created in (comms.outbox.create).
INITIAL: frozenset[str] = frozenset({"draft", "invalid", "queued"})

# Where a message came from.
SOURCES: tuple[str, ...] = ("bulk", "client detail", "cli", "test")

# Decisions a person can take about an interrupted message, and the move each makes.
RESOLUTIONS: dict[str, str] = {
    "sent": "resolve sent",
    "resend": "resolve resend",
    "cancel": "resolve cancel",
}

# Named failure reasons (the server's own text goes to `error`).
REASON_REJECTED = "rejected by server"
REASON_RETRIES_EXHAUSTED = "temporary errors, attempts exhausted"
REASON_NOT_SENDABLE = "cannot be sent"
REASON_PROCESS_STOPPED = "the sending process stopped during the hand-off; delivery unknown"

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 3600.0

# Who this process is, in `claimed_by`: rows claimed by another process id are
# stale (DuckDB lets one process write the file, so that process is gone).
PROCESS_TOKEN = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def sources(action: str) -> frozenset[str]:
    """The statuses `action` may start from."""
    return TRANSITIONS[action][0]


def target(action: str) -> str:
    """The status `action` leads to."""
    return TRANSITIONS[action][1]


def status_in(action: str, column: str = "status", *, only: frozenset[str] | None = None) -> str:
    """SQL `column IN (...)` over the statuses `action` may start from (or a subset of them)."""
    allowed = sources(action) if only is None else sources(action) & only
    if not allowed:
        raise ValueError(f"no status of {action!r} is left")
    assert allowed <= set(STATUSES)  # constants only: safe to inline
    return f"{column} IN ({', '.join(repr(s) for s in sorted(allowed))})"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff up to max_attempts.

    The one copy of the backoff rule: the dispatcher's outcome recording asks
    `after_transient` and writes what it answers.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS

    def delay(self, attempts: int) -> float:
        """Seconds to wait before attempt number attempts+1."""
        return min(self.backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)

    def after_transient(self, attempts: int, at: datetime) -> datetime | None:
        """When a message that failed transiently on try `attempts` goes again (None: never)."""
        if attempts >= self.max_attempts:
            return None
        return at + timedelta(seconds=self.delay(attempts))


DEFAULT_POLICY = RetryPolicy()


def now() -> datetime:
    """The current naive local time, the unit every timestamp column uses."""
    return datetime.now()


def local_time(ts: datetime | None) -> datetime | None:
    """An aware datetime as naive local time (the columns' unit); naive ones unchanged."""
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone().replace(tzinfo=None)


def worker_name(label: str) -> str:
    """A claimed_by value naming this process and one of its connections."""
    return f"{PROCESS_TOKEN}:{label}"
