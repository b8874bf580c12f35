"""Sending speed: the dispatcher vs mailmerge on the same list, template and SMTP sink.

    .venv/bin/python bench/bench_send.py [--messages 5000] [--baseline-delayed 300] [--sms 2000]

The sink is tests/servers.py's aiosmtpd server in its own process (so it does
not share our GIL). Case (a): plain loopback. Case (b): the sink delays its
RCPT and end-of-data replies by 20 ms each, modelling a remote relay; there
mailmerge (one connection per message, one message at a time) runs on a
subset so the benchmark stays within a few minutes, and its rate is what is
compared. Our figure covers rendering the template, inserting and queueing
the messages and sending them (the whole path from list to sink). Then SMS:
messages to the local Twilio-speaking server with the rate limit off.
Prints messages/second for both and the ratio; run it once or twice, not in loops.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


from servers import read_log, spawn_smtp_sink, spawn_twilio_server, stop_process  # noqa: E402

FROM = "Comms Bench <bench@example.com>"
SUBJECT = "Your November statement, {{name}}"
TEXT = (
    "Dear {{name}},\n\nyour statement for November is ready. Your balance is {{balance}} CZK.\n"
    "If you have any questions, reply to this e-mail.\n\nKind regards,\nThe Bench Team\n"
)
HTML = (
    "<html><body><p>Dear {{name}},</p><p>your statement for November is ready. Your balance"
    " is <b>{{balance}} CZK</b>.</p><p>If you have any questions, reply to this e-mail.</p>"
    "<p>Kind regards,<br>The Bench Team</p></body></html>"
)
MAILMERGE_TEMPLATE = f"""TO: {{{{email}}}}
SUBJECT: {SUBJECT}
FROM: {FROM}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="boundary"

This is a MIME-encoded message.

--boundary
Content-Type: text/plain; charset=utf-8

{TEXT}
--boundary
Content-Type: text/html; charset=utf-8

{HTML}
--boundary--
"""


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_list(path: Path, n: int) -> list[dict[str, str]]:
    rows = [
        {"email": f"client{i}@example.com", "name": f"Client {i}", "balance": str(1000 + i)}
        for i in range(n)
    ]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["email", "name", "balance"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def run_dispatcher(work: Path, rows: list[dict[str, str]], port: int) -> tuple[float, int]:
    """Render + queue + send through comms in a fresh process; returns (seconds, sent)."""
    env = {
        **os.environ,
        "COMMS_SMTP_HOST": "127.0.0.1",
        "COMMS_SMTP_PORT": str(port),
        "COMMS_SMTP_SECURITY": "none",
        "COMMS_FROM": FROM,
        "COMMS_SECRETS": str(work / "none.toml"),
        "COMMS_DB": str(work / f"bench-{port}.duckdb"),
        "PYTHONPATH": str(ROOT),
    }
    code = f"""
