"""One contract, every backend: open / send / close, connection reuse, outcomes.

Each backend runs against a real counterpart: smtp against the aiosmtpd sink,
twilio against the local Twilio-speaking HTTP server, outbox against a folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import SmtpSink, TwilioServer

from comms.sending.senders.base import BaseSender, DummySender, OutgoingMessage
from comms.sending.senders.config import SmtpConfig, TwilioConfig
from comms.sending.senders.outbox_folder import OutboxFolderSender
from comms.sending.senders.smtp import SmtpSender
from comms.sending.senders.twilio_sms import TwilioSender


class SenderContract:
    """Mixin: a subclass provides `sender` (unopened), `channel`, `delivered()` and `bad_to`."""

    channel = "email"
    bad_to: str | None = None

    def message(self, i: int, to: str | None = None) -> OutgoingMessage:
        to = to or (f"client{i}@example.com" if self.channel == "email" else f"+42060100{i:04d}")
        return OutgoingMessage(
            id=i,
            channel=self.channel,
            to_address=to,
            to_name=f"Client {i}",
            subject=f"Hello {i}",
            body_text=f"Dear client {i}",
            body_html=f"<p>Dear client {i}</p>",
        )

    def delivered(self) -> list[str]:
        raise NotImplementedError

    def test_open_reports_whether_it_opened(self, sender: BaseSender) -> None:
        assert sender.open() is True
        assert sender.open() is False
        sender.close()
        sender.close()  # harmless
        assert sender.open() is True
        sender.close()

    def test_send_returns_sent_with_provider_id(self, sender: BaseSender) -> None:
        with sender:
            outcome = sender.send(self.message(1))
        assert outcome.status == "sent" and outcome.provider_id
        assert len(self.delivered()) == 1

    def test_one_connection_serves_a_batch(self, sender: BaseSender) -> None:
        with sender as s:
            outcomes = [s.send(self.message(i)) for i in range(5)]
        assert [o.status for o in outcomes] == ["sent"] * 5
        assert len({o.provider_id for o in outcomes}) == 5
        assert len(self.delivered()) == 5
        self.assert_connections(1)

    def test_send_messages_closes_only_what_it_opened(self, sender: BaseSender) -> None:
        outcomes = sender.send_messages([self.message(1), self.message(2)])
        assert [o.status for o in outcomes] == ["sent", "sent"]
        assert not sender.connected
        sender.open()
        sender.send_messages([self.message(3)])
        assert sender.connected  # the caller's connection stays open
        sender.close()

    def test_send_opens_lazily(self, sender: BaseSender) -> None:
        assert sender.send(self.message(7)).status == "sent"
        sender.close()

    def test_bad_recipient_is_permanent(self, sender: BaseSender) -> None:
        if self.bad_to is None:
            pytest.skip("this backend accepts any address")
        with sender:
            outcome = sender.send(self.message(9, to=self.bad_to))
        assert outcome.status == "permanent" and outcome.error

    def assert_connections(self, n: int) -> None:
        """Backends with a countable connection check it; others have nothing to count."""


class TestSmtpContract(SenderContract):
    channel = "email"
    bad_to = "nobody@example.com"

    @pytest.fixture
    def sender(self) -> Iterator[BaseSender]:
        with SmtpSink() as sink:
            sink.always("nobody@example.com", "550 5.1.1 No such user")
            self.sink = sink
            cfg = SmtpConfig(host="127.0.0.1", port=sink.port, security="none")
            sender = SmtpSender(cfg)
            yield sender
            sender.close()

    def delivered(self) -> list[str]:
        return [m for m in self.sink.message_ids() if m]

    def assert_connections(self, n: int) -> None:
        assert self.sink.connections == n


class TestTwilioContract(SenderContract):
    channel = "sms"
    bad_to = "+1555"

    @pytest.fixture
    def sender(self) -> Iterator[BaseSender]:
        with TwilioServer() as server:
            server.always(
                "+1555", (400, 21211, "The 'To' number +1555 is not a valid phone number.")
            )
            self.server = server
            env = server.env()
            sender = TwilioSender(
                TwilioConfig(
                    env["TWILIO_ACCOUNT_SID"],
                    env["TWILIO_AUTH_TOKEN"],
                    env["COMMS_SMS_FROM"],
                    env["COMMS_TWILIO_API_BASE"],
                )
            )
            yield sender
            sender.close()

    def delivered(self) -> list[str]:
        return [m["sid"] for m in self.server.messages]


class TestOutboxFolderEmailContract(SenderContract):
    channel = "email"
    bad_to = "not an address"

    @pytest.fixture
    def sender(self, tmp_path: Path) -> BaseSender:
        self.folder = tmp_path / "outbox"
        return OutboxFolderSender("email", self.folder)

    def delivered(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.eml"))


class TestOutboxFolderSmsContract(SenderContract):
    channel = "sms"

    @pytest.fixture
    def sender(self, tmp_path: Path) -> BaseSender:
        self.folder = tmp_path / "outbox"
        return OutboxFolderSender("sms", self.folder)

    def delivered(self) -> list[str]:
        files = sorted(self.folder.glob("*.json"))
        for f in files:
            assert json.loads(f.read_text())["body"].startswith("Dear client")
        return [f.name for f in files]


class TestDummyContract(SenderContract):
    @pytest.fixture
    def sender(self) -> BaseSender:
        self.sent: list[str] = []
        outer = self

        class Recording(DummySender):
            def _send(self, message: OutgoingMessage):  # type: ignore[override]
                outcome = super()._send(message)
                outer.sent.append(outcome.provider_id or "")
                return outcome

        return Recording()

    def delivered(self) -> list[str]:
        return self.sent


def test_demo_mode_when_nothing_is_configured(db_path: Path) -> None:
    from comms.sending.senders import backend_name, describe_backends, is_demo_mode, make_sender

    assert is_demo_mode() and is_demo_mode("email") and is_demo_mode("sms")
    assert backend_name("email") == "outbox" and isinstance(make_sender("sms"), OutboxFolderSender)
    info = describe_backends()
    assert info["email"]["backend"] == "outbox" and info["email"]["demo"] is True


def test_secrets_example_configures_both_and_no_secret_is_described(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comms.config import ROOT
    from comms.sending.senders import describe_backends, is_demo_mode

    monkeypatch.setenv("COMMS_SECRETS", str(ROOT / ".streamlit" / "secrets.toml.example"))
    assert not is_demo_mode()
    info = describe_backends()
    assert info["email"]["ok"] and info["email"]["backend"] == "smtp"
    assert info["sms"]["ok"] and info["sms"]["backend"] == "twilio"
    assert info["dispatch"]["email_connections"] == 8
    text = json.dumps(info)
    assert "app-password" not in text and "your-auth-token" not in text
    monkeypatch.setenv("COMMS_EMAIL_BACKEND", "outbox")
    assert is_demo_mode("email") and not is_demo_mode("sms")
