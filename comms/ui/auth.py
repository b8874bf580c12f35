"""Optional sign-in with Streamlit's OIDC login (st.login / st.user / st.logout).

When secrets carry an `[auth]` section, every page requires a signed-in user and
the action log records that user; without it nobody signs in and the action
log records the operating-system user. The gate fails closed: a sign-in that
is configured but cannot work (Authlib missing, Streamlit not seeing the same
secrets) shows what to fix and still lets nobody in.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from comms import actionlog, config
from comms.i18n import _

# Claims tried in order to name the signed-in person in the action log.
USER_CLAIMS = ("email", "preferred_username", "name", "sub")


def auth_section() -> dict[str, Any] | None:
    """The `[auth]` section when sign-in is configured (Streamlit's secrets or $COMMS_SECRETS)."""
    try:
        if "auth" in st.secrets:
            section = st.secrets["auth"]
            return dict(section.to_dict() if hasattr(section, "to_dict") else section)
    except Exception:  # no secrets.toml at all: Streamlit raises instead of answering False
        pass
    section = config.secrets().get("auth")
    return dict(section) if isinstance(section, dict) and section else None


def providers(section: dict[str, Any]) -> list[str | None]:
    """Named providers ([auth.google], ...) in file order; [None] for a single unnamed one."""
    named = [key for key, value in section.items() if isinstance(value, dict)]
    return named or [None]


def user_info() -> dict[str, Any]:
    """st.user as a plain dict ({} where it is unavailable)."""
    try:
        return dict(st.user.to_dict())
    except Exception:  # no script context
        return {}


def is_signed_in(info: dict[str, Any]) -> bool:
    """True when Streamlit reports a completed OIDC sign-in."""
    return bool(info.get("is_logged_in"))


def user_label(info: dict[str, Any]) -> str | None:
    """The name recorded in the action log for a signed-in user."""
    for claim in USER_CLAIMS:
        value = info.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def signed_in_user() -> str | None:
    """The signed-in user's name when sign-in is configured and done, else None."""
    if auth_section() is None:
        return None
    info = user_info()
    return (user_label(info) or "signed-in user") if is_signed_in(info) else None


def require_sign_in() -> str | None:
    """Gate the page: returns the signed-in user, None when sign-in is off, else stops."""
    section = auth_section()
    if section is None:
        _sidebar_identity(None)
        return None
    info = user_info()
    if is_signed_in(info):
        user = user_label(info) or "signed-in user"
        _sidebar_identity(user, info)
        return user
    sign_in_screen(section)
    st.stop()
    return None  # unreachable: st.stop() ends the run


def sign_in_screen(section: dict[str, Any]) -> None:
    """The only thing shown until a person signs in."""
    st.title(":material/lock: " + _("Sign in"))
    st.markdown(
        _(
            "This desk sends messages to clients on the organisation's behalf. "
            "Sign in so that everything you do is recorded under your name."
        )
    )
    for provider in providers(section):
        label = (
            _("Sign in")
            if provider is None
            else _("Sign in with {provider}").format(provider=provider.title())
        )
        if st.button(label, key=f"sign_in_{provider or 'default'}", type="primary"):
            _login(provider)


def _login(provider: str | None) -> None:
    try:
        st.login(provider) if provider else st.login()
    except Exception as exc:  # Authlib missing or Streamlit cannot see the [auth] section
        st.error(_login_problem(exc), icon=":material/error:")


def _login_problem(exc: Exception) -> str:
    name = type(exc).__name__
    if "Authlib" in name or "authlib" in str(exc).lower():
        return _(
            "Sign-in is configured ([auth] in secrets) but the Authlib package is not "
            "installed. Install it with `pip install -e '.[auth]'` (or "
            "`pip install 'streamlit[auth]'`) and restart the app."
        )
    return _(
        "Sign-in is configured but cannot start: {error} Streamlit reads `[auth]` from "
        ".streamlit/secrets.toml; make sure the section there is complete "
        "(this app also read {path})."
    ).format(error=exc, path=config.secrets_path())


def _sidebar_identity(user: str | None, info: dict[str, Any] | None = None) -> None:
    """Who the action log will name; with sign-in, a sign-out button."""
    with st.sidebar:
        if user is None:
            st.caption(
                ":material/person: "
                + _("Recorded as **{user}** (no sign-in)").format(user=actionlog.os_user())
            )
            return
        name = (info or {}).get("name")
        shown = f"{name} ({user})" if isinstance(name, str) and name and name != user else user
        st.caption(":material/verified_user: " + _("Signed in as **{user}**").format(user=shown))
        if st.button(_("Sign out"), key="sign_out", icon=":material/logout:"):
            st.logout()


def sign_in_pending() -> bool:
    """True when sign-in is configured and this session has not signed in yet."""
    return auth_section() is not None and not is_signed_in(user_info())
