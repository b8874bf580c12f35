"""Feedback: what happens after sending, read back and applied to messages and clients.

Owns:

- `keys`: the signing key (configured, else the key file beside the database) and
  the signed tokens that name a message (unsubscribe links, VERP bounce addresses).
- `links`: what a sent e-mail carries for the loop to close (List-Unsubscribe,
  `{{ unsubscribe_url }}`, the VERP envelope sender).
- `unsubscribe`: one-click (RFC 8058) and mailto unsubscribes: opt-out, suppression, log.
- `twilio`: SMS status callbacks and polling (delivered / undelivered, Twilio's error
  codes), and inbound replies (STOP / START) stored as inbound messages.
- `bounces`: reading delivery-status reports, MTA plain-text bounces and ARF
  complaints, and matching them to the message (Message-ID or VERP).
- `mailbox`: where bounces come from: .eml / mbox files and the IMAP bounce mailbox.
- `poller`: the app's background reader (IMAP every few minutes, Twilio polling).
- `queries`: per-batch results, why a client's channel is suppressed, inbound replies.

The status moves themselves (sent -> delivered / undelivered / bounced) are
comms.outbox.delivery's; the HTTP routes that call into this package are comms.web's.
Modules are imported by name (nothing is re-exported here), so the senders can
import `links` without the rest.
"""
