"""The SMTP backend against a real aiosmtpd server: MIME, headers, safety, errors, drops, TLS."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import SmtpSink

from comms.errors import ConfigError
from comms.sending.senders.base import Attachment, OutgoingMessage
from comms.sending.senders.config import SmtpConfig
from comms.sending.senders.mime import EmailIdentity, build_email
from comms.sending.senders.smtp import SmtpSender


def msg(i: int = 1, to: str = "jan@example.com", **kw) -> OutgoingMessage:
    base = dict(
        id=i,
        channel="email",
        to_address=to,
        to_name="Jan Novák",
        subject="Vyúčtování za listopad",
        body_text="Dobrý den, posíláme vyúčtování.",
        body_html="<p>Dobrý den, posíláme <b>vyúčtování</b>.</p>",
        client_id=42,
    )
    base.update(kw)
    return OutgoingMessage(**base)


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """The sink offering PIPELINING (as mainstream relays do), and not offering it."""
    with SmtpSink(pipelining=request.param) as s:
        yield s


def config(sink: SmtpSink, **kw) -> SmtpConfig:
    base = dict(
        host="127.0.0.1",
        port=sink.port,
        security="none",
        from_address="Firma s.r.o. <info@firma.example>",
    )
    base.update(kw)
    return SmtpConfig(**base)


def test_message_is_multipart_alternative_with_real_attachment(sink: SmtpSink) -> None:
    pdf = Attachment("faktura.pdf", "application/pdf", b"%PDF-1.4 test")
    with SmtpSender(
        config(sink, reply_to="Podpora <podpora@firma.example>",
               list_unsubscribe="https://firma.example/u?c={client_id}, mailto:u@firma.example")
    ) as s:  # fmt: skip
        outcome = s.send(msg(attachments=(pdf,)))
    assert outcome.status == "sent"
    (got,) = sink.received
    email = got.parsed()
    assert email["Message-ID"] == outcome.provider_id
    assert email["From"].addresses[0].display_name == "Firma s.r.o."
    assert email["To"].addresses[0].addr_spec == "jan@example.com"
    assert email["To"].addresses[0].display_name == "Jan Novák"
    assert email["Reply-To"].addresses[0].addr_spec == "podpora@firma.example"
    assert email["List-Unsubscribe"] == ("<https://firma.example/u?c=42>, <mailto:u@firma.example>")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Subject"] == "Vyúčtování za listopad"
    assert email.get_content_type() == "multipart/mixed"
    alternative = next(p for p in email.iter_parts() if p.is_multipart())
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert "posíláme vyúčtování" in alternative.get_body(("plain",)).get_content()
    (att,) = list(email.iter_attachments())
    assert att.get_content_type() == "application/pdf"
    assert att.get_content_disposition() == "attachment"
    assert att.get_filename() == "faktura.pdf"
    assert att.get_content() == b"%PDF-1.4 test"
    assert got.mail_from == "info@firma.example" and got.rcpt_tos == ["jan@example.com"]


def test_message_ids_are_unique() -> None:
    identity = EmailIdentity("A <a@example.com>")
    ids = {str(build_email(msg(i), identity)["Message-ID"]) for i in range(200)}
    assert len(ids) == 200


def test_header_injection_is_impossible(sink: SmtpSink) -> None:
    with SmtpSender(config(sink)) as s:
        ok = s.send(msg(subject="Hi\r\nBcc: victim@example.com", to_name="X\r\nBcc: v@example.com"))
        bad = s.send(msg(to="jan@example.com\r\nBcc: victim@example.com"))
        bad2 = s.send(msg(to="a@example.com, b@example.com"))
    assert ok.status == "sent"
    assert bad.status == "permanent" and "invalid e-mail address" in (bad.error or "")
    assert bad2.status == "permanent"
    (got,) = sink.received
    email = got.parsed()
    assert email["Bcc"] is None
    assert "\n" not in str(email["Subject"])
    assert got.rcpt_tos == ["jan@example.com"]


def test_html_only_message_gets_a_text_part(sink: SmtpSink) -> None:
    with SmtpSender(config(sink)) as s:
        s.send(msg(body_text=None, body_html="<p>Hello &amp; welcome</p><p>Bye</p>"))
    email = sink.received[0].parsed()
    assert "Hello & welcome" in email.get_body(("plain",)).get_content()


def test_451_is_transient_and_550_permanent_with_server_text(sink: SmtpSink) -> None:
    sink.program("later@example.com", "451 4.7.1 Greylisted, try again")
    sink.always("nobody@example.com", "550 5.1.1 No such user here")
    with SmtpSender(config(sink)) as s:
        first = s.send(msg(to="later@example.com"))
        gone = s.send(msg(to="nobody@example.com"))
        second = s.send(msg(to="later@example.com"))  # same connection carries on
    assert first.status == "transient" and "451 4.7.1 Greylisted" in (first.error or "")
    assert gone.status == "permanent" and "550 5.1.1 No such user here" in (gone.error or "")
    assert second.status == "sent"
    assert sink.connections == 1


def test_login_with_user_and_password(tmp_path: Path) -> None:
    with SmtpSink(users={"mailer": "s3cret"}) as sink:
        with SmtpSender(config(sink, user="mailer", password="s3cret")) as s:
            assert s.send(msg()).status == "sent"
        assert sink.logins == ["mailer"]
        wrong = SmtpSender(config(sink, user="mailer", password="nope"))
        outcome = wrong.send(msg())
        assert outcome.status == "transient" and "login refused" in (outcome.error or "")
        assert "nope" not in (outcome.error or "")


def test_dropped_connection_reconnects_without_duplicates() -> None:
    with SmtpSink(drop_every=3) as sink:
        with SmtpSender(config(sink)) as s:
            outcomes = [s.send(msg(i, to=f"c{i}@example.com")) for i in range(10)]
        assert [o.status for o in outcomes] == ["sent"] * 10
        ids = sink.message_ids()
        assert len(ids) == 10 and len(set(ids)) == 10
        assert sorted(sink.recipients()) == sorted(f"c{i}@example.com" for i in range(10))
        assert sink.connections == 4  # 3 + 3 + 3 + 1


def test_drop_after_end_of_data_is_interrupted_not_resent() -> None:
    with SmtpSink() as sink:
        sink.drop_after_data(2)
        with SmtpSender(config(sink)) as s:
            outcomes = [s.send(msg(i, to=f"c{i}@example.com")) for i in range(3)]
        assert [o.status for o in outcomes] == ["sent", "interrupted", "sent"]
        assert "may have accepted" in (outcomes[1].error or "")
        assert len(sink.received) == 3  # the server did take it: resending would duplicate


def test_unreachable_server_is_transient_naming_host_port() -> None:
    from servers import free_port

    port = free_port()
    outcome = SmtpSender(SmtpConfig(host="127.0.0.1", port=port, security="none")).send(msg())
    assert outcome.status == "transient" and f"127.0.0.1:{port}" in (outcome.error or "")


def test_config_is_validated_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="COMMS_SMTP_SECURITY"):
        SmtpConfig(host="h", port=25, security="tls-please")
    with pytest.raises(ConfigError, match="COMMS_SMTP_PASSWORD"):
        SmtpConfig(host="h", port=25, user="u")
    with pytest.raises(ConfigError, match="COMMS_FROM"):
        SmtpConfig(host="h", port=25, from_address="no address")
    with pytest.raises(ConfigError, match="COMMS_SMTP_PORT"):
        SmtpConfig(host="h", port=70000)


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    monkeypatch.setenv("COMMS_SMTP_HOST", "relay.example")
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "ssl")
    monkeypatch.setenv("COMMS_SMTP_USER", "u")
    monkeypatch.setenv("COMMS_SMTP_PASSWORD", "topsecret")
    cfg = SmtpConfig.from_settings()
    assert cfg is not None and cfg.port == 465 and cfg.security == "ssl"
    assert "topsecret" not in repr(cfg.describe())
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "bogus")
    with pytest.raises(ConfigError, match="COMMS_SMTP_SECURITY"):
        SmtpConfig.from_settings()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, certificate))
    return ctx


def test_starttls_with_login(certificate: tuple[Path, Path]) -> None:
    with SmtpSink(users={"u": "p"}, tls_context=_server_context(certificate)) as sink:
        with SmtpSender(config(sink, security="starttls", user="u", password="p")) as s:
            assert s.send(msg()).status == "sent"
        assert sink.logins == ["u"] and len(sink.received) == 1


def test_implicit_ssl(certificate: tuple[Path, Path]) -> None:
    with SmtpSink(ssl_context=_server_context(certificate)) as sink:
        with SmtpSender(config(sink, security="ssl")) as s:
            assert s.send(msg()).status == "sent"
        assert len(sink.received) == 1


def test_envelope_sent_ahead_delivers_nothing_until_send(sink: SmtpSink) -> None:
    """prepare() sends MAIL/RCPT only; a message not sent after all is RSET, never delivered."""
    sink.always("refused@example.com", "550 5.1.1 No such user")
    with SmtpSender(config(sink)) as sender:
        assert sender.prepare(msg(1, to="ahead@example.com"))
        assert sink.received == []  # only the envelope went out
        other = sender.send(msg(2, to="other@example.com"))  # message 1 was not claimed
        assert other.status == "sent"
        assert sender.prepare(msg(3, to="third@example.com"))
        third = sender.send(msg(3, to="third@example.com"))  # the prepared one goes on
        assert third.status == "sent"
        assert sender.prepare(msg(4, to="refused@example.com"))
        refused = sender.send(msg(4, to="refused@example.com"))
        assert refused.status == "permanent" and "550 5.1.1 No such user" in refused.error
        assert sender.prepare(msg(5, to="last@example.com"))
        sender.abandon()
        assert sender.send(msg(6, to="six@example.com")).status == "sent"
    assert [r.rcpt_tos for r in sink.received] == [
        ["other@example.com"],
        ["third@example.com"],
        ["six@example.com"],
    ]
    assert sink.message_ids()[:2] == [other.provider_id, third.provider_id]


@pytest.mark.parametrize(
    "env, value",
    [
        ("COMMS_SMTP_PORT", "hunter2"),
        ("COMMS_SMTP_PORT", "99999"),
        ("COMMS_SMTP_SECURITY", "s3cret-pasted-here"),
        ("COMMS_SMTP_CONNECTIONS", "s3cret"),
        ("COMMS_BACKOFF_SECONDS", "p4ss"),
    ],
)
def test_a_bad_setting_is_named_and_its_value_never_repeated(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, env: str, value: str
) -> None:
    """A secret pasted into the wrong variable must not end up in stderr or the log."""
    from comms.errors import ConfigError
    from comms.sending.senders.config import DispatchConfig

    monkeypatch.setenv("COMMS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as exc:
        SmtpConfig.from_settings()
        DispatchConfig.from_settings()
    assert env in str(exc.value) and value not in str(exc.value)
