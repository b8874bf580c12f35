"""Sending speed: the dispatcher vs mailmerge on the same list, template and SMTP sink.

    .venv/bin/python bench/bench_send.py [--messages 5000] [--baseline-delayed 300] [--sms 2000]

The sink is tests/servers.py's aiosmtpd server in its own process (so it does
not share our GIL). Case (a): plain loopback. Case (b): the sink delays its
RCPT and end-of-data replies by 20 ms each, modelling a remote relay; there
mailmerge (one connection per message, one message at a time) runs on a
subset so the benchmark stays within a few minutes, and its rate is what is
compared.

Both sides start from the same client list and an equivalent template
(bench/common.py) and are timed as whole processes (process start included on
both sides). Ours goes the product's own way: the clients and a stored
Markdown template are set up beforehand (not timed), then one fresh process
generates the messages with comms.messages.generate.generate_messages (sandboxed
rendering, validation, one batch), queues them with comms.outbox.queue and sends
them with comms.sending.dispatcher.run_once. mailmerge reads the CSV, renders
and sends. Then SMS: messages generated the same way and sent to the local
Twilio-speaking server with the rate limit off (the send alone is timed).
Prints messages/second for both and the ratio; run it once or twice, not in loops.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from common import EMAIL_FROM, mailmerge_template, timed_process  # noqa: E402
from servers import read_log, spawn_smtp_sink, spawn_twilio_server, stop_process  # noqa: E402

# Setup, not timed: the clients (as an import stores them) and the stored template.
SETUP = """
import csv, sys
sys.path.insert(0, "bench")
from common import create_email_template, insert_clients
from comms.store import open_store
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))[: int(sys.argv[2])]
store = open_store()
insert_clients(store, rows)
print(create_email_template(store) if sys.argv[3] == "email" else 0)
store.close()
"""

# Timed as a whole process: generate -> queue -> send, through the product's functions.
SEND = """
import json, sys, time
from comms import outbox
from comms.messages.generate import generate_messages
from comms.sending import dispatcher
from comms.store import open_store
store = open_store()
t0 = time.perf_counter()
batch = generate_messages(
    store, selection={"client_ids": list(range(1, int(sys.argv[2]) + 1))},
    template_id=int(sys.argv[1]),
)
queued = outbox.queue(store, batch_id=batch.batch_id)
t1 = time.perf_counter()
result = dispatcher.run_once(store, batch_id=batch.batch_id)
print(json.dumps({"generated": batch.valid, "queued": queued, "sent": result.sent,
                  "generate_queue": t1 - t0, "send": time.perf_counter() - t1}))
