"""The Settings page: which backend sends each channel, the sending limits, a test message,
and whether sign-in is on.

Settings are read (never written) from comms.sending.senders.config and comms.config;
the test message is created and sent by comms.messages.testsend.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from comms import actionlog, config, i18n
from comms.errors import CommsError, ConfigError
from comms.feedback import queries as feedback_queries
from comms.i18n import N_, _
from comms.messages.testsend import send_test_message
from comms.sending.senders.config import ChannelLimits, DispatchConfig, describe_backends
from comms.store import Store
from comms.ui import auth
from comms.ui.common import CHANNEL_LABELS, Text, number, shown_code, text_of

CHANNELS = {"email": ":material/mail:", "sms": ":material/sms:"}  # channel -> icon
BACKEND_LABELS = {
    "smtp": N_("SMTP server"),
    "twilio": "Twilio",
    "outbox": N_("Outbox folder (demo mode)"),
}
# What each backend's description may show, with labels. Anything else is left out,
# so a future field cannot leak a secret onto this page by accident.
SHOWN_FIELDS = {
    "smtp": (
        ("server", N_("Server")),
        ("security", N_("Security")),
        ("login", N_("Login")),
        ("from", N_("From")),
        ("reply_to", "Reply-To"),
        ("list_unsubscribe", "List-Unsubscribe"),
    ),
    "twilio": (
        ("account", N_("Account")),
        ("from", N_("From")),
        ("messaging_service", N_("Messaging Service")),
        ("api_base", N_("API base URL")),
    ),
    "outbox": (("folder", N_("Folder")),),
}
PLACEHOLDERS = {"email": "you@example.com", "sms": "+420 777 123 456"}


def show_backend(channel: str, info: dict[str, Any]) -> None:
    """One channel's active backend and its non-secret settings."""
    name = info.get("backend", "outbox")
    colour = "orange" if name == "outbox" else "green"
    label, icon = CHANNEL_LABELS[channel], CHANNELS[channel]
    backend = _(BACKEND_LABELS.get(name, name))
    st.markdown(f"#### {icon} {label}")
    st.markdown(f":{colour}-badge[{backend}]")
    if not info.get("ok", True):
        st.error(
            _("The {backend} settings are not usable: {error}").format(
                backend=backend, error=info["error"]
            )
        )
        return
    lines = []
    for key, title in SHOWN_FIELDS.get(name, ()):
        value = info.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, bool):
            value = _("yes") if value else _("no")
        lines.append(f"**{_(title)}:** `{value}`")
    st.markdown("  \n".join(lines))
    if name == "outbox":
        st.caption(
            _(
                "Nothing leaves this machine: each message is written to this folder as "
                "an `.eml` file (open it in any mail client)."
            )
            if channel == "email"
            else _(
                "Nothing leaves this machine: each message is written to this folder as "
                "a `.json` file."
            )
        )


def show_result(channel: str) -> None:
    """The outcome of the last test message of this channel (in the viewer's language now)."""
    result = st.session_state.get(f"settings_test_result_{channel}")
    if not result:
        return
    kind, text = result
    getattr(st, kind)(text_of(text))


def _outcome(r: dict[str, Any], backend: str, folder: Any) -> tuple[str, Text]:
    """What became of a test message: its kind and a callable writing the sentence (kept
    in the session, it is written when shown, so it follows a language switch)."""

    def where() -> str:
        return _("message #{id} to {address}").format(id=r["message_id"], address=r["to_address"])

    if r["status"] == "sent":

        def sent() -> str:
            extra = (
                " " + _("Provider id: `{id}`.").format(id=r["provider_id"])
                if r["provider_id"]
                else ""
            )
            if backend == "outbox":
                extra += " " + _("Written to `{folder}`.").format(folder=folder)
            return _("Sent {what}.").format(what=where()) + extra

        return "success", sent
    if r["status"] == "failed":
        return "error", lambda: _("Failed: {what} was refused: {error}").format(
            what=where(), error=r["error"]
        )
    if r["status"] == "queued":
        problem = r["error"] or ", ".join(r["errors"])
        return "warning", lambda: _(
            "Not sent yet: {what} met a temporary problem ({problem}); it stays "
            "queued and will be retried (see Outbox)."
        ).format(what=where(), problem=problem)
    return "warning", lambda: _("{what} is {status}: {error}").format(
        what=where(), status=shown_code(r["status"]), error=r["error"] or ""
    )


def send_test(store: Store, channel: str, info: dict[str, Any]) -> None:
    """Create, queue and send a test message to the typed address; remember the outcome."""
    backend = info.get("backend", "outbox")
    raw = st.session_state.get(f"settings_test_to_{channel}", "")
    outcome: tuple[str, Text]
    try:
        with st.spinner(_("Sending the test message…")):
            r = send_test_message(store, channel, raw, backend=backend)
    except CommsError as exc:
        outcome = ("error", str(exc))
    else:
        outcome = _outcome(r, backend, info.get("folder"))
    st.session_state[f"settings_test_result_{channel}"] = outcome


