"""The dispatcher: claims due messages and sends them, N connections per channel.

Shape of a run (`run_once`):

* Per channel with due messages, up to N worker threads (COMMS_SMTP_CONNECTIONS,
  default 8; COMMS_SMS_CONNECTIONS, default 4). Each worker owns ONE sender
  (one connection, reused for every message it sends) and holds at most ONE
  claimed message at a time.
* Every database write of the run goes through one committer thread that
  groups what the workers hand it (the outcome of the message a worker just
  sent + the claim of its next one) into one transaction: DuckDB commits
  serialise and cost about the same for one row or eight. Due messages are
  read ahead in bulk (outbox.ClaimCache); the claiming UPDATE re-checks each
  row, so a message cancelled, paused or edited meanwhile is skipped.
* On a relay slow to answer (sends averaging PIPELINE_AFTER_SECONDS or more) each
  worker also gets a hint, the row it will most likely claim next, and sends that
  message's envelope (MAIL FROM / RCPT TO, sender.prepare) while the commit runs;
  its content goes only once the commit returned it as claimed (I1 below).
* A token bucket per channel enforces the rate limit (per second and per minute).
* Transient failures go back to `queued` with exponential backoff
  (outbox.RetryPolicy); the run waits for those retries when they are near,
  and exits when nothing in its scope is due any more.

Invariants (enforced where the comments say so):

* I1: a message is `sending` and committed before a worker hands it to a server
  (the worker only sees a row the committer returned after COMMIT).
* I2: a worker holds at most one `sending` row: its previous message leaves
  `sending` in the same commit in which its next one is claimed. So a crash
  (SIGKILL) leaves at most one `sending` row per connection, which becomes
  `interrupted` at the next start and is never resent automatically.
* I3: a worker whose outcome could not be committed stops at once; its message
  stays `sending` (ambiguous) rather than being claimed or sent again.

What the workers and the committer write is stored (a message's error, the run's
action-log entry), so they speak English whoever started the run (comms.i18n: stored
data is never translated); the run's caller still gets a refusal before any work
(a setting, a move) in their own language.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from comms import actionlog, i18n, outbox
from comms.i18n import ngettext
from comms.outbox import ClaimScope, Result, RetryPolicy
from comms.rules.validation import CHANNELS
from comms.sending.senders import make_sender
from comms.sending.senders.base import Attachment, BaseSender, Outcome, OutgoingMessage
from comms.sending.senders.config import DispatchConfig
from comms.store import Store

log = logging.getLogger(__name__)

RETRY_WAIT_SECONDS = 120.0  # a run waits for its own retries when they are due within this
# Send the next message's envelope ahead (sender.prepare) only when a send takes at
# least this long (a relay slow to answer). On a fast one the head start is worth
# less than the CPU it takes from the commit running at the same time.
PIPELINE_AFTER_SECONDS = 0.015

SenderFactory = Callable[[str], BaseSender]
ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class RunResult:
    """What one run did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0  # transient outcomes put back in the queue
    interrupted: int = 0
    duration: float = 0.0
    errors: list[str] = field(default_factory=list)  # e.g. a connection that could not be opened

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration"] = round(self.duration, 3)
        return out


# -- rate limit --------------------------------------------------------------------------


