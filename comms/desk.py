"""The notebook API: `from comms import Desk`, a thin facade over the core the app and CLI use.

Every method makes the same core calls as the matching `comms` command (see
comms/cli/) and returns what that command prints with `--json`, as Python
values (datetimes stay datetimes): `import_clients` = `comms import --json`,
`clients` = `comms clients --json`, `history` = `comms history --json`,
`add_template` = `comms templates add --json`, `generate` = `comms generate
--json` (plus `segments`, None for e-mail), `queue` = `comms queue --json`.

The store is opened with the CLI's `--db` rules (`comms.store.resolve_db_path`:
the argument, else $COMMS_DB, else data/comms.duckdb) through `open_store`, so
every Desk of a process on one file shares that file's one connection and its
one writer (comms.store, W1): `close()` closes it for all of them.

Sending is the app's background sender running in this process
(`start_sending`); without it, nothing queued leaves, and `wait_until_sent`
says so when it times out (it never starts one by itself).

Threads (D1): a Desk may be called from several threads at once, as the app's
browser sessions call the core. The store gives each thread its own cursor and
serialises writes; the Desk's only mutable state is `_closed`, written once
under `_lock`, and start / stop / close run under that lock.

Refusals (D2): every refusal is a CommsError with a sentence a person can act
on: the core's own (NotFound, InvalidTransition, TemplateError, ImportFailed,
DatabaseInUse ...), or InvalidArgument for an argument the Desk cannot use.
"""

from __future__ import annotations

import operator
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from comms import outbox
from comms import templates as tpl
from comms.cli.history import HISTORY_FIELDS
from comms.clients import ClientFilter, get_client, import_clients, query_clients
from comms.errors import CommsError, NotFound
from comms.i18n import _
from comms.messages import generate as gen
from comms.messages import history as hist
from comms.rules.validation import CHANNELS
from comms.sending import dispatcher
from comms.store import Store, open_store, resolve_db_path
from comms.templates import attachments as att
from comms.templates.storage import validate_template

WAIT_POLL_SECONDS = 0.05  # how often wait_until_sent looks at the outbox

# What messages() returns per row. history.list_messages (the Communication list) is
# paged and carries no provider_id, so the Desk reads with that list's filter
# (history.filter_where) and these columns. `to` is the address; `to_address`, the
# name history() uses, is kept beside it.
_MESSAGE_COLUMNS = (
    'm.id, m.client_id, m.batch_id, m.channel, m.source, m.status, m.to_address AS "to",'
    " m.to_address, m.to_name, m.subject, m.reason, m.error, m.attempts, m.segments,"
    " m.provider_id, m.scheduled_at, m.sent_at, m.created_at"
)


class InvalidArgument(CommsError, ValueError):
    """An argument a Desk method cannot use (a ValueError too)."""


class DeskClosed(CommsError):
    """The Desk was closed; open a new one."""


def _ids(values: int | Iterable[int] | None, what: str) -> list[int]:
    """One id or several, as distinct ints (InvalidArgument for anything else)."""
    if values is None:
        return []
    scalar = isinstance(values, str) or hasattr(values, "__index__")  # int, numpy int
    try:
        items = [values] if scalar else list(values)
    except TypeError:
        raise InvalidArgument(
            _("{what} must be an id or a list of ids, not {value!r}.").format(
                what=what, value=values
            )
        ) from None
    out: list[int] = []
    for v in items:
        not_ids = _("{what} must be ids (whole numbers), not {value!r}.")
        if isinstance(v, bool):
            raise InvalidArgument(not_ids.format(what=what, value=v))
        try:
            out.append(int(v) if isinstance(v, str) else operator.index(v))
        except (TypeError, ValueError):
            raise InvalidArgument(not_ids.format(what=what, value=v)) from None
    return sorted(set(out))


