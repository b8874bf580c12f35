"""The app's own HTTP routes and its lifespan, served by Streamlit's `st.App` (app.py).

They run in the process that holds the database, beside the pages, so there
is no second writer. Each handler does its (blocking) database work in a
worker thread and calls into comms.feedback:

* `GET /u/{token}`: a small page asking to confirm, whose button POSTs. A GET
  never unsubscribes: mail scanners fetch links. The pages speak the
  recipient's language (their browser's Accept-Language: Czech when it asks
  for Czech, else English), not the desk user's.
* `POST /u/{token}` (RFC 8058 one-click, body `List-Unsubscribe=One-Click`):
  unsubscribes and answers 200; repeating it is harmless. A tampered or
  unknown token gets 404 and changes nothing.
* `POST /hooks/twilio/status` and `POST /hooks/twilio/inbound`: Twilio's
  delivery reports and replies, refused with 403 unless X-Twilio-Signature
  signs them for the URL comms gave Twilio (built from COMMS_PUBLIC_URL, not
  from the request's host, which a proxy rewrites).

`lifespan` starts the background sender (comms.sending.dispatcher) and the
feedback reader (comms.feedback.poller) when the server starts, so scheduled
sends go out after a restart before anyone opens a page, and stops both on
shutdown. When the database is held by another process at start, it starts
neither and the first page view starts the sender once the file is free
(comms.ui.common.start_dispatcher).
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from comms import actionlog, i18n
from comms.errors import CommsError, DatabaseInUse, NotFound
from comms.feedback import poller, twilio, unsubscribe
from comms.feedback.keys import BadToken
from comms.i18n import _
from comms.sending import dispatcher
from comms.sending.senders.config import FeedbackConfig, TwilioConfig
from comms.store import open_store

log = logging.getLogger(__name__)
T = TypeVar("T")

ONE_CLICK = "List-Unsubscribe=One-Click"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Who the action log names for what arrives over these routes.
RECIPIENT = "recipient (unsubscribe link)"
TWILIO = "twilio"

_started = threading.Event()  # set while this process's lifespan runs the background work


def lifespan_started() -> bool:
    """Whether the app's lifespan started the background sender in this process."""
    return _started.is_set()


