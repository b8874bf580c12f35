"""The Twilio backend against a local server speaking Twilio's Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import TwilioServer, free_port

from comms.errors import ConfigError
from comms.sending.senders import backend_name, make_sender
from comms.sending.senders.base import OutgoingMessage
from comms.sending.senders.config import TwilioConfig
from comms.sending.senders.twilio_sms import TwilioSender


def sms(to: str = "+420601000001", body: str = "Vaše zásilka je na cestě") -> OutgoingMessage:
    return OutgoingMessage(id=1, channel="sms", to_address=to, body_text=body)


@pytest.fixture
def server() -> Iterator[TwilioServer]:
    with TwilioServer() as s:
        yield s


def sender_for(server: TwilioServer, sms_from: str = "+15005550006", **kw) -> TwilioSender:
    env = server.env(sms_from)
    return TwilioSender(
        TwilioConfig(
            kw.get("sid", env["TWILIO_ACCOUNT_SID"]),
            kw.get("token", env["TWILIO_AUTH_TOKEN"]),
            env["COMMS_SMS_FROM"],
            kw.get("base", env["COMMS_TWILIO_API_BASE"]),
        )
    )


def test_sends_from_a_number_through_the_configured_base_url(server: TwilioServer) -> None:
    with sender_for(server) as s:
        outcome = s.send(sms())
    assert outcome.status == "sent" and outcome.provider_id.startswith("SM")
    (got,) = server.messages
    assert got["sid"] == outcome.provider_id
    assert got["form"] == {"To": "+420601000001", "From": "+15005550006",
                           "Body": "Vaše zásilka je na cestě"}  # fmt: skip


def test_sends_through_a_messaging_service(server: TwilioServer) -> None:
    with sender_for(server, sms_from="MG" + "1" * 32) as s:
        assert s.send(sms()).status == "sent"
    form = server.messages[0]["form"]
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


def test_21211_is_permanent_keeping_code_and_message(server: TwilioServer) -> None:
    server.always("+1555", (400, 21211, "The 'To' number +1555 is not a valid phone number."))
    with sender_for(server) as s:
        outcome = s.send(sms(to="+1555"))
    assert outcome.status == "permanent"
    assert "21211" in outcome.error and "is not a valid phone number" in outcome.error


@pytest.mark.parametrize("status,code", [(429, 20429), (500, 20500), (503, 20503)])
def test_429_and_5xx_are_transient(server: TwilioServer, status: int, code: int) -> None:
    server.program("+420601000002", (status, code, "Try later"))
    with sender_for(server) as s:
        first = s.send(sms(to="+420601000002"))
        second = s.send(sms(to="+420601000002"))
    assert first.status == "transient" and f"HTTP {status}" in first.error
    assert second.status == "sent"
    assert server.attempts_for("+420601000002") == [status, 201]


def test_wrong_token_is_permanent(server: TwilioServer) -> None:
    with sender_for(server, token="wrong") as s:
        outcome = s.send(sms())
    assert outcome.status == "permanent" and "20003" in outcome.error
    assert "wrong" not in outcome.error
    assert server.messages == []


def test_unreachable_api_is_transient() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    s = TwilioSender(TwilioConfig("AC" + "0" * 32, "t", "+15005550006", base))
    outcome = s.send(sms())
    assert outcome.status == "transient" and not s.connected


def test_config_names_the_missing_setting(monkeypatch: pytest.MonkeyPatch, db_path) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    assert backend_name("sms") == "twilio"
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        make_sender("sms")
    with pytest.raises(ConfigError, match="COMMS_TWILIO_API_BASE"):
        TwilioConfig("AC1", "t", "+1", "ftp://x")


def test_make_sender_uses_twilio_from_environment(
    server: TwilioServer, monkeypatch: pytest.MonkeyPatch, db_path
) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    s = make_sender("sms")
    assert isinstance(s, TwilioSender)
    with s:
        assert s.send(sms()).status == "sent"
    assert len(server.messages) == 1
