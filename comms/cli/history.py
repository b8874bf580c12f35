"""`comms history`, `comms compose`, `comms send-draft` and `comms log`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from comms import i18n
from comms.cli import channel_name, column, print_json, shown, whole_number
from comms.errors import CommsError
from comms.i18n import N_, _, ngettext
from comms.store import open_store

HISTORY_FIELDS = (
    "id",
    "channel",
    "status",
    "source",
    "batch_id",
    "to_address",
    "subject",
    "body",
    "reason",
    "error",
    "attempts",
    "segments",
    "provider_id",
    "created_at",
    "scheduled_at",
    "sent_at",
)

# What `comms suppressions import` stores as the reason when none is given (a code,
# shown in the viewer's language), and the outcomes an action-log entry has.
DEFAULT_SUPPRESSION_REASON = N_("uploaded list")
LOG_OUTCOMES = (N_("ok"), N_("error"), N_("failed"))


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "history", parents=[common], help=_("every message of one client, newest first")
    )
    p.add_argument("client_id", type=int, metavar="CLIENT_ID", help=_("the client's id"))
    p.add_argument(
        "--limit", type=whole_number(1), default=None, help=_("at most this many messages")
    )
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "compose",
        parents=[common],
        help=_("write one e-mail or SMS to one client (a draft, or queued with --send)"),
    )
    p.add_argument("--client", type=int, required=True, metavar="ID", help=_("the client's id"))
    p.add_argument("--channel", choices=("email", "sms"), required=True, help=_("e-mail or SMS"))
    p.add_argument("--template", metavar="NAME", help=_("start from this template"))
    p.add_argument("--subject", metavar="S", help=_("subject (e-mail; overrides the template's)"))
    p.add_argument(
        "--body-file",
        metavar="F",
        help=_("body text from this file, '-' for stdin (Jinja fields)"),
    )
    p.add_argument(
        "--format", choices=("markdown", "html", "text"), help=_("e-mail body format (markdown)")
    )
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help=_("attach a file"))
    p.add_argument("--gsm7", action="store_true", help=_("SMS: replace diacritics (GSM-7)"))
    p.add_argument("--send", action="store_true", help=_("queue it to go now instead of a draft"))
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("send-draft", parents=[common], help=_("queue drafts to go now"))
    p.add_argument(
        "message_ids", type=int, nargs="+", metavar="MESSAGE_ID", help=_("the drafts' ids")
    )
    p.set_defaults(func=cmd_send_draft)

    p = sub.add_parser("suppressions", help=_("the suppression list (opted-out addresses)"))
    ssub = p.add_subparsers(dest="suppressions_command", metavar="ACTION", required=True)
    s = ssub.add_parser(
        "import", parents=[common], help=_("add the addresses of a CSV/TXT file (one per line)")
    )
    s.add_argument("file", metavar="FILE", help=_("CSV or TXT file, one address per line"))
    s.add_argument(
        "--reason",
        default=DEFAULT_SUPPRESSION_REASON,
        help=_("why these addresses opted out (default: uploaded list)"),
    )
    s.set_defaults(func=cmd_suppressions_import)
    s = ssub.add_parser("list", parents=[common], help=_("the suppressed addresses, newest first"))
    s.add_argument("--search", metavar="TEXT", help=_("only addresses containing TEXT"))
    s.add_argument("--channel", choices=("email", "sms"), help=_("only e-mail or only SMS"))
    s.set_defaults(func=cmd_suppressions_list)

    p = sub.add_parser("log", parents=[common], help=_("the action log, newest first"))
    p.add_argument(
        "--limit", type=whole_number(1), default=50, help=_("entries to show (default 50)")
    )
    p.add_argument("--action", action="append", default=[], help=_("only this action (repeatable)"))
    p.add_argument("--client", type=int, metavar="ID", help=_("only this client"))
    p.add_argument("--batch", type=int, metavar="ID", help=_("only this batch"))
    p.set_defaults(func=cmd_log)


def cmd_history(args: argparse.Namespace) -> int:
    from comms.messages import history

    store = open_store(args.db)
    if store.scalar("SELECT count(*) FROM clients WHERE id = ?", [args.client_id]) == 0:
        raise CommsError(_("No client with id {id}.").format(id=args.client_id))
    rows = [
        {k: r.get(k) for k in HISTORY_FIELDS}
        for r in history.client_history(store, args.client_id, limit=args.limit)
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(_("Client {id} has no messages.").format(id=args.client_id))
        return 0
    channels = [channel_name(r["channel"]) for r in rows]
    statuses = [shown(r["status"]) for r in rows]
    sources = [shown(r["source"]) for r in rows]
    # The English widths; a longer Czech word widens its column for every row.
    wc, ws, wsrc = column(channels, 5), column(statuses, 11), column(sources, 13)
    for r, chan, status, source in zip(rows, channels, statuses, sources, strict=True):
        when = r["sent_at"] or r["created_at"]
        title = r["subject"] or (r["body"] or "").replace("\n", " ")[:60]
        print(
            f"{r['id']:>8}  {_when(when, 16)}  {chan:<{wc}} {status:<{ws}} {source:<{wsrc}} {title}"
        )
    return 0


def _when(value: Any, width: int) -> str:
    """A stored time in the viewer's format, one width for every row (English: ISO, as ever)."""
    if value is None:
        return " " * width
    if i18n.language() == i18n.DEFAULT or not isinstance(value, datetime):
        return str(value)[:width].ljust(width)
    return i18n.format_datetime(value).ljust(width)


