"""Benchmark: generate a bulk batch (render + validate + store) for 100,000 clients.

Prints, for e-mail (a 500-character Markdown template using five fields and an
`{% if %}`) and for SMS (the same fields, transliterated to GSM-7):
  - the median of 3 end-to-end `generate_messages` runs, each in a fresh
    interpreter on a fresh copy of the database, with where the time goes
    (reading, rendering, checking and storing overlap, G2 in
    comms.messages.generate: that phase, then storing the rest and COMMIT;
    CPU of this process, its storing thread included, and of a render worker);
  - e-mail only: the PLAIN RENDER LOOP, the target's yardstick, in fresh
    interpreters alternating with those runs: the same template rendered for
    the same rows in Jinja2's ImmutableSandboxedEnvironment, subject then body,
    `Template.render(row)` in one single-process loop over rows already in
    memory as dicts (nothing read, checked, converted to HTML or stored), and
    the ratio generate / plain loop (target: at most 1.0);
  - the cost of the render budgets (comms.templates.budget): the render step
    over the same rows in this process, with and without them;
  - the peak RSS of those processes (target: <= 1.5 GB);
(those runs time `generate_messages` alone, inside the process: no process
start, no MIME); and a like-for-like comparison with `mailmerge --dry-run
--no-limit --output-format raw` (PyPI's mailmerge, the `bench` extra) on the same
first 10,000 rows and an equivalent template, where both sides do the same
work: render the subject and the Markdown body, turn the Markdown into HTML,
build the multipart/alternative MIME message and flatten it to bytes (ours:
generate_messages, then for every message that will be sent the MIME the SMTP
sender builds, mime.build_email + as_smtp_bytes; ours also validates and stores
every message, mailmerge prints each one). Each side runs as its
own process, timed from outside (wall and its own CPU), with 10,000 rows and
with none: the 0-row run is its process start + imports, so the ratio is given
both with process start on both sides and with it on neither.

Run: .venv/bin/python bench/bench_generate.py [--clients N] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import mailmerge_command, run_isolated, timed_process  # noqa: E402  (bench/common.py: shared helpers)

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
    "{% if city == 'Brno' %}\nParking at our Brno store is free for you.\n\n{% endif %}\n"
    "Reply to this e-mail if you have any questions. See you soon in {{ city }}!\n\n"
    "Kind regards, the {{ company }} team"
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


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def child(channel: str, db: str, limit: int | None) -> None:
    """One timed generation in this (fresh) process, with its phases; prints a JSON line."""
    from comms.messages import generate
    from comms.store import open_store
    from comms.templates import batch

    store = open_store(db)
    selection = {"client_ids": list(range(1, limit + 1))} if limit else {"filter": {}}
    phases: dict[str, list[float]] = {}

    def timed(name: str, fn):  # wall and CPU of one phase of generate_messages
        def wrapper(*args, **kwargs):
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = [time.perf_counter() - w0, time.process_time() - c0]

        return wrapper

    # Reading, rendering, checking and storing overlap (G2): one phase, then the tail.
    generate._render_all = timed("read + render + check + store", generate._render_all)
    finish = generate._Storing.finish
    generate._Storing.finish = timed("store the rest + COMMIT", finish)
    rows = limit or store.scalar("SELECT count(*) FROM clients")
    workers = batch.workers_for(rows, reserved=1 if channel == "email" else 0)  # as generate
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
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
    worker_cpu = _children_cpu() - k0  # the render worker process(es), if any
    generate._Storing.finish = finish
    stored = store.scalar("SELECT count(*) FROM messages WHERE batch_id = ?", [result.batch_id])
    store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu": cpu,
                "worker_cpu": worker_cpu,
                "workers": workers,
                "phases": phases,
                "rss_mb": rss_mb,
                "worker_rss_mb": worker_rss,
                "total": result.total,
                "valid": result.valid,
                "stored": stored,
                "reasons": result.reasons,
                "segments": result.segments,
            }
        )
    )


def plain_child(db: str) -> None:
    """The yardstick: the e-mail template rendered by Jinja2 alone, one process; a JSON line.

    The rows are read and made dicts first (not timed), the way the template sees
    them; then each is rendered, subject then body, with Template.render in
    Jinja2's ImmutableSandboxedEnvironment.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from comms.store import open_store

    store = open_store(db)
    rows = store.rows(
        "SELECT name, first_name, city, company,"
        " CAST(json_extract(attributes, '$.points') AS INTEGER) AS points"
        " FROM clients ORDER BY id"
    )
    store.close()
    env = ImmutableSandboxedEnvironment()
    subject, body = env.from_string(EMAIL_SUBJECT), env.from_string(EMAIL_BODY)
    t0, c0 = time.perf_counter(), time.process_time()
    for row in rows:
        subject.render(row)
        body.render(row)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "rows": len(rows)}))