async def _in_thread(user: str, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a worker thread, its action-log entries naming `user`, in the language
    of the request being answered (whatever the thread pool does with context variables)."""
    lang = i18n.language()

    def run() -> T:
        actionlog.set_user(user)
        with _speaking(lang):
            return fn(*args)

    return await run_in_threadpool(run)


# -- the recipient's language -----------------------------------------------------------------


def accepted_languages(header: str | None) -> list[str]:
    """The languages an Accept-Language header asks for, most wanted first ('*' included).

    'cs-CZ,cs;q=0.9,en;q=0.8' -> ['cs-CZ', 'cs', 'en']. A range with q=0 (refused) or a
    malformed q-value is left out; equal q-values keep the header's order.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        if not tag:
            continue
        q = 1.0
        for param in params:
            key, _sep, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0 < q <= 1:
            ranked.append((-q, position, tag))
    return [tag for _q, _position, tag in sorted(ranked)]


def request_language(request: Request) -> str:
    """The language to answer a recipient in: the first of their browser's we have, else English.

    A recipient is not a desk user: nothing of the desk's settings applies, only what
    their own browser says it reads.
    """
    for tag in accepted_languages(request.headers.get("accept-language")):
        if tag == "*":
            break  # "anything else": our default
        lang = i18n.normalise(tag)
        if lang:
            return lang
    return i18n.DEFAULT


@contextmanager
def _speaking(lang: str) -> Iterator[str]:
    """_() in `lang` inside the block, the language before it after."""
    before = i18n.language()
    try:
        yield i18n.set_language(lang)
    finally:
        i18n.set_language(before)


# -- pages ---------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page in the language in use (`title` is text, `body` HTML)."""
    lang = i18n.language()
    return HTMLResponse(
        _PAGE.format(lang=lang, title=html.escape(title), body=body),
        status_code=status,
        headers=_language_headers(lang),
    )


def _language_headers(lang: str) -> dict[str, str]:
    # Vary: a cache must not give a Czech page to an English browser.
    return {"Content-Language": lang, "Vary": "Accept-Language"}


def _masked(address: str | None) -> str:
    """j***@example.cz: enough for the recipient to recognise, little for a link's finder."""
    if not address or "@" not in address:
        return _("this address")
    local, domain = address.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def _what(channel: str) -> str:
    """What the recipient stops getting, as the sentences below use it."""
    return _("e-mails") if channel == "email" else _("text messages")


def _not_found() -> HTMLResponse:
    text = _(
        "This unsubscribe link is not valid (it may have been cut or changed). Nothing was changed."
    )
    return _page(_("Link not valid"), f"<p>{html.escape(text)}</p>", 404)


async def unsubscribe_page(request: Request) -> Response:
    """GET /u/{token}: confirm first; only the POST unsubscribes."""
    token = request.path_params["token"]
    with _speaking(request_language(request)):
        store = open_store()
        try:
            message = await run_in_threadpool(unsubscribe.message_for_token, store, token)
        except (BadToken, NotFound):
            return _not_found()
        question = html.escape(_("Stop sending {what} to {address}?")).format(
            what=html.escape(_what(message["channel"])),
            address=f"<b>{html.escape(_masked(message['to_address']))}</b>",
        )
        body = (
            f"<p>{question}</p>"
            f'<form method="post" action="/u/{html.escape(token)}">'
            f'<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{html.escape(_("Unsubscribe"))}</button></form>'
        )
        return _page(_("Unsubscribe"), body)


async def unsubscribe_post(request: Request) -> Response:
    """POST /u/{token}: RFC 8058 one-click unsubscribe (also the confirmation page's button)."""
    token = request.path_params["token"]
    with _speaking(request_language(request)):
        form = await request.form()
        if form.get("List-Unsubscribe") != "One-Click":
            text = html.escape(_("The request must carry {field}.")).format(
                field=f"<code>{ONE_CLICK}</code>"
            )
            return _page(_("Unsubscribe"), f"<p>{text}</p>", 400)
        store = open_store()
        try:
            done = await _in_thread(RECIPIENT, unsubscribe.unsubscribe, store, token)
        except (BadToken, NotFound):
            return _not_found()
        text = _("{address} will get no more {what} from us.").format(
            address=_masked(done.address), what=_what(done.channel)
        )
        return _page(_("Unsubscribed"), f"<p>{html.escape(text)}</p>")


# -- Twilio ----------------------------------------------------------------------------------


async def _signed_form(request: Request, url: str | None) -> dict[str, str] | None:
    """The form when X-Twilio-Signature signs it for `url`, else None."""
    form = await request.form()
    params = {k: str(v) for k, v in form.multi_items()}
    try:
        config = TwilioConfig.from_settings()
    except CommsError as exc:  # misconfigured: nothing can be checked, so nothing is taken
        log.warning("Twilio callback refused: %s", exc)
        return None
    if config is None or url is None:
        return None
    if not twilio.valid_signature(url, params, request.headers, config.auth_token):
        return None
    return params


def _forbidden(request: Request) -> PlainTextResponse:
    lang = request_language(request)
    with _speaking(lang):
        text = _("Forbidden: not signed by Twilio for this URL.")
    return PlainTextResponse(text, status_code=403, headers=_language_headers(lang))


async def twilio_status(request: Request) -> Response:
    """POST /hooks/twilio/status: one SMS's MessageStatus (delivered, undelivered, failed...)."""
    form = await _signed_form(request, FeedbackConfig.from_settings().status_callback)
    if form is None:
        return _forbidden(request)
    outcome = await _in_thread(TWILIO, twilio.status_callback, open_store(), form)
    return PlainTextResponse(outcome)


async def twilio_inbound(request: Request) -> Response:
    """POST /hooks/twilio/inbound: a reply (STOP / START change consent); empty TwiML back."""
    form = await _signed_form(request, FeedbackConfig.from_settings().inbound_url)
    if form is None:
        return _forbidden(request)
    await _in_thread(TWILIO, twilio.inbound, open_store(), form)
    return Response(TWIML_EMPTY, media_type="text/xml")


ROUTES = [
    Route("/u/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{token}", unsubscribe_post, methods=["POST"]),
    Route("/hooks/twilio/status", twilio_status, methods=["POST"]),
    Route("/hooks/twilio/inbound", twilio_inbound, methods=["POST"]),
]


# -- lifespan ------------------------------------------------------------------------------------


def background_enabled() -> bool:
    """False when COMMS_DISPATCHER=off (a benchmark or test that times the pages alone)."""
    return os.environ.get("COMMS_DISPATCHER", "on").lower() != "off"


def _start() -> poller.Poller | None:
    """Open the store; start the background sender and the feedback reader."""
    if not background_enabled():
        _started.set()  # the lifespan decides: no page view starts a sender either
        return None
    try:
        store = open_store()
    except DatabaseInUse as exc:
        log.warning("background sender not started: %s", exc)
        return None
    dispatcher.start_background(store)
    try:
        reader = poller.Poller(store).start()
    except CommsError as exc:  # pragma: no cover - a thread that cannot start
        log.warning("feedback reader not started: %s", exc)
        reader = None
    _started.set()
    return reader


def _stop(reader: poller.Poller | None) -> None:
    if reader is not None:
        reader.stop()
    dispatcher.stop_background()


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    """Start the background work with the server and stop it on shutdown."""
    reader = await run_in_threadpool(_start)
    try:
        yield {"feedback_reader": reader}
    finally:
        await run_in_threadpool(_stop, reader)
