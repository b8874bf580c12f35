"""SMS after sending: Twilio's delivery reports (callbacks and polling) and inbound replies.

* Status callbacks (`PUBLIC_URL/hooks/twilio/status`, set as each SMS's
  StatusCallback by the twilio sender) and polling (`GET .../Messages/{Sid}.json`,
  for SMS sent in the last POLL_HOURS without a final status, when there is no
  public URL) give the same `MessageStatus`; `report_for` maps it onto a
  delivery report: delivered (and WhatsApp's read) -> `delivered`; undelivered,
  failed and canceled -> `undelivered`, keeping Twilio's ErrorCode and its meaning.
  Intermediate statuses (queued, sending, sent, ...) move nothing. A late
  callback never moves a status backwards (comms.outbox.delivery, D1).
* Inbound replies (`PUBLIC_URL/hooks/twilio/inbound`): stored as inbound
  messages; STOP words opt every client with that number out of SMS (reason
  `replied STOP`) and list the number as suppressed; START opts them back in.

`valid_signature` checks X-Twilio-Signature with the twilio package's
RequestValidator against the URL as comms gave it to Twilio (built from
COMMS_PUBLIC_URL), not the request's host, which a proxy rewrites.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
from twilio.request_validator import RequestValidator, get_signature_algorithm

from comms import actionlog
from comms.clients.options import Change, write_clients
from comms.clients.suppressions import suppress, unsuppress
from comms.errors import ConfigError
from comms.i18n import _
from comms.outbox import delivery
from comms.outbox.states import now
from comms.sending.senders.config import TwilioConfig
from comms.store import Store

log = logging.getLogger(__name__)

POLL_HOURS = 72  # SMS sent longer ago than this are not asked about any more
POLL_FIRST_SECONDS = 30.0  # the first poll of an SMS, after it was sent
POLL_MAX_SECONDS = 6 * 3600.0  # back-off doubles up to this
STOP_REASON = "replied STOP"

# Twilio's MessageStatus -> our report kind (None: not final, nothing to record).
STATUS_KINDS: dict[str, str] = {
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
    "canceled": "undelivered",
}
# Twilio's delivery error codes and what they mean, for the message's reason.
ERROR_MEANINGS: dict[int, str] = {
    30001: "queue overflow",
    30002: "account suspended",
    30003: "unreachable: the handset is off or out of coverage",
    30004: "message blocked by the recipient or carrier",
    30005: "unknown number",
    30006: "landline or unreachable carrier",
    30007: "carrier filtering (marked as spam)",
    30008: "unknown error",
    30009: "missing segment",
    30010: "price exceeds the maximum price",
    30022: "rate limit exceeded",
    30032: "toll-free number not verified",
    30034: "number not registered for A2P 10DLC",
    21610: "the recipient replied STOP to this sender",
    21614: "not a mobile number",
    21408: "no permission to send to this region",
}
STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "odhlasit", "odhlásit"}
)
START_WORDS = frozenset({"start"})


def meaning(code: int | str | None) -> str | None:
    """'unreachable: ...' for 30003; None for no code; 'Twilio error N' for one we do not name."""
    if code in (None, ""):
        return None
    try:
        number = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"Twilio error {code}"
    return ERROR_MEANINGS.get(number, f"Twilio error {number}")


def report_for(
    message_id: int,
    sid: str,
    status: str,
    error_code: Any = None,
    error_message: str | None = None,
    *,
    source: str,
) -> delivery.Report | None:
    """The delivery report a MessageStatus makes, or None when the status is not final."""
    kind = STATUS_KINDS.get((status or "").lower())
    if kind is None:
        return None
    code = str(int(error_code)) if str(error_code or "").strip().isdigit() else None
    what = meaning(code)
    detail = "; ".join(p for p in (what, error_message) if p) or None
    reason = None
    if kind == "undelivered":
        reason = f"{status.lower()}: {code} {what}" if code else f"{status.lower()} at Twilio"
    return delivery.Report(
        kind,
        message_id,
        source,
        code=code,
        detail=detail,
        reason=reason,
        dedupe_key=f"twilio:{sid}:{status.lower()}",
    )


def valid_signature(
    url: str, params: Mapping[str, str], headers: Mapping[str, str], auth_token: str
) -> bool:
    """Whether X-Twilio-Signature signs (url, params) with the account's auth token."""
    signature = headers.get("X-Twilio-Signature") or headers.get("x-twilio-signature") or ""
    if not signature:
        return False
    algorithm = get_signature_algorithm(headers.get("X-Twilio-Webhooks-Signature-Settings"))
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature, algorithm))