def budget_child(db: str, runs: int) -> None:
    """The render step over every row in this process, with and without the budgets; a JSON line.

    Through Jinja (the bench's template is simple, comms.templates.simple, and
    its renders need no watchdog: S3), so the figure is what the budgets cost
    where they apply.
    """
    from comms import templates as tpl
    from comms.messages import generate
    from comms.store import open_store
    from comms.templates import batch, budget

    store = open_store(db)
    compiled = tpl.compile_template("email", EMAIL_SUBJECT, EMAIL_BODY)
    compiled._simple = None  # every render through Jinja, under the budget
    names, reader = generate._client_reader(
        store, {"filter": {}}, "email", frozenset(compiled.fields)
    )
    rows = reader.fetchall()
    reader.close()
    store.close()
    run, check = budget.run, budget.check

    def render() -> float:
        c0 = time.process_time()
        for _ in batch.render_rows(compiled, names, rows, generate.CHUNK, workers=0):
            pass
        return time.process_time() - c0

    times: dict[str, list[float]] = {"with": [], "without": []}
    render()  # warm-up
    for _ in range(runs):  # alternate, so that both see the same machine
        times["with"].append(render())
        budget.run, budget.check = (lambda fn, *args: fn(*args)), (lambda value: value)
        times["without"].append(render())
        budget.run, budget.check = run, check
    print(json.dumps({k: statistics.median(v) for k, v in times.items()} | {"rows": len(rows)}))


CHILD = (
    "import sys; sys.path.insert(0, 'bench'); import bench_generate as b; "
    "b.child(sys.argv[1], sys.argv[2], int(sys.argv[3]) or None)"
)
PLAIN_CHILD = "import sys; sys.path.insert(0, 'bench'); import bench_generate as b; b.plain_child(sys.argv[1])"
BUDGET_CHILD = (
    "import sys; sys.path.insert(0, 'bench'); import bench_generate as b; "
    "b.budget_child(sys.argv[1], int(sys.argv[2]))"
)
FROM = "shop@example.com"


def compare_child(db: str, limit: int) -> None:
    """The comparison's work on our side: generate `limit` e-mails, then build their MIME.

    With limit 0 it only imports what the work needs and opens the store (the
    fixed cost the parent subtracts). Prints a JSON line.
    """
    from comms.messages import generate
    from comms.sending.senders.base import OutgoingMessage
    from comms.sending.senders.mime import EmailIdentity, as_smtp_bytes, build_email
    from comms.store import open_store

    store = open_store(db)
    built = size = 0
    if limit:
        result = generate.generate_messages(
            store,
            selection={"client_ids": list(range(1, limit + 1))},
            channel="email",
            subject=EMAIL_SUBJECT,
            body=EMAIL_BODY,
        )
        identity = EmailIdentity(from_address=FROM)
        rows = store.rows(
            "SELECT id, to_address, to_name, subject, body_text, body_html, client_id"
            " FROM messages WHERE batch_id = ? AND status = 'draft' ORDER BY id",
            [result.batch_id],
        )
        for r in rows:  # what the SMTP sender builds for each message it sends
            message = OutgoingMessage(
                id=r["id"],
                channel="email",
                to_address=r["to_address"],
                to_name=r["to_name"],
                subject=r["subject"],
                body_text=r["body_text"],
                body_html=r["body_html"],
                batch_id=result.batch_id,
                client_id=r["client_id"],
            )
            size += len(as_smtp_bytes(build_email(message, identity)))
            built += 1
    store.close()
    print(json.dumps({"built": built, "bytes": size}))