def channel_panel(store: Store, channel: str, info: dict[str, Any]) -> None:
    """A channel's backend and the form sending a test message through it."""
    show_backend(channel, info)
    st.divider()
    # A form sends the typed address with the click (no rerun needed in between).
    with st.form(f"settings_test_form_{channel}", border=False):
        st.text_input(
            _("Send a test e-mail to") if channel == "email" else _("Send a test SMS to"),
            key=f"settings_test_to_{channel}",
            placeholder=PLACEHOLDERS[channel],
        )
        submitted = st.form_submit_button(
            _("Send test e-mail") if channel == "email" else _("Send test SMS"),
            key=f"settings_test_send_{channel}",
            icon=":material/send:",
            disabled=not info.get("ok", True),
        )
    if submitted:
        send_test(store, channel, info)
    show_result(channel)


def rate_text(limits: ChannelLimits) -> str:
    """'10/s, 300/min' or 'no limit'."""
    parts = [f"{i18n.number(limits.per_second)}/s"] if limits.per_second else []
    parts += [f"{i18n.number(limits.per_minute)}/min"] if limits.per_minute else []
    return ", ".join(parts) or _("no limit")


def limits_section() -> None:
    """Connections and rate limit per channel, retries and the scheduling delay."""
    st.subheader(_("Sending limits"))
    try:
        dispatch = DispatchConfig.from_settings()
    except ConfigError as exc:
        st.error(_("The sending limits are not usable: {error}").format(error=exc))
        return
    st.dataframe(
        [
            {
                _("Channel"): CHANNEL_LABELS[c],
                _("Parallel connections"): dispatch.limits(c).connections,
                _("Rate limit"): rate_text(dispatch.limits(c)),
            }
            for c in CHANNELS
        ],
        hide_index=True,
        placeholder="",
    )
    st.markdown(
        _(
            "Temporary errors are retried up to **{attempts}** attempts in total, "
            "waiting **{backoff} s** at first and twice as long each time after. "
            "Scheduled messages are picked up within **{poll} s** of their time "
            "while the app runs."
        ).format(
            attempts=number(dispatch.max_attempts),
            backoff=i18n.number(dispatch.backoff_seconds),
            poll=i18n.number(dispatch.poll_seconds),
        )
    )


AFTER_SENDING_LABELS = {
    "public_url": N_("Public URL (unsubscribe links, Twilio callbacks)"),
    "unsubscribe_key": N_("Unsubscribe link key"),
    "bounce_address": N_("Bounce address (VERP)"),
    "soft_bounce_limit": N_("Soft bounces in a row that count as hard"),
    "imap": N_("Bounce mailbox (IMAP)"),
    "status_callback": N_("SMS status callback"),
    "inbound_url": N_("SMS replies webhook"),
}


def after_sending_section() -> None:
    """Unsubscribes, delivery reports and bounces: what is set, and what a missing setting turns off."""
    st.subheader(_("After sending"))
    summary = feedback_queries.settings_summary()
    if not summary["ok"]:
        st.error(summary["error"])
        return
    rows = [
        {"setting": _(label), "value": str(summary.get(key)) if summary.get(key) else "—"}
        for key, label in AFTER_SENDING_LABELS.items()
    ]
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={"setting": _("Setting"), "value": _("Value")},
    )
    for sentence in summary["off"]:
        st.caption(":material/info: " + _(sentence))


def sign_in_section() -> None:
    """Whether sign-in is on, and whom the action log names."""
    st.subheader(_("Sign-in"))
    section = auth.auth_section()
    if section is None:
        st.markdown(
            _(
                "Sign-in is **off**: nobody signs in, and the action log records the "
                "operating-system user (**{user}**). Add an `[auth]` section (Streamlit's "
                "OpenID Connect settings) to the secrets to require sign-in on every page."
            ).format(user=actionlog.os_user())
        )
    else:
        names = [p or _("default") for p in auth.providers(section)]
        st.markdown(
            _(
                "Sign-in is **on** (provider: {providers}): every page requires it, and the "
                "action log records **{user}** for what you do."
            ).format(providers=", ".join(names), user=actionlog.current_user())
        )
    path = config.secrets_path()
    st.caption(
        (
            _("Secrets file: `{path}`")
            if path.exists()
            else _("Secrets file: `{path}` (not present)")
        ).format(path=path)
    )


def render(store: Store) -> None:
    """The whole Settings page."""
    st.title(_("Settings"))
    st.caption(
        _(
            "How messages leave this machine. Settings come from environment variables or "
            "`.streamlit/secrets.toml` (sections `[smtp]`, `[twilio]`, `[sending]`; see "
            "`.streamlit/secrets.toml.example`). Passwords and tokens are never shown here, "
            "stored in the database or written to logs."
        )
    )
    backends = describe_backends()
    for channel, column in zip(CHANNELS, st.columns(len(CHANNELS)), strict=True):
        with column.container(border=True):
            channel_panel(store, channel, backends[channel])
    limits_section()
    after_sending_section()
    sign_in_section()
