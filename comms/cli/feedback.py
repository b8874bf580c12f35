"""`comms serve`, `comms bounces import|fetch`, `comms sms-status`: the app and what comes back.

- `serve [--port P] [--host H]` starts the app with its routes (unsubscribe
  links, Twilio callbacks) and its background sender: `streamlit run app.py`.
- `bounces import FILE...` applies the bounces, complaints and mailto
  unsubscribes in .eml files or mbox files; `bounces fetch` reads the bounce
  mailbox (COMMS_BOUNCE_IMAP_*) once.
- `sms-status` asks Twilio now about every SMS of the last 72 hours without a
  final status (what the app's background reader does with back-off when
  there is no public URL for Twilio's callbacks).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from comms import i18n
from comms.cli import print_json, report
from comms.config import ROOT
from comms.feedback import mailbox, twilio
from comms.i18n import _, ngettext
from comms.sending.senders.config import FeedbackConfig
from comms.store import open_store, resolve_db_path

APP = ROOT / "app.py"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help=_("start the app with its routes and background sender"),
        description=_(
            "Start the app (pages, unsubscribe links, Twilio callbacks) and its background"
            " sender on one port. Recipients and Twilio reach it at COMMS_PUBLIC_URL."
        ),
    )
    p.add_argument("--port", type=int, default=8501, help=_("port (default 8501)"))
    p.add_argument(
        "--host", default="127.0.0.1", help=_("address to listen on (default 127.0.0.1)")
    )
    p.set_defaults(func=cmd_serve)

    b = sub.add_parser("bounces", help=_("apply bounces and complaints (files or the mailbox)"))
    bsub = b.add_subparsers(dest="bounces_command", metavar="COMMAND", required=True)
    imp = bsub.add_parser(
        "import",
        parents=[common],
        help=_("apply the bounces in .eml / mbox files"),
        description=_(
            "Read .eml files or mbox files: delivery-status reports and MTA bounces make their"
            " message bounced and suppress the address, complaints suppress it, mailto"
            " unsubscribes opt the client out. Mail that is none of these is ignored; a mail"
            " seen before counts once."
        ),
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help=_(".eml or mbox files"))
    imp.set_defaults(func=cmd_bounces_import)
    fetch = bsub.add_parser(
        "fetch",
        parents=[common],
        help=_("read the bounce mailbox (COMMS_BOUNCE_IMAP_*) once"),
        description=_("Read the bounce mailbox's new mail once and apply it, like the app does."),
    )
    fetch.set_defaults(func=cmd_bounces_fetch)

    s = sub.add_parser(
        "sms-status",
        parents=[common],
        help=_("ask Twilio about SMS without a final status"),
        description=_(
            "Ask Twilio (GET Messages/{Sid}.json) about every SMS sent in the last 72 hours"
            " that is still `sent`, and mark it delivered or undelivered."
        ),
    )
    s.set_defaults(func=cmd_sms_status)


def cmd_serve(args: argparse.Namespace) -> int:
    """Replace this process by `streamlit run app.py` on host:port (the same database)."""
    env = dict(os.environ)
    if args.db:
        env["COMMS_DB"] = str(resolve_db_path(args.db))
    feedback = FeedbackConfig.from_settings()
    if not feedback.public_url:
        print(
            "comms: "
            + _(
                "COMMS_PUBLIC_URL is not set: e-mails carry only the mailto: unsubscribe,"
                " and SMS status is polled instead of reported by Twilio."
            ),
            file=sys.stderr,
        )
    argv = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(args.port), "--server.address", args.host,
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
    return 0  # pragma: no cover - execve does not return


def _print_summary(out: dict, *, title: str) -> None:
    # English keeps one form for one and many ("1 complaints"); Czech has three.
    parts = [
        _("{count} read").format(count=i18n.number(out["read"])),
        _("{count} bounced").format(count=i18n.number(out["bounced"])),
        _counted(
            ngettext("{count} soft bounces", "{count} soft bounces", out["soft"]), out["soft"]
        ),
        _counted(
            ngettext("{count} complaints", "{count} complaints", out["complaints"]),
            out["complaints"],
        ),
        _("{count} unsubscribed").format(count=i18n.number(out["unsubscribed"])),
        _counted(
            ngettext(
                "{count} not bounces (left alone)",
                "{count} not bounces (left alone)",
                out["ignored"],
            ),
            out["ignored"],
        ),
    ]
    if out["duplicates"]:
        parts.append(
            _counted(
                ngettext("{count} seen before", "{count} seen before", out["duplicates"]),
                out["duplicates"],
            )
        )
    if out["unmatched"]:
        parts.append(
            _counted(
                ngettext(
                    "{count} naming no message of ours",
                    "{count} naming no message of ours",
                    out["unmatched"],
                ),
                out["unmatched"],
            )
        )
    if out["late"]:
        parts.append(
            _counted(
                ngettext(
                    "{count} about messages already bounced",
                    "{count} about messages already bounced",
                    out["late"],
                ),
                out["late"],
            )
        )
    print(_("{title}: {parts}").format(title=title, parts=", ".join(parts)))


def _counted(message: str, count: int) -> str:
    return message.format(count=i18n.number(count))


def cmd_bounces_import(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    out = mailbox.import_files(store, [Path(f) for f in args.files])
    if args.json:
        print_json(out)
    else:
        files = len(args.files)
        title = ngettext("{count} file(s)", "{count} file(s)", files)
        _print_summary(out, title=title.format(count=i18n.number(files)))
    return 0


def cmd_bounces_fetch(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    out = mailbox.fetch_imap(store).to_dict()
    if args.json:
        print_json(out)
    else:
        _print_summary(out, title=_("bounce mailbox"))
    return 0


def cmd_sms_status(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    result = twilio.poll(store, everything=True)
    n = i18n.number
    line = _(
        "asked {asked}: {delivered} delivered, {undelivered} undelivered, {pending} not final yet"
    ).format(
        asked=n(result.asked),
        delivered=n(result.delivered),
        undelivered=n(result.undelivered),
        pending=n(result.pending),
    )
    return report(args, result.to_dict(), line, result.errors)
