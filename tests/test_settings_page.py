"""The Settings page under AppTest: active backends without secrets, limits, test messages.

Real servers on 127.0.0.1 stand in for the SMTP relay and Twilio's API.
"""

import json
from pathlib import Path

import pytest
from servers import SmtpSink, TwilioServer
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "settings.py")
SENDER_ENV = (
    "COMMS_SMTP_HOST",
    "COMMS_SMTP_PORT",
    "COMMS_SMTP_SECURITY",
    "COMMS_SMTP_USER",
    "COMMS_SMTP_PASSWORD",
    "COMMS_FROM",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "COMMS_SMS_FROM",
    "COMMS_TWILIO_API_BASE",
    "COMMS_EMAIL_BACKEND",
    "COMMS_SMS_BACKEND",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, db_path):
    for name in SENDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMMS_REGION", "CZ")


def everything(at) -> str:
    """All text the page shows."""
    parts = []
    for kind in ("markdown", "caption", "error", "success", "warning", "info", "title"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    return "\n".join(parts)


def run(store):
    return AppTest.from_file(PAGE, default_timeout=60).run()


def send_test(at, channel, to):
    at.text_input(key=f"settings_test_to_{channel}").set_value(to)
    at.button(key=f"settings_test_send_{channel}").click().run()
    assert not at.exception
    return at


def test_demo_mode_shows_the_folder_and_test_email_lands_there(store, db_path):
    at = run(store)
    assert not at.exception
    text = everything(at)
    folder = str(Path(db_path).parent / "outbox")
    assert text.count("Outbox folder (demo mode)") == 2
    assert f"**Folder:** `{folder}`" in text
    at.button(key="settings_test_send_email").click().run()  # nothing typed yet
    assert [e.value for e in at.error] == [
        "address: type an e-mail address to send the test message to."
    ]
    send_test(at, "email", "Tester@Example.com")
    assert any("Sent message #1 to Tester@example.com" in s.value for s in at.success)
    files = list(Path(folder).glob("*.eml"))
    assert len(files) == 1 and b"Test message from the client communication desk" in (
        files[0].read_bytes()
    )
    row = store.rows("SELECT source, status, client_id FROM messages")[0]
    assert row == {"source": "test", "status": "sent", "client_id": None}
    actions = [r["action"] for r in store.rows("SELECT action FROM action_log ORDER BY id")]
    assert actions[0] == "test message" and "queue" in actions


def test_test_sms_goes_to_a_mobile_only(store, db_path):
    at = run(store)
    send_test(at, "sms", "222 123 456")  # a Prague landline
    assert any("phone: not a mobile" in e.value for e in at.error)
    send_test(at, "sms", "777 123 456")
    assert any("Sent message #" in s.value and "+420777123456" in s.value for s in at.success)
    sms = json.loads(next((Path(db_path).parent / "outbox").glob("*.json")).read_text())
    assert "+420777123456" in json.dumps(sms)
    assert store.scalar("SELECT count(*) FROM messages") == 1  # the landline stored nothing


def test_bad_address_is_named_and_nothing_is_stored(store):
    at = run(store)
    send_test(at, "email", "not-an-address")
    assert any(e.value.startswith("address: invalid e-mail") for e in at.error)
    assert store.scalar("SELECT count(*) FROM messages") == 0


def test_smtp_backend_is_described_without_its_password_and_test_arrives(store, monkeypatch):
    with SmtpSink(users={"mailer": "s3cret-Pa55"}) as sink:
        for k, v in sink.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("COMMS_SMTP_USER", "mailer")
        monkeypatch.setenv("COMMS_SMTP_PASSWORD", "s3cret-Pa55")
        monkeypatch.setenv("COMMS_SMTP_CONNECTIONS", "3")
        monkeypatch.setenv("COMMS_EMAIL_RATE_PER_SECOND", "10")
        at = run(store)
        text = everything(at)
        assert "SMTP server" in text
        assert f"**Server:** `127.0.0.1:{sink.port}`" in text
        assert "**Security:** `none`" in text and "**Login:** `mailer`" in text
        assert "Comms Test <sender@example.com>" in text
        from comms.sending.senders.config import DispatchConfig

        sms = DispatchConfig.from_settings().sms.connections  # the default, whatever it is
        assert "E-mail,3,10/s" in text and f"SMS,{sms},no limit" in text
        send_test(at, "email", "ops@example.com")
        assert any("Sent message #1 to ops@example.com" in s.value for s in at.success)
        assert sink.recipients() == ["ops@example.com"]
        assert sink.logins == ["mailer"]
        assert "s3cret-Pa55" not in everything(at)


def test_twilio_backend_without_token_and_a_refused_test_sms(store, monkeypatch):
    with TwilioServer(auth_token="tok-very-secret") as server:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        server.always("+420777000111", (400, 21211, "The 'To' number is not a valid phone number."))
        at = run(store)
        text = everything(at)
        assert "Twilio" in text and f"**API base URL:** `{server.base_url}`" in text
        assert "**From:** `+15005550006`" in text
        assert "tok-very-secret" not in text and server.account_sid not in text
        send_test(at, "sms", "+420 777 000 111")
        assert any("was refused" in e.value and "21211" in e.value for e in at.error)
        send_test(at, "sms", "+420 777 000 222")
        assert any("Sent message #2" in s.value for s in at.success)
        assert "tok-very-secret" not in everything(at)


def test_a_broken_setting_is_explained_and_test_disabled(store, monkeypatch):
    monkeypatch.setenv("COMMS_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "tls13")
    at = run(store)
    assert any(
        "COMMS_SMTP_SECURITY must be one of none, starttls, ssl" in e.value for e in at.error
    )
    at.text_input(key="settings_test_to_email").set_value("a@example.com").run()
    assert at.button(key="settings_test_send_email").disabled


def test_sign_in_state_is_explained(store, tmp_path, monkeypatch):
    at = run(store)
    assert "Sign-in is **off**" in everything(at)
    secrets = tmp_path / "s.toml"
    secrets.write_text('[auth]\nclient_id = "x"\ncookie_secret = "y"\n')
    monkeypatch.setenv("COMMS_SECRETS", str(secrets))
    at = run(store)
    assert "Sign-in is **on** (provider: default)" in everything(at)


def banner_app():
    from comms.ui.widgets.banners import demo_banner

    demo_banner()


def test_demo_banner_names_the_folder(store, db_path):
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    folder = Path(db_path).parent / "outbox"
    assert [i.value for i in at.info] == [
        f"Demo mode: nothing leaves this machine — messages are written to {folder}. "
        "Configure SMTP / Twilio to send for real (see Settings)."
    ]


def test_demo_banner_names_the_channel_left_in_demo_mode(store, monkeypatch):
    monkeypatch.setenv("COMMS_SMTP_HOST", "mail.example.com")
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    assert "(SMS only)" in at.info[0].value
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x")
    monkeypatch.setenv("COMMS_SMS_FROM", "+15005550006")
    at = AppTest.from_function(banner_app, default_timeout=30).run()
    assert not at.info  # everything configured: no banner


def test_every_page_of_the_app_shows_the_banner(store, monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # see tests/test_auth.py: keep st.navigation mode
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert at.info[0].value.startswith("Demo mode: nothing leaves this machine")
    for page in ("pages/outbox.py", "pages/settings.py", "pages/action_log.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert at.info[0].value.startswith("Demo mode: nothing leaves this machine"), page


def test_unreachable_smtp_server_leaves_the_test_queued_with_the_reason(store, monkeypatch):
    from servers import free_port

    monkeypatch.setenv("COMMS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMMS_SMTP_PORT", str(free_port()))  # nobody listens there
    monkeypatch.setenv("COMMS_SMTP_SECURITY", "none")
    at = run(store)
    send_test(at, "email", "ops@example.com")
    assert any("Not sent yet" in w.value and "will be retried" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]
    assert store.scalar("SELECT status FROM messages") == "queued"


def test_after_sending_says_what_a_missing_public_url_turns_off(store, monkeypatch):
    at = run(store)
    assert not at.exception
    assert "After sending" in [s.value for s in at.subheader]
    assert any("COMMS_PUBLIC_URL is not set" in c.value for c in at.caption)
    monkeypatch.setenv("COMMS_PUBLIC_URL", "https://comms.example.cz")
    at = run(store)
    assert not any("COMMS_PUBLIC_URL is not set" in c.value for c in at.caption)
    assert "https://comms.example.cz" in everything(at) or any(
        "https://comms.example.cz" in str(d.value.to_dict()) for d in at.dataframe
    )


def banner_app_cs():
    from comms import i18n
    from comms.ui.widgets.banners import demo_banner

    i18n.set_language("cs")
    try:
        demo_banner()
    finally:
        i18n.set_language("en")


def test_demo_banner_in_czech(store, db_path, monkeypatch):
    folder = Path(db_path).parent / "outbox"
    at = AppTest.from_function(banner_app_cs, default_timeout=30).run()
    assert [i.value for i in at.info] == [
        f"Ukázkový režim: nic se neodesílá ven — zprávy se jen ukládají do {folder}. "
        "Pro skutečné odesílání nastavte SMTP / Twilio (viz Nastavení)."
    ]
    monkeypatch.setenv("COMMS_SMTP_HOST", "mail.example.com")
    at = AppTest.from_function(banner_app_cs, default_timeout=30).run()
    assert "Ukázkový režim jen pro SMS" in at.info[0].value
    assert "E-mail se doopravdy odesílá přes SMTP (mail.example.com" in at.info[0].value
