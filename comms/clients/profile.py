"""One client's profile: edits with re-validation, opt-outs, and the suppression list.

Suppressions hold normalised addresses (e-mail as email-validator normalises it,
phones in E.164) with channel 'email' or 'sms'; generation skips any recipient
whose address is listed, with the reason `opted out`. Every change is written
in one transaction together with its action-log entry.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from comms import actionlog
from comms.config import default_region
from comms.errors import CommsError, NotFound
from comms.rules.validation import CHANNELS, check_email, check_phone
from comms.store import Store

EDITABLE = (
    "name",
    "email",
    "phone",
    "company",
    "city",
    "consent_email",
    "consent_sms",
    "tags",
    "attributes",
)
DEFAULT_OPT_OUT_REASON = "client asked to stop"
_HEADER_WORDS = ("mail", "phone", "telefon", "mobil", "address", "adresa", "číslo", "number")


class InvalidField(CommsError):
    """An edited value does not pass validation; nothing was saved."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}. Nothing was saved.")
        self.field = field_name
        self.reason = message


def _client_row(cur: duckdb.DuckDBPyConnection, client_id: int) -> dict[str, Any]:
    res = cur.execute("SELECT * FROM clients WHERE id = ?", [int(client_id)])
    names = [d[0] for d in res.description]
    row = res.fetchone()
    if row is None:
        raise NotFound(f"Client {client_id} does not exist.")
    return dict(zip(names, row, strict=True))


def load_client(store: Store, client_id: int) -> dict[str, Any]:
    """The client's row with attributes parsed, plus its suppression state per channel."""
    client = _client_row(store.cursor(), client_id)
    client["attributes"] = _parse_attributes(client.get("attributes"))
    client["suppressed"] = {
        ch: suppression_of(store, client_address(client, ch), ch) for ch in CHANNELS
    }
    return client


