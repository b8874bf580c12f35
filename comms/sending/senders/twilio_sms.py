"""The Twilio backend: the official `twilio.rest.Client`, one pooled HTTPS session per sender.

The API base URL is configurable (COMMS_TWILIO_API_BASE) by setting the
`api` domain's `base_url`, which is where twilio 9 builds every Messages URL
from, so tests and proxies can point it at another server.

With COMMS_PUBLIC_URL set, each SMS asks Twilio for status callbacks
(StatusCallback = PUBLIC_URL/hooks/twilio/status, comms.web); `fetch_status`
reads one message's status back (GET Messages/{Sid}.json) for polling
without one (comms.feedback.twilio). `{{ unsubscribe_url }}` in a body
becomes the message's own link (comms.feedback.links).

Errors: HTTP 429 and 5xx are transient; other 4xx are permanent and keep
Twilio's code and message (21211: invalid 'To' number). A request that may
have reached Twilio without an answer (read timeout, connection reset after
sending) is `interrupted`: Twilio has no idempotency key for Messages, so it
is not resent automatically.
"""

from __future__ import annotations

import logging

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from comms.feedback import links
from comms.feedback.keys import signing_key
from comms.sending.senders.base import BaseSender, Outcome, OutgoingMessage
from comms.sending.senders.config import FeedbackConfig, TwilioConfig

# twilio's HTTP client logs every request's form (numbers, message text) at INFO;
# ours says nothing below WARNING, so personal data never lands in a log.
_HTTP_LOG = logging.getLogger("comms.sending.senders.twilio.http")
_HTTP_LOG.setLevel(logging.WARNING)


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


class TwilioSender(BaseSender):
    """Sends SMS through Twilio's Messages API."""

    channel = "sms"
    backend = "twilio"

    def __init__(self, config: TwilioConfig, feedback: FeedbackConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.feedback = feedback or FeedbackConfig.from_settings()
        self._client: Client | None = None
        self._http: TwilioHttpClient | None = None

    def _connect(self) -> None:
        self._http = TwilioHttpClient(
            pool_connections=True, timeout=self.config.timeout, logger=_HTTP_LOG
        )
        client = Client(self.config.account_sid, self.config.auth_token, http_client=self._http)
        client.api.base_url = self.config.api_base  # every Messages URL starts here
        self._client = client

    def _disconnect(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None and http.session is not None:
            http.session.close()

    def _send(self, message: OutgoingMessage) -> Outcome:
        assert self._client is not None
        body = message.body_text or ""
        if links.UNSUBSCRIBE_URL in body:
            link = (
                links.unsubscribe_url(self.feedback.public_url, signing_key(), message.id)
                if self.feedback.public_url
                else None
            )
            body = links.fill_unsubscribe(body, link) or ""
        params = {"to": message.to_address, "body": body}
        if self.feedback.status_callback:
            params["status_callback"] = self.feedback.status_callback
        if self.config.uses_messaging_service:
            params["messaging_service_sid"] = self.config.sms_from
        else:
            params["from_"] = self.config.sms_from
        try:
            created = self._client.messages.create(**params)
        except TwilioException as exc:
            status = int(getattr(exc, "status", 0) or 0)
            code = getattr(exc, "code", None)
            text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or str(exc)
            detail = f"Twilio error {code}: {text} (HTTP {status})"
            return Outcome.transient(detail) if _is_transient(status) else Outcome.permanent(detail)
        except requests.exceptions.ConnectTimeout as exc:
            self.close()
            self.open_failed = True
            return Outcome.transient(f"cannot connect to {self.config.api_base}: {exc}")
        except requests.exceptions.ConnectionError as exc:
            self.close()
            if "NewConnectionError" in str(exc) or "refused" in str(exc).lower():
                self.open_failed = True
                return Outcome.transient(f"cannot connect to {self.config.api_base}: {exc}")
            return Outcome.interrupted(f"no answer from {self.config.api_base}: {exc}")
        except requests.exceptions.RequestException as exc:
            self.close()
            return Outcome.interrupted(f"no answer from {self.config.api_base}: {exc}")
        return Outcome.sent(created.sid)

    def fetch_status(self, sid: str) -> dict[str, object]:
        """One message's status as Twilio has it now: {status, error_code, error_message}."""
        if not self.connected:
            self.open()
        assert self._client is not None
        fetched = self._client.messages(sid).fetch()
        return {
            "status": fetched.status,
            "error_code": fetched.error_code,
            "error_message": fetched.error_message,
        }
