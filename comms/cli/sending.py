"""`comms send`: send every due message (for cron), exiting when nothing is due."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from comms import i18n
from comms.cli import report
from comms.errors import NotFound
from comms.i18n import _, ngettext
from comms.store import open_store


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "send",
        parents=[common],
        help=_("send due messages now (what the app's dispatcher does), then exit"),
        description=_(
            "Send every queued message that is due, with retries and rate limits, and exit"
            " when nothing is due. Messages left `sending` by a process that died become"
            " `interrupted` first (they are never resent automatically)."
        ),
    )
    p.add_argument("--batch", type=int, metavar="ID", help=_("only this batch"))
    p.set_defaults(func=cmd_send)


class _Progress:
    """Progress lines on stderr, at most a few per second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last < 0.5 and p["done"] < p["total"]:
            return
        self.last = now
        n = i18n.number
        print(
            _(
                "sent {sent}, failed {failed}, retrying {retried},"
                " interrupted {interrupted} ({done}/{total})"
            ).format(
                sent=n(p["sent"]),
                failed=n(p["failed"]),
                retried=n(p["retried"]),
                interrupted=n(p["interrupted"]),
                done=n(p["done"]),
                total=n(p["total"]),
            ),
            file=sys.stderr,
            flush=True,
        )


def cmd_send(args: argparse.Namespace) -> int:
    from comms import outbox
    from comms.sending import dispatcher

    store = open_store(args.db)
    if args.batch is not None and not store.scalar(
        "SELECT count(*) FROM batches WHERE id = ?", [args.batch]
    ):
        raise NotFound(
            _("No batch with id {batch} (see the Outbox page for batch numbers).").format(
                batch=args.batch
            )
        )
    recovered = outbox.recover_interrupted(store)
    if recovered and not args.json:
        # English keeps its one "(s)" form; Czech has three.
        print(
            ngettext(
                "{count} message(s) were being sent when a previous run stopped: marked"
                " interrupted (delivery unknown; resolve them in the Outbox).",
                "{count} message(s) were being sent when a previous run stopped: marked"
                " interrupted (delivery unknown; resolve them in the Outbox).",
                recovered,
            ).format(count=i18n.number(recovered)),
            file=sys.stderr,
        )
    result = dispatcher.run_once(
        store, batch_id=args.batch, progress=None if args.json else _Progress()
    )
    out = result.to_dict()
    out["recovered_interrupted"] = recovered
    n = i18n.number
    line = _(
        "sent {sent}, failed {failed}, retried {retried}, interrupted {interrupted} in {seconds}s"
    ).format(
        sent=n(result.sent),
        failed=n(result.failed),
        retried=n(result.retried),
        interrupted=n(result.interrupted),
        seconds=n(round(result.duration, 1), 1),
    )
    return report(args, out, line, result.errors)
