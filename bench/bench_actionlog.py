"""Benchmark: the action log page's queries over 1,000,000 entries, and the CSV export.

Data is generated in DuckDB with SQL: 20,000 clients, 200,000 messages in 400
batches, and 1,000,000 log entries over a year, most of them per-message
entries carrying only message_id (so batch / client filters go through the
message join, the slow path). Every timing is a median and is printed next to a
baseline from the same run:

* a page (count + first 50 rows, newest first) vs a bare `ORDER BY ts DESC LIMIT 50`
  over action_log alone;
* the formula-safe CSV export of 100,000 entries vs pandas `DataFrame.to_csv`
  on the same rows (which neutralises nothing).

    .venv/bin/python bench/bench_actionlog.py [--entries 1000000] [--export 100000]

The database lives in a temporary directory that is deleted at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comms.actionlog.queries import (  # noqa: E402
    EXPORT_COLUMNS,
    LogFilter,
    count_log,
    export_log_csv,
    filter_options,
    query_log,
)
from comms.store import Store, open_store  # noqa: E402


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def fill(store: Store, entries: int) -> None:
    """Clients, messages and log entries generated in SQL."""
    store.write(
        lambda cur: cur.execute(
            """
            INSERT INTO clients (id, name, email, email_valid)
            SELECT i, 'Client ' || i, 'c' || i || '@example.com', true FROM range(1, 20001) t(i);
            INSERT INTO batches (id, channel, name)
            SELECT i, 'email', 'Batch ' || i FROM range(1, 401) t(i);
            INSERT INTO messages (id, client_id, channel, source, batch_id, to_address, status)
            SELECT i, 1 + i % 20000, 'email', 'bulk', 1 + i % 400, 'c' || i || '@example.com',
                   CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END
            FROM range(1, 200001) t(i);
            """
        )
    )
    store.write(
        lambda cur: cur.execute(
            """
            INSERT INTO action_log (ts, "user", action, batch_id, message_id, client_id,
                                    outcome, detail)
            SELECT TIMESTAMP '2026-01-01' + INTERVAL (i * 31) SECOND,
                   CASE i % 3 WHEN 0 THEN 'alice' WHEN 1 THEN 'bob' ELSE 'carol' END,
                   CASE WHEN i % 10 = 0 THEN 'queue' WHEN i % 50 = 1 THEN 'send failed'
                        ELSE 'send' END,
                   NULL, 1 + i % 200000, NULL,
                   CASE WHEN i % 50 = 1 THEN 'failed' ELSE 'ok' END,
                   CASE WHEN i % 50 = 1 THEN '{"error": "550 5.1.1 no such user"}'
                        ELSE '{"provider_id": "<m' || i || '@example.com>"}' END
            FROM range(?) t(i)
            """,
            [entries],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--export", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="comms-bench-log-"))
    try:
        store = open_store(tmp / "bench.duckdb")
        t0 = time.perf_counter()
        fill(store, args.entries)
        print(f"generated {args.entries:,} log entries in {time.perf_counter() - t0:.1f} s")

        base = median_ms(
            lambda: store.df("SELECT * FROM action_log ORDER BY ts DESC, id DESC LIMIT 50")
        )
        print(f"baseline: bare newest-50 over action_log           {base:8.1f} ms")
        cases = {
            "no filter": LogFilter(),
            "action + outcome": LogFilter(actions=["send failed"], outcomes=["failed"]),
            "date range (one month)": LogFilter(
                date_from=date(2026, 3, 1), date_to=date(2026, 3, 31)
            ),
            "batch (via its messages)": LogFilter(batch_id=7),
            "client (via its messages)": LogFilter(client_id=42),
            "client name fragment": LogFilter(client="Client 4242"),
            "text in details": LogFilter(text="5.1.1"),
        }
        for name, f in cases.items():
            ms = median_ms(lambda f=f: (count_log(store, f), query_log(store, f)))
            print(f"page (count + first 50): {name:<26} {ms:8.1f} ms  ({ms / base:5.1f}x baseline)")

        ms = median_ms(lambda: filter_options(store))
        print(f"filter choices (distinct actions, users, outcomes)  {ms:8.1f} ms")

        # Export: the newest ~`export` entries, chosen by a date filter as a person would.
        first = datetime(2026, 1, 1) + timedelta(seconds=(args.entries - args.export) * 31)
        f = LogFilter(date_from=first.date() + timedelta(days=1))
        total = count_log(store, f)
        df = query_log(store, f, limit=total)[list(EXPORT_COLUMNS)]
        ours = median_ms(lambda: export_log_csv(store, f), repeat=3)
        pandas_ms = median_ms(lambda: df.to_csv(index=False).encode("utf-8-sig"), repeat=3)
        print(
            f"export: formula-safe CSV of {total:,} entries (query included) {ours:8.1f} ms "
            f"({total / ours * 1000:,.0f} rows/s)"
        )
        print(
            f"baseline: pandas to_csv of the same rows, already fetched {pandas_ms:8.1f} ms "
            f"({total / pandas_ms * 1000:,.0f} rows/s); ours / pandas = {ours / pandas_ms:.2f}"
        )
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
