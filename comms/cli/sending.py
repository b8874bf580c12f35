"""`comms send`: send every due message (for cron), exiting when nothing is due."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from comms.cli import report
from comms.errors import NotFound
from comms.store import open_store


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "send",
        parents=[common],
        help="send due messages now (what the app's dispatcher does), then exit",
        description=(
            "Send every queued message that is due, with retries and rate limits, and exit"
            " when nothing is due. Messages left `sending` by a process that died become"
            " `interrupted` first (they are never resent automatically)."
        ),
    )
    p.add_argument("--batch", type=int, metavar="ID", help="only this batch")
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
        print(
            f"sent {p['sent']}, failed {p['failed']}, retrying {p['retried']},"
            f" interrupted {p['interrupted']} ({p['done']}/{p['total']})",
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
        raise NotFound(f"No batch with id {args.batch} (see the Outbox page for batch numbers).")
    recovered = outbox.recover_interrupted(store)
    if recovered and not args.json:
        print(
            f"{recovered} message(s) were being sent when a previous run stopped: marked"
            " interrupted (delivery unknown; resolve them in the Outbox).",
            file=sys.stderr,
        )
    result = dispatcher.run_once(
        store, batch_id=args.batch, progress=None if args.json else _Progress()
    )
    out = result.to_dict()
    out["recovered_interrupted"] = recovered
    return report(
        args,
        out,
        f"sent {result.sent}, failed {result.failed}, retried {result.retried},"
        f" interrupted {result.interrupted} in {result.duration:.1f}s",
        result.errors,
    )