def _one_id(value: int, what: str) -> int:
    """Exactly one id."""
    ids = _ids(value, what)
    if len(ids) != 1 or isinstance(value, list | tuple | set):
        raise InvalidArgument(
            _("{what} must be one id, not {value!r}.").format(what=what, value=value)
        )
    return ids[0]


def _channels(consent: str | Iterable[str]) -> set[str]:
    """The stated consent as a set of channels, each one of CHANNELS."""
    items = [consent] if isinstance(consent, str) else consent
    try:
        chosen = set(items)
    except TypeError:
        raise InvalidArgument(
            _("consent must be channels such as ('email', 'sms'), not {value!r}.").format(
                value=consent
            )
        ) from None
    unknown = sorted(str(c) for c in chosen - set(CHANNELS))
    if unknown:
        raise InvalidArgument(
            _("consent: unknown channel {channel!r}; use any of {channels}.").format(
                channel=unknown[0], channels=", ".join(CHANNELS)
            )
        )
    return chosen


def _when(at: datetime | str | None) -> datetime | None:
    """A send time from a datetime or an ISO-8601 string (None = now)."""
    if at is None or isinstance(at, datetime):
        return at
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at)
        except ValueError:
            pass
    raise InvalidArgument(
        _("at={at!r} is not a time: give a datetime or e.g. '2026-12-01T09:30'.").format(at=at)
    )


