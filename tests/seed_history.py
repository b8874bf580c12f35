"""Small seeding helpers shared by this area's tests (plain SQL on a real DuckDB file)."""

from __future__ import annotations

import json
from typing import Any


def add_client(store, **fields: Any) -> int:
    """Insert one client (a valid e-mail and a Czech mobile unless told otherwise)."""
    base: dict[str, Any] = {
        "name": "Jana Nováková",
        "email": "jana@example.cz",
        "email_valid": True,
        "phone": "+420601123456",
        "phone_kind": "mobile",
        "city": "Brno",
    }
    base.update(fields)
    if isinstance(base.get("attributes"), dict):
        base["attributes"] = json.dumps(base["attributes"])
    cols = ", ".join(base)
    marks = ", ".join("?" for _ in base)
    return int(
        store.scalar(
            f"INSERT INTO clients ({cols}) VALUES ({marks}) RETURNING id", list(base.values())
        )
    )


def add_template(store, name: str, channel: str, body: str, subject: str | None = None) -> int:
    return int(
        store.scalar(
            "INSERT INTO templates (name, channel, subject, body) VALUES (?, ?, ?, ?) RETURNING id",
            [name, channel, subject, body],
        )
    )


def add_message(store, client_id: int, **fields: Any) -> int:
    """Insert one message row directly (as a finished send would leave it)."""
    base: dict[str, Any] = {
        "client_id": client_id,
        "channel": "email",
        "source": "bulk",
        "to_address": "jana@example.cz",
        "subject": "Hello",
        "body_text": "Body",
        "status": "sent",
    }
    base.update(fields)
    cols = ", ".join(base)
    marks = ", ".join("?" for _ in base)
    return int(
        store.scalar(
            f"INSERT INTO messages ({cols}) VALUES ({marks}) RETURNING id", list(base.values())
        )
    )