COMPARE_CHILD = (
    "import sys; sys.path.insert(0, 'bench'); import bench_generate as b; "
    "b.compare_child(sys.argv[1], int(sys.argv[2]))"
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
    """`runs` generations; for e-mail each followed by a plain render loop (same load)."""
    results, plain = [], []
    for _ in range(runs):
        results.append(run_child(channel, base, work, limit))
        if channel == "email":
            plain.append(run_isolated(PLAIN_CHILD, str(base)))
    return statistics.median(r["seconds"] for r in results), results, plain


def report_phases(results: list[dict]) -> None:
    """Where the time of a generation goes (medians over the runs)."""
    names = list(results[0]["phases"])
    parts = []
    for name in names:
        wall = statistics.median(r["phases"][name][0] for r in results)
        cpu = statistics.median(r["phases"][name][1] for r in results)
        parts.append(f"{name} {wall:.2f} s (CPU {cpu:.2f})")
    worker = statistics.median(r["worker_cpu"] for r in results)
    print(
        f"        where the time goes: {'; '.join(parts)}; render worker processes:"
        f" {results[0]['workers']}, their CPU {worker:.2f} s"
    )


def mailmerge_bin() -> Path | None:
    exe = Path(sys.executable).parent / "mailmerge"
    return exe if exe.exists() else None


def mailmerge_inputs(base: Path, work: Path, rows_wanted: int = TEN_K) -> Path:
    """database.csv, template and server config for the same first rows_wanted clients."""
    from comms.store import open_store

    folder = work / f"mailmerge-{rows_wanted}"
    folder.mkdir()
    store = open_store(base)
    rows = store.rows(
        "SELECT email, name, first_name, city, company,"
        " json_extract_string(attributes, '$.points') AS points"
        " FROM clients ORDER BY id LIMIT ?",
        [max(rows_wanted, 1)],
    )
    store.close()
    with open(folder / "database.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:rows_wanted])
    (folder / "template.txt").write_text(
        "TO: {{ email }}\nSUBJECT: " + EMAIL_SUBJECT + "\nFROM: " + FROM + "\n"
        "CONTENT-TYPE: text/markdown\n\n" + EMAIL_BODY + "\n",
        encoding="utf-8",
    )
    (folder / "server.conf").write_text(
        "[smtp_server]\nhost = 127.0.0.1\nport = 25\nsecurity = Never\n", encoding="utf-8"
    )
    return folder


def time_mailmerge(folder: Path) -> dict:
    """One whole mailmerge dry run (process start included): wall and its CPU."""
    return timed_process(mailmerge_command(folder, dry_run=True), cwd=folder)


def time_ours(base: Path, work: Path, limit: int) -> dict:
    """One whole run of our side of the comparison (process start included), fresh database."""
    db = work / "compare.duckdb"
    shutil.copy(base, db)
    try:
        res = timed_process([sys.executable, "-c", COMPARE_CHILD, str(db), str(limit)], cwd=ROOT)
    finally:
        db.unlink()
    res.update(json.loads(res["stdout"].strip().splitlines()[-1]))
    return res


def compare(base: Path, work: Path, runs: int = 3) -> None:
    """The like-for-like comparison with mailmerge (see the module docstring)."""
    folders = {k: mailmerge_inputs(base, work, k) for k in (TEN_K, 0)}
    res: dict[tuple[str, int], list[dict]] = {}
    for _ in range(runs):  # alternate the sides so both see the same machine load
        for k in (TEN_K, 0):
            res.setdefault(("comms", k), []).append(time_ours(base, work, k))
            res.setdefault(("mailmerge", k), []).append(time_mailmerge(folders[k]))
    built = res[("comms", TEN_K)][0]["built"]
    print(
        f"e-mail, {TEN_K:,} rows, the same work on both sides: render subject + Markdown body,"
        " Markdown -> HTML, build + flatten the multipart/alternative MIME message"
        f" (ours: {built:,} messages that will be sent, after validating and storing all"
        f" {TEN_K:,}; mailmerge: all {TEN_K:,}, printed to a file); median of {runs}"
        " whole-process runs each:"
    )
    med = {
        key: (statistics.median(r["wall"] for r in v), statistics.median(r["cpu"] for r in v))
        for key, v in res.items()
    }
    for side in ("comms", "mailmerge"):
        (wall, cpu), (wall0, cpu0) = med[(side, TEN_K)], med[(side, 0)]
        print(
            f"  {side:>9}: whole process {wall:5.2f} s wall / {cpu:5.2f} s CPU;"
            f" process start + imports (0 rows) {wall0:4.2f} s / {cpu0:4.2f} s;"
            f" work alone {wall - wall0:5.2f} s / {cpu - cpu0:5.2f} s CPU"
        )
    (w, c), (w0, c0) = med[("comms", TEN_K)], med[("comms", 0)]
    (mw, mc), (mw0, mc0) = med[("mailmerge", TEN_K)], med[("mailmerge", 0)]
    print(
        f"  ratio mailmerge / comms (wall): {mw / w:.1f}x with process start on both sides,"
        f" {(mw - mw0) / (w - w0):.1f}x on neither; (CPU): {mc / c:.1f}x and"
        f" {(mc - mc0) / (c - c0):.1f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
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
            median, results, plain = measure(channel, base, work, args.runs)
            rss = max(r["rss_mb"] + r["worker_rss_mb"] for r in results)
            r = results[0]
            runs_text = ", ".join(f"{x['seconds']:.2f}" for x in results)
            cpu = statistics.median(x["cpu"] for x in results)
            extra = f", {r['segments']:,} segments" if channel == "sms" else ""
            print(
                f"{label:>6}: generate_messages alone (in-process, no MIME) {r['total']:,} messages ({r['valid']:,} ready, "
                f"{r['total'] - r['valid']:,} invalid{extra}): median of {args.runs} "
                f"{median:.2f} s wall (runs {runs_text}; CPU {cpu:.2f} s), "
                f"{r['total'] / median:,.0f} msg/s, peak RSS {rss:,.0f} MB with its worker "
                f"[targets 5 s, 1,536 MB: {'OK' if median <= 5 and rss <= 1536 else 'MISSED'}]"
            )
            report_phases(results)
            if plain:
                p_wall = statistics.median(x["seconds"] for x in plain)
                p_cpu = statistics.median(x["cpu"] for x in plain)
                p_text = ", ".join(f"{x['seconds']:.2f}" for x in plain)
                ratio = median / p_wall
                print(
                    f"        plain render loop (Jinja2 ImmutableSandboxedEnvironment, subject +"
                    f" body, Template.render per row, rows in memory): median of {args.runs}"
                    f" {p_wall:.2f} s wall (runs {p_text}; CPU {p_cpu:.2f} s);"
                    f" generate / plain loop = {ratio:.2f}"
                    f" [target 1.0: {'OK' if ratio <= 1.0 else 'MISSED'}]"
                )
        budget_runs = run_isolated(BUDGET_CHILD, str(base), str(max(args.runs, 3)))
        with_b, without_b = budget_runs["with"], budget_runs["without"]
        print(
            f"render budgets: the render step over {budget_runs['rows']:,} e-mails in one process,"
            f" through Jinja: median CPU {with_b:.2f} s with them, {without_b:.2f} s without:"
            f" {100 * (with_b / without_b - 1):+.1f} % (simple templates like this one skip"
            " the watchdog: nothing in them can loop)"
        )

        if mailmerge_bin() is None:
            print("mailmerge is not installed: `.venv/bin/pip install -e '.[bench]'`")
            return 0
        compare(base, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
