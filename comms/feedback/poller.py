"""The app's background reader of feedback, beside the background sender.

A thread, started and stopped by the app's lifespan (comms.web), that every
TICK_SECONDS does what is due:

* reads the bounce mailbox (comms.feedback.mailbox.fetch_imap) every
  COMMS_BOUNCE_IMAP_INTERVAL seconds (default 300) when one is configured;
* asks Twilio about SMS without a final status (comms.feedback.twilio.poll)
  when Twilio is configured: every one, with back-off, when there is no public
  URL for its callbacks; with one, only those still without a final status an
  hour after sending (a callback that never came, or came before the SID was
  stored).

A round that fails is logged (without secrets: the errors name host:port) and
kept in `last_error`; the next round tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from comms import actionlog
from comms.feedback import mailbox, twilio
from comms.sending.senders.config import FeedbackConfig, TwilioConfig, backend_name
from comms.store import Store

log = logging.getLogger(__name__)

TICK_SECONDS = 15.0
CALLBACK_GRACE = timedelta(hours=1)  # with callbacks, poll only SMS older than this


class Poller:
    """One background thread reading feedback for one store."""

    def __init__(self, store: Store, tick: float = TICK_SECONDS) -> None:
        self.store = store
        self.tick = tick
        self.stop_event = threading.Event()
        self.last_error: str | None = None
        self.last_imap: mailbox.Summary | None = None
        self.last_poll: twilio.PollResult | None = None
        self._next_imap = 0.0
        self.thread = threading.Thread(target=self._loop, name="comms-feedback", daemon=True)

    def start(self) -> Poller:
        self.thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        self.stop_event.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def round(self) -> None:
        """Do what is due now (also callable directly, e.g. by a test)."""
        feedback = FeedbackConfig.from_settings()
        if feedback.imap is not None and time.monotonic() >= self._next_imap:
            self._next_imap = time.monotonic() + feedback.imap.interval
            actionlog.set_user("bounce mailbox")
            self.last_imap = mailbox.fetch_imap(self.store, feedback.imap)
        if backend_name("sms") == "twilio":
            min_age = CALLBACK_GRACE if feedback.public_url else None
            if twilio.due_for_polling(self.store, min_age=min_age):
                actionlog.set_user("twilio")
                self.last_poll = twilio.poll(
                    self.store, TwilioConfig.from_settings(), min_age=min_age
                )

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.store._closed:
                    return
                self.round()
                self.last_error = None
            except Exception as exc:  # keep going: the next round may succeed
                if self.store._closed:
                    return
                log.warning("feedback round failed: %s", exc)
                self.last_error = str(exc)
            self.stop_event.wait(self.tick)
