"""The core's refusals in the viewer's language: outbox moves, the editor, one message for
one client, the sending settings. Czech under i18n.set_language("cs"), English otherwise;
what a send run stores stays English whoever started it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from comms import i18n, outbox
from comms.errors import CommsError, ConfigError, InvalidTransition, NotFound
from comms.messages import compose, editor, testsend
from comms.sending import dispatcher
from comms.sending.senders.config import SmtpConfig, describe_backends
from tests.seed_history import add_client, add_message


@pytest.fixture
def czech() -> Iterator[None]:
    i18n.set_language("cs")
    try:
        yield
    finally:
        i18n.set_language("en")


def refusal(exc_type: type[Exception], call) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


def test_cancel_of_a_sent_message(store):
    mid = add_message(store, add_client(store), status="sent")
    english = refusal(InvalidTransition, lambda: outbox.cancel(store, message_ids=[mid]))
    assert english == (
        f"Cannot cancel message {mid} (sent): only draft, queued messages can become cancelled."
    )
    i18n.set_language("cs")
    try:
        czech = refusal(InvalidTransition, lambda: outbox.cancel(store, message_ids=[mid]))
    finally:
        i18n.set_language("en")
    assert czech == (
        f"Zprávu {mid} (odesláno) nelze zrušit: do stavu „zrušeno“ se dá převést jen zpráva"
        " ve stavu koncept, ve frontě."
    )


def test_a_message_being_sent_cannot_be_cancelled(store, czech):
    cid = add_client(store)
    ids = [add_message(store, cid, status="sending") for _ in range(2)]
    text = refusal(InvalidTransition, lambda: outbox.cancel(store, message_ids=ids))
    assert text == (
        f"Zprávy {ids[0]}, {ids[1]} nelze zrušit: právě se odesílají. Nic se nezměnilo."
    )
    one = refusal(InvalidTransition, lambda: outbox.retry(store, message_ids=ids[:1]))
    assert one == f"Zprávu {ids[0]} nelze zkusit znovu: právě se odesílá. Nic se nezměnilo."
    assert store.scalar("SELECT count(*) FROM messages WHERE status = 'sending'") == 2


def test_several_messages_in_the_wrong_status(store, czech):
    cid = add_client(store)
    ids = [add_message(store, cid, status="sent") for _ in range(2)]
    text = refusal(InvalidTransition, lambda: outbox.retry(store, message_ids=ids))
    assert text == (
        f"Zprávy {ids[0]} (odesláno), {ids[1]} (odesláno) nelze zkusit znovu: do stavu"
        " „ve frontě“ se dají převést jen zprávy ve stavu selhalo, přerušeno."
    )


def test_a_missing_message(store):
    assert refusal(NotFound, lambda: outbox.get_message(store, 999)) == "No message with id 999."
    i18n.set_language("cs")
    try:
        assert refusal(NotFound, lambda: outbox.get_message(store, 999)) == (
            "Zpráva s id 999 neexistuje."
        )
        many = list(range(1000, 1012))
        assert refusal(NotFound, lambda: outbox.cancel(store, message_ids=many)) == (
            "Zprávy s id 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009"
            " a dalších 2 neexistují."
        )
        assert refusal(NotFound, lambda: outbox.pause(store, 42)) == "Dávka s id 42 neexistuje."
        assert refusal(NotFound, lambda: editor.get_message(store, 7)) == "Zpráva 7 neexistuje."
    finally:
        i18n.set_language("en")
    assert refusal(NotFound, lambda: outbox.pause(store, 42)) == "No batch with id 42."


def test_an_editor_refusal(store):
    mid = add_message(store, add_client(store), status="sent")
    english = refusal(InvalidTransition, lambda: editor.edit_message(store, mid, body="x"))
    assert english == (f"Message {mid} is sent; only drafts and invalid messages can be edited.")
    draft = add_message(store, add_client(store, email="b@example.cz"), status="draft")
    i18n.set_language("cs")
    try:
        czech = refusal(InvalidTransition, lambda: editor.edit_message(store, mid, body="x"))
        subject = refusal(CommsError, lambda: editor.edit_message(store, draft, subject=" "))
    finally:
        i18n.set_language("en")
    assert czech == (
        f"Zprávu {mid} nelze upravit, je ve stavu „odesláno“."
        " Upravit lze jen koncepty a neplatné zprávy."
    )
    assert subject == "E-mail musí mít předmět."


def test_a_sender_setting_refused(monkeypatch, czech):
    assert refusal(ConfigError, lambda: SmtpConfig(host="", port=25)) == (
        "COMMS_SMTP_HOST je prázdné."
    )
    assert refusal(ConfigError, lambda: SmtpConfig(host="h", port=25, security="tls")) == (
        "COMMS_SMTP_SECURITY musí být jedno z: none, starttls, ssl."
    )
    monkeypatch.setenv("COMMS_SMTP_HOST", "relay.example")
    monkeypatch.setenv("COMMS_SMTP_USER", "ana")
    email = describe_backends()["email"]  # the Settings page
    assert email["ok"] is False
    assert email["error"] == "COMMS_SMTP_USER je nastavené, ale chybí COMMS_SMTP_PASSWORD."
    i18n.set_language("en")
    assert describe_backends()["email"]["error"] == (
        "COMMS_SMTP_USER is set but COMMS_SMTP_PASSWORD is missing."
    )


def test_compose_and_test_address_refusals(store, czech):
    cid = add_client(store, name="Petr Dvořák", email=None, email_valid=False)
    text = refusal(CommsError, lambda: compose.compose(store, client_id=cid, channel="email",
                                                       subject="s", body="b"))  # fmt: skip
    assert text == "Petr Dvořák nemá e-mailovou adresu. Doplňte ji v údajích klienta."
    assert refusal(CommsError, lambda: testsend.normalise_test_address("sms", " ")) == (
        "telefon: napište číslo mobilu, na které se má zkušební zpráva poslat."
    )
    wrong = refusal(CommsError, lambda: testsend.normalise_test_address("email", "no-at"))
    assert wrong.startswith("adresa: neplatný e-mail: ") and wrong.endswith("('no-at').")


def test_what_a_run_stores_stays_english(store, czech):
    """A run started by a Czech viewer: its workers' errors go into the action log, in English."""
    mid = add_message(store, add_client(store), status="queued")

    def broken(channel: str):
        return SmtpConfig(host="", port=25)  # raises ConfigError

    result = dispatcher.run_once(store, sender_factory=broken, wait_for_retries=False)
    assert result.errors == ["email backend: COMMS_SMTP_HOST is empty."]
    detail = store.scalar(
        "SELECT detail FROM action_log WHERE action = 'send run end' ORDER BY id DESC LIMIT 1"
    )
    assert json.loads(detail)["errors"] == ["email backend: COMMS_SMTP_HOST is empty."]
    assert outbox.get_message(store, mid)["status"] == "queued"  # nothing was claimed
    assert i18n.language() == "cs"  # the caller's language is untouched


def test_waiting_messages_are_counted_in_czech(store, czech, monkeypatch):
    cid = add_client(store)
    ids = [add_message(store, cid, status="sending") for _ in range(3)]
    out = dispatcher._wait_for(store, ids, timeout=0)
    assert out["errors"] == ["3 zprávy stále čekají na odeslání"]
    i18n.set_language("en")
    assert dispatcher._wait_for(store, ids, timeout=0)["errors"] == [
        "3 message(s) still waiting to be sent"
    ]