def _parse_attributes(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def client_address(client: dict[str, Any], channel: str) -> str | None:
    """The normalised address of a client for a channel, or None when it has none usable."""
    if channel == "email":
        return client.get("email") if client.get("email_valid") and client.get("email") else None
    phone = client.get("phone")
    kind = client.get("phone_kind")
    return phone if phone and kind and kind != "invalid" and phone.startswith("+") else None


def _clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.replace(";", ",").split(",")
    out: list[str] = []
    for t in tags:
        t = str(t).strip()
        if t and t not in out:
            out.append(t)
    return out


def _clean_attributes(attrs: Any) -> dict[str, Any]:
    if attrs is None:
        return {}
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidField(
                "attributes", f"not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from None
    if not isinstance(attrs, dict):
        raise InvalidField("attributes", "must be an object of name: value pairs")
    clean: dict[str, Any] = {}
    for key, value in attrs.items():
        key = str(key).strip()
        if not key:
            raise InvalidField("attributes", "an attribute has an empty name")
        if isinstance(value, (dict, list)):
            raise InvalidField("attributes", f"'{key}' must be a single value, not a list")
        clean[key] = value
    return clean


def _clause(text: str | None) -> str:
    """A checker's sentence inside parentheses: without its final full stop."""
    return (text or "").strip().rstrip(".")


def validate_changes(changes: dict[str, Any], *, region: str | None = None) -> dict[str, Any]:
    """Normalise and check edited fields; the columns to write (raises InvalidField)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidField(sorted(unknown)[0], "this field cannot be edited")
    out: dict[str, Any] = {}
    for key in ("name", "company", "city"):
        if key in changes:
            value = (changes[key] or "").strip()
            if any(c in value for c in "\r\n"):
                raise InvalidField(key, "must be one line")
            out[key] = value or None
    if "name" in out and not out["name"]:
        raise InvalidField("name", "cannot be empty")
    if "email" in changes:
        raw = (changes["email"] or "").strip()
        if raw:
            check = check_email(raw)
            if not check.ok:
                raise InvalidField("e-mail", f"'{raw}' is not valid ({_clause(check.error)})")
            out.update(email=check.address, email_valid=True, email_error=None)
        else:
            out.update(email=None, email_valid=False, email_error=None)
    if "phone" in changes:
        raw = (changes["phone"] or "").strip()
        if raw:
            check = check_phone(raw, region or default_region())
            if not check.ok:
                raise InvalidField("phone", f"'{raw}' is not valid ({_clause(check.error)})")
            out.update(phone=check.e164, phone_kind=check.kind)
        else:
            out.update(phone=None, phone_kind=None)
    for key in ("consent_email", "consent_sms"):
        if key in changes:
            out[key] = bool(changes[key])
    if "tags" in changes:
        out["tags"] = _clean_tags(changes["tags"])
    if "attributes" in changes:
        out["attributes"] = json.dumps(
            _clean_attributes(changes["attributes"]), ensure_ascii=False, default=str
        )
    return out


def update_client(
    store: Store, client_id: int, changes: dict[str, Any], *, region: str | None = None
) -> dict[str, Any]:
    """Validate and save edits to one client; returns {field: [old, new]} of what changed."""
    values = validate_changes(changes, region=region)

    def write(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        before = _client_row(cur, client_id)
        if values.get("email"):
            other = cur.execute(
                "SELECT id, name FROM clients WHERE lower(email) = lower(?) AND id <> ?"
                " AND email_valid LIMIT 1",
                [values["email"], int(client_id)],
            ).fetchone()
            if other:
                raise InvalidField(
                    "e-mail", f"{values['email']} already belongs to client {other[0]} ({other[1]})"
                )
        old_attrs = _parse_attributes(before.get("attributes"))
        diff: dict[str, Any] = {}
        for key, new in values.items():
            old = before.get(key)
            if key == "attributes":
                old, new_cmp = old_attrs, json.loads(new)
            else:
                new_cmp = new
            if key == "tags":
                old = list(old or [])
            if old != new_cmp:
                diff[key] = [old, new_cmp]
        if not diff:
            return {}
        cols = [k for k in values if k in diff or k in ("email_valid", "email_error", "phone_kind")]
        assignments = ", ".join(f"{c} = ?" for c in cols)
        cur.execute(
            f"UPDATE clients SET {assignments}, updated_at = current_timestamp WHERE id = ?",
            [values[c] for c in cols] + [int(client_id)],
        )
        actionlog.record(cur, "client edited", client_id=int(client_id), detail={"changed": diff})
        return diff

    return store.write(write)


# -- opt-out ---------------------------------------------------------------------


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise CommsError(f"channel: must be 'email' or 'sms', not {channel!r}.")


def _insert_suppressions(
    cur: duckdb.DuckDBPyConnection, entries: list[tuple[str, str]], reason: str
) -> int:
    """Insert (address, channel) pairs not yet listed; returns how many were new."""
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


def _set_consent(
    cur: duckdb.DuckDBPyConnection, client_id: int, channel: str, value: bool
) -> str | None:
    """Set the client's consent flag for a channel; the client's address on it."""
    client = _client_row(cur, client_id)
    # channel was checked against the two known ones: the column name is safe.
    cur.execute(
        f"UPDATE clients SET consent_{channel} = ?, updated_at = current_timestamp WHERE id = ?",
        [value, int(client_id)],
    )
    return client_address(client, channel)


def opt_out(store: Store, client_id: int, channel: str, reason: str) -> dict[str, Any]:
    """Withdraw a client's consent for a channel and list its address as suppressed."""
    _check_channel(channel)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidField("reason", "say why the client is opted out")

    def write(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        address = _set_consent(cur, client_id, channel, False)
        added = _insert_suppressions(cur, [(address, channel)], reason) if address else 0
        actionlog.record(
            cur,
            "opt-out",
            client_id=int(client_id),
            detail={"channel": channel, "address": address, "reason": reason},
        )
        return {"channel": channel, "address": address, "suppressed": bool(address), "new": added}

    return store.write(write)


def opt_in(store: Store, client_id: int, channel: str) -> dict[str, Any]:
    """Give consent back for a channel and remove the client's address from the list."""
    _check_channel(channel)

    def write(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        address = _set_consent(cur, client_id, channel, True)
        if address:
            cur.execute(
                "DELETE FROM suppressions WHERE lower(address) = lower(?) AND channel = ?",
                [address, channel],
            )
        actionlog.record(
            cur, "opt-in", client_id=int(client_id), detail={"channel": channel, "address": address}
        )
        return {"channel": channel, "address": address}

    return store.write(write)


# -- the suppression list ----------------------------------------------------------


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
    return int(store.scalar("SELECT count(*) FROM suppressions") or 0)


def normalise_address(raw: str, *, region: str | None = None) -> tuple[str, str]:
    """(normalised address, channel) of one e-mail or phone; raises InvalidField."""
    text = (raw or "").strip()
    if "@" in text:
        check = check_email(text)
        if not check.ok:
            raise InvalidField("address", check.error or "invalid e-mail")
        return check.address, "email"
    check = check_phone(text, region or default_region())
    if not check.ok:
        raise InvalidField("address", check.error or "invalid phone")
    return check.e164, "sms"


def add_suppression(
    store: Store, address: str, reason: str, *, channel: str | None = None
) -> tuple[str, str]:
    """List one address (normalised; channel from its form unless given)."""
    norm, detected = normalise_address(address)
    channel = channel or detected
    _check_channel(channel)
    if channel != detected:
        raise InvalidField("address", f"{norm} is not an address for {channel}")

    def write(cur: duckdb.DuckDBPyConnection) -> None:
        _insert_suppressions(cur, [(norm, channel)], reason or "added by hand")
        actionlog.record(
            cur, "suppression added", detail={"address": norm, "channel": channel, "reason": reason}
        )

    store.write(write)
    return norm, channel


def remove_suppression(store: Store, address: str, channel: str) -> int:
    """Take an address off the list; returns how many rows were removed."""
    _check_channel(channel)

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        n = cur.execute(
            "SELECT count(*) FROM suppressions WHERE lower(address) = lower(?) AND channel = ?",
            [address, channel],
        ).fetchone()[0]
        cur.execute(
            "DELETE FROM suppressions WHERE lower(address) = lower(?) AND channel = ?",
            [address, channel],
        )
        actionlog.record(
            cur, "suppression removed", detail={"address": address, "channel": channel}
        )
        return int(n)

    return store.write(write)


@dataclass
class AddressList:
    """A parsed upload of addresses: the usable ones and each bad line with its number."""

    entries: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, channel)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    duplicates: int = 0
    header_skipped: bool = False


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if b"\x00" in data[:4096]:
        raise InvalidField("file", "this is not a text file (CSV or TXT with one address per line)")
    for enc in ("utf-8-sig", "cp1250"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse_address_list(data: bytes | str, *, region: str | None = None) -> AddressList:
    """Read a CSV/TXT of addresses (first column, one per line) into normalised entries."""
    text = _decode(data)
    result = AddressList()
    seen: set[tuple[str, str]] = set()
    first_content = True
    reader = csv.reader(io.StringIO(text), delimiter=_sniff_delimiter(text))
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


def _sniff_delimiter(text: str) -> str:
    sample = text[:4096]
    counts = {d: sample.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def import_suppressions(store: Store, parsed: AddressList, reason: str) -> int:
    """Write a parsed list's usable entries in one transaction; returns how many were new."""
    reason = (reason or "").strip() or "uploaded list"
    pairs = [(address, channel) for _, address, channel in parsed.entries]

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        added = _insert_suppressions(cur, pairs, reason)
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


def search_clients(store: Store, text: str | None, *, limit: int = 20) -> pd.DataFrame:
    """Clients whose id, name, e-mail or phone matches, for a picker (newest first)."""
    text = (text or "").strip()
    if not text:
        return store.df(
            "SELECT id, name, email, phone, city FROM clients ORDER BY id DESC LIMIT ?",
            [int(limit)],
        )
    like = f"%{text}%"
    id_match = int(text) if text.isdigit() else -1
    return store.df(
        """
        SELECT id, name, email, phone, city FROM clients
        WHERE id = ? OR name ILIKE ? OR email ILIKE ? OR phone ILIKE ?
        ORDER BY (id = ?) DESC, name, id LIMIT ?
        """,
        [id_match, like, like, like.replace(" ", ""), id_match, int(limit)],
    )