class TokenBucket:
    """Blocks acquire() to keep under per_second and per_minute (0 = unlimited)."""

    def __init__(self, per_second: float = 0.0, per_minute: float = 0.0) -> None:
        # (capacity, refill per second, tokens) for each active limit
        self._buckets = [
            [cap, rate, cap]
            for cap, rate in ((per_second, per_second), (per_minute, per_minute / 60.0))
            if cap > 0
        ]
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Take one token, waiting as needed; False if `stop` was set while waiting."""
        if not self._buckets:
            return True
        while True:
            with self._lock:
                now = time.monotonic()
                elapsed, self._last = now - self._last, now
                for b in self._buckets:
                    b[2] = min(b[0], b[2] + elapsed * b[1])
                if all(b[2] >= 1 for b in self._buckets):
                    for b in self._buckets:
                        b[2] -= 1
                    return True
                wait = max((1 - b[2]) / b[1] for b in self._buckets if b[2] < 1)
            if stop is not None:
                if stop.wait(min(wait, 0.5)):
                    return False
            else:
                time.sleep(min(wait, 0.5))


# -- the committer (group commit) -----------------------------------------------------------


@dataclass
class _Request:
    result: Result | None
    worker: str | None  # claim the next message for this worker (None: no claim)
    scope: ClaimScope
    preferred: dict | None = None  # the row the worker expects (the hint it was given)
    want_hint: bool = False  # also name the worker's likely message after this one
    future: Future = field(default_factory=Future)


class _Committer:
    """One thread doing every write of a run; groups concurrent requests into one commit."""

    # How long a commit waits for the other workers' requests to join it. Without
    # it the workers split into two cohorts that alternate commits of half size.
    GATHER_SECONDS = 0.004

    def __init__(self, store: Store, policy: RetryPolicy, run_id: str | None = None) -> None:
        self.store, self.policy, self.run_id = store, policy, run_id
        self.workers = 0  # live workers: a commit is "full" when all of them are in it
        self.cache = outbox.ClaimCache()  # due rows read ahead: claims need no SELECT
        self._lock = threading.Lock()
        self._q: queue.Queue[_Request | None] = queue.Queue()
        # copy_context: the committer writes the per-message log entries, which must
        # name the person who started the run (a contextvar), not the OS user.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._loop,),
            name="comms-committer",
            daemon=True,
        )
        self._thread.start()

    def call(
        self, result: Result | None, worker: str | None, scope: ClaimScope
    ) -> tuple[str | None, dict | None]:
        """Record result (if any) and claim one message for worker (if any); blocks until COMMIT."""
        status, row, _ = self.submit(result, worker, scope).result()
        return status, row

    def submit(
        self,
        result: Result | None,
        worker: str | None,
        scope: ClaimScope,
        preferred: dict | None = None,
        want_hint: bool = False,
    ) -> Future:
        """Like call() without waiting: a Future of (new status, claimed row, hint).

        The hint is the row this worker will most likely claim next (taken out of
        the read-ahead, passed back as `preferred`); it is NOT claimed: nothing of
        it may be delivered before a later commit returns it as the claimed row.
        """
        req = _Request(result, worker, scope, preferred, want_hint)
        self._q.put(req)
        return req.future

    def joined(self, delta: int) -> None:
        """A worker starts (+1) or ends (-1)."""
        with self._lock:
            self.workers += delta

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()

    def _loop(self) -> None:
        i18n.set_language(i18n.DEFAULT)  # its errors go into the run's log entry: English
        closing = False
        while not closing:
            first = self._q.get()
            if first is None:
                return
            group = [first]
            deadline = time.monotonic() + self.GATHER_SECONDS
            while True:  # what queued up meanwhile, or arrives within the gather time, joins
                try:
                    if len(group) >= self.workers:
                        nxt = self._q.get_nowait()
                    else:
                        nxt = self._q.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if nxt is None:
                    closing = True
                    break
                group.append(nxt)
            try:
                statuses, claimed = outbox.record_and_claim_many(
                    self.store,
                    [r.result for r in group if r.result is not None],
                    [(r.worker, r.scope) for r in group if r.worker is not None],
                    policy=self.policy,
                    cache=self.cache,
                    preferred={r.worker: r.preferred for r in group if r.worker and r.preferred},
                    run_id=self.run_id,
                )
            except BaseException as exc:  # I3: nobody in this group goes on
                for r in group:
                    r.future.set_exception(exc)
                continue
            finally:  # hints came back (claimed, stale or unused): no longer reserved
                self.cache.hinted.difference_update(r.preferred["id"] for r in group if r.preferred)
            for r in group:
                row = claimed.get(r.worker) if r.worker else None
                hint = self.cache.peek(r.scope) if row is not None and r.want_hint else None
                r.future.set_result(
                    (statuses.get(r.result.message_id) if r.result else None, row, hint)
                )


# -- building messages --------------------------------------------------------------------


class _Attachments:
    """Attachment contents by id, loaded once per run (attachments never change)."""

    def __init__(self, store: Store, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled  # False when nothing in the run's scope has attachments
        self._cache: dict[int, Attachment] = {}
        self._lock = threading.Lock()

    def for_message(self, message_id: int) -> tuple[Attachment, ...]:
        """The message's own attachments plus its batch's."""
        if not self.enabled:
            return ()
        return self.get(outbox.attachment_ids(self.store, [message_id]).get(message_id, ()))

    def get(self, ids: Iterable[int]) -> tuple[Attachment, ...]:
        ids = list(ids)
        missing = [i for i in ids if i not in self._cache]
        if missing:
            rows = self.store.rows(
                "SELECT id, filename, content_type, data FROM attachments"
                " WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [missing],
            )
            with self._lock:
                for r in rows:
                    self._cache[r["id"]] = Attachment(
                        r["filename"], r["content_type"], bytes(r["data"])
                    )
        return tuple(self._cache[i] for i in ids if i in self._cache)


def _outgoing(row: dict, attachments: _Attachments) -> OutgoingMessage:
    return OutgoingMessage(
        id=row["id"],
        channel=row["channel"],
        to_address=row["to_address"] or "",
        to_name=row.get("to_name"),
        subject=row.get("subject"),
        body_text=row.get("body_text"),
        body_html=row.get("body_html"),
        attachments=attachments.for_message(row["id"]),
        batch_id=row.get("batch_id"),
        client_id=row.get("client_id"),
    )


# -- one run --------------------------------------------------------------------------------


class _Run:
    """Shared state of one run: counters, progress, stop flag."""

    def __init__(self, total: int, progress: ProgressFn | None, stop: threading.Event) -> None:
        self.result = RunResult()
        self.total = total
        self.progress = progress
        self.stop = stop
        self.lock = threading.Lock()
        self.failed_channels: set[str] = set()

    def count(self, outcome: Outcome, new_status: str | None) -> None:
        with self.lock:
            r = self.result
            if new_status == "sent":
                r.sent += 1
            elif new_status == "failed":
                r.failed += 1
            elif new_status == "queued":
                r.retried += 1
            elif new_status == "interrupted":
                r.interrupted += 1
            snapshot = {
                "sent": r.sent,
                "failed": r.failed,
                "retried": r.retried,
                "interrupted": r.interrupted,
                "done": r.sent + r.failed + r.interrupted,
                "total": self.total,
                "last_status": new_status,
                "last_error": outcome.error,
            }
        if self.progress is not None:
            try:
                self.progress(snapshot)
            except Exception:  # a broken progress display must not stop sending
                log.exception("progress callback failed")

    def error(self, channel: str, text: str) -> None:
        with self.lock:
            self.failed_channels.add(channel)
            if text not in self.result.errors:
                self.result.errors.append(text)


def _worker(
    run: _Run,
    committer: _Committer,
    channel: str,
    name: str,
    scope: ClaimScope,
    limiter: TokenBucket,
    factory: SenderFactory,
    attachments: _Attachments,
) -> None:
    """One connection: claim one message, send it, record it and claim the next, repeat."""
    # The worker's texts are stored (messages.error, the run's log entry): English, also
    # for a configuration error (only this thread's copy of the context changes).
    i18n.set_language(i18n.DEFAULT)
    sender: BaseSender | None = None
    committer.joined(+1)
    try:
        try:  # before any claim: a configuration error must not strand a message in `sending`
            sender = factory(channel)
        except Exception as exc:
            run.error(channel, f"{channel} backend: {exc}")
            return
        # I1: `row` is only ever a message the committer claimed for us and COMMITTED;
        # `hint` is only a guess at the next one: at most its envelope goes out early
        # (sender.prepare: MAIL FROM / RCPT TO, overlapping the commit), never its content.
        send_avg = 0.0  # how long this connection's sends take (moving average)
        _, row, hint = committer.submit(None, None if run.stop.is_set() else name, scope).result()
        prepared: int | None = None  # id of the message whose envelope went out ahead
        while row is not None:
            if prepared is not None and prepared != row["id"]:
                sender.abandon()  # another message was claimed: RSET that envelope
            prepared = None
            try:
                message = _outgoing(row, attachments)
            except Exception as exc:  # nothing was handed over: safe to retry later
                log.exception("cannot prepare message %s", row["id"])
                outcome = Outcome.transient(f"cannot prepare the message: {exc}")
            else:
                limiter.acquire()  # the claimed message goes out even if a stop is asked
                try:
                    began = time.monotonic()
                    outcome = sender.send(message)
                    send_avg = 0.7 * send_avg + 0.3 * (time.monotonic() - began)
                except Exception as exc:  # a bug in a backend: delivery unknown, never resend
                    log.exception("sender %s crashed", sender.backend)
                    outcome = Outcome.interrupted(f"unexpected error: {type(exc).__name__}: {exc}")
            # A connection that could not even be opened (server down, login refused)
            # ends this worker and the channel's run: hammering a dead server helps nobody.
            broken = outcome.status == "transient" and sender.open_failed
            if broken:
                run.error(channel, outcome.error or "connection failed")
            claim_next = name if not (broken or run.stop.is_set()) else None
            result = Result(
                row["id"],
                outcome.status,
                outcome.provider_id,
                outcome.error,
                attempts=row["attempts"],
                batch_id=row["batch_id"],
                client_id=row["client_id"],
            )
            # I2: the outcome of `row` and the claim of the next row share one commit.
            pipelining = sender.pipelines and send_avg >= PIPELINE_AFTER_SECONDS
            pending = committer.submit(result, claim_next, scope, hint, want_hint=pipelining)
            if claim_next and hint is not None:
                try:
                    if sender.prepare(_outgoing(hint, attachments)):
                        prepared = hint["id"]
                except Exception:  # only a head start lost: send() does it all
                    log.exception("cannot prepare message %s", hint["id"])
                    sender.abandon()
            new_status, row, hint = pending.result()
            run.count(outcome, new_status)
    except Exception as exc:  # I3: the committer failed; our row (if any) stays `sending`
        log.exception("dispatcher worker %s stopped", name)
        run.error(channel, f"{type(exc).__name__}: {exc}")
    finally:
        committer.joined(-1)
        if sender is not None:
            sender.close()


def run_once(
    store: Store,
    batch_id: int | None = None,
    progress: ProgressFn | None = None,
    *,
    message_ids: Iterable[int] | None = None,
    channels: Iterable[str] = CHANNELS,
    config: DispatchConfig | None = None,
    sender_factory: SenderFactory | None = None,
    wait_for_retries: bool = True,
    stop: threading.Event | None = None,
) -> RunResult:
    """Send everything due (in one batch, or among message_ids) and return the counts.

    Exits when nothing in scope is due; waits for its own transient retries
    when they fall due within a couple of minutes (wait_for_retries).
    """
    cfg = config or DispatchConfig.from_settings()
    policy = RetryPolicy(cfg.max_attempts, cfg.backoff_seconds)
    factory = sender_factory or make_sender
    ids = tuple(sorted({int(i) for i in message_ids})) if message_ids is not None else None
    stop = stop or threading.Event()
    started = time.monotonic()
    scopes = {c: ClaimScope(c, batch_id, ids) for c in channels}
    due = {
        c: outbox.due_count(store, channel=c, batch_id=batch_id, message_ids=ids) for c in scopes
    }
    run = _Run(sum(due.values()), progress, stop)
    if not run.total:
        run.result.duration = time.monotonic() - started
        return run.result
    token = uuid.uuid4().hex[:12]  # the run's id: its log lines and its message_attempts rows
    store.write(
        lambda cur: actionlog.record(
            cur,
            "send run start",
            batch_id=batch_id,
            detail={"run": token, "due": due, "message_ids": list(ids or ())[:50] or None},
        )
    )
    limiters = {c: TokenBucket(cfg.limits(c).per_second, cfg.limits(c).per_minute) for c in scopes}
    attachments = _Attachments(
        store, any(outbox.scope_has_attachments(store, sc) for sc in scopes.values())
    )
    committer = _Committer(store, policy, token)
    try:
        while not stop.is_set():
            threads = []
            for channel, scope in scopes.items():
                if channel in run.failed_channels or not due.get(channel):
                    continue
                for i in range(min(cfg.limits(channel).connections, due[channel])):
                    name = outbox.worker_name(f"{token}-{channel}-{i}")
                    t = threading.Thread(
                        target=contextvars.copy_context().run,
                        args=(_worker, run, committer, channel, name, scope, limiters[channel]),
                        kwargs={"factory": factory, "attachments": attachments},
                        name=f"comms-{channel}-{i}",
                        daemon=True,
                    )
                    t.start()
                    threads.append(t)
            for t in threads:
                t.join()
            if not wait_for_retries or stop.is_set():
                break
            due = {c: 0 for c in scopes}
            wait = _next_retry_wait(store, scopes, run.failed_channels)
            if wait is None:
                break
            if stop.wait(wait):
                break
            due = {
                c: outbox.due_count(store, channel=c, batch_id=batch_id, message_ids=ids)
                for c in scopes
                if c not in run.failed_channels
            }
    finally:
        committer.close()
        run.result.duration = time.monotonic() - started
        r = run.result
        store.write(
            lambda cur: actionlog.record(
                cur,
                "send run end",
                outcome="error" if r.errors else ("failed" if r.failed or r.interrupted else "ok"),
                batch_id=batch_id,
                detail={"run": token, **r.to_dict()},
            )
        )
    return run.result


def _next_retry_wait(store: Store, scopes: dict[str, ClaimScope], skip: set[str]) -> float | None:
    """Seconds until the earliest queued retry in scope, if within RETRY_WAIT_SECONDS."""
    soonest: datetime | None = None
    for channel, scope in scopes.items():
        if channel in skip:
            continue
        where, params = scope.where(datetime.max)
        value = store.scalar(
            f"SELECT min(m.next_attempt_at) FROM messages m WHERE {where}"
            " AND m.next_attempt_at IS NOT NULL",
            params,
        )
        if value is not None and (soonest is None or value < soonest):
            soonest = value
    if soonest is None:
        return None
    wait = (soonest - outbox.now()).total_seconds()
    if wait > RETRY_WAIT_SECONDS:
        return None
    return max(wait, 0.0) + 0.01


def send_now(store: Store, message_ids: Iterable[int], *, timeout: float = 120.0) -> dict[str, Any]:
    """Send these drafts / queued messages now (even if scheduled later) and report outcomes.

    In the app the app's background sender sends them (woken at once) and this
    only waits for their outcomes, up to `timeout` seconds; in a process without
    one (the CLI) this thread runs the dispatcher over them. A message already
    being sent is not sent again. Returns {sent, failed, retried, interrupted,
    errors, messages: [{id, status, error, provider_id}]}; a transient failure
    leaves the message queued for a later retry.
    """
    ids = sorted({int(i) for i in message_ids})
    out: dict[str, Any] = RunResult().to_dict()
    if not ids:
        return {**out, "messages": []}
    outbox.send_now(store, message_ids=ids)
    if wake(store):
        out.update(_wait_for(store, ids, timeout))
    else:
        out.update(run_once(store, message_ids=ids, wait_for_retries=False).to_dict())
    rows = store.rows(
        "SELECT id, status, error, provider_id FROM messages"
        " WHERE id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
        [ids],
    )
    out["messages"] = rows
    return out


def _wait_for(store: Store, ids: list[int], timeout: float) -> dict[str, Any]:
    """Wait until none of ids is due or sending; their outcomes counted like a run's."""
    deadline = time.monotonic() + timeout
    while True:
        rows = store.rows(
            "SELECT status, error, next_attempt_at FROM messages"
            " WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [ids],
        )
        waiting = [
            r
            for r in rows
            if r["status"] == "sending" or (r["status"] == "queued" and not r["next_attempt_at"])
        ]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    counts = {
        s: sum(1 for r in rows if r["status"] == s) for s in ("sent", "failed", "interrupted")
    }
    counts["retried"] = sum(1 for r in rows if r["status"] == "queued" and r["next_attempt_at"])
    n = len(waiting)
    # English says "message(s)" for any number; Czech declines it.
    still = ngettext(
        "{n} message(s) still waiting to be sent", "{n} message(s) still waiting to be sent", n
    )
    errors = [still.format(n=n)] if waiting else []
    return {**counts, "errors": errors}


