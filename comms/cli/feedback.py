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

from comms.cli import print_json, report
from comms.config import ROOT
from comms.feedback import mailbox, twilio
from comms.sending.senders.config import FeedbackConfig
from comms.store import open_store, resolve_db_path

APP = ROOT / "app.py"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="start the app with its routes and background sender",
        description=(
            "Start the app (pages, unsubscribe links, Twilio callbacks) and its background"
            " sender on one port. Recipients and Twilio reach it at COMMS_PUBLIC_URL."
        ),
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)

    b = sub.add_parser("bounces", help="apply bounces and complaints (files or the mailbox)")
    bsub = b.add_subparsers(dest="bounces_command", metavar="COMMAND", required=True)
    imp = bsub.add_parser(
        "import",
        parents=[common],
        help="apply the bounces in .eml / mbox files",
        description=(
            "Read .eml files or mbox files: delivery-status reports and MTA bounces make their"
            " message bounced and suppress the address, complaints suppress it, mailto"
            " unsubscribes opt the client out. Mail that is none of these is ignored; a mail"
            " seen before counts once."
        ),
    )
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.set_defaults(func=cmd_bounces_import)
    fetch = bsub.add_parser(
        "fetch",
        parents=[common],
        help="read the bounce mailbox (COMMS_BOUNCE_IMAP_*) once",
        description="Read the bounce mailbox's new mail once and apply it, like the app does.",
    )
    fetch.set_defaults(func=cmd_bounces_fetch)

    s = sub.add_parser(
        "sms-status",
        parents=[common],
        help="ask Twilio about SMS without a final status",
        description=(
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
            "comms: COMMS_PUBLIC_URL is not set: e-mails carry only the mailto: unsubscribe,"
            " and SMS status is polled instead of reported by Twilio.",
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
    parts = [
        f"{out['read']} read",
        f"{out['bounced']} bounced",
        f"{out['soft']} soft bounces",
        f"{out['complaints']} complaints",
        f"{out['unsubscribed']} unsubscribed",
        f"{out['ignored']} not bounces (left alone)",
    ]
    if out["duplicates"]:
        parts.append(f"{out['duplicates']} seen before")
    if out["unmatched"]:
        parts.append(f"{out['unmatched']} naming no message of ours")
    if out["late"]:
        parts.append(f"{out['late']} about messages already bounced")
    print(f"{title}: " + ", ".join(parts))


def cmd_bounces_import(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    out = mailbox.import_files(store, [Path(f) for f in args.files])
    if args.json:
        print_json(out)
    else:
        _print_summary(out, title=f"{len(args.files)} file(s)")
    return 0


def cmd_bounces_fetch(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    out = mailbox.fetch_imap(store).to_dict()
    if args.json:
        print_json(out)
    else:
        _print_summary(out, title="bounce mailbox")
    return 0


def cmd_sms_status(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    result = twilio.poll(store, everything=True)
    return report(
        args,
        result.to_dict(),
        f"asked {result.asked}: {result.delivered} delivered, {result.undelivered}"
        f" undelivered, {result.pending} not final yet",
        result.errors,
    )
