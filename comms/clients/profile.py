"""One client's profile: edits with re-validation, and consent per channel (opt-out / opt-in).

An edit is normalised and checked field by field (`validate_changes`) before
anything is written; an e-mail that another client already has is refused.
Opting out withdraws the client's consent for a channel and lists its address
on the suppression list (comms.clients.suppressions); opting in undoes both.
Every change is written in one transaction together with its action-log entry,
through comms.clients.options.write_clients so that the filter choices follow.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from comms import actionlog
from comms.clients.options import Change, write_clients
from comms.clients.suppressions import (
    InvalidField,
    check_channel,
    shown_check,
    suppress,
    suppression_of,
    unsuppress,
)
from comms.config import default_region
from comms.errors import NotFound
from comms.i18n import _
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


def _client_row(cur: duckdb.DuckDBPyConnection, client_id: int) -> dict[str, Any]:
    res = cur.execute("SELECT * FROM clients WHERE id = ?", [int(client_id)])
    names = [d[0] for d in res.description]
    row = res.fetchone()
    if row is None:
        raise NotFound(_("Client {id} does not exist.").format(id=client_id))
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
                "attributes",
                _("not valid JSON ({error}, line {line})").format(error=exc.msg, line=exc.lineno),
            ) from None
    if not isinstance(attrs, dict):
        raise InvalidField("attributes", _("must be an object of name: value pairs"))
    clean: dict[str, Any] = {}
    for key, value in attrs.items():
        key = str(key).strip()
        if not key:
            raise InvalidField("attributes", _("an attribute has an empty name"))
        if isinstance(value, (dict, list)):
            raise InvalidField(
                "attributes", _("'{key}' must be a single value, not a list").format(key=key)
            )
        clean[key] = value
    return clean


def _clause(text: str | None) -> str:
    """A checker's sentence inside parentheses: without its final full stop."""
    return (text or "").strip().rstrip(".")


def _not_valid(raw: str, error: str | None) -> str:
    """ "'x' is not valid (invalid e-mail: ...)", the checker's code in the viewer's language."""
    return _("'{value}' is not valid ({error})").format(
        value=raw, error=shown_check(_clause(error))
    )


def validate_changes(changes: dict[str, Any], *, region: str | None = None) -> dict[str, Any]:
    """Normalise and check edited fields; the columns to write (raises InvalidField)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidField(sorted(unknown)[0], _("this field cannot be edited"))
    out: dict[str, Any] = {}
    for key in ("name", "company", "city"):
        if key in changes:
            value = (changes[key] or "").strip()
            if any(c in value for c in "\r\n"):
                raise InvalidField(key, _("must be one line"))
            out[key] = value or None
    if "name" in out and not out["name"]:
        raise InvalidField("name", _("cannot be empty"))
    if "email" in changes:
        raw = (changes["email"] or "").strip()
        if raw:
            check = check_email(raw)
            if not check.ok:
                raise InvalidField("e-mail", _not_valid(raw, check.error))
            out.update(email=check.address, email_valid=True, email_error=None)
        else:
            out.update(email=None, email_valid=False, email_error=None)
    if "phone" in changes:
        raw = (changes["phone"] or "").strip()
        if raw:
            check = check_phone(raw, region or default_region())
            if not check.ok:
                raise InvalidField("phone", _not_valid(raw, check.error))
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

    def write(cur: duckdb.DuckDBPyConnection, change: Change) -> dict[str, Any]:
        before = _client_row(cur, client_id)
        if values.get("email"):
            other = cur.execute(
                "SELECT id, name FROM clients WHERE lower(email) = lower(?) AND id <> ?"
                " AND email_valid LIMIT 1",
                [values["email"], int(client_id)],
            ).fetchone()
            if other:
                raise InvalidField(
                    "e-mail",
                    _("{email} already belongs to client {id} ({name})").format(
                        email=values["email"], id=other[0], name=other[1]
                    ),
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
        change.remove("c.id = ?", [int(client_id)])
        cur.execute(
            f"UPDATE clients SET {assignments}, updated_at = current_timestamp WHERE id = ?",
            [values[c] for c in cols] + [int(client_id)],
        )
        change.add("c.id = ?", [int(client_id)])
        actionlog.record(cur, "client edited", client_id=int(client_id), detail={"changed": diff})
        return diff

    return write_clients(store, write)


# -- consent ---------------------------------------------------------------------


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
    check_channel(channel)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidField("reason", _("say why the client is opted out"))

    def write(cur: duckdb.DuckDBPyConnection, _: Change) -> dict[str, Any]:
        address = _set_consent(cur, client_id, channel, False)
        added = suppress(cur, [(address, channel)], reason) if address else 0
        actionlog.record(
            cur,
            "opt-out",
            client_id=int(client_id),
            detail={"channel": channel, "address": address, "reason": reason},
        )
        return {"channel": channel, "address": address, "suppressed": bool(address), "new": added}

    return write_clients(store, write)


def opt_in(store: Store, client_id: int, channel: str) -> dict[str, Any]:
    """Give consent back for a channel and remove the client's address from the list."""
    check_channel(channel)

    def write(cur: duckdb.DuckDBPyConnection, _: Change) -> dict[str, Any]:
        address = _set_consent(cur, client_id, channel, True)
        if address:
            unsuppress(cur, address, channel)
        actionlog.record(
            cur, "opt-in", client_id=int(client_id), detail={"channel": channel, "address": address}
        )
        return {"channel": channel, "address": address}

    return write_clients(store, write)