import csv, json, sys, time
import jinja2
from comms.store import open_store
from comms import outbox
from comms.sending import dispatcher
rows = list(csv.DictReader(open({str(work / "list.csv")!r})))[:{len(rows)}]
env = jinja2.Environment(autoescape=False)
subject, text = env.from_string({SUBJECT!r}), env.from_string({TEXT!r})
html = jinja2.Environment(autoescape=True).from_string({HTML!r})
store = open_store()
t0 = time.perf_counter()
data = [(r["email"], r["name"], subject.render(**r), text.render(**r), html.render(**r)) for r in rows]
cur = store.cursor()
cur.execute("INSERT INTO batches (channel, name) VALUES ('email', 'bench') ")
bid = store.scalar("SELECT max(id) FROM batches")
cur.execute(
    "INSERT INTO messages (channel, source, batch_id, to_address, to_name, subject, body_text,"
    " body_html, status) SELECT 'email', 'bulk', ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
    " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), 'draft'",
    [bid, *[list(c) for c in zip(*data)]],
)
outbox.queue(store, batch_id=bid)
result = dispatcher.run_once(store, batch_id=bid)
print(json.dumps({{"seconds": time.perf_counter() - t0, "sent": result.sent}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["seconds"], res["sent"]


def run_mailmerge(work: Path, n: int, port: int) -> float:
    """mailmerge --no-dry-run --no-limit on the first n rows; returns seconds."""
    mm = shutil.which("mailmerge", path=str(Path(sys.executable).parent)) or "mailmerge"
    sub = work / f"mm-{port}"
    sub.mkdir()
    with open(work / "list.csv") as src, open(sub / "db.csv", "w") as dst:
        for i, line in enumerate(src):
            if i > n:
                break
            dst.write(line)
    (sub / "template.txt").write_text(MAILMERGE_TEMPLATE)
    (sub / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n"
    )
    t0 = time.perf_counter()
    subprocess.run(
        [
            mm,
            "--no-dry-run",
            "--no-limit",
            "--template",
            str(sub / "template.txt"),
            "--database",
            str(sub / "db.csv"),
            "--config",
            str(sub / "server.conf"),
            "--output-format",
            "raw",
        ],
        cwd=sub,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t0


def case(work: Path, name: str, rows: list, baseline_n: int, delay: float) -> None:
    print(f"\n== case {name}: {len(rows)} messages, sink delay {delay * 1000:.0f} ms per reply")
    log_ours, log_mm = work / f"sink-ours-{name}.jsonl", work / f"sink-mm-{name}.jsonl"
    proc, port = spawn_smtp_sink(log_ours, delay_rcpt=delay, delay_data=delay)
    try:
        cpu0 = _child_cpu()
        secs, sent = run_dispatcher(work, rows, port)
        cpu_ours = _child_cpu() - cpu0
    finally:
        stop_process(proc)
    received = read_log(log_ours)
    ours = sent / secs
    ids = [r["message_id"] for r in received]
    print(
        f"comms dispatcher : {sent} sent in {secs:.2f}s = {ours:.0f} msg/s"
        f" (sink received {len(received)}, distinct Message-IDs {len(set(ids))});"
        f" sender CPU {cpu_ours / max(sent, 1) * 1000:.2f} ms/msg"
    )
    proc, port = spawn_smtp_sink(log_mm, delay_rcpt=delay, delay_data=delay)
    try:
        cpu0 = _child_cpu()
        secs_mm = run_mailmerge(work, baseline_n, port)
        cpu_mm = _child_cpu() - cpu0
    finally:
        stop_process(proc)
    got_mm = len(read_log(log_mm))
    theirs = got_mm / secs_mm
    print(
        f"mailmerge        : {got_mm} sent in {secs_mm:.2f}s = {theirs:.0f} msg/s;"
        f" sender CPU {cpu_mm / max(got_mm, 1) * 1000:.2f} ms/msg"
    )
    print(f"ratio            : {ours / theirs:.2f}x mailmerge")


def sms_case(work: Path, n: int) -> None:
    print(f"\n== SMS: {n} messages to the local Twilio API server, rate limit off")
    log = work / "twilio.jsonl"
    proc, port = spawn_twilio_server(log)
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "test-token",
        "COMMS_SMS_FROM": "+15005550006",
        "COMMS_TWILIO_API_BASE": f"http://127.0.0.1:{port}",
        "COMMS_SMS_RATE_PER_SECOND": "0",
        "COMMS_SMS_RATE_PER_MINUTE": "0",
        "COMMS_SECRETS": str(work / "none.toml"),
        "COMMS_DB": str(work / "sms.duckdb"),
        "PYTHONPATH": str(ROOT),
    }
    code = f"""
import json, time
from comms.store import open_store
from comms import outbox
from comms.sending import dispatcher
store = open_store()
cur = store.cursor()
cur.execute("INSERT INTO batches (channel, name) VALUES ('sms', 'bench')")
cur.execute("INSERT INTO messages (channel, source, batch_id, to_address, body_text, status)"
            " SELECT 'sms', 'bulk', 1, '+42060' || lpad(i::VARCHAR, 7, '0'),"
            " 'Your statement is ready, client ' || i, 'draft' FROM range({n}) t(i)")
outbox.queue(store, batch_id=1)
t0 = time.perf_counter()
r = dispatcher.run_once(store, batch_id=1)
print(json.dumps({{"seconds": time.perf_counter() - t0, "sent": r.sent}}))
"""
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    finally:
        stop_process(proc)
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    got = len(read_log(log))
    print(
        f"comms dispatcher : {res['sent']} sent in {res['seconds']:.2f}s ="
        f" {res['sent'] / res['seconds']:.0f} msg/s (server recorded {got})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--baseline-delayed", type=int, default=300, help="mailmerge messages in case (b)"
    )
    parser.add_argument("--sms", type=int, default=2000)
    parser.add_argument("--only", choices=["a", "b", "sms"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="comms-bench-"))
    rows = write_list(work / "list.csv", args.messages)
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    try:
        if args.only in (None, "a"):
            case(work, "a", rows, args.messages, 0.0)
        if args.only in (None, "b"):
            case(work, "b", rows, args.baseline_delayed, 0.020)
        if args.only in (None, "sms"):
            sms_case(work, args.sms)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
