"""Bulk moves on a 100,000-message batch: queue, send now, cancel, discard.

Target (issue "One owner of message state"): each takes at most 2 s of page time.
Printed per move: the core call's median wall time, the same move through the
Outbox page (AppTest: the whole script rerun after the click), and the ratio
against a bare `UPDATE messages SET status = ... WHERE batch_id = ?` on the same
rows, measured in the same run (the floor DuckDB itself costs).

    .venv/bin/python bench/bench_outbox.py [--messages 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average  # noqa: E402
from comms import outbox  # noqa: E402
from comms.store import open_store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "outbox.py")


def seed(store, n: int) -> None:
    def fill(cur) -> None:
        cur.execute(
            "INSERT INTO clients (id, name, email, email_valid) SELECT range + 1,"
            " 'Client ' || (range + 1), 'c' || (range + 1) || '@example.com', true FROM range(?)",
            [n],
        )
        cur.execute("INSERT INTO batches (id, channel, name) VALUES (1, 'email', 'Big batch')")
        cur.execute(
            "INSERT INTO messages (client_id, channel, source, batch_id, to_address, subject,"
            " body_text, body_html, status) SELECT range + 1, 'email', 'bulk', 1,"
            " 'c' || (range + 1) || '@example.com', 'Hello', 'Dear client, ' || repeat('x', 400),"
            " '<p>Dear client</p>', 'draft' FROM range(?)",
            [n],
        )

    store.write(fill)


def reset(store, status: str) -> None:
    """Every message of the batch back to `status` (untimed set-up)."""
    store.write(
        lambda cur: cur.execute(
            "UPDATE messages SET status = ?, scheduled_at = NULL WHERE batch_id = 1", [status]
        )
    )


def timed(fn, runs: int, before) -> float:
    times = []
    for _ in range(runs):
        before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def page_click(key: str, runs: int, before, confirm: str | None = None) -> float:
    """Median seconds of the Outbox page's script run after clicking `key` (AppTest)."""
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(runs):
        before()
        at = AppTest.from_file(PAGE, default_timeout=120)
        at.session_state["outbox_live"] = False
        at.run()
        if confirm:  # the first click asks; the timed one is the confirmation
            at.button(key=key).click().run()
        t0 = time.perf_counter()
        at.button(key=confirm or key).click().run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    n, runs = args.messages, args.runs
    tmp = Path(tempfile.mkdtemp())
    os.environ["COMMS_DB"] = str(tmp / "bench.duckdb")
    os.environ["COMMS_SECRETS"] = str(tmp / "none.toml")
    os.environ["COMMS_DISPATCHER"] = "off"  # nothing sends: we time the moves
    store = open_store(os.environ["COMMS_DB"])
    seed(store, n)
    print(f"{n:,} messages in one batch; {runs} runs each; load average {load_average()}")

    def bare(status: str):
        return lambda: store.write(
            lambda cur: cur.execute(
                "UPDATE messages SET status = ?, updated_at = current_timestamp WHERE batch_id = 1",
                [status],
            )
        )

    moves = [
        # name, core call, state before, page button (and its confirmation), bare target
        ("queue", lambda: outbox.queue(store, batch_id=1), "draft", None, "queued"),
        ("send now", lambda: outbox.send_now(store, batch_id=1), "draft", ("send_1", None), "queued"),
        ("cancel", lambda: outbox.cancel(store, batch_id=1), "queued", ("cancel_1", "cancel_1_yes"), "cancelled"),
        ("discard", lambda: outbox.cancel(store, batch_id=1), "draft", None, "cancelled"),
    ]  # fmt: skip
    print(f"{'move':<10} {'core s':>8} {'page s':>8} {'bare s':>8} {'core/bare':>10}")
    for name, call, start, button, target in moves:
        core = timed(call, runs, lambda s=start: reset(store, s))
        floor = timed(bare(target), runs, lambda s=start: reset(store, s))
        page = float("nan")
        if button:
            page = page_click(button[0], runs, lambda s=start: reset(store, s), confirm=button[1])
        print(f"{name:<10} {core:8.3f} {page:8.3f} {floor:8.3f} {core / floor:10.2f}")
    store.close()


if __name__ == "__main__":
    main()
