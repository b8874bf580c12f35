"""`comms templates add|list`, `comms generate`, `comms queue`."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from comms import i18n
from comms.cli import channel_name, print_json, shown
from comms.errors import CommsError
from comms.i18n import _, ngettext
from comms.rules.validation import CHANNELS
from comms.store import open_store

# The body formats a template may have (comms.templates.FORMATS, which a test keeps equal):
# the handlers import comms.templates themselves, so other commands do not load Jinja.
FORMATS = ("markdown", "html", "text")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the template, generate and queue commands to the `comms` parser."""
    p = sub.add_parser("templates", help=_("e-mail and SMS templates"))
    tsub = p.add_subparsers(dest="templates_command", metavar="ACTION", required=True)

    a = tsub.add_parser("add", parents=[common], help=_("add a template from a file"))
    a.add_argument("--name", required=True, metavar="N", help=_("unique template name"))
    a.add_argument("--channel", required=True, choices=CHANNELS, help=_("e-mail or SMS"))
    a.add_argument("--subject", metavar="S", help=_("subject (e-mail; may use {{ fields }})"))
    a.add_argument("--body-file", required=True, metavar="F", help=_("the body (Jinja2 text)"))
    a.add_argument(
        "--format",
        dest="body_format",
        choices=FORMATS,
        help=_("e-mail body format (default markdown; .html files: html)"),
    )
    a.add_argument("--attach", nargs="+", default=[], metavar="FILE", help=_("attachments"))
    a.set_defaults(func=cmd_templates_add)

    ls = tsub.add_parser("list", parents=[common], help=_("list the templates"))
    ls.set_defaults(func=cmd_templates_list)

    g = sub.add_parser(
        "generate", parents=[common], help=_("generate a batch of messages from a template")
    )
    g.add_argument("--template", required=True, metavar="NAME", help=_("template name"))
    who = g.add_mutually_exclusive_group(required=True)
    who.add_argument("--ids", metavar="1,2,3", help=_("client ids"))
    who.add_argument("--list", dest="list_name", metavar="NAME", help=_("every client of a list"))
    who.add_argument("--search", metavar="TEXT", help=_("clients matching a text search"))
    who.add_argument("--all", action="store_true", help=_("every client"))
    g.add_argument("--gsm7", action="store_true", help=_("SMS: replace diacritics (GSM-7)"))
    g.set_defaults(func=cmd_generate)

    if "queue" not in sub.choices:  # the sending area may offer its own
        q = sub.add_parser("queue", parents=[common], help=_("queue a batch's drafts for sending"))
        q.add_argument("--batch", required=True, type=int, metavar="ID", help=_("the batch"))
        q.add_argument("--at", metavar="ISO-8601", help=_("send at this time (default: now)"))
        q.set_defaults(func=cmd_queue)


def cmd_templates_add(args: argparse.Namespace) -> int:
    from comms import templates as tpl
    from comms.templates import attachments as att
    from comms.templates.storage import validate_template

    body_path = Path(args.body_file)
    try:
        body = body_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommsError(
            _("Cannot read the body file {path}: {reason}").format(
                path=body_path, reason=exc.strerror
            )
        ) from None
    except UnicodeDecodeError:
        raise CommsError(_("{path} is not UTF-8 text.").format(path=body_path)) from None
    body_format = args.body_format or (
        "html" if body_path.suffix.lower() in (".html", ".htm") else "markdown"
    )
    for f in args.attach:
        if not Path(f).is_file():
            raise CommsError(_("Attachment {file} does not exist.").format(file=f))
    if args.attach and args.channel != "email":
        raise CommsError(_("SMS templates cannot carry attachments."))
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
        print(
            _("Template {id} '{name}' ({channel}) saved.").format(
                id=t.id, name=t.name, channel=channel_name(t.channel)
            )
        )
    return 0


def cmd_templates_list(args: argparse.Namespace) -> int:
    from comms import templates as tpl

    rows = tpl.list_templates(open_store(args.db))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(_("No templates yet: `comms templates add` creates one."))
    for r in rows:
        extra = ""
        if r["attachments"]:
            # English keeps its one "(s)" form; Czech has three.
            extra = ngettext(
                ", {count} attachment(s)", ", {count} attachment(s)", r["attachments"]
            ).format(count=i18n.number(r["attachments"]))
        subject = _(" subject: {subject}").format(subject=r["subject"]) if r["subject"] else ""
        print(f"{r['id']:>4}  {r['name']}  [{channel_name(r['channel'])}{extra}]{subject}")
    return 0


def _selection(args: argparse.Namespace) -> dict:
    if args.ids:
        try:
            ids = [int(x) for x in args.ids.replace(" ", "").split(",") if x]
        except ValueError:
            raise CommsError(
                _("--ids takes numbers separated by commas, not {value!r}.").format(value=args.ids)
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
    n = i18n.number
    # English keeps its one form ("1 messages"); Czech has three.
    print(
        ngettext(
            "Batch {batch}: {total} messages, {valid} ready, {invalid} invalid.",
            "Batch {batch}: {total} messages, {valid} ready, {invalid} invalid.",
            result.total,
        ).format(
            batch=result.batch_id,
            total=n(result.total),
            valid=n(result.valid),
            invalid=n(result.invalid),
        )
    )
    for reason, count in sorted(result.reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {n(count):>6}  {shown(reason)}")
    if result.segments is not None:
        print(_("SMS segments to send: {segments}").format(segments=n(result.segments)))
    print(_("Queue them with: comms queue --batch {batch}").format(batch=result.batch_id))
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
                _("--at {value!r} is not an ISO-8601 time, e.g. 2026-12-01T09:30").format(
                    value=args.at
                )
            ) from None
    store = open_store(args.db)
    info = generate.batch_info(store, args.batch)
    n = outbox.queue(store, batch_id=args.batch, scheduled_at=when)
    if args.json:
        print_json({"batch_id": args.batch, "queued": n, "scheduled_at": when})
    else:
        total, queued = info["total"], i18n.number(n)
        # English keeps its one form ("of 1 messages"); Czech has three.
        if when:
            line = ngettext(
                "Batch {batch}: {queued} of {total} messages queued for {when}.",
                "Batch {batch}: {queued} of {total} messages queued for {when}.",
                total,
            )
        else:
            line = ngettext(
                "Batch {batch}: {queued} of {total} messages queued to go now.",
                "Batch {batch}: {queued} of {total} messages queued to go now.",
                total,
            )
        print(
            line.format(
                batch=args.batch,
                queued=queued,
                total=i18n.number(total),
                when=when.isoformat(sep=" ") if when else "",
            )
        )
    return 0
