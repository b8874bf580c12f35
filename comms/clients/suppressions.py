"""The suppression list: addresses that are never sent to, and uploads of such addresses.

Suppressions hold normalised addresses (e-mail as email-validator normalises it,
phones in E.164) with channel 'email' or 'sms'; generation skips any recipient
whose address is listed, with the reason `opted out`. An upload holds one
address per line in its first column and is decoded like a client list
(comms.clients.reading: encoding, delimiter). Every change is written in one
transaction together with its action-log entry; `suppress` and `unsuppress`
also serve a client's opt-out and opt-in (comms.clients.profile) inside that
change's transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from comms import actionlog
from comms.clients.reading import NotText, decode, sniff_delimiter
from comms.config import default_region
from comms.errors import CommsError, ImportFailed
from comms.i18n import N_, _
from comms.rules.validation import CHANNELS, check_email, check_phone
from comms.store import Store

if TYPE_CHECKING:
    import pandas as pd

_HEADER_WORDS = ("mail", "phone", "telefon", "mobil", "address", "adresa", "číslo", "number")


# The fields InvalidField names, as a person reads them (the key itself stays English).
_FIELD_NAMES = {
    "name": N_("name"),
    "e-mail": N_("e-mail"),
    "phone": N_("phone"),
    "company": N_("company"),
    "city": N_("city"),
    "attributes": N_("attributes"),
    "reason": N_("reason"),
    "address": N_("address"),
    "file": N_("file"),
}


class InvalidField(CommsError):
    """A value a person gave (an edited field, an address, a file) does not pass validation;
    nothing was saved.

    `field` is the field's key (English); `reason` and the message are in the viewer's
    language (the caller translates `message`)."""

    def __init__(self, field_name: str, message: str) -> None:
        shown = _(_FIELD_NAMES[field_name]) if field_name in _FIELD_NAMES else field_name
        super().__init__(
            _("{field}: {message}. Nothing was saved.").format(field=shown, message=message)
        )
        self.field = field_name
        self.reason = message


def shown_check(code: str) -> str:
    """A checker's reason code ('invalid e-mail: <detail>', 'no phone') in the viewer's
    language: the named part is translated (core.po), the detail is data and stays."""
    head, sep, detail = code.partition(": ")
    return _(head) + sep + detail


def check_channel(channel: str) -> None:
    """Refuse a channel other than 'email' or 'sms'."""
    if channel not in CHANNELS:
        raise CommsError(
            _("channel: must be 'email' or 'sms', not {channel!r}.").format(channel=channel)
        )


def suppress(cur: duckdb.DuckDBPyConnection, entries: list[tuple[str, str]], reason: str) -> int:
    """List (address, channel) pairs not yet listed, inside the caller's transaction;
    returns how many were new."""
    if not entries:
        return 0
    unique = list(dict.fromkeys(entries))
    inserted = cur.execute(
        """
        INSERT INTO suppressions (address, channel, reason, created_by)
        SELECT n.address, n.channel, ?, ? FROM (
            SELECT unnest(?::VARCHAR[]) AS address, unnest(?::VARCHAR[]) AS channel
        ) n
        WHERE NOT EXISTS (SELECT 1 FROM suppressions s
                          WHERE lower(s.address) = lower(n.address)
                            AND s.channel = n.channel)
        RETURNING address
        """,
        [
            reason,
            actionlog.current_user(),
            [a for a, _ in unique],
            [c for _, c in unique],
        ],
    ).fetchall()
    return len(inserted)


def unsuppress(cur: duckdb.DuckDBPyConnection, address: str, channel: str) -> int:
    """Take an address off the list inside the caller's transaction; how many rows went."""
    where = "lower(address) = lower(?) AND channel = ?"
    n = cur.execute(f"SELECT count(*) FROM suppressions WHERE {where}", [address, channel])
    removed = int(n.fetchone()[0])
    cur.execute(f"DELETE FROM suppressions WHERE {where}", [address, channel])
    return removed


def suppression_of(store: Store, address: str | None, channel: str) -> dict[str, Any] | None:
    """The suppression row of an address, or None when it is not listed."""
    if not address:
        return None
    rows = store.rows(
        "SELECT address, channel, reason, created_by, created_at FROM suppressions"
        " WHERE lower(address) = lower(?) AND channel = ? LIMIT 1",
        [address, channel],
    )
    return rows[0] if rows else None


