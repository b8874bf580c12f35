"""The sender interface every backend implements, in the manner of Django's e-mail backends.

A sender delivers one channel's messages over one connection:

* ``open() -> bool`` opens the connection (login included) and returns True
  only when it opened a new one, so a caller that finds it already open knows
  not to close it. Opening twice is harmless.
* ``send(message) -> Outcome`` hands one message over the open connection
  (opening it first if needed) and never raises for a delivery problem:
  the outcome says ``sent`` (with the provider's id: Message-ID or Twilio
  SID), ``transient`` (worth retrying later: SMTP 4xx, a connection that
  could not be made, Twilio 429/5xx), ``permanent`` (the server refused it for
  good, with its text: SMTP 5xx, Twilio 21211) or ``interrupted`` (the link
  broke after the server may already have taken the message: delivery is
  unknown, and the message must not be resent automatically).
* ``close()`` closes the connection; closing twice is harmless.
* The sender is a context manager (``with sender: ...`` opens and closes), and
  one connection serves a whole batch: ``send`` is called many times between
  ``open`` and ``close``.

A sender instance is used by one thread at a time (the dispatcher gives each
worker thread its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OutcomeStatus = Literal["sent", "transient", "permanent", "interrupted"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one message handed to a sender."""

    status: OutcomeStatus
    provider_id: str | None = None
    error: str | None = None

    @classmethod
    def sent(cls, provider_id: str | None) -> Outcome:
        return cls("sent", provider_id=provider_id)

    @classmethod
    def transient(cls, error: str) -> Outcome:
        return cls("transient", error=error)

    @classmethod
    def permanent(cls, error: str) -> Outcome:
        return cls("permanent", error=error)

    @classmethod
    def interrupted(cls, error: str) -> Outcome:
        return cls("interrupted", error=error)


@dataclass(frozen=True)
class Attachment:
    """A file attached to an e-mail."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as the senders see it (built from a `messages` row)."""

    id: int
    channel: str  # email | sms
    to_address: str
    to_name: str | None = None
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    batch_id: int | None = None
    client_id: int | None = None


class BaseSender:
    """Base class: subclasses implement _connect / _disconnect / _send."""

    channel: str = ""
    backend: str = ""
    pipelines = False  # True when prepare() can send a message's envelope ahead

    def __init__(self) -> None:
        self.connected = False
        # True when the last send() could not even open a connection (server down,
        # login refused): the dispatcher stops using this channel for the run.
        self.open_failed = False

    def open(self) -> bool:
        """Open the connection; True only when a new one was opened."""
        if self.connected:
            return False
        self._connect()
        self.connected = True
        return True

    def close(self) -> None:
        """Close the connection (harmless when already closed)."""
        if self.connected:
            self.connected = False
            self._disconnect()

    def send(self, message: OutgoingMessage) -> Outcome:
        """Hand one message over, opening the connection when needed."""
        self.open_failed = False
        if not self.connected:
            try:
                self.open()
            except Exception as exc:  # cannot reach the server: nothing was sent
                self.open_failed = True
                return Outcome.transient(self.describe_error(exc))
        return self._send(message)

    def prepare(self, message: OutgoingMessage) -> bool:
        """Start the next message's transaction WITHOUT delivering anything; True if done.

        For a backend whose server is slow to answer (SMTP: MAIL FROM / RCPT TO)
        the dispatcher calls this while the message's claim is being committed;
        send() of the same message then goes on from there. Nothing of the
        message's content leaves before send(). Default: not supported.
        """
        return False

    def abandon(self) -> None:
        """Undo a prepare() whose message is not going to be sent (not claimed after all)."""

    def send_messages(self, messages: list[OutgoingMessage]) -> list[Outcome]:
        """Send several, closing the connection afterwards only if this call opened it."""
        opened = False
        try:
            opened = self.open()
        except Exception as exc:
            return [Outcome.transient(self.describe_error(exc)) for _ in messages]
        try:
            return [self.send(m) for m in messages]
        finally:
            if opened:
                self.close()

    def describe_error(self, exc: BaseException) -> str:
        """A one-line description of a connection error (no secrets)."""
        return f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> BaseSender:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses ----------------------------------------------------------
    def _connect(self) -> None:
        """Open the connection (subclasses that need one)."""

    def _disconnect(self) -> None:
        """Close the connection (subclasses that hold one)."""

    def _send(self, message: OutgoingMessage) -> Outcome:
        raise NotImplementedError


class DummySender(BaseSender):
    """Accepts everything and sends nothing (like Django's dummy backend)."""

    backend = "dummy"

    def _send(self, message: OutgoingMessage) -> Outcome:
        return Outcome.sent(f"dummy-{message.id}")
