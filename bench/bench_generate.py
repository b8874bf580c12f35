"""Benchmark: generate a bulk batch (render + validate + store) for 100,000 clients.

Prints, for e-mail (a 500-character Markdown template using five fields) and
for SMS (the same fields, transliterated to GSM-7):
  - the median of 3 end-to-end `generate_messages` runs, each in a fresh
    interpreter on a fresh copy of the database (targets: <= 5 s);
  - the peak RSS of those processes (target: <= 1.5 GB);
and, on the same first 10,000 rows and an equivalent template, the time of
`mailmerge --dry-run --no-limit` (PyPI's mailmerge, the `bench` extra) against
ours, with the ratio.

Run: .venv/bin/python bench/bench_generate.py [--clients N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import run_isolated  # noqa: E402  (bench/common.py: shared helpers)

FIELDS = ("first_name", "name", "city", "company", "points")
EMAIL_SUBJECT = "{{ first_name }}, your spring offer"
EMAIL_BODY = (
    "Dear {{ name }},\n\n"
    "thank you for shopping with **{{ company }}**. Our store in {{ city }} has prepared "
    "a spring selection for loyal customers like you, and you have already collected "
    "{{ points }} points.\n\n"
    "- free delivery on every order this month\n"
    "- a 10 % discount on the new collection\n"
    "- early access to the summer sale\n\n"
    "Visit us or reply to this e-mail if you have any questions; we are happy to help. "
    "See you soon in {{ city }}!\n\n"
    "Kind regards, the {{ company }} team in {{ city }}, and thank you again."
)
SMS_BODY = (
    "Dobrý den {{ first_name }}, {{ company }} v {{ city }}: máte {{ points }} bodů. "
    "Jarní sleva 10 % pro {{ name }} platí do neděle."
)
TEN_K = 10_000


def seed(path: Path, n: int) -> None:
    """n clients inserted by SQL, as an import would have stored them."""
    from comms.store import open_store

    store = open_store(path)
    store.write(
        lambda cur: cur.execute(
            f"""INSERT INTO clients (id, name, first_name, last_name, email, email_valid, phone,
                phone_kind, city, company, lists, attributes)
            SELECT i + 1, 'Jana Nováková ' || i, 'Jana', 'Nováková ' || i,
                CASE WHEN i % 50 = 0 THEN 'client' || i || '@@example.com'
                     ELSE 'client' || i || '@example.com' END, i % 50 <> 0,
                CASE WHEN i % 40 = 0 THEN '+420221' ELSE '+420601' END
                    || lpad((i % 1000000)::VARCHAR, 6, '0'),
                CASE WHEN i % 40 = 0 THEN 'fixed_line' ELSE 'mobile' END,
                ['Brno', 'Praha', 'Ostrava', 'Plzeň'][i % 4 + 1], 'Květinářství Růže',
                ['Spring'], json_object('points', i % 997, 'tier', 'gold')
            FROM range({n}) t(i)"""
        )
    )
    store.close()


def child(channel: str, db: str, limit: int | None) -> None:
    """One timed generation in this (fresh) process; prints a JSON line."""
    from comms.messages import generate
    from comms.store import open_store

    store = open_store(db)
    selection = {"client_ids": list(range(1, limit + 1))} if limit else {"filter": {}}
    t0, c0 = time.perf_counter(), time.process_time()
    if channel == "email":
        result = generate.generate_messages(
            store, selection=selection, channel="email", subject=EMAIL_SUBJECT, body=EMAIL_BODY
        )
    else:
        result = generate.generate_messages(
            store, selection=selection, channel="sms", body=SMS_BODY, gsm7=True
        )
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0  # all threads: Python plus DuckDB's workers
    stored = store.scalar("SELECT count(*) FROM messages WHERE batch_id = ?", [result.batch_id])
    store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu": cpu,
                "rss_mb": rss_mb,
                "total": result.total,
                "valid": result.valid,
                "stored": stored,
                "reasons": result.reasons,
                "segments": result.segments,
            }
        )
    )


CHILD = (
    "import sys; sys.path.insert(0, 'bench'); import bench_generate as b; "
    "b.child(sys.argv[1], sys.argv[2], int(sys.argv[3]) or None)"
)


def run_child(channel: str, base: Path, work: Path, limit: int | None = None) -> dict:
    """A fresh copy of the seeded database and a fresh interpreter for each run."""
    db = work / f"run-{channel}.duckdb"
    shutil.copy(base, db)
    try:
        return run_isolated(CHILD, channel, str(db), str(limit or 0))
    finally:
        db.unlink()


def measure(channel: str, base: Path, work: Path, runs: int = 3, limit: int | None = None):
    results = [run_child(channel, base, work, limit) for _ in range(runs)]
    return statistics.median(r["seconds"] for r in results), results


def mailmerge_bin() -> Path | None:
    exe = Path(sys.executable).parent / "mailmerge"
    return exe if exe.exists() else None


def mailmerge_inputs(base: Path, work: Path) -> Path:
    """database.csv, template and server config for the same first 10,000 clients."""
    from comms.store import open_store

    folder = work / "mailmerge"
    folder.mkdir()
    store = open_store(base)
    rows = store.rows(
        "SELECT email, name, first_name, city, company,"
        " json_extract_string(attributes, '$.points') AS points"
        " FROM clients ORDER BY id LIMIT ?",
        [TEN_K],
    )
    store.close()
    with open(folder / "database.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "template.txt").write_text(
        "TO: {{ email }}\nSUBJECT: " + EMAIL_SUBJECT + "\nFROM: shop@example.com\n"
        "CONTENT-TYPE: text/markdown\n\n" + EMAIL_BODY + "\n",
        encoding="utf-8",
    )
    (folder / "server.conf").write_text(
        "[smtp_server]\nhost = 127.0.0.1\nport = 25\nsecurity = Never\n", encoding="utf-8"
    )
    return folder


def time_mailmerge(exe: Path, folder: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(exe),
            "--dry-run",
            "--no-limit",
            "--template",
            str(folder / "template.txt"),
            "--database",
            str(folder / "database.csv"),
            "--config",
            str(folder / "server.conf"),
            "--output-format",
            "raw",
        ],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument(
        "--child", nargs=3, metavar=("CHANNEL", "DB", "LIMIT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        channel, db, limit = args.child
        child(channel, db, int(limit) or None)
        return 0

    n = args.clients
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        work = Path(tmp)
        base = work / "base.duckdb"
        t0 = time.perf_counter()
        seed(base, n)
        print(f"seeded {n:,} clients in {time.perf_counter() - t0:.1f} s")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} CPUs, load average {load} (shared machine)")
        print(f"e-mail template: {len(EMAIL_BODY)} characters, fields: {', '.join(FIELDS)}")

        for channel, label in (("email", "e-mail"), ("sms", "SMS")):
            median, results = measure(channel, base, work)
            rss = max(r["rss_mb"] for r in results)
            r = results[0]
            runs_text = ", ".join(f"{x['seconds']:.2f}" for x in results)
            cpu = statistics.median(x["cpu"] for x in results)
            extra = f", {r['segments']:,} segments" if channel == "sms" else ""
            print(
                f"{label:>6}: generate {r['total']:,} messages ({r['valid']:,} ready, "
                f"{r['total'] - r['valid']:,} invalid{extra}): median of 3 "
                f"{median:.2f} s wall (runs {runs_text}; CPU {cpu:.2f} s), "
                f"{r['total'] / median:,.0f} msg/s, peak RSS {rss:,.0f} MB "
                f"[targets 5 s, 1,536 MB: {'OK' if median <= 5 and rss <= 1536 else 'MISSED'}]"
            )

        exe = mailmerge_bin()
        ours, _ = measure("email", base, work, runs=3, limit=TEN_K)
        print(f"e-mail, {TEN_K:,} rows: comms generate_messages median of 3 {ours:.2f} s")
        if exe is None:
            print("mailmerge is not installed: `.venv/bin/pip install -e '.[bench]'`")
            return 0
        folder = mailmerge_inputs(base, work)
        theirs = time_mailmerge(exe, folder)
        print(
            f"e-mail, {TEN_K:,} rows: mailmerge --dry-run --no-limit (1 run) {theirs:.2f} s; "
            f"ratio mailmerge / comms = {theirs / ours:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