def list_suppressions(
    store: Store, *, channel: str | None = None, search: str | None = None, limit: int = 1000
) -> pd.DataFrame:
    """Suppressed addresses, newest first (with the matching client when there is one)."""
    where, params = ["true"], []
    if channel:
        where.append("s.channel = ?")
        params.append(channel)
    if search and search.strip():
        where.append("s.address ILIKE ?")
        params.append(f"%{search.strip()}%")
    return store.df(
        f"""
        SELECT s.address, s.channel, s.reason, s.created_by, s.created_at
        FROM suppressions s WHERE {" AND ".join(where)}
        ORDER BY s.created_at DESC, s.address LIMIT ?
        """,
        [*params, int(limit)],
    )


def count_suppressions(store: Store) -> int:
    """How many addresses are listed (both channels)."""
    return int(store.scalar("SELECT count(*) FROM suppressions") or 0)


def normalise_address(raw: str, *, region: str | None = None) -> tuple[str, str]:
    """(normalised address, channel) of one e-mail or phone; raises InvalidField."""
    text = (raw or "").strip()
    if "@" in text:
        check = check_email(text)
        if not check.ok:
            raise InvalidField("address", shown_check(check.error or "invalid e-mail"))
        return check.address, "email"
    check = check_phone(text, region or default_region())
    if not check.ok:
        raise InvalidField("address", shown_check(check.error or "invalid phone"))
    return check.e164, "sms"


def add_suppression(
    store: Store, address: str, reason: str, *, channel: str | None = None
) -> tuple[str, str]:
    """List one address (normalised; channel from its form unless given)."""
    norm, detected = normalise_address(address)
    channel = channel or detected
    check_channel(channel)
    if channel != detected:
        if channel == "email":
            text = _("{address} is not an address for email")
        else:
            text = _("{address} is not an address for sms")
        raise InvalidField("address", text.format(address=norm))

    def write(cur: duckdb.DuckDBPyConnection) -> None:
        suppress(cur, [(norm, channel)], reason or "added by hand")
        actionlog.record(
            cur, "suppression added", detail={"address": norm, "channel": channel, "reason": reason}
        )

    store.write(write)
    return norm, channel


def remove_suppression(store: Store, address: str, channel: str) -> int:
    """Take an address off the list; returns how many rows were removed."""
    check_channel(channel)

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        removed = unsuppress(cur, address, channel)
        actionlog.record(
            cur, "suppression removed", detail={"address": address, "channel": channel}
        )
        return removed

    return store.write(write)


@dataclass
class AddressList:
    """A parsed upload of addresses: the usable ones and each bad line with its number."""

    entries: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, channel)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    duplicates: int = 0
    header_skipped: bool = False


def _text_of(data: bytes | str) -> str:
    """An uploaded list as text, decoded like a client list; InvalidField when it is not text."""
    if isinstance(data, str):
        return data
    try:
        return decode(data)[0]
    except NotText:
        raise InvalidField(
            "file", _("this is not a text file (CSV or TXT with one address per line)")
        ) from None
    except ImportFailed as exc:
        raise InvalidField("file", str(exc).rstrip(".")) from None


def parse_address_list(data: bytes | str, *, region: str | None = None) -> AddressList:
    """Read a CSV/TXT of addresses (first column, one per line) into normalised entries."""
    text = _text_of(data)
    result = AddressList()
    seen: set[tuple[str, str]] = set()
    first_content = True
    reader = csv.reader(io.StringIO(text), delimiter=sniff_delimiter(text))
    for number, cells in enumerate(reader, start=1):
        raw = next((c.strip() for c in cells if c.strip()), "")
        if not raw or raw.startswith("#"):
            continue
        try:
            address, channel = normalise_address(raw, region=region)
        except InvalidField as exc:
            looks_like_header = any(w in raw.lower() for w in _HEADER_WORDS) and "@" not in raw
            if first_content and looks_like_header:
                result.header_skipped = True
            else:
                result.errors.append((number, raw, exc.reason))
            first_content = False
            continue
        first_content = False
        key = (address.lower(), channel)  # e-mail local parts differ only in case: same person
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        result.entries.append((number, address, channel))
    return result


def import_suppressions(store: Store, parsed: AddressList, reason: str) -> int:
    """Write a parsed list's usable entries in one transaction; returns how many were new."""
    reason = (reason or "").strip() or "uploaded list"
    pairs = [(address, channel) for _, address, channel in parsed.entries]

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        added = suppress(cur, pairs, reason)
        actionlog.record(
            cur,
            "suppressions imported",
            detail={
                "lines": len(parsed.entries),
                "new": added,
                "bad_lines": [line for line, _, _ in parsed.errors],
                "reason": reason,
            },
        )
        return added

    return store.write(write)
