"""Senders: one small interface (open / send / close) and a backend per way out.

`make_sender(channel)` returns the configured backend for 'email' or 'sms':
smtp / twilio when configured, else the outbox folder (demo mode).
"""

from __future__ import annotations

from comms.sending.senders.base import Attachment, BaseSender, Outcome, OutgoingMessage
from comms.sending.senders.config import (
    SmtpConfig,
    TwilioConfig,
    backend_name,
    describe_backends,
    is_demo_mode,
)

__all__ = [
    "Attachment",
    "BaseSender",
    "Outcome",
    "OutgoingMessage",
    "backend_name",
    "describe_backends",
    "is_demo_mode",
    "make_sender",
]


def make_sender(channel: str) -> BaseSender:
    """A new (unopened) sender for the channel's configured backend."""
    name = backend_name(channel)
    if name == "smtp":
        from comms.sending.senders.smtp import SmtpSender

        return SmtpSender(SmtpConfig.from_settings())  # type: ignore[arg-type]
    if name == "twilio":
        from comms.sending.senders.twilio_sms import TwilioSender

        return TwilioSender(TwilioConfig.from_settings())  # type: ignore[arg-type]
    from comms.sending.senders.outbox_folder import OutboxFolderSender

    return OutboxFolderSender(channel)