# -- the background thread ----------------------------------------------------------------


class Background:
    """The app's dispatcher thread: sends whatever falls due, every few seconds."""

    def __init__(self, store: Store, poll_seconds: float | None = None) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()  # set by wake(): look for due messages now
        self.recovered = 0
        self.last_result: RunResult | None = None
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._loop, name="comms-dispatcher", daemon=True)

    def start(self) -> Background:
        # Nothing of this process is sending yet, so every `sending` row is a dead
        # process's: recover it before the first claim.
        self.recovered = outbox.recover_interrupted(self.store)
        self.thread.start()
        return self

    def wake(self) -> None:
        """Look for due messages now instead of at the next poll."""
        self.wake_event.set()

    def stop(self, timeout: float | None = 30) -> None:
        """Ask the thread to finish its current messages and stop."""
        self.stop_event.set()
        self.wake_event.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            poll = self.poll_seconds
            self.wake_event.clear()  # what is due from here on, this round sees
            try:
                if self.store._closed:
                    return
                cfg = DispatchConfig.from_settings()
                poll = poll or cfg.poll_seconds
                if outbox.due_count(self.store):
                    self.last_result = run_once(
                        self.store, config=cfg, wait_for_retries=False, stop=self.stop_event
                    )
                self.last_error = None
            except Exception as exc:  # keep polling: the next round may succeed
                if self.store._closed:
                    return
                log.exception("background dispatcher round failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.wake_event.wait(poll or 5.0)


_BACKGROUND: dict[int, Background] = {}
_BACKGROUND_LOCK = threading.Lock()
_ATEXIT = False


def start_background(store: Store, poll_seconds: float | None = None) -> Background:
    """Start the dispatcher thread for this store once per process (idempotent)."""
    with _BACKGROUND_LOCK:
        for key, bg in list(_BACKGROUND.items()):
            if not bg.alive or bg.store._closed:
                del _BACKGROUND[key]
        bg = _BACKGROUND.get(id(store))
        if bg is None:
            bg = Background(store, poll_seconds).start()
            _BACKGROUND[id(store)] = bg
            global _ATEXIT
            if not _ATEXIT:
                # On a clean shutdown let the workers finish the message in hand, so
                # only a crash (not a restart) can leave an interrupted message.
                atexit.register(stop_background)
                _ATEXIT = True
        return bg


def wake(store: Store) -> bool:
    """Wake this process's background sender for the store; False when none runs."""
    with _BACKGROUND_LOCK:
        bg = _BACKGROUND.get(id(store))
    if bg is None or not bg.alive:
        return False
    bg.wake()
    return True


def stop_background(store: Store | None = None) -> None:
    """Stop the background thread of one store (or of all)."""
    with _BACKGROUND_LOCK:
        keys = [id(store)] if store is not None else list(_BACKGROUND)
        found = [_BACKGROUND.pop(k) for k in keys if k in _BACKGROUND]
    for bg in found:
        bg.stop()
