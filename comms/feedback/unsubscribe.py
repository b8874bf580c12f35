"""Unsubscribing from a message's link (RFC 8058 one-click) or its mailto: address.

`unsubscribe(store, token)` checks the token (comms.feedback.keys: it names one
message and is signed), then in ONE transaction of the store's one writer:

* withdraws the client's consent for the message's channel (`comms clients
  --json` then shows `consent_email: false`);
* lists the address the message went to as suppressed, with reason
  `unsubscribed`;
* records an `unsubscribed` report on the message (comms.outbox.delivery), which
  writes the action-log entry naming the message.

Repeating it changes nothing and writes nothing more. A tampered or unknown
token raises BadToken / NotFound before anything is written. A GET of the link
never unsubscribes (mail scanners fetch links): comms.web shows a page whose
button POSTs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from comms.clients.options import Change, write_clients
from comms.clients.suppressions import suppress
from comms.errors import NotFound
from comms.feedback.keys import BadToken, read_token, signing_key
from comms.feedback.links import PURPOSE_UNSUBSCRIBE
from comms.outbox import delivery
from comms.rules.validation import CHANNELS
from comms.store import Store, dicts

REASON = "unsubscribed"

__all__ = ["REASON", "BadToken", "Unsubscribed", "message_for_token", "unsubscribe"]


@dataclass(frozen=True)
class Unsubscribed:
    """The outcome of one unsubscribe."""

    message_id: int
    client_id: int | None
    channel: str
    address: str | None
    changed: bool  # False: it was already done (a repeated click)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def message_for_token(store: Store, token: str) -> dict[str, Any]:
    """The message a token names (id, channel, to_address, client_id); BadToken / NotFound."""
    message_id = read_token(signing_key(store.path), PURPOSE_UNSUBSCRIBE, token)
    rows = store.rows(
        "SELECT id, channel, to_address, client_id, batch_id FROM messages WHERE id = ?",
        [message_id],
    )
    if not rows:
        raise NotFound("This unsubscribe link names no message of ours.")
    return rows[0]


def unsubscribe(store: Store, token: str, *, source: str = "web") -> Unsubscribed:
    """Opt the message's recipient out of its channel; harmless when repeated."""
    message = message_for_token(store, token)
    channel = message["channel"]
    assert channel in CHANNELS  # the consent column's name below comes from it
    address = message["to_address"]

    def write(cur: duckdb.DuckDBPyConnection, change: Change) -> Unsubscribed:
        withdrawn = 0
        if message["client_id"] is not None:
            (withdrawn,) = cur.execute(
                f"SELECT count(*) FROM clients WHERE id = ? AND consent_{channel}",
                [message["client_id"]],
            ).fetchone()
            if withdrawn:
                cur.execute(
                    f"UPDATE clients SET consent_{channel} = false,"
                    " updated_at = current_timestamp WHERE id = ?",
                    [message["client_id"]],
                )
        listed = suppress(cur, [(address, channel)], REASON) if address else 0
        changed = bool(withdrawn or listed)
        if changed:
            delivery.record(
                cur,
                [
                    delivery.Report(
                        "unsubscribed",
                        message["id"],
                        source,
                        detail=_what_changed(bool(withdrawn), bool(listed), channel),
                        address=address,
                    )
                ],
            )
        return Unsubscribed(message["id"], message["client_id"], channel, address, changed)

    return write_clients(store, write)


def _what_changed(withdrawn: bool, listed: bool, channel: str) -> str:
    parts = []
    if withdrawn:
        parts.append(f"consent for {channel} withdrawn")
    if listed:
        parts.append("address suppressed")
    return ", ".join(parts)


def is_unsubscribed(store: Store, message_id: int) -> bool:
    """Whether the message's address is on the suppression list for its channel."""
    rows = dicts(
        store.cursor(),
        "SELECT 1 FROM messages m JOIN suppressions s ON lower(s.address) = lower(m.to_address)"
        " AND s.channel = m.channel WHERE m.id = ?",
        [int(message_id)],
    )
    return bool(rows)
