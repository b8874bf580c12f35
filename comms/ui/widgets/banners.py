"""Banners every page shows at the top (drawn by comms.ui.common.start_app)."""

from __future__ import annotations

import streamlit as st

from comms.rules.validation import CHANNEL_NAMES
from comms.sending.senders.config import is_demo_mode, outbox_dir


def demo_folders() -> dict[str, str]:
    """Channel -> outbox folder, for every channel whose backend is the outbox folder."""
    return {c: str(outbox_dir()) for c in CHANNEL_NAMES if is_demo_mode(c)}


def demo_text(folders: dict[str, str]) -> str | None:
    """The demo-mode sentence for the channels in folders, or None when none is in demo mode."""
    if not folders:
        return None
    paths = sorted(set(folders.values()))
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    text = f"Demo mode: nothing leaves this machine — messages are written to {where}"
    if len(folders) < len(CHANNEL_NAMES):
        text += " (" + " and ".join(CHANNEL_NAMES[c] for c in folders) + " only)"
    return text


def demo_banner() -> None:
    """'Demo mode: nothing leaves this machine' at the top of the page, when it applies."""
    text = demo_text(demo_folders())
    if text:
        st.info(
            text + ". Configure SMTP / Twilio to send for real (see Settings).",
            icon=":material/science:",
        )
