"""CPU per message of `comms send` vs mailmerge, same recipients, same SMTP sink in another process.

    .venv/bin/python bench/bench_send_cpu.py [--messages 2000] [--runs 5] [--sink fast|aiosmtpd]

What is timed, on each side, is ONE command line run under /usr/bin/time (its
user + sys CPU, all threads, children included):

* ours: `python -m comms send --db FRESH.duckdb --json` with COMMS_SMTP_HOST /
  PORT pointing to the sink. The database was set up beforehand and is not
  timed: N clients, one Markdown e-mail template, generated through
  comms.messages.generate.generate_messages and queued with comms.outbox.queue.
  So ours covers: process start and imports, opening the store, claiming,
  building the MIME message, SMTP, recording every outcome (the default 8
  connections and the dispatcher's group commit).
* mailmerge: `mailmerge --no-dry-run --no-limit` on the same N recipients with
  an equivalent template (the same text and the same HTML our Markdown
  template becomes, as a ready multipart/alternative, so mailmerge converts
  no Markdown): process start and imports, reading the CSV, rendering with
  Jinja2, parsing and flattening the message, one SMTP connection per message
  (that is how mailmerge sends), no database.

Both also run with 0 messages (an empty queue / a CSV with only its header):
that is each side's fixed cost (process start + imports + setup), and
(total - fixed) / N is the marginal CPU per message. Runs alternate between
the two sides; figures are medians over --runs. The sink (a minimal asyncio
SMTP server by default, or tests/servers.py's aiosmtpd one) runs in its own
process, so its CPU is never counted; it must receive exactly N messages on
each side, with N distinct Message-IDs. The environment reaches `comms send`,
so e.g. COMMS_SMTP_CONNECTIONS=16 times another number of connections. The
fast sink offers PIPELINING, as mainstream relays do; aiosmtpd does not.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (  # noqa: E402  (bench/common.py: shared helpers)
    EMAIL_FROM,
    create_email_template,
    insert_clients,
    mailmerge_command,
    mailmerge_template,
)

TIME = "/usr/bin/time"


# -- the sink: a minimal asyncio SMTP server ----------------------------------------------------


class _SinkStats:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.connections = 0
        self.message_ids: set[bytes] = set()


class _SinkProtocol(asyncio.Protocol):
    """Accepts every message; understands pipelined commands; records counts and Message-IDs."""

    EHLO = b"250-sink\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 HELP\r\n"

    def __init__(self, stats: _SinkStats) -> None:
        self.stats = stats
        self.buf = bytearray()
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.connections += 1
        self.transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            if self.in_data:
                if self.buf.startswith(b".\r\n"):
                    end, content = 3, b""
                else:
                    i = self.buf.find(b"\r\n.\r\n")
                    if i < 0:
                        break
                    end, content = i + 5, bytes(self.buf[: i + 2])
                del self.buf[:end]
                self.in_data = False
                self._record(content)
                out.append(b"250 2.0.0 accepted\r\n")
                continue
            i = self.buf.find(b"\r\n")
            if i < 0:
                break
            verb = bytes(self.buf[:4]).upper()
            del self.buf[: i + 2]
            if verb == b"EHLO":
                out.append(self.EHLO)
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 end with <CRLF>.<CRLF>\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out.append(b"250 OK\r\n")
            else:
                out.append(b"500 unknown command\r\n")
        if out:
            self.transport.write(b"".join(out))

    def _record(self, content: bytes) -> None:
        self.stats.messages += 1
        self.stats.bytes += len(content)
        head = content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                self.stats.message_ids.add(line[11:].strip())
                break


def sink_main(stats_path: str) -> None:
    """Run the sink on a free port; print READY <port>; write the stats file on SIGTERM."""

    async def serve() -> None:
        stats = _SinkStats()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _SinkProtocol(stats), "127.0.0.1", 0)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        done = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        await done.wait()
        server.close()
        Path(stats_path).write_text(
            json.dumps(
                {
                    "messages": stats.messages,
                    "distinct_message_ids": len(stats.message_ids),
                    "bytes": stats.bytes,
                    "connections": stats.connections,
                }
            )
        )

    asyncio.run(serve())


class Sink:
    """One sink process for one timed command; `stop()` returns what it received."""

    def __init__(self, kind: str, work: Path, label: str) -> None:
        self.kind, self.stats_path = kind, work / f"sink-{label}.json"
        self.stats_path.unlink(missing_ok=True)
        if kind == "fast":
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--sink-process", str(self.stats_path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            line = self.proc.stdout.readline()
            if not line.startswith("READY"):
                raise SystemExit(f"sink did not start: {line!r}")
            self.port = int(line.split()[1])
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from servers import spawn_smtp_sink

            self.stats_path = self.stats_path.with_suffix(".jsonl")
            self.proc, self.port = spawn_smtp_sink(self.stats_path)

    def stop(self) -> dict:
        if self.kind == "fast":
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            return json.loads(self.stats_path.read_text())
        from servers import read_log, stop_process

        stop_process(self.proc)
        got = read_log(self.stats_path)
        ids = {r["message_id"] for r in got}
        return {"messages": len(got), "distinct_message_ids": len(ids), "bytes": None}


# -- setup (not timed) --------------------------------------------------------------------------


def clients(n: int, unicode: bool) -> list[dict[str, str]]:
    name = "Jana Nováková" if unicode else "Jana Novak"
    return [
        {"email": f"client{i}@example.com", "name": f"{name} {i}", "balance": str(1000 + i)}
        for i in range(1, n + 1)
    ]


def setup_database(path: Path, rows: list[dict[str, str]]) -> int:
    """A fresh store with the clients and the template; the batch generated and queued."""
    from comms import outbox
    from comms.messages.generate import generate_messages
    from comms.store import open_store

    store = open_store(path)
    tid = create_email_template(store)
    queued = 0
    if rows:
        insert_clients(store, rows)
        result = generate_messages(
            store, selection={"client_ids": list(range(1, len(rows) + 1))}, template_id=tid
        )
        queued = outbox.queue(store, batch_id=result.batch_id)
    store.close()
    return queued


def setup_mailmerge(folder: Path, rows: list[dict[str, str]], port: int) -> list[str]:
    """database.csv, template.txt, server.conf; the command line."""
    folder.mkdir(exist_ok=True)
    with open(folder / "database.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["email", "name", "balance"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "template.txt").write_text(mailmerge_template(), encoding="utf-8")
    (folder / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n", encoding="utf-8"
    )
    return mailmerge_command(folder, dry_run=False)


# -- timing -------------------------------------------------------------------------------------


def timed(cmd: list[str], env: dict[str, str], cwd: Path, work: Path) -> dict:
    """Run cmd under /usr/bin/time; its wall, user+sys CPU (seconds) and stdout."""
    out_file = work / "time.txt"
    proc = subprocess.run(
        [TIME, "-f", "%e %U %S", "-o", str(out_file), *cmd],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
            f"\n{proc.stderr[-2000:]}"
        )
    wall, user, system = (float(x) for x in out_file.read_text().split()[-3:])
    return {"wall": wall, "cpu": user + system, "stdout": proc.stdout}


def comms_env(work: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "COMMS_SMTP_HOST": "127.0.0.1",
        "COMMS_SMTP_PORT": str(port),
        "COMMS_SMTP_SECURITY": "none",
        "COMMS_FROM": EMAIL_FROM,
        "COMMS_SECRETS": str(work / "no-secrets.toml"),
        # A configured unsubscribe key (as in production): every message still carries its
        # signed List-Unsubscribe, and no key file is made beside each fresh database.
        "COMMS_UNSUBSCRIBE_KEY": "bench-" + "0" * 58,
        "PYTHONPATH": str(ROOT),
    }


def run_ours(base: Path, work: Path, sink_kind: str, label: str) -> dict:
    db = work / f"run-{label}.duckdb"
    shutil.copy(base, db)
    sink = Sink(sink_kind, work, f"ours-{label}")
    try:
        cmd = [sys.executable, "-m", "comms", "send", "--db", str(db), "--json"]
        res = timed(cmd, comms_env(work, sink.port), ROOT, work)
    finally:
        got = sink.stop()
    db.unlink()
    res["sent"] = json.loads(res.pop("stdout"))["sent"]
    res["sink"] = got
    res["cmd"] = cmd
    return res


def run_mailmerge(rows: list[dict[str, str]], work: Path, sink_kind: str, label: str) -> dict:
    sink = Sink(sink_kind, work, f"mm-{label}")
    try:
        folder = work / f"mm-{label}"
        cmd = setup_mailmerge(folder, rows, sink.port)
        res = timed(cmd, {**os.environ}, folder, work)
    finally:
        got = sink.stop()
    res.pop("stdout")
    res["sent"] = got["messages"]
    res["sink"] = got
    res["cmd"] = cmd
    return res


def check(side: str, res: dict, n: int) -> None:
    got = res["sink"]
    if got["messages"] != n or res["sent"] != n:
        raise SystemExit(f"{side}: expected {n} messages, sink got {got['messages']}: {res}")
    if n and side == "comms" and got["distinct_message_ids"] != n:
        raise SystemExit(f"{side}: {got['distinct_message_ids']} distinct Message-IDs for {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sink", choices=["fast", "aiosmtpd"], default="fast")
    ap.add_argument("--unicode", action="store_true", help="names with diacritics (base64 parts)")
    ap.add_argument("--only", choices=["comms", "mailmerge"], help="time one side only")
    ap.add_argument("--keep", metavar="DIR", help="also copy the queued database here")
    ap.add_argument("--sink-process", metavar="STATS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink_process:
        sink_main(args.sink_process)
        return
    n = args.messages
    if not (Path(sys.executable).parent / "mailmerge").exists() and args.only != "comms":
        raise SystemExit("mailmerge is not installed: .venv/bin/pip install -e '.[bench]'")

    work = Path(tempfile.mkdtemp(prefix="comms-bench-cpu-"))
    try:
        rows = clients(n, args.unicode)
        t0 = time.perf_counter()
        base, empty = work / "queued.duckdb", work / "empty.duckdb"
        queued = setup_database(base, rows)
        setup_database(empty, [])
        if queued != n:
            raise SystemExit(f"setup queued {queued} messages, expected {n}")
        if args.keep:
            shutil.copy(base, Path(args.keep) / "queued.duckdb")
        print(
            f"setup (not timed): {n:,} clients, template, generated + queued in"
            f" {time.perf_counter() - t0:.1f} s; sink: {args.sink}, own process;"
            f" {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        sides = [s for s in ("comms", "mailmerge") if args.only in (None, s)]
        results: dict[tuple[str, int], list[dict]] = {(s, k): [] for s in sides for k in (0, n)}
        for run in range(args.runs):
            for side in sides:
                for k in (0, n):
                    label = f"{run}-{k}"
                    if side == "comms":
                        res = run_ours(base if k else empty, work, args.sink, label)
                    else:
                        res = run_mailmerge(rows[:k], work, args.sink, label)
                    check(side, res, k)
                    results[(side, k)].append(res)
            print(
                f"run {run + 1}/{args.runs}: "
                + "; ".join(
                    f"{s} {results[(s, n)][-1]['cpu']:.2f} s CPU"
                    f" ({results[(s, 0)][-1]['cpu']:.2f} s with 0 messages)"
                    for s in sides
                ),
                flush=True,
            )

        print(
            f"\nchecked: every run's sink received exactly {n:,} messages from each side"
            f" ({n:,} distinct Message-IDs from comms) and 0 from the 0-message runs"
        )
        print(f"CPU = user + sys of the whole command (/usr/bin/time), median of {args.runs}")
        summary = {}
        for side in sides:
            full, fixed = results[(side, n)], results[(side, 0)]
            cpu = statistics.median(r["cpu"] for r in full)
            cpu0 = statistics.median(r["cpu"] for r in fixed)
            wall = statistics.median(r["wall"] for r in full)
            per_msg, marginal = cpu / n * 1000, (cpu - cpu0) / n * 1000
            summary[side] = (per_msg, marginal)
            size = full[-1]["sink"]["bytes"]
            size = f"{size / n:,.0f}" if size is not None else "?"
            runs = ", ".join(f"{r['cpu']:.2f}" for r in full)
            print(
                f"{side:>9}: {n:,} messages, total {cpu:.2f} s CPU (runs {runs}), wall {wall:.2f} s"
                f" = {per_msg:.3f} ms/msg; fixed (0 messages) {cpu0:.2f} s;"
                f" marginal {marginal:.3f} ms/msg; {size} bytes/msg at the sink"
            )
            print(f"           command: {shlex.join(full[-1]['cmd'])}")
        if len(summary) == 2:
            (a, am), (b, bm) = summary["comms"], summary["mailmerge"]
            print(
                f"    ratio: comms / mailmerge = {a / b:.2f} total, {am / bm:.2f} marginal"
                " (target <= 0.5)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
