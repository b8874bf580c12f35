"""One rendered chunk of a bulk send checked and made an Arrow table, in any process.

The bulk generator (comms.messages.generate) hands this to its renderers
(comms.templates.batch) as the step after rendering, so a render worker
process gives back a chunk ready to insert: checked, typed, a few buffers to
unpickle instead of 2,000 rows of Python strings. This process then only
gives `duplicate` across chunks, in client order, and stores.

It imports pyarrow and comms.rules only (no DuckDB, no pandas): a render
worker imports it (comms.templates.batch, P2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from comms.rules.recipients import EMPTY_MESSAGE, check_recipients, needs_smtputf8
from comms.rules.sms import is_gsm7, sms_info, to_gsm7
from comms.rules.validation import NEEDS_SMTPUTF8

# What the renderers call this module by (comms.templates.batch.Finish).
FINISH = ("comms.messages.chunks", "check_chunk")


@dataclass(frozen=True)
class Checks:
    """What checking a chunk needs besides its rows: sent once to each render worker."""

    channel: str
    gsm7: bool
    suppressed: frozenset[str]  # address_key()s on the suppression list
    schema: pa.Schema  # the new messages' columns, as comms.outbox.create inserts them
    draft: str  # the statuses of a sendable and of an invalid message
    invalid: str
    # False: the SMTP server said it does not offer SMTPUTF8, so an address with
    # non-ASCII letters before the @ cannot go (its detail names the server)
    smtputf8: bool = True
    smtputf8_detail: str | None = None


# What the bulk generator reads per channel: the address, what the import found
# about it, and the consent.
CHECK_FIELDS = {
    "email": ("email", "email_valid", "consent_email"),
    "sms": ("phone", "phone_kind", "consent_sms"),
}


def check_chunk(
    checks: Checks,
    names: Sequence[str],
    clients: Sequence[Sequence[Any]],
    results: Sequence[tuple[Any, ...]],
) -> tuple[pa.Table, list[str | None]]:
    """The rendered clients checked: (their messages as an Arrow table, address keys).

    The keys are each sendable message's address_key (None for the others):
    `duplicate` is given across chunks, in client order, by the caller.
    """
    at = {n: i for i, n in enumerate(names)}
    i_id, i_name = at["id"], at["name"]
    i_address, i_known, i_consent = (at[n] for n in CHECK_FIELDS[checks.channel])
    channel, gsm7, suppressed = checks.channel, checks.gsm7, checks.suppressed
    subjects, texts, htmls, render_reasons, render_details = (
        list(column) for column in zip(*results, strict=True)
    )
    checked = check_recipients(
        channel,
        ((v[i_address], v[i_known], v[i_consent]) for v in clients),
        suppressed,
    )
    addresses, reasons, details, keys = [], [], [], []
    segments: list[int | None] = [None] * len(clients)
    encodings: list[str | None] = [None] * len(clients)
    for i, (address, reason, detail, key) in enumerate(checked):
        if reason is None and not checks.smtputf8 and needs_smtputf8(address):
            reason, detail = NEEDS_SMTPUTF8, checks.smtputf8_detail
        if reason is None and render_reasons[i] is not None:
            reason, detail = render_reasons[i], render_details[i]
        text = texts[i]
        if channel == "sms" and text is not None:
            if gsm7 and not is_gsm7(text):  # the template did most of it already
                text = texts[i] = to_gsm7(text)
            info = sms_info(text)
            segments[i], encodings[i] = info.segments, info.encoding
        if reason is None and text is not None and not text.strip():
            reason = EMPTY_MESSAGE
        addresses.append(address or None)
        reasons.append(reason)
        details.append(detail)
        keys.append(None if reason else key)
    columns = {
        "client_id": [int(v[i_id]) for v in clients],
        "to_address": addresses,
        # A display name ends up in a header: one line, always.
        "to_name": [
            None if n is None or n != n else " ".join(str(n).split())
            for n in (v[i_name] for v in clients)
        ],
        "subject": subjects,
        "body_text": texts,
        "body_html": htmls,
        "status": [checks.invalid if r else checks.draft for r in reasons],
        "reason": reasons,
        "error": details,
        "segments": segments,
        "encoding": encodings,
    }
    return to_arrow(columns, checks.schema), keys


def to_arrow(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """One chunk's columns as an Arrow table of the given schema."""
    return pa.table({k: array(v, schema.field(k).type) for k, v in columns.items()})


def array(values: list[Any], kind: pa.DataType) -> pa.Array:
    # The system allocator, not pyarrow's default (mimalloc): these buffers live until
    # the insert, and mimalloc's page resets cost 0.2 s of system time per 100,000
    # messages (bench_generate), the kernel zeroing the same pages again.
    return pa.array(values, type=kind, memory_pool=pa.system_memory_pool())
