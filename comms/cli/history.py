"""`comms history`, `comms compose`, `comms send-draft` and `comms log`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from comms.cli import print_json, whole_number
from comms.errors import CommsError
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


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "history", parents=[common], help="every message of one client, newest first"
    )
    p.add_argument("client_id", type=int, metavar="CLIENT_ID")
    p.add_argument("--limit", type=whole_number(1), default=None, help="at most this many messages")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "compose",
        parents=[common],
        help="write one e-mail or SMS to one client (a draft, or queued with --send)",
    )
    p.add_argument("--client", type=int, required=True, metavar="ID", help="the client's id")
    p.add_argument("--channel", choices=("email", "sms"), required=True)
    p.add_argument("--template", metavar="NAME", help="start from this template")
    p.add_argument("--subject", metavar="S", help="subject (e-mail; overrides the template's)")
    p.add_argument(
        "--body-file", metavar="F", help="body text from this file, '-' for stdin (Jinja fields)"
    )
    p.add_argument(
        "--format", choices=("markdown", "html", "text"), help="e-mail body format (markdown)"
    )
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach a file")
    p.add_argument("--gsm7", action="store_true", help="SMS: replace diacritics (GSM-7)")
    p.add_argument("--send", action="store_true", help="queue it to go now instead of a draft")
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("send-draft", parents=[common], help="queue drafts to go now")
    p.add_argument("message_ids", type=int, nargs="+", metavar="MESSAGE_ID")
    p.set_defaults(func=cmd_send_draft)

    p = sub.add_parser("suppressions", help="the suppression list (opted-out addresses)")
    ssub = p.add_subparsers(dest="suppressions_command", metavar="ACTION", required=True)
    s = ssub.add_parser(
        "import", parents=[common], help="add the addresses of a CSV/TXT file (one per line)"
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument("--reason", default="uploaded list", help="why these addresses opted out")
    s.set_defaults(func=cmd_suppressions_import)
    s = ssub.add_parser("list", parents=[common], help="the suppressed addresses, newest first")
    s.add_argument("--search", metavar="TEXT", help="only addresses containing TEXT")
    s.add_argument("--channel", choices=("email", "sms"))
    s.set_defaults(func=cmd_suppressions_list)

    p = sub.add_parser("log", parents=[common], help="the action log, newest first")
    p.add_argument("--limit", type=whole_number(1), default=50, help="entries to show (default 50)")
    p.add_argument("--action", action="append", default=[], help="only this action (repeatable)")
    p.add_argument("--client", type=int, metavar="ID", help="only this client")
    p.add_argument("--batch", type=int, metavar="ID", help="only this batch")
    p.set_defaults(func=cmd_log)


def cmd_history(args: argparse.Namespace) -> int:
    from comms.messages import history

    store = open_store(args.db)
    if store.scalar("SELECT count(*) FROM clients WHERE id = ?", [args.client_id]) == 0:
        raise CommsError(f"No client with id {args.client_id}.")
    rows = [
        {k: r.get(k) for k in HISTORY_FIELDS}
        for r in history.client_history(store, args.client_id, limit=args.limit)
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"Client {args.client_id} has no messages.")
        return 0
    for r in rows:
        when = r["sent_at"] or r["created_at"]
        title = r["subject"] or (r["body"] or "").replace("\n", " ")[:60]
        print(
            f"{r['id']:>8}  {str(when)[:16]}  {r['channel']:<5} {r['status']:<11} "
            f"{r['source']:<13} {title}"
        )
    return 0


def _read_body(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise CommsError(f"--body-file: {path} does not exist.")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CommsError(f"--body-file: {path} is not UTF-8 text.") from None


def cmd_compose(args: argparse.Namespace) -> int:
    from comms.messages import compose
    from comms.outbox.create import SOURCE_CLI

    store = open_store(args.db)
    subject, body, body_format, attachment_ids, template_id = None, "", "markdown", [], None
    if args.template:
        tpl = compose.get_template(store, name=args.template)
        if tpl["channel"] != args.channel:
            raise CommsError(
                f"--template: {args.template!r} is an {tpl['channel']} template, "
                f"not {args.channel}."
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
            raise CommsError("--attach: only e-mails carry attachments.")
        from comms.templates.attachments import add_file

        attachment_ids += [add_file(store, f) for f in args.attach]
    if not args.template and not args.body_file:
        raise CommsError("Give --template NAME or --body-file F (the message text).")
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
        extra = f", {result.segments} segment(s) {result.encoding}" if result.segments else ""
        print(f"Message {result.message_id} to {result.to_address}: {result.status}{extra}.")
    return 0


def cmd_send_draft(args: argparse.Namespace) -> int:
    from comms.messages import compose

    store = open_store(args.db)
    queued = compose.send_drafts(store, args.message_ids)
    if args.json:
        print_json({"queued": queued, "message_ids": args.message_ids})
    else:
        print(f"Queued {queued} message(s); they go with the next send run (`comms send`).")
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
    for r in rows:
        ids = " ".join(
            f"{label}={int(r[key])}"
            for key, label in (
                ("batch_id", "batch"),
                ("message_id", "msg"),
                ("client_id", "client"),
            )
            if r.get(key) is not None
        )
        print(
            f"{str(r['ts'])[:19]}  {r['user']:<12} {r['action']:<20} {r['outcome']:<10} "
            f"{ids}  {r.get('summary') or ''}".rstrip()
        )
    return 0


def cmd_suppressions_import(args: argparse.Namespace) -> int:
    from comms.clients import suppressions
    from comms.clients.reading import read_source

    data, _ = read_source(args.file)  # regular files only, within the upload limit
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
        print(
            f"{added} address(es) added, {report['already_listed']} already listed, "
            f"{len(parsed.errors)} bad line(s)."
        )
        for n, text, reason in parsed.errors:
            print(f"  line {n}: {text!r}: {reason}")
    return 0


def cmd_suppressions_list(args: argparse.Namespace) -> int:
    from comms.clients import suppressions

    store = open_store(args.db)
    df = suppressions.list_suppressions(store, channel=args.channel, search=args.search)
    rows = df.to_dict("records")
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(f"{r['address']:<40} {r['channel']:<5} {str(r['created_at'])[:16]}  {r['reason']}")
    return 0
