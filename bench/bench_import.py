"""`comms import` of a 100,000-row client list against a plain validation loop, in the same run.

The file is what issue 9 measured: Windows-1250, ';', Czech headers, 2 % bad
e-mails and 2.5 % bad phones (comms.clients.sample). Two programs run on it,
each as its own process, alternately, RUNS times:

  plain loop   read the file (decode, csv) and call email-validator's
               validate_email and phonenumbers' parse / is_valid_number /
               format_number / number_type once per row, in one process: the
               libraries' own cost, with nothing stored
  comms import the real command into a fresh database file: read, check, dedupe,
               write, action log (`python -m comms import FILE --db NEW`)

Both are timed from process start to exit (interpreter start and imports
included in both), and the figure is the median of each and their ratio
(target <= 0.5). Each run's CPU time (user + system, from wait4, the phone
worker's included) is printed too: the machine is shared, and CPU tells cost
from waiting for a core.
Memory: the import's peak RSS, and the peak of it and the worker process it
starts for the phone checks (comms.clients.checking.PhonesBeside) summed,
sampled from /proc every 5 ms; target <= 1 GB.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_average  # noqa: E402
from comms.clients.sample import csv_text  # noqa: E402

ROWS = 100_000
RUNS = 3

PLAIN_LOOP = """
import csv, io, sys
import phonenumbers
from email_validator import EmailNotValidError, validate_email
text = open(sys.argv[1], "rb").read().decode("cp1250")
rows = csv.reader(io.StringIO(text, newline=""), delimiter=";")
header = next(rows)
e, p = header.index("E-mail"), header.index("Telefon")
ok = 0
for row in rows:
    if row[e].strip():
        try:
            validate_email(row[e].strip(), check_deliverability=False)
            ok += 1
        except EmailNotValidError:
            pass
    if row[p].strip():
        try:
            n = phonenumbers.parse(row[p].strip(), "CZ")
            if phonenumbers.is_valid_number(n):
                phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
                phonenumbers.number_type(n)
                ok += 1
        except phonenumbers.NumberParseException:
            pass
print(ok)
"""


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:  # it ended
        pass
    return 0


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def timed(cmd: list[str]) -> dict:
    """Run cmd to its end: wall time, CPU (its own and its children's, from wait4), stdout, and
    the peak RSS of it and every process it starts, summed: a thread samples /proc every 5 ms
    (Linux keeps no peak for a process tree). A child is counted once it has exec'd its own
    program; before that it shares its parent's pages."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.PIPE)
        peak = {"sum_kb": 0, "children": 0}
        done = threading.Event()

        def sample() -> None:
            me = _cmdline(proc.pid)
            while not done.is_set():
                kids = [k for k in _children(proc.pid) if _cmdline(k) not in (me, b"")]
                total = _status_kb(proc.pid, "VmRSS:") + sum(_status_kb(k, "VmRSS:") for k in kids)
                peak["sum_kb"] = max(peak["sum_kb"], total)
                peak["children"] = max(peak["children"], len(kids))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{cmd[:4]} failed: {err.decode()[-2000:]}")
        out.seek(0)
        return {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,  # with its waited-for children
            "rss_mb": usage.ru_maxrss / 1024,  # its own peak
            "tree_mb": peak["sum_kb"] / 1024,  # it and its workers at the sampled peak
            "workers": peak["children"],
            "stdout": out.read().decode("utf-8", "replace"),
        }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "klienti_100k.csv"
        text = csv_text(ROWS, seed=7, delimiter=";", bad_emails=0.02, bad_phones=0.025)
        path.write_bytes(text.encode("cp1250"))
        print(f"import: {ROWS:,} rows, {path.stat().st_size / 1048576:.1f} MB, Windows-1250, ';'")
        loop, imp = [], []
        for i in range(RUNS):
            loop.append(timed([sys.executable, "-c", PLAIN_LOOP, str(path)]))
            db = Path(tmp) / f"bench{i}.duckdb"
            run = timed(
                [sys.executable, "-m", "comms", "import", str(path), "--db", str(db), "--json"]
            )
            run["report"] = json.loads(run["stdout"])
            imp.append(run)
        loop_wall = statistics.median(r["wall"] for r in loop)
        imp_wall = statistics.median(r["wall"] for r in imp)
        loop_cpu = statistics.median(r["cpu"] for r in loop)
        imp_cpu = statistics.median(r["cpu"] for r in imp)
        report = imp[-1]["report"]
        print(
            f"  plain validation loop (median of {RUNS}): {loop_wall:6.2f} s, CPU {loop_cpu:5.2f} s"
        )
        print(
            f"  comms import          (median of {RUNS}): {imp_wall:6.2f} s, CPU {imp_cpu:5.2f} s"
        )
        print(
            f"  ratio import / plain loop: {imp_wall / loop_wall:.2f} wall, "
            f"{imp_cpu / loop_cpu:.2f} CPU (target <= 0.5)"
        )
        print(
            f"  memory: import {max(r['rss_mb'] for r in imp):.0f} MB peak RSS, with its phone"
            f" worker ({max(r['workers'] for r in imp)} at most) {max(r['tree_mb'] for r in imp):.0f}"
            f" MB at the sampled peak (target <= 1024 MB); plain loop"
            f" {max(r['rss_mb'] for r in loop):.0f} MB"
        )
        print(
            f"  result: {report['imported']:,} imported, {report['updated']:,} updated, "
            f"{report['skipped']:,} skipped, {len(report['problems']):,} problems"
        )
        print(
            "  runs (loop / import): "
            + ", ".join(
                f"{a['wall']:.2f} / {b['wall']:.2f} s" for a, b in zip(loop, imp, strict=True)
            )
        )
        print(
            f"  load average {load_average()} on {os.cpu_count()} cores (other work inflates wall time)"
        )


if __name__ == "__main__":
    main()
