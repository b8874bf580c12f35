"""Optional OIDC sign-in: the gate on every page, the identity in the sidebar and the log.

AppTest cannot complete a real OIDC round trip (no identity provider on
loopback), so these tests drive what Streamlit exposes to the app: `st.user`
with or without `is_logged_in`, and an `[auth]` section in $COMMS_SECRETS.
"""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms import actionlog
from comms.ui.auth import providers, user_label

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")

AUTH = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "a-long-random-cookie-secret-for-tests-only"
client_id = "comms"
client_secret = "not-a-real-secret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


@pytest.fixture(autouse=True)
def navigation_only(monkeypatch):
    """Keep Streamlit in st.navigation mode across AppTest runs of app.py.

    AppTest resets Streamlit's process-wide "legacy pages/ folder" flag before every
    run, so each run would start the way a fresh server's first run does (which
    comms.ui.common reruns through app.py, dropping the click being tested). The
    first-run case itself is covered in a real browser below.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def with_auth(db_path, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(AUTH)
    monkeypatch.setenv("COMMS_SECRETS", str(secrets))
    return secrets


def texts(at) -> str:
    parts = [getattr(e, "value", "") for e in at.get("title") + at.get("markdown")]
    parts += [e.value for e in at.caption] + [e.value for e in at.sidebar.caption]
    return "\n".join(str(p) for p in parts)


def test_without_auth_nobody_signs_in_and_the_os_user_is_shown(store):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "Client communication desk" in texts(at)
    assert f"Recorded as **{actionlog.os_user()}** (no sign-in)" in texts(at)
    assert not [b for b in at.button if b.key == "sign_out"]


def test_with_auth_every_page_stops_at_the_sign_in_screen(store, with_auth):
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Sign in" in shown and "recorded under your name" in shown
    assert "Client communication desk" not in shown  # the home page did not run
    assert at.button(key="sign_in_default").label == "Sign in"
    # A page opened directly is gated as well.
    at.switch_page("pages/action_log.py").run()
    assert "Action log" not in texts(at)
    assert at.button(key="sign_in_default")


def test_sign_in_button_without_authlib_explains_what_to_install(store, with_auth):
    try:
        import authlib  # noqa: F401

        pytest.skip("Authlib is installed: st.login would redirect to the provider")
    except ImportError:
        pass
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    at.button(key="sign_in_default").click().run()
    assert any("Authlib" in e.value for e in at.error)
    assert "Client communication desk" not in texts(at)  # still locked


def test_signed_in_user_sees_pages_is_logged_and_can_sign_out(store, with_auth):
    store.write(lambda cur: cur.execute("INSERT INTO batches (id, channel) VALUES (1, 'email')"))
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO messages (id, channel, source, batch_id, status)"
            " VALUES (1, 'email', 'bulk', 1, 'queued')"
        )
    )
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": True, "email": "ana@example.com", "name": "Ana Berg"}
    at.run()
    assert not at.exception
    assert "Client communication desk" in texts(at)
    assert "Signed in as **Ana Berg (ana@example.com)**" in texts(at)
    at.switch_page("pages/outbox.py").run()
    at.button(key="pause_1").click().run()
    assert not at.exception
    assert (
        store.scalar("SELECT \"user\" FROM action_log WHERE action = 'pause batch'")
        == "ana@example.com"
    )
    at.button(key="send_1").click().run()  # resumes, then makes it due for the sender
    assert not at.exception
    assert store.rows(
        'SELECT action, "user" FROM action_log'
        " WHERE action IN ('resume batch', 'send now') ORDER BY id"
    ) == [
        {"action": "resume batch", "user": "ana@example.com"},
        {"action": "send now", "user": "ana@example.com"},
    ]
    at.button(key="sign_out").click().run()
    assert at.user.get("is_logged_in") is False
    at.run()
    assert at.button(key="sign_in_default")


def test_named_providers_get_one_button_each(store, tmp_path, monkeypatch, db_path):
    secrets = tmp_path / "named.toml"
    secrets.write_text(
        '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n'
        'cookie_secret = "x"\n[auth.google]\nclient_id = "a"\n[auth.microsoft]\nclient_id = "b"\n'
    )
    monkeypatch.setenv("COMMS_SECRETS", str(secrets))
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    labels = [b.label for b in at.button]
    assert labels == ["Sign in with Google", "Sign in with Microsoft"]


def test_user_label_and_providers():
    assert user_label({"email": "a@x.cz", "name": "A"}) == "a@x.cz"
    assert user_label({"preferred_username": "ab", "sub": "1"}) == "ab"
    assert user_label({"sub": "123"}) == "123"
    assert user_label({}) is None
    assert providers({"client_id": "x"}) == [None]
    assert providers({"cookie_secret": "x", "okta": {"client_id": "y"}}) == ["okta"]


@pytest.mark.browser
def test_real_server_gates_a_page_opened_by_url_as_its_first_request(run_app, page, tmp_path):
    """A fresh server's first run may serve pages/outbox.py directly; it must still ask to sign in."""
    secrets = tmp_path / "auth.toml"
    secrets.write_text(AUTH)
    url = run_app(env={"COMMS_SECRETS": str(secrets)})
    page.goto(url + "/outbox")
    page.get_by_text("Sign in so that everything you do is recorded").wait_for()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Single messages").count() == 0
    page.goto(url + "/action_log")
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Rows per page").count() == 0
