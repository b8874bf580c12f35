"""The Settings page: which backend sends each channel, the sending limits, a test message,
and whether sign-in is on.

Settings are read (never written) from comms.sending.senders.config and comms.config;
the test message is created and sent by comms.messages.testsend.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from comms import actionlog, config
from comms.errors import CommsError, ConfigError
from comms.messages.testsend import send_test_message
from comms.sending.senders.config import ChannelLimits, DispatchConfig, describe_backends
from comms.store import Store
from comms.ui import auth
from comms.ui.common import CHANNEL_LABELS

CHANNELS = {
    "email": (CHANNEL_LABELS["email"], ":material/mail:"),
    "sms": (CHANNEL_LABELS["sms"], ":material/sms:"),
}
BACKEND_LABELS = {
    "smtp": "SMTP server",
    "twilio": "Twilio",
    "outbox": "Outbox folder (demo mode)",
}
# What each backend's description may show, with labels. Anything else is left out,
# so a future field cannot leak a secret onto this page by accident.
SHOWN_FIELDS = {
    "smtp": (
        ("server", "Server"),
        ("security", "Security"),
        ("login", "Login"),
        ("from", "From"),
        ("reply_to", "Reply-To"),
        ("list_unsubscribe", "List-Unsubscribe"),
    ),
    "twilio": (
        ("account", "Account"),
        ("from", "From"),
        ("messaging_service", "Messaging Service"),
        ("api_base", "API base URL"),
    ),
    "outbox": (("folder", "Folder"),),
}
PLACEHOLDERS = {"email": "you@example.com", "sms": "+420 777 123 456"}


def show_backend(channel: str, info: dict[str, Any]) -> None:
    """One channel's active backend and its non-secret settings."""
    name = info.get("backend", "outbox")
    colour = "orange" if name == "outbox" else "green"
    label, icon = CHANNELS[channel]
    st.markdown(f"#### {icon} {label}")
    st.markdown(f":{colour}-badge[{BACKEND_LABELS.get(name, name)}]")
    if not info.get("ok", True):
        st.error(f"The {BACKEND_LABELS.get(name, name)} settings are not usable: {info['error']}")
        return
    lines = []
    for key, title in SHOWN_FIELDS.get(name, ()):
        value = info.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"**{title}:** `{value}`")
    st.markdown("  \n".join(lines))
    if name == "outbox":
        st.caption(
            "Nothing leaves this machine: each message is written to this folder as "
            + (
                "an `.eml` file (open it in any mail client)."
                if channel == "email"
                else "a `.json` file."
            )
        )


def show_result(channel: str) -> None:
    """The outcome of the last test message of this channel."""
    result = st.session_state.get(f"settings_test_result_{channel}")
    if not result:
        return
    kind, text = result
    getattr(st, kind)(text)


def send_test(store: Store, channel: str, info: dict[str, Any]) -> None:
    """Create, queue and send a test message to the typed address; remember the outcome."""
    backend = info.get("backend", "outbox")
    raw = st.session_state.get(f"settings_test_to_{channel}", "")
    try:
        with st.spinner("Sending the test message…"):
            r = send_test_message(store, channel, raw, backend=backend)
    except CommsError as exc:
        outcome = ("error", str(exc))
    else:
        where = f"message #{r['message_id']} to {r['to_address']}"
        if r["status"] == "sent":
            extra = f" Provider id: `{r['provider_id']}`." if r["provider_id"] else ""
            if backend == "outbox":
                extra += f" Written to `{info.get('folder')}`."
            outcome = ("success", f"Sent {where}.{extra}")
        elif r["status"] == "failed":
            outcome = ("error", f"Failed: {where} was refused: {r['error']}")
        elif r["status"] == "queued":
            outcome = (
                "warning",
                f"Not sent yet: {where} met a temporary problem ({r['error'] or ', '.join(r['errors'])})"
                "; it stays queued and will be retried (see Outbox).",
            )
        else:
            outcome = ("warning", f"{where} is {r['status']}: {r['error'] or ''}")
    st.session_state[f"settings_test_result_{channel}"] = outcome


def channel_panel(store: Store, channel: str, info: dict[str, Any]) -> None:
    """A channel's backend and the form sending a test message through it."""
    label = CHANNELS[channel][0]
    show_backend(channel, info)
    st.divider()
    # A form sends the typed address with the click (no rerun needed in between).
    with st.form(f"settings_test_form_{channel}", border=False):
        st.text_input(
            f"Send a test {label if channel == 'sms' else 'e-mail'} to",
            key=f"settings_test_to_{channel}",
            placeholder=PLACEHOLDERS[channel],
        )
        submitted = st.form_submit_button(
            f"Send test {label if channel == 'sms' else 'e-mail'}",
            key=f"settings_test_send_{channel}",
            icon=":material/send:",
            disabled=not info.get("ok", True),
        )
    if submitted:
        send_test(store, channel, info)
    show_result(channel)


def rate_text(limits: ChannelLimits) -> str:
    """'10/s, 300/min' or 'no limit'."""
    parts = [f"{limits.per_second:g}/s"] if limits.per_second else []
    parts += [f"{limits.per_minute:g}/min"] if limits.per_minute else []
    return ", ".join(parts) or "no limit"


def limits_section() -> None:
    """Connections and rate limit per channel, retries and the scheduling delay."""
    st.subheader("Sending limits")
    try:
        dispatch = DispatchConfig.from_settings()
    except ConfigError as exc:
        st.error(f"The sending limits are not usable: {exc}")
        return
    st.dataframe(
        [
            {
                "Channel": CHANNELS[c][0],
                "Parallel connections": dispatch.limits(c).connections,
                "Rate limit": rate_text(dispatch.limits(c)),
            }
            for c in CHANNELS
        ],
        hide_index=True,
        placeholder="",
    )
    st.markdown(
        f"Temporary errors are retried up to **{dispatch.max_attempts}** attempts in total, "
        f"waiting **{dispatch.backoff_seconds:g} s** at first and twice as long each time after. "
        f"Scheduled messages are picked up within **{dispatch.poll_seconds:g} s** of their time "
        "while the app runs."
    )


def sign_in_section() -> None:
    """Whether sign-in is on, and whom the action log names."""
    st.subheader("Sign-in")
    section = auth.auth_section()
    if section is None:
        st.markdown(
            "Sign-in is **off**: nobody signs in, and the action log records the operating-system "
            f"user (**{actionlog.os_user()}**). Add an `[auth]` section (Streamlit's OpenID "
            "Connect settings) to the secrets to require sign-in on every page."
        )
    else:
        names = [p or "default" for p in auth.providers(section)]
        st.markdown(
            f"Sign-in is **on** (provider: {', '.join(names)}): every page requires it, and the "
            f"action log records **{actionlog.current_user()}** for what you do."
        )
    path = config.secrets_path()
    st.caption(f"Secrets file: `{path}`" + ("" if path.exists() else " (not present)"))


def render(store: Store) -> None:
    """The whole Settings page."""
    st.title("Settings")
    st.caption(
        "How messages leave this machine. Settings come from environment variables or "
        "`.streamlit/secrets.toml` (sections `[smtp]`, `[twilio]`, `[sending]`; see "
        "`.streamlit/secrets.toml.example`). Passwords and tokens are never shown here, "
        "stored in the database or written to logs."
    )
    backends = describe_backends()
    for channel, column in zip(CHANNELS, st.columns(len(CHANNELS)), strict=True):
        with column.container(border=True):
            channel_panel(store, channel, backends[channel])
    limits_section()
    sign_in_section()
