"""The recipients step (SQL flags) and generation (comms.rules.recipients) agree.

The can-receive rule has one definition (comms.rules.recipients); the wizard's
recipients step restates it in SQL so 100,000 clients are checked without
loading them. This test keeps the two from drifting apart: over a varied list,
every client's reason before generating equals the reason generation gives.
"""

from __future__ import annotations

import pytest

from comms.clients import import_clients
from comms.clients.suppressions import add_suppression
from comms.messages import generate
from comms.messages.recipients import recipient_page

CLIENTS = """name;email;phone;Souhlas e-mail;Souhlas SMS
Valid;jana@example.com;+420 601 123 456;ano;ano
Bad e-mail;jana(at)example.com;+420 602 123 456;ano;ano
No e-mail;;+420 603 123 456;ano;ano
Same e-mail;JANA@example.com;+420 604 123 456;ano;ano
Opted out;petr@example.com;+420 605 123 456;ano;ano
No consent;eva@example.com;+420 606 123 456;ne;ne
Landline;ota@example.com;+420 222 333 444;ano;ano
Bad phone;iva@example.com;12;ano;ano
No phone;ema@example.com;;ano;ano
Same phone;ada@example.com;601123456;ano;ano
Slovak mobile;ela@example.com;+421 905 123 456;ano;ano
"""


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_reasons_before_generating_equal_generations(store, tmp_path, channel):
    path = tmp_path / "clients.csv"
    path.write_text(CLIENTS, encoding="utf-8")
    import_clients(store, path, list_name="Rules")
    add_suppression(store, "petr@example.com", "asked to stop", channel="email")
    add_suppression(store, "+420605123456", "asked to stop", channel="sms")
    ids = [r[0] for r in store.cursor().execute("SELECT id FROM clients ORDER BY id").fetchall()]
    selection = {"client_ids": ids}

    _, before = recipient_page(store, selection, channel, limit=100)
    result = generate.generate_messages(
        store,
        selection=selection,
        channel=channel,
        subject="Hello" if channel == "email" else None,
        body="Hello {{ name }}",
    )
    after = {
        r[0]: r[1]
        for r in store.cursor()
        .execute("SELECT client_id, reason FROM messages WHERE batch_id = ?", [result.batch_id])
        .fetchall()
    }
    expected = {
        int(r.id): (None if r.reason != r.reason else r.reason) for r in before.itertuples()
    }
    assert expected == after
    # the list really exercises the rule: several different reasons, and sendable ones
    assert len({v for v in after.values() if v}) >= 3 and None in after.values()


def test_the_bulk_form_gives_check_recipients_answers():
    """rules.recipients.check_recipients (the generator's short path for e-mails the import
    found valid) answers exactly as check_recipient plus address_key, case by case."""
    import itertools

    from comms.rules.recipients import address_key, check_recipient, check_recipients

    raws = [
        "jana@example.com",
        "  Jana@Example.com ",
        "PETR@example.com",
        "",
        "   ",
        None,
        float("nan"),
        "jana(at)example.com",
        "jána@háček.cz",
        12345,
        "+420 601 123 456",
        "+420601123456",
        "+420222333444",
    ]
    knowns = [True, False, None, "mobile", "fixed_line", "invalid"]
    consents = [True, False, None]
    suppressed = {"petr@example.com", "+420601123456"}
    for channel in ("email", "sms"):
        rows = list(itertools.product(raws, knowns, consents))
        expected = []
        for raw, known, consent in rows:
            found = check_recipient(channel, raw, known, consent=consent, suppressed=suppressed)
            key = None if found.reason else address_key(channel, found.address)
            expected.append((found.address, found.reason, found.detail, key))
        assert check_recipients(channel, rows, suppressed) == expected
