"""International addresses on the way out: an IDN domain goes in its ASCII form, a non-ASCII
local part needs SMTPUTF8 (and fails with a named reason where the server lacks it), and
demo mode writes both instead of marking them interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import SmtpSink
from test_feedback_delivery import message, queue_messages, send_all

from comms.store import Store

IDN = "háček.cz".encode("idna").decode()  # xn--hek-ela4t.cz


def _configure(sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in sink.env().items():
        monkeypatch.setenv(k, v)


def test_an_idn_domain_goes_out_in_ascii_form(store: Store, monkeypatch) -> None:
    with SmtpSink() as sink:
        _configure(sink, monkeypatch)
        (mid,) = queue_messages(store, "email", [(None, "jana@háček.cz")])
        send_all(store, "email")
        (got,) = sink.received
    assert message(store, mid)["status"] == "sent"
    assert got.rcpt_tos == ["jana@xn--hek-ela4t.cz"]
    assert "jana@xn--hek-ela4t.cz" in got.parsed()["To"]


def test_a_non_ascii_local_part_uses_smtputf8_when_offered(store: Store, monkeypatch) -> None:
    with SmtpSink() as sink:  # offers SMTPUTF8, as aiosmtpd does by default
        _configure(sink, monkeypatch)
        (mid,) = queue_messages(store, "email", [(None, "jána@háček.cz")])
        send_all(store, "email")
        (got,) = sink.received
    assert message(store, mid)["status"] == "sent"
    assert got.rcpt_tos == ["jána@xn--hek-ela4t.cz"]
    assert "<jána@xn--hek-ela4t.cz>" in got.data.decode("utf-8")  # RFC 6532: raw UTF-8


def test_without_smtputf8_it_fails_with_a_named_reason_and_nothing_is_sent(
    store: Store, monkeypatch
) -> None:
    with SmtpSink(smtputf8=False) as sink:
        _configure(sink, monkeypatch)
        (mid, ok) = queue_messages(store, "email", [(None, "jána@example.cz"), (None, "a@b.cz")])
        send_all(store, "email")
        assert sink.recipients() == ["a@b.cz"]  # the next message still goes out
    row = message(store, mid)
    assert row["status"] == "failed" and "does not offer SMTPUTF8" in row["error"]
    assert message(store, ok)["status"] == "sent"


def test_demo_mode_writes_international_addresses(store: Store, tmp_path: Path) -> None:
    ids = queue_messages(store, "email", [(None, "jana@háček.cz"), (None, "jána@example.cz")])
    send_all(store, "email")  # nothing configured: the outbox folder
    assert [message(store, i)["status"] for i in ids] == ["sent", "sent"]
    written = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(written) == 2
    assert "xn--hek-ela4t.cz" in written[0].read_text()
    assert "jána@example.cz" in written[1].read_bytes().decode("utf-8")


def _clients_with_international_addresses(store: Store) -> list[int]:
    from comms.clients import import_clients

    import_clients(
        store,
        "Jméno;E-mail\nJana;jana@háček.cz\nJána;jána@example.cz\nPetr;petr@example.cz\n".encode(),
        filename="idn.csv",
        consent="email",
    )
    return [r["id"] for r in store.rows("SELECT id FROM clients ORDER BY id")]


def _generate(store: Store, ids: list[int]):
    from comms.messages import generate

    return generate.generate_messages(
        store, selection={"client_ids": ids}, channel="email", subject="Hi", body="Hi {{ name }}"
    )


def _reasons(store: Store, batch_id: int) -> dict[str, tuple[str | None, str | None]]:
    rows = store.rows(
        "SELECT to_address, reason, error FROM messages WHERE batch_id = ?", [batch_id]
    )
    return {r["to_address"]: (r["reason"], r["error"]) for r in rows}


def test_generation_names_the_reason_when_the_server_lacks_smtputf8(store, monkeypatch):
    """Asked once at generation (one EHLO), so review shows it before anything is sent."""
    ids = _clients_with_international_addresses(store)
    with SmtpSink(smtputf8=False) as sink:
        _configure(sink, monkeypatch)
        result = _generate(store, ids)
        assert sink.received == []  # asking sends nothing
    assert result.reasons == {"needs SMTPUTF8": 1}
    found = _reasons(store, result.batch_id)
    reason, detail = found["jána@example.cz"]
    assert reason == "needs SMTPUTF8" and "does not offer SMTPUTF8" in detail
    assert found["jana@háček.cz"] == (None, None)  # an IDN domain alone is fine
    assert found["petr@example.cz"] == (None, None)


def test_generation_lets_them_through_when_offered_unknown_or_in_demo_mode(store, monkeypatch):
    ids = _clients_with_international_addresses(store)
    assert _generate(store, ids).reasons == {}  # demo mode: the outbox folder takes any address
    with SmtpSink() as sink:  # offers SMTPUTF8
        _configure(sink, monkeypatch)
        assert _generate(store, ids).reasons == {}
    # configured, but nobody answers there: the send decides, with the same named reason
    assert _generate(store, ids).reasons == {}