class Desk:
    """The client communication desk from Python: the app's core, without Streamlit.

    Open it on a database file (`Desk()`, `Desk("data/comms.duckdb")`), use it as a
    context manager or call `close()` so the app or the CLI can open the file again.
    """

    def __init__(self, db: str | os.PathLike[str] | None = None) -> None:
        self.path: Path = resolve_db_path(db)
        self._lock = threading.Lock()
        self._closed = False
        self._store = open_store(self.path)  # DatabaseInUse now, not at the first call

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Desk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Desk({str(self.path)!r}{', closed' if self._closed else ''})"

    def close(self) -> None:
        """Stop this process's background sender for the file and close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            dispatcher.stop_background(self._store)
            self._store.close()

    @property
    def store(self) -> Store:
        """The process-wide Store of the file (what the CLI's open_store returned)."""
        if self._closed:
            raise DeskClosed(
                _("This Desk on {path} is closed; open a new Desk().").format(path=self.path)
            )
        if self._store._closed:
            raise DeskClosed(
                _(
                    "The database {path} was closed (by another Desk or Store on it in this "
                    "process); open a new Desk()."
                ).format(path=self.path)
            )
        return self._store

    # -- clients -----------------------------------------------------------------------
    def import_clients(
        self,
        path: str | os.PathLike[str],
        list_name: str | None = None,
        consent: str | Iterable[str] | None = None,
        *,
        region: str | None = None,
    ) -> dict[str, Any]:
        """Import a CSV / XLSX client list (all or nothing); what `comms import --json` prints.

        consent: the channels the uploader states consent for, e.g. ("email", "sms"),
        ("sms",) or "none", used for the channels the file has no consent column for;
        a file without consent columns and without a statement is refused
        (comms.errors.ConsentNotStated), exactly like `comms import --consent`.
        """
        stated = (
            consent if consent is None or isinstance(consent, str) else sorted(_channels(consent))
        )
        report = import_clients(
            self.store, Path(path), list_name=list_name, region=region, consent=stated
        )
        return report.to_dict()

    def clients(
        self,
        search: str | None = None,
        list_name: str | None = None,
        *,
        tag: str | None = None,
        city: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The matching clients, by id; what `comms clients --json` prints."""
        f = ClientFilter(search=search, list=list_name, tag=tag, city=city)
        return query_clients(self.store, f, limit=limit)

    def history(self, client_id: int, *, limit: int | None = None) -> list[dict[str, Any]]:
        """One client's messages, newest first; what `comms history --json` prints."""
        cid = _one_id(client_id, "client_id")
        store = self.store
        if get_client(store, cid) is None:
            raise NotFound(_("No client with id {id}.").format(id=client_id))
        return [
            {k: r.get(k) for k in HISTORY_FIELDS}
            for r in hist.client_history(store, cid, limit=limit)
        ]

    # -- templates and batches -------------------------------------------------------------
    def add_template(
        self,
        name: str,
        channel: str,
        body: str,
        subject: str | None = None,
        attachments: Iterable[str | os.PathLike[str]] = (),
        *,
        body_format: str = "markdown",
    ) -> dict[str, Any]:
        """Save a template with its files; what `comms templates add --json` prints."""
        if channel not in CHANNELS:
            raise InvalidArgument(
                _("channel must be one of {choices}, not {value!r}.").format(
                    choices=", ".join(CHANNELS), value=channel
                )
            )
        if body_format not in tpl.FORMATS:
            raise InvalidArgument(
                _("body_format must be one of {choices}, not {value!r}.").format(
                    choices=", ".join(tpl.FORMATS), value=body_format
                )
            )
        if not isinstance(body, str) or not isinstance(name, str):
            raise InvalidArgument(_("name and body must be text."))
        one = isinstance(attachments, str | os.PathLike)
        paths = [Path(attachments)] if one else [Path(f) for f in attachments]
        for p in paths:
            if not p.is_file():
                raise CommsError(_("Attachment {file} does not exist.").format(file=p))
        if paths and channel != "email":
            raise CommsError(_("SMS templates cannot carry attachments."))
        store = self.store
        # Checked (render budget included) before any file is stored and outside the write
        # lock, as the CLI does; then files and template are one transaction, so a refused
        # template (a taken name) leaves no file behind.
        validate_template(name, channel, subject, body, body_format)
        files = [(p.name, p.read_bytes()) for p in paths]
        att.check_total([att.Attachment(0, "", n, "", len(d)) for n, d in files])
        with store.transaction():
            ids = [att.add_attachment(store, n, d) for n, d in files]
            tid = tpl.create_template(
                store,
                name=name,
                channel=channel,
                subject=subject,
                body=body,
                body_format=body_format,
                attachment_ids=ids,
            )
        t = tpl.get_template(store, tid)
        return {
            "id": t.id,
            "name": t.name,
            "channel": t.channel,
            "fields": sorted(t.compile().fields),
            "attachments": [a.filename for a in t.attachments],
        }

    def generate(
        self,
        template: str | int,
        list_name: str | None = None,
        ids: Iterable[int] | None = None,
        *,
        search: str | None = None,
        all_clients: bool = False,
        gsm7: bool = False,
    ) -> dict[str, Any]:
        """One rendered, validated draft per client of a list, ids, a search or everyone.

        template: its name or id. Returns `comms generate --json` (batch_id, channel,
        total, valid, invalid, reasons) with segments (the SMS segments to send; None
        for e-mail). Nothing is queued: queue(batch_id) does that.
        """
        chosen = [
            k
            for k, v in (
                ("list_name", list_name),
                ("ids", ids),
                ("search", search),
                ("all_clients", all_clients or None),
            )
            if v is not None
        ]
        if len(chosen) != 1:
            if chosen:
                text = _(
                    "generate needs exactly one of list_name, ids, search or all_clients=True, "
                    "not {given}."
                )
            else:
                text = _(
                    "generate needs exactly one of list_name, ids, search or all_clients=True."
                )
            raise InvalidArgument(text.format(given=" and ".join(chosen)))
        if ids is not None:
            selection: dict[str, Any] = {"client_ids": _ids(ids, "ids")}
        elif list_name is not None:
            selection = {"filter": {"list": list_name}}
        elif search is not None:
            selection = {"filter": {"search": search}}
        else:
            selection = {"filter": {}}
        store = self.store
        if isinstance(template, str):
            t = tpl.get_template_by_name(store, template)
        elif isinstance(template, int) and not isinstance(template, bool):
            t = tpl.get_template(store, template)
        else:
            raise InvalidArgument(
                _("template must be a name or an id, not {value!r}.").format(value=template)
            )
        result = gen.generate_messages(store, selection=selection, template_id=t.id, gsm7=gsm7)
        return {**result.to_dict(), "segments": result.segments}

    def queue(self, batch_id: int, at: datetime | str | None = None) -> dict[str, Any]:
        """Queue a batch's drafts to go now or at `at`; what `comms queue --json` prints."""
        when = _when(at)
        bid = _one_id(batch_id, "batch_id")
        store = self.store
        gen.batch_info(store, bid)  # NotFound for a batch that does not exist
        n = outbox.queue(store, batch_id=bid, scheduled_at=when)
        dispatcher.wake(store)
        return {"batch_id": bid, "queued": n, "scheduled_at": when}

    # -- messages ----------------------------------------------------------------------
    def messages(
        self, batch_id: int | None = None, status: str | Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every message of a batch (or of all), optionally in some statuses, by id."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        unknown = [s for s in statuses if s not in outbox.STATUSES]
        if unknown:
            raise InvalidArgument(
                _("Unknown status {status!r}; use one of {statuses}.").format(
                    status=unknown[0], statuses=", ".join(outbox.STATUSES)
                )
            )
        bid = None if batch_id is None else _one_id(batch_id, "batch_id")
        where, params = hist.filter_where(hist.MessageFilter(batch_id=bid, statuses=statuses))
        return self.store.rows(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE {where} ORDER BY m.id", params
        )

    def send_now(self, message_ids: int | Iterable[int]) -> int:
        """Make drafts / queued messages due now and wake the sender; how many became due.

        A message being sent right now is skipped (never sent twice); it only leaves
        while a background sender runs (start_sending).
        """
        store = self.store
        n = outbox.send_now(store, message_ids=_ids(message_ids, "message_ids"))
        dispatcher.wake(store)
        return n

    def cancel(self, message_ids: int | Iterable[int]) -> int:
        """Drafts and queued messages -> cancelled (all or nothing); how many moved."""
        return outbox.cancel(self.store, message_ids=_ids(message_ids, "message_ids"))

    def retry(self, message_ids: int | Iterable[int]) -> int:
        """Failed or interrupted messages -> queued, due now (all or nothing); how many moved."""
        store = self.store
        n = outbox.retry(store, message_ids=_ids(message_ids, "message_ids"))
        dispatcher.wake(store)
        return n

    # -- sending -----------------------------------------------------------------------
    def start_sending(self, poll_seconds: float | None = None) -> None:
        """Run the app's background sender in this process (once per file; idempotent).

        It sends whatever falls due until stop_sending() or close(); poll_seconds
        defaults to COMMS_POLL_SECONDS (5).
        """
        with self._lock:
            dispatcher.start_background(self.store, poll_seconds)

    def stop_sending(self) -> None:
        """Stop this process's background sender for the file (messages in hand finish)."""
        with self._lock:
            if not self._closed:  # close() already stopped it
                dispatcher.stop_background(self._store)

    def wait_until_sent(self, timeout: float = 60.0) -> None:
        """Return once nothing is due and nothing is being sent; else TimeoutError.

        Messages scheduled later, or backing off before a retry, are not due and are
        not waited for. It starts no sender: without start_sending() the error says so.
        """
        store = self.store
        dispatcher.wake(store)  # look now rather than at the next poll
        deadline = time.monotonic() + timeout
        while True:
            due = outbox.due_count(store)
            sending = outbox.progress(store)["sending"]
            if not due and not sending:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(WAIT_POLL_SECONDS)
        running = dispatcher.wake(store)
        text = _("After {timeout}s {due} message(s) are still due and {sending} being sent.")
        if not running:
            text += " " + _(
                "No background sender runs in this process: call start_sending() first."
            )
        raise TimeoutError(text.format(timeout=f"{timeout:g}", due=due, sending=sending))
