"""Where bounces come from, and applying what they say: files (.eml, mbox) and the IMAP mailbox.

`process(store, mails, source)` reads each mail (comms.feedback.bounces),
finds its message (VERP token, else the returned Message-ID among the sent
e-mails' provider ids) and applies it in one transaction per mail:

* hard bounce -> the message becomes `bounced` (comms.outbox.delivery) with
  its status code and diagnostic; the address is suppressed with reason
  `bounced: 5.1.1 user unknown`;
* soft bounce -> recorded on the message; the address's Nth soft bounce in a
  row (COMMS_SOFT_BOUNCE_LIMIT, default 3; a delivery or a hard bounce ends a
  row) counts as a hard one;
* complaint (ARF) -> the address is suppressed with reason `complaint`;
* mailto unsubscribe -> comms.feedback.unsubscribe.

A mail seen again (same Message-ID and recipient) is a duplicate and changes
nothing, so importing a file twice or re-reading a mailbox counts nothing twice.

IMAP (`fetch_imap`): TLS by default. Mail that was applied, or was a
duplicate, or names no message of ours, is flagged `\\Seen $CommsProcessed`
(and moved to COMMS_BOUNCE_IMAP_MOVE_TO when set); mail that is not a bounce
is left where it is, unread, and only given the keyword `$CommsIgnored` so
that it is not downloaded again.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox as stdlib_mailbox
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from comms.clients.suppressions import suppress
from comms.errors import CommsError
from comms.feedback import bounces, unsubscribe
from comms.feedback.keys import BadToken, signing_key
from comms.i18n import _
from comms.outbox import delivery
from comms.sending.senders.config import FeedbackConfig, ImapConfig
from comms.store import Store

log = logging.getLogger(__name__)

PROCESSED = "$CommsProcessed"
IGNORED = "$CommsIgnored"
COMPLAINT_REASON = "complaint"


@dataclass
class Summary:
    """What a batch of mails did."""

    read: int = 0
    bounced: int = 0  # hard bounces applied (the message became bounced)
    soft: int = 0  # soft bounces recorded (not yet a row)
    complaints: int = 0
    unsubscribed: int = 0
    suppressed: int = 0  # addresses newly listed
    duplicates: int = 0
    late: int = 0  # about a message already past `sent` (e.g. bounced before)
    unmatched: int = 0  # a bounce naming no message of ours
    ignored: int = 0  # not a bounce, complaint or unsubscribe: left alone
    errors: list[str] = field(default_factory=list)

    def add(self, other: Summary) -> None:
        for name, value in other.__dict__.items():
            if name == "errors":
                self.errors.extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _message_for(cur: duckdb.DuckDBPyConnection, f: bounces.Finding) -> int | None:
    """Our e-mail that a finding is about: its VERP token, else its Message-ID."""
    if f.verp_message_id is not None:
        row = cur.execute(
            "SELECT id FROM messages WHERE id = ? AND channel = 'email'", [f.verp_message_id]
        ).fetchone()
        if row:
            return int(row[0])
    if f.original_message_id:
        row = cur.execute(
            "SELECT id FROM messages WHERE provider_id = ? AND channel = 'email' LIMIT 1",
            [f.original_message_id],
        ).fetchone()
        if row:
            return int(row[0])
    return None


def _soft_in_a_row(cur: duckdb.DuckDBPyConnection, address: str, message_id: int) -> int:
    """Soft bounces of the address since its last delivery or hard bounce, counting this one
    (one per message)."""
    (count,) = cur.execute(
        """
        SELECT count(DISTINCT message_id) FROM feedback_events
        WHERE lower(address) = lower(?) AND kind = 'soft bounce' AND message_id <> ?
          AND ts > coalesce((SELECT max(ts) FROM feedback_events
                             WHERE lower(address) = lower(?) AND kind IN ('bounced', 'delivered')),
                            TIMESTAMP '1970-01-01')
        """,
        [address, message_id, address],
    ).fetchone()
    return int(count) + 1


def _apply(
    cur: duckdb.DuckDBPyConnection, f: bounces.Finding, source: str, limit: int
) -> tuple[str, int]:
    """Apply one finding; (what happened, addresses newly suppressed)."""
    message_id = _message_for(cur, f)
    if message_id is None:
        return "unmatched", 0
    (to_address,) = cur.execute(
        "SELECT to_address FROM messages WHERE id = ?", [message_id]
    ).fetchone()
    address = to_address or f.recipient
    code_text = f"{f.status} {f.meaning}" if f.status else f.meaning
    if f.kind == "complaint":
        report = delivery.Report(
            "complaint", message_id, source, detail=f.diagnostic, address=address,
            dedupe_key=f.dedupe_key,
        )  # fmt: skip
    elif f.kind == "soft" and _soft_in_a_row(cur, address, message_id) < limit:
        report = delivery.Report(
            "soft bounce", message_id, source, code=f.status, detail=f.diagnostic,
            address=address, dedupe_key=f.dedupe_key,
        )  # fmt: skip
    else:
        reason = f"bounced: {code_text}"
        if f.kind == "soft":
            reason = f"bounced: {limit} soft bounces in a row (last {code_text})"
        report = delivery.Report(
            "bounced", message_id, source, code=f.status, detail=f.diagnostic, reason=reason,
            address=address, dedupe_key=f.dedupe_key,
        )  # fmt: skip
    (applied,) = delivery.record(cur, [report])
    if applied.outcome in ("duplicate", "unknown"):
        return applied.outcome, 0
    listed = 0
    if report.kind == "bounced" and address:
        listed = suppress(cur, [(address, "email")], report.reason or "bounced")
    elif report.kind == "complaint" and address:
        listed = suppress(cur, [(address, "email")], COMPLAINT_REASON)
    if applied.outcome == "late" and report.kind == "bounced":
        return "late", listed
    return {"bounced": "bounced", "soft bounce": "soft", "complaint": "complaints"}[
        report.kind
    ], listed


def process_one(store: Store, raw: bytes, source: str) -> tuple[str, Summary]:
    """Read and apply one mail: ('applied' | 'ignored', its summary)."""
    summary = Summary(read=1)
    key = signing_key(store.path)
    try:
        findings = bounces.read_mail(raw, key)
    except Exception as exc:  # a mail we cannot even parse: leave it for a person
        log.warning("cannot read a mail from %s: %s", source, type(exc).__name__)
        summary.ignored += 1
        return "ignored", summary
    if not findings:
        summary.ignored += 1
        return "ignored", summary
    limit = FeedbackConfig.from_settings().soft_bounce_limit
    for f in findings:
        if f.kind == "unsubscribe":
            try:
                done = unsubscribe.unsubscribe(store, f.unsubscribe_token or "", source="mailto")
            except (BadToken, CommsError):
                summary.unmatched += 1
                continue
            if done.changed:
                summary.unsubscribed += 1
            else:
                summary.duplicates += 1
            continue
        what, listed = store.write(lambda cur, f=f: _apply(cur, f, source, limit))
        summary.suppressed += listed
        if what in ("duplicate", "unmatched", "late", "bounced", "soft", "complaints"):
            name = {"duplicate": "duplicates"}.get(what, what)
            setattr(summary, name, getattr(summary, name) + 1)
    return "applied", summary


def process(store: Store, mails: Iterable[bytes], source: str) -> Summary:
    """Read and apply several mails."""
    total = Summary()
    for raw in mails:
        _, one = process_one(store, raw, source)
        total.add(one)
    return total


# -- files ---------------------------------------------------------------------------------


def mails_in_file(path: Path) -> Iterator[bytes]:
    """The mails of one .eml file (one mail) or mbox file ("From " lines between mails)."""
    data = path.read_bytes()
    if not data.startswith(b"From "):
        yield data
        return
    box = stdlib_mailbox.mbox(str(path), create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def import_files(store: Store, paths: Iterable[str | Path]) -> dict[str, Any]:
    """`comms bounces import`: apply the mails of .eml and mbox files; totals and per file."""
    total, files = Summary(), []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise CommsError(
                _("{path}: no such file (give .eml files or an mbox).").format(path=path)
            )
        one = process(store, mails_in_file(path), "file")
        files.append({"file": str(path), **one.to_dict()})
        total.add(one)
    return {**total.to_dict(), "files": files}


# -- IMAP -----------------------------------------------------------------------------------


def _connect(cfg: ImapConfig) -> imaplib.IMAP4:
    where = f"{cfg.host}:{cfg.port}"
    try:
        if cfg.security == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                cfg.host, cfg.port, ssl_context=ssl.create_default_context(), timeout=30
            )
        else:
            conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=30)
            if cfg.security == "starttls":
                conn.starttls(ssl.create_default_context())
        conn.login(cfg.user, cfg.password)
    except imaplib.IMAP4.error as exc:
        raise CommsError(
            _("The bounce mailbox {where} refused the login: {error}").format(
                where=where, error=_text(exc)
            )
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise CommsError(
            _("Cannot reach the bounce mailbox {where}: {error}").format(where=where, error=exc)
        ) from None
    return conn


def _text(exc: BaseException) -> str:
    return str(exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(
        exc.args[0], bytes) else exc)  # fmt: skip


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_imap(store: Store, cfg: ImapConfig | None = None) -> Summary:
    """Read the bounce mailbox's new mail and apply it (`comms bounces fetch`, the app's reader)."""
    cfg = cfg or FeedbackConfig.from_settings().imap
    if cfg is None:
        raise CommsError(_("No bounce mailbox is configured (COMMS_BOUNCE_IMAP_HOST)."))
    conn = _connect(cfg)
    total = Summary()
    try:
        typ, _reply = conn.select(_quote(cfg.folder))
        if typ != "OK":
            raise CommsError(
                _("The bounce mailbox has no folder {folder}.").format(folder=repr(cfg.folder))
            )
        typ, data = conn.uid("SEARCH", None, "UNKEYWORD", PROCESSED, "UNKEYWORD", IGNORED)
        if typ != "OK":
            raise CommsError(_("The bounce mailbox refused the search for new mail."))
        uids = (data[0] or b"").split()
        can_move = b"MOVE" in b" ".join(
            c.encode() if isinstance(c, str) else c for c in conn.capabilities
        )
        for uid in uids:
            typ, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
            if typ != "OK" or raw is None:
                continue
            what, one = process_one(store, raw, "imap")
            total.add(one)
            # Flagged only after the mail's transaction committed: a crash in between
            # means it is read again, and its dedupe key makes that a duplicate.
            if what == "ignored":
                conn.uid("STORE", uid, "+FLAGS", f"({IGNORED})")
                continue
            conn.uid("STORE", uid, "+FLAGS", f"(\\Seen {PROCESSED})")
            if cfg.move_to:
                if can_move:
                    conn.uid("MOVE", uid, _quote(cfg.move_to))
                else:
                    conn.uid("COPY", uid, _quote(cfg.move_to))
                    conn.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        if cfg.move_to and not can_move:
            conn.expunge()
    finally:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    return total