def _read_body(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise CommsError(_("--body-file: {path} does not exist.").format(path=path))
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CommsError(_("--body-file: {path} is not UTF-8 text.").format(path=path)) from None


def cmd_compose(args: argparse.Namespace) -> int:
    from comms.messages import compose
    from comms.outbox.create import SOURCE_CLI

    store = open_store(args.db)
    subject, body, body_format, attachment_ids, template_id = None, "", "markdown", [], None
    if args.template:
        tpl = compose.get_template(store, name=args.template)
        if tpl["channel"] != args.channel:
            raise CommsError(
                _("--template: {name!r} is an {kind} template, not {channel}.").format(
                    name=args.template,
                    kind=channel_name(tpl["channel"]),
                    channel=channel_name(args.channel),
                )
            )
        template_id = int(tpl["id"])
        subject, body = tpl.get("subject"), tpl["body"]
        body_format = tpl.get("body_format") or "markdown"
        attachment_ids = list(tpl["attachment_ids"])
    if args.subject is not None:
        subject = args.subject
    if args.body_file:
        body = _read_body(args.body_file)
    if args.format:
        body_format = args.format
    if args.attach:
        if args.channel != "email":
            raise CommsError(_("--attach: only e-mails carry attachments."))
        from comms.templates.attachments import add_file

        attachment_ids += [add_file(store, f) for f in args.attach]
    if not args.template and not args.body_file:
        raise CommsError(_("Give --template NAME or --body-file F (the message text)."))
    result = compose.compose(
        store,
        client_id=args.client,
        channel=args.channel,
        subject=subject,
        body=body,
        body_format=body_format,
        template_id=template_id,
        attachment_ids=attachment_ids,
        gsm7=args.gsm7,
        send=args.send,
        source=SOURCE_CLI,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        fields = {
            "id": result.message_id,
            "address": result.to_address,
            "status": shown(result.status),
        }
        if result.segments:
            # English keeps its one "(s)" form; Czech has three.
            line = ngettext(
                "Message {id} to {address}: {status}, {segments} segment(s) {encoding}.",
                "Message {id} to {address}: {status}, {segments} segment(s) {encoding}.",
                result.segments,
            ).format(**fields, segments=i18n.number(result.segments), encoding=result.encoding)
        else:
            line = _("Message {id} to {address}: {status}.").format(**fields)
        print(line)
    return 0


def cmd_send_draft(args: argparse.Namespace) -> int:
    from comms.messages import compose

    store = open_store(args.db)
    queued = compose.send_drafts(store, args.message_ids)
    if args.json:
        print_json({"queued": queued, "message_ids": args.message_ids})
    else:
        # English keeps its one "(s)" form; Czech has three.
        print(
            ngettext(
                "Queued {count} message(s); they go with the next send run (`comms send`).",
                "Queued {count} message(s); they go with the next send run (`comms send`).",
                queued,
            ).format(count=i18n.number(queued))
        )
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from comms.actionlog.queries import LogFilter, query_log

    store = open_store(args.db)
    f = LogFilter(actions=args.action, client_id=args.client, batch_id=args.batch)
    df = query_log(store, f, limit=args.limit)
    rows = df.to_dict("records")
    for r in rows:
        try:
            r["detail"] = json.loads(r["detail"]) if r.get("detail") else {}
        except (TypeError, ValueError):
            pass
        for k, v in list(r.items()):
            if v != v:  # NaN from pandas for missing ids
                r[k] = None
    if args.json:
        print_json(rows)
        return 0
    labels = (("batch_id", _("batch")), ("message_id", _("msg")), ("client_id", _("client")))
    actions = [shown(r["action"]) for r in rows]
    outcomes = [shown(r["outcome"]) for r in rows]
    # The English widths; a longer Czech word widens its column for every row.
    wa, wo = column(actions, 20), column(outcomes, 10)
    for r, action, outcome in zip(rows, actions, outcomes, strict=True):
        ids = " ".join(f"{label}={int(r[key])}" for key, label in labels if r.get(key) is not None)
        print(
            f"{_when(r['ts'], 19)}  {r['user']:<12} {action:<{wa}} {outcome:<{wo}} "
            f"{ids}  {r.get('summary') or ''}".rstrip()
        )
    return 0


def cmd_suppressions_import(args: argparse.Namespace) -> int:
    from comms.clients import suppressions
    from comms.clients.reading import read_source

    data, _kind = read_source(args.file)  # regular files only, within the upload limit
    parsed = suppressions.parse_address_list(data)
    store = open_store(args.db)
    added = suppressions.import_suppressions(store, parsed, args.reason)
    report = {
        "addresses": len(parsed.entries),
        "added": added,
        "already_listed": len(parsed.entries) - added,
        "duplicates": parsed.duplicates,
        "problems": [{"line": n, "text": t, "reason": r} for n, t, r in parsed.errors],
    }
    if args.json:
        print_json(report)
    else:
        n = i18n.number
        print(
            _("{added} address(es) added, {listed} already listed, {bad} bad line(s).").format(
                added=n(added), listed=n(report["already_listed"]), bad=n(len(parsed.errors))
            )
        )
        for line, text, reason in parsed.errors:
            print(
                _("  line {line}: {text!r}: {reason}").format(
                    line=n(line), text=text, reason=shown(reason)
                )
            )
    return 0


def cmd_suppressions_list(args: argparse.Namespace) -> int:
    from comms.clients import suppressions

    store = open_store(args.db)
    df = suppressions.list_suppressions(store, channel=args.channel, search=args.search)
    rows = df.to_dict("records")
    if args.json:
        print_json(rows)
        return 0
    channels = [channel_name(r["channel"]) for r in rows]
    wc = column(channels, 5)  # the English width; wider for a longer Czech name
    for r, chan in zip(rows, channels, strict=True):
        print(f"{r['address']:<40} {chan:<{wc}} {_when(r['created_at'], 16)}  {shown(r['reason'])}")
    return 0
