"""Banners every page shows at the top (drawn by comms.ui.common.start_app).

The demo banner tells the truth per channel, from the senders' own description
(comms.sending.senders.config.describe_backends): a channel whose backend is the
outbox folder sends nothing, and the banner says so; a channel that goes out
for real through SMTP or Twilio is named as such beside it, so "nothing leaves
this machine" is never said while e-mail really leaves.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from comms.i18n import N_, _
from comms.rules.validation import CHANNEL_NAMES
from comms.sending.senders.config import describe_backends, is_demo_mode, outbox_dir

SETTINGS_HINT = N_("Configure SMTP / Twilio to send for real (see Settings).")
_BACKEND_NAMES = {"smtp": "SMTP", "twilio": "Twilio"}


def demo_folders() -> dict[str, str]:
    """Channel -> outbox folder, for every channel whose backend is the outbox folder."""
    return {c: str(outbox_dir()) for c in CHANNEL_NAMES if is_demo_mode(c)}


def _label(channel: str) -> str:
    name = _(CHANNEL_NAMES[channel])
    return name[0].upper() + name[1:]


def _real(channel: str, info: dict[str, Any]) -> str:
    """'E-mail really goes out through SMTP (mail.example.com:587)'."""
    backend = _BACKEND_NAMES.get(str(info.get("backend")), str(info.get("backend")))
    where = info.get("server") or info.get("api_base") or ""
    text = _("{channel} really goes out through {backend}").format(
        channel=_label(channel), backend=backend
    )
    return text + (f" ({where})" if where else "")


def demo_text(
    folders: dict[str, str], backends: dict[str, dict[str, Any]] | None = None
) -> str | None:
    """The banner's sentence for the channels in demo mode, or None when none is.

    With every channel in demo mode: "nothing leaves this machine". With some: which
    channel is in demo mode, and how the others really go out.
    """
    if not folders:
        return None
    paths = sorted(set(folders.values()))
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    if len(folders) == len(CHANNEL_NAMES):
        return _("Demo mode: nothing leaves this machine — messages are written to {where}").format(
            where=where
        )
    backends = backends if backends is not None else describe_backends()
    demo = _(" and ").join(_(CHANNEL_NAMES[c]) for c in folders)
    real = [
        _real(c, backends.get(c) or {})
        for c in CHANNEL_NAMES
        if c not in folders and (backends.get(c) or {}).get("ok", True)
    ]
    text = _("Demo mode ({demo} only): {demo} messages are written to {where} and not sent").format(
        demo=demo, where=where
    )
    return text + (". " + "; ".join(real) if real else "")


def config_problems(backends: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences for channels set to a real backend whose settings do not work."""
    out = []
    for channel in CHANNEL_NAMES:
        info = backends.get(channel) or {}
        if info.get("ok") is False:
            backend = _BACKEND_NAMES.get(str(info.get("backend")), str(info.get("backend")))
            out.append(
                _(
                    "{channel} is set to go out through {backend}, but its settings do "
                    "not work: {error} Nothing of it can be sent until this is fixed "
                    "(see Settings)."
                ).format(channel=_label(channel), backend=backend, error=info.get("error"))
            )
    return out


def demo_banner() -> None:
    """Per channel, at the top of the page: demo mode, real sending, or broken settings."""
    folders = demo_folders()
    backends = describe_backends()
    text = demo_text(folders, backends)
    if text:
        st.info(f"{text}. {_(SETTINGS_HINT)}", icon=":material/science:")
    for problem in config_problems(backends):
        st.warning(problem, icon=":material/settings_alert:")