"""


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


def comms_env(work: Path, db: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "COMMS_SECRETS": str(work / "none.toml"),
        "COMMS_UNSUBSCRIBE_KEY": "bench-" + "0" * 58,  # configured, as in production
        "COMMS_DB": str(db),
        "PYTHONPATH": str(ROOT),
        **(extra or {}),
    }


def run_dispatcher(work: Path, n: int, port: int) -> dict:
    """Set up the clients + template, then generate + queue + send in a fresh, timed process."""
    env = comms_env(
        work,
        work / f"bench-{port}.duckdb",
        {
            "COMMS_SMTP_HOST": "127.0.0.1",
            "COMMS_SMTP_PORT": str(port),
            "COMMS_SMTP_SECURITY": "none",
            "COMMS_FROM": EMAIL_FROM,
        },
    )
    setup = subprocess.run(
        [sys.executable, "-c", SETUP, str(work / "list.csv"), str(n), "email"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    template_id = setup.stdout.strip().splitlines()[-1]
    res = timed_process([sys.executable, "-c", SEND, template_id, str(n)], env=env, cwd=ROOT)
    res.update(json.loads(res.pop("stdout").strip().splitlines()[-1]))
    return res


def run_mailmerge(work: Path, n: int, port: int) -> dict:
    """mailmerge --no-dry-run --no-limit on the first n rows, as a timed whole process."""
    mm = shutil.which("mailmerge", path=str(Path(sys.executable).parent)) or "mailmerge"
    sub = work / f"mm-{port}"
    sub.mkdir()
    with open(work / "list.csv") as src, open(sub / "db.csv", "w") as dst:
        for i, line in enumerate(src):
            if i > n:
                break
            dst.write(line)
    (sub / "template.txt").write_text(mailmerge_template(), encoding="utf-8")
    (sub / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n"
    )
    return timed_process(
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
    )


def case(work: Path, name: str, n: int, baseline_n: int, delay: float) -> None:
    print(f"\n== case {name}: {n} messages, sink delay {delay * 1000:.0f} ms per reply")
    log_ours, log_mm = work / f"sink-ours-{name}.jsonl", work / f"sink-mm-{name}.jsonl"
    proc, port = spawn_smtp_sink(log_ours, delay_rcpt=delay, delay_data=delay)
    try:
        res = run_dispatcher(work, n, port)
    finally:
        stop_process(proc)
    received = read_log(log_ours)
    sent, secs = res["sent"], res["wall"]
    ours = sent / secs
    ids = [r["message_id"] for r in received]
    print(
        f"comms            : {sent} sent in {secs:.2f}s = {ours:.0f} msg/s, whole process"
        f" (generate + queue {res['generate_queue']:.2f}s, send {res['send']:.2f}s, the rest"
        f" is process start + imports; sink received {len(received)}, distinct Message-IDs"
        f" {len(set(ids))}); CPU {res['cpu'] / max(sent, 1) * 1000:.2f} ms/msg"
    )
    proc, port = spawn_smtp_sink(log_mm, delay_rcpt=delay, delay_data=delay)
    try:
        res_mm = run_mailmerge(work, baseline_n, port)
    finally:
        stop_process(proc)
    got_mm = len(read_log(log_mm))
    theirs = got_mm / res_mm["wall"]
    print(
        f"mailmerge        : {got_mm} sent in {res_mm['wall']:.2f}s = {theirs:.0f} msg/s, whole"
        f" process (CSV, render, send); CPU {res_mm['cpu'] / max(got_mm, 1) * 1000:.2f} ms/msg"
    )
    print(f"ratio            : {ours / theirs:.2f}x mailmerge (messages/second)")


SMS_BODY = "Dear {{ name }}, your statement is ready: balance {{ balance }} CZK."

SMS_SEND = """
import json, sys, time
from comms import outbox
from comms.messages.generate import generate_messages
from comms.sending import dispatcher
from comms.store import open_store
store = open_store()
batch = generate_messages(store, selection={"client_ids": list(range(1, int(sys.argv[1]) + 1))},
                          channel="sms", body=sys.argv[2])
outbox.queue(store, batch_id=batch.batch_id)
t0 = time.perf_counter()
r = dispatcher.run_once(store, batch_id=batch.batch_id)
print(json.dumps({"seconds": time.perf_counter() - t0, "sent": r.sent}))
"""


def sms_case(work: Path, n: int) -> None:
    print(f"\n== SMS: {n} messages to the local Twilio API server, rate limit off")
    log = work / "twilio.jsonl"
    proc, port = spawn_twilio_server(log)
    env = comms_env(
        work,
        work / "sms.duckdb",
        {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "test-token",
            "COMMS_SMS_FROM": "+15005550006",
            "COMMS_TWILIO_API_BASE": f"http://127.0.0.1:{port}",
            "COMMS_SMS_RATE_PER_SECOND": "0",
            "COMMS_SMS_RATE_PER_MINUTE": "0",
        },
    )
    rows = work / "sms.csv"
    with open(rows, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["phone", "name", "balance"])
        writer.writeheader()
        writer.writerows(
            {"phone": f"+42060{i:07d}", "name": f"Client {i}", "balance": str(1000 + i)}
            for i in range(n)
        )
    try:
        subprocess.run(
            [sys.executable, "-c", SETUP, str(rows), str(n), "sms"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        out = subprocess.run(
            [sys.executable, "-c", SMS_SEND, str(n), SMS_BODY],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        stop_process(proc)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    got = len(read_log(log))
    print(
        f"comms dispatcher : {res['sent']} sent in {res['seconds']:.2f}s ="
        f" {res['sent'] / res['seconds']:.0f} msg/s, the send alone (generated through"
        f" generate_messages and queued beforehand; server recorded {got})"
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
    write_list(work / "list.csv", args.messages)
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    try:
        if args.only in (None, "a"):
            case(work, "a", args.messages, args.messages, 0.0)
        if args.only in (None, "b"):
            case(work, "b", args.messages, args.baseline_delayed, 0.020)
        if args.only in (None, "sms"):
            sms_case(work, args.sms)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