# -- status reports ------------------------------------------------------------------------


def _message_by_sid(store: Store, sid: str) -> int | None:
    return store.scalar(
        "SELECT id FROM messages WHERE provider_id = ? AND channel = 'sms' LIMIT 1", [sid]
    )


def status_callback(store: Store, form: Mapping[str, str]) -> str:
    """Apply one status callback's form; what it did (moved, late, duplicate, ...)."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    message_id = _message_by_sid(store, sid) if sid else None
    if message_id is None:
        return "unknown"
    report = report_for(
        message_id,
        sid,
        status,
        form.get("ErrorCode"),
        form.get("ErrorMessage"),
        source="twilio callback",
    )
    if report is None:
        return "not final"

    def write(cur: duckdb.DuckDBPyConnection) -> str:
        (applied,) = delivery.record(cur, [report])
        cur.execute("DELETE FROM sms_polls WHERE message_id = ?", [message_id])
        return applied.outcome

    return store.write(write)


@dataclass
class PollResult:
    """What one round of polling did."""

    asked: int = 0
    delivered: int = 0
    undelivered: int = 0
    pending: int = 0  # not final yet: asked again later
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _backoff(polls: int) -> timedelta:
    return timedelta(seconds=min(POLL_FIRST_SECONDS * 2**polls, POLL_MAX_SECONDS))


def due_for_polling(
    store: Store, *, everything: bool = False, min_age: timedelta | None = None
) -> list[dict[str, Any]]:
    """SMS sent in the last POLL_HOURS, still `sent`, whose next poll is due (or all of them).

    min_age: only those sent at least this long ago (with callbacks configured, polling
    is the safety net for a callback that never came, or came before the SID was stored).
    """
    at = now()
    due = "" if everything else "AND coalesce(p.next_at, m.sent_at + INTERVAL 30 SECOND) <= ?"
    return store.rows(
        f"""
        SELECT m.id, m.provider_id, m.sent_at, coalesce(p.polls, 0) AS polls
        FROM messages m LEFT JOIN sms_polls p ON p.message_id = m.id
        WHERE m.channel = 'sms' AND m.status = 'sent' AND m.provider_id LIKE 'SM%'
          AND m.sent_at >= ? AND m.sent_at <= ? {due}
        ORDER BY m.sent_at LIMIT 5000
        """,
        [at - timedelta(hours=POLL_HOURS), at - (min_age or timedelta(0)),
         *([] if everything else [at])],
    )  # fmt: skip


def poll(
    store: Store,
    config: TwilioConfig | None = None,
    *,
    everything: bool = False,
    min_age: timedelta | None = None,
) -> PollResult:
    """Ask Twilio about SMS without a final status (GET Messages/{Sid}.json) and apply it.

    Each SMS is asked again with a doubling back-off (30 s, 1 min, 2 min, ... up
    to 6 h) until it is final or older than POLL_HOURS; `everything` asks about
    all of them now (`comms sms-status`).
    """
    cfg = config or TwilioConfig.from_settings()
    if cfg is None:
        raise ConfigError(_("Twilio is not configured: there is nothing to ask about SMS status."))
    from comms.sending.senders.twilio_sms import TwilioSender

    result = PollResult()
    rows = due_for_polling(store, everything=everything, min_age=min_age)
    if not rows:
        return result
    sender = TwilioSender(cfg)
    reports: list[delivery.Report] = []
    asked: list[dict[str, Any]] = []
    try:
        sender.open()
        for row in rows:
            try:
                fetched = sender.fetch_status(row["provider_id"])
            except Exception as exc:  # one lookup failing must not stop the others
                result.errors.append(f"{row['provider_id']}: {exc}")
                if len(result.errors) >= 5:
                    break
                continue
            result.asked += 1
            asked.append(row)
            report = report_for(
                row["id"],
                row["provider_id"],
                fetched["status"],
                fetched.get("error_code"),
                fetched.get("error_message"),
                source="twilio poll",
            )
            if report is None:
                result.pending += 1
            else:
                reports.append(report)
    finally:
        sender.close()

    def write(cur: duckdb.DuckDBPyConnection) -> list[delivery.Applied]:
        applied = delivery.record(cur, reports)
        final = [int(r.message_id) for r in reports]
        waiting = [r for r in asked if r["id"] not in set(final)]
        cur.execute(
            "DELETE FROM sms_polls WHERE message_id IN (SELECT unnest(?::BIGINT[]))",
            [final + [r["id"] for r in waiting]],
        )
        if waiting:
            at = now()
            cur.execute(
                "INSERT INTO sms_polls SELECT unnest(?::BIGINT[]), unnest(?::INTEGER[]),"
                " unnest(?::TIMESTAMP[])",
                [
                    [r["id"] for r in waiting],
                    [r["polls"] + 1 for r in waiting],
                    [at + _backoff(r["polls"] + 1) for r in waiting],
                ],
            )
        return applied

    for a in store.write(write):
        if a.outcome == "moved":
            if a.report.kind == "delivered":
                result.delivered += 1
            else:
                result.undelivered += 1
    return result


# -- inbound replies -------------------------------------------------------------------------


def keyword(body: str | None) -> str | None:
    """'stop' / 'start' when the whole reply is one of those words (any case, accents kept or
    not, trailing punctuation ignored), else None."""
    word = re.sub(r"[\s.!?,;:]+$", "", (body or "").strip()).casefold()
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    if word in STOP_WORDS or plain in STOP_WORDS:
        return "stop"
    if word in START_WORDS or plain in START_WORDS:
        return "start"
    return None


@dataclass(frozen=True)
class Inbound:
    """One stored reply and what it did."""

    id: int | None
    from_address: str
    keyword: str | None
    client_ids: tuple[int, ...]
    duplicate: bool = False


def inbound(store: Store, form: Mapping[str, str]) -> Inbound:
    """Store one inbound SMS (From, To, Body, MessageSid); STOP / START change consent."""
    sender = (form.get("From") or "").strip()
    body = form.get("Body") or ""
    sid = form.get("MessageSid") or form.get("SmsSid") or None
    word = keyword(body)

    def write(cur: duckdb.DuckDBPyConnection, change: Change) -> Inbound:
        if sid:
            (seen,) = cur.execute(
                "SELECT count(*) FROM inbound_messages WHERE provider_id = ?", [sid]
            ).fetchone()
            if seen:  # Twilio retried a webhook we already took
                return Inbound(None, sender, word, (), duplicate=True)
        clients = tuple(
            int(r[0])
            for r in cur.execute(
                "SELECT id FROM clients WHERE phone = ? ORDER BY id", [sender]
            ).fetchall()
        )
        (new_id,) = cur.execute(
            "INSERT INTO inbound_messages (received_at, channel, client_id, from_address,"
            " to_address, body, provider_id, keyword) VALUES (?, 'sms', ?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            [now(), clients[0] if clients else None, sender, form.get("To"), body, sid, word],
        ).fetchone()
        entries: list[dict[str, Any]] = []
        if word == "stop" and sender:
            if clients:
                cur.execute(
                    "UPDATE clients SET consent_sms = false, updated_at = current_timestamp"
                    " WHERE id IN (SELECT unnest(?::BIGINT[]))",
                    [list(clients)],
                )
            suppress(cur, [(sender, "sms")], STOP_REASON)
            entries = [
                {
                    "action": "opt-out",
                    "client_id": c,
                    "detail": {"channel": "sms", "address": sender, "reason": STOP_REASON},
                }
                for c in clients
            ] or [{"action": "suppression added", "detail": {"address": sender, "channel": "sms",
                                                            "reason": STOP_REASON}}]  # fmt: skip
        elif word == "start" and sender:
            if clients:
                cur.execute(
                    "UPDATE clients SET consent_sms = true, updated_at = current_timestamp"
                    " WHERE id IN (SELECT unnest(?::BIGINT[]))",
                    [list(clients)],
                )
            unsuppress(cur, sender, "sms")
            entries = [
                {"action": "opt-in", "client_id": c, "detail": {"channel": "sms",
                                                                "address": sender}}
                for c in clients
            ]  # fmt: skip
        entries.insert(
            0,
            {
                "action": "sms reply",
                "client_id": clients[0] if clients else None,
                "detail": {"from": sender, "keyword": word, "inbound_id": int(new_id)},
            },
        )
        actionlog.record_many(cur, entries)
        return Inbound(int(new_id), sender, word, clients)

    return write_clients(store, write)
