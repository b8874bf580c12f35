"""`comms templates add|list`, `comms generate`, `comms queue`."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from comms.cli import print_json
from comms.errors import CommsError
from comms.rules.validation import CHANNELS
from comms.store import open_store

# The body formats a template may have (comms.templates.FORMATS, which a test keeps equal):
# the handlers import comms.templates themselves, so other commands do not load Jinja.
FORMATS = ("markdown", "html", "text")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the template, generate and queue commands to the `comms` parser."""
    p = sub.add_parser("templates", help="e-mail and SMS templates")
    tsub = p.add_subparsers(dest="templates_command", metavar="ACTION", required=True)

    a = tsub.add_parser("add", parents=[common], help="add a template from a file")
    a.add_argument("--name", required=True, metavar="N", help="unique template name")
    a.add_argument("--channel", required=True, choices=CHANNELS)
    a.add_argument("--subject", metavar="S", help="subject (e-mail; may use {{ fields }})")
    a.add_argument("--body-file", required=True, metavar="F", help="the body (Jinja2 text)")
    a.add_argument(
        "--format",
        dest="body_format",
        choices=FORMATS,
        help="e-mail body format (default markdown; .html files: html)",
    )
    a.add_argument("--attach", nargs="+", default=[], metavar="FILE", help="attachments")
    a.set_defaults(func=cmd_templates_add)

    ls = tsub.add_parser("list", parents=[common], help="list the templates")
    ls.set_defaults(func=cmd_templates_list)

    g = sub.add_parser(
        "generate", parents=[common], help="generate a batch of messages from a template"
    )
    g.add_argument("--template", required=True, metavar="NAME", help="template name")
    who = g.add_mutually_exclusive_group(required=True)
    who.add_argument("--ids", metavar="1,2,3", help="client ids")
    who.add_argument("--list", dest="list_name", metavar="NAME", help="every client of a list")
    who.add_argument("--search", metavar="TEXT", help="clients matching a text search")
    who.add_argument("--all", action="store_true", help="every client")
    g.add_argument("--gsm7", action="store_true", help="SMS: replace diacritics (GSM-7)")
    g.set_defaults(func=cmd_generate)

    if "queue" not in sub.choices:  # the sending area may offer its own
        q = sub.add_parser("queue", parents=[common], help="queue a batch's drafts for sending")
        q.add_argument("--batch", required=True, type=int, metavar="ID")
        q.add_argument("--at", metavar="ISO-8601", help="send at this time (default: now)")
        q.set_defaults(func=cmd_queue)


def cmd_templates_add(args: argparse.Namespace) -> int:
    from comms import templates as tpl
    from comms.templates import attachments as att
    from comms.templates.storage import validate_template

    body_path = Path(args.body_file)
    try:
        body = body_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommsError(f"Cannot read the body file {body_path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommsError(f"{body_path} is not UTF-8 text.") from None
    body_format = args.body_format or (
        "html" if body_path.suffix.lower() in (".html", ".htm") else "markdown"
    )
    for f in args.attach:
        if not Path(f).is_file():
            raise CommsError(f"Attachment {f} does not exist.")
    if args.attach and args.channel != "email":
        raise CommsError("SMS templates cannot carry attachments.")
    store = open_store(args.db)
    # Check the template (render budget included) before storing any file and outside the
    # write lock; then the files and the template are one transaction, so a template
    # refused at save (a taken name) leaves no file behind.
    validate_template(args.name, args.channel, args.subject, body, body_format)
    files = [(Path(f).name, Path(f).read_bytes()) for f in args.attach]
    att.check_total([att.Attachment(0, "", n, "", len(d)) for n, d in files])
    with store.transaction():
        ids = [att.add_attachment(store, n, d) for n, d in files]
        tid = tpl.create_template(
            store,
            name=args.name,
            channel=args.channel,
            subject=args.subject,
            body=body,
            body_format=body_format,
            attachment_ids=ids,
        )
    t = tpl.get_template(store, tid)
    if args.json:
        print_json(
            {
                "id": t.id,
                "name": t.name,
                "channel": t.channel,
                "fields": sorted(t.compile().fields),
                "attachments": [a.filename for a in t.attachments],
            }
        )
    else:
        print(f"Template {t.id} '{t.name}' ({t.channel}) saved.")
    return 0


def cmd_templates_list(args: argparse.Namespace) -> int:
    from comms import templates as tpl

    rows = tpl.list_templates(open_store(args.db))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No templates yet: `comms templates add` creates one.")
    for r in rows:
        extra = f", {r['attachments']} attachment(s)" if r["attachments"] else ""
        subject = f" subject: {r['subject']}" if r["subject"] else ""
        print(f"{r['id']:>4}  {r['name']}  [{r['channel']}{extra}]{subject}")
    return 0


def _selection(args: argparse.Namespace) -> dict:
    if args.ids:
        try:
            ids = [int(x) for x in args.ids.replace(" ", "").split(",") if x]
        except ValueError:
            raise CommsError(
                f"--ids takes numbers separated by commas, not {args.ids!r}."
            ) from None
        return {"client_ids": ids}
    if args.list_name:
        return {"filter": {"list": args.list_name}}
    if args.search:
        return {"filter": {"search": args.search}}
    return {"filter": {}}


def cmd_generate(args: argparse.Namespace) -> int:
    from comms import templates as tpl
    from comms.messages import generate

    store = open_store(args.db)
    t = tpl.get_template_by_name(store, args.template)
    result = generate.generate_messages(
        store, selection=_selection(args), template_id=t.id, gsm7=args.gsm7, source="cli"
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    print(
        f"Batch {result.batch_id}: {result.total} messages, {result.valid} ready, "
        f"{result.invalid} invalid."
    )
    for reason, n in sorted(result.reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {n:>6}  {reason}")
    if result.segments is not None:
        print(f"SMS segments to send: {result.segments}")
    print(f"Queue them with: comms queue --batch {result.batch_id}")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    from comms import outbox
    from comms.messages import generate

    when = None
    if args.at:
        try:
            when = datetime.fromisoformat(args.at)
        except ValueError:
            raise CommsError(
                f"--at {args.at!r} is not an ISO-8601 time, e.g. 2026-12-01T09:30"
            ) from None
    store = open_store(args.db)
    info = generate.batch_info(store, args.batch)
    n = outbox.queue(store, batch_id=args.batch, scheduled_at=when)
    if args.json:
        print_json({"batch_id": args.batch, "queued": n, "scheduled_at": when})
    else:
        at = f" for {when.isoformat(sep=' ')}" if when else " to go now"
        print(f"Batch {args.batch}: {n} of {info['total']} messages queued{at}.")
    return 0
