"""Import a generated 100,000-row client list (Windows-1250, ';') with validation.

Prints the median wall time of 3 runs, each in a fresh process into a fresh
database file (target <= 10 s), and the memory of the whole import (target
<= 1 GB): the importing process's peak RSS, and with it the e-mail / phone
validation workers it starts (comms.clients.reading.check_values), which run
beside it. Linux does not report the peak of a process tree, so a thread samples
the RSS of the process and of its workers every 5 ms from /proc and keeps the
largest sum, and each worker's own peak (VmHWM). getrusage(RUSAGE_CHILDREN) is
no help here: a child's ru_maxrss counts the parent's pages it shares between
fork and exec. A child is counted only once it runs the worker (its command line
is no longer the parent's), for the same reason. The baseline is reading and
parsing the same file without normalising or writing. The workers' CPU time is
printed, and with it the wall time an idle machine would take, since the
machine is usually shared.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, run_isolated  # noqa: E402
from comms.clients.sample import csv_text  # noqa: E402

ROWS = 100_000
RUNS = 3

IMPORT = """
import json, os, resource, sys, threading, time
from comms.store import open_store
from comms.clients import import_clients
from bench.common import peak_rss_mb

def cpu(who):
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime

def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:  # the process ended
        pass
    return 0

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""

ME = cmdline(os.getpid())

def workers():  # children that exec'd their own program (before, they share our pages)
    me = os.getpid()
    pids = []
    for tid in os.listdir(f"/proc/{me}/task"):
        try:
            with open(f"/proc/{me}/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return [p for p in pids if cmdline(p) not in (ME, b"")]

tree = {"peak_kb": 0, "workers": 0}
worker_hwm = {}  # pid -> its peak RSS (VmHWM) as last read
done = threading.Event()

def sample():
    while not done.is_set():
        kids = workers()
        total = status_kb(os.getpid(), "VmRSS:")
        for pid in kids:
            total += status_kb(pid, "VmRSS:")
            worker_hwm[pid] = max(worker_hwm.get(pid, 0), status_kb(pid, "VmHWM:"))
        tree["peak_kb"] = max(tree["peak_kb"], total)
        tree["workers"] = max(tree["workers"], len(kids))
        time.sleep(0.005)

store = open_store(sys.argv[2])
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0, c0, k0 = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
r = import_clients(store, sys.argv[1], list_name="bench", region="CZ")
wall = time.perf_counter() - t0
main_cpu = cpu(resource.RUSAGE_SELF) - c0
workers_cpu = cpu(resource.RUSAGE_CHILDREN) - k0
done.set()
sampler.join()
hwm = [kb for kb in worker_hwm.values() if kb]
print(json.dumps({"wall": wall, "rss": peak_rss_mb(), "cpu": main_cpu, "wcpu": workers_cpu,
                  "tree": tree["peak_kb"] / 1024, "workers": tree["workers"],
                  "worker_max": max(hwm, default=0) / 1024, "worker_sum": sum(hwm) / 1024,
                  "imported": r.imported, "updated": r.updated,
                  "skipped": r.skipped, "problems": len(r.problems)}))
"""

READ_ONLY = """
import json, sys, time
from pathlib import Path
from comms.clients.reading import read_table
from bench.common import peak_rss_mb
t0 = time.perf_counter()
t = read_table(Path(sys.argv[1]).read_bytes())
print(json.dumps({"wall": time.perf_counter() - t0, "rss": peak_rss_mb(), "rows": len(t.rows)}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clients_100k.csv"
        path.write_bytes(csv_text(ROWS, seed=7, delimiter=";").encode("cp1250"))
        size_mb = path.stat().st_size / 1048576
        print(f"import: {ROWS:,} rows, {size_mb:.1f} MB, Windows-1250, ';'")
        base = run_isolated(READ_ONLY, str(path))
        runs = []
        for i in range(RUNS):
            runs.append(run_isolated(IMPORT, str(path), str(Path(tmp) / f"bench{i}.duckdb")))
        wall = statistics.median(r["wall"] for r in runs)
        rss = max(r["rss"] for r in runs)
        tree = max(r["tree"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        wcpu = statistics.median(r["wcpu"] for r in runs)
        last = runs[-1]
        print(f"  baseline read+parse only : {base['wall']:6.2f} s, peak RSS {base['rss']:6.0f} MB")
        print(
            f"  import (median of {RUNS})    : {wall:6.2f} s (target <= 10 s); "
            f"ratio to baseline {wall / base['wall']:.1f}x"
        )
        print(
            f"  memory (largest of {RUNS})   : main process peak RSS {rss:6.0f} MB; "
            f"with its workers {tree:6.0f} MB at the sampled peak (target <= 1024 MB)"
        )
        print(
            f"  validation workers: {last['workers']} at once, the largest "
            f"{max(r['worker_max'] for r in runs):.0f} MB peak RSS, "
            f"{max(r['worker_sum'] for r in runs):.0f} MB their peaks summed"
        )
        print(
            f"  CPU: main process {cpu:.2f} s + validation workers {wcpu:.2f} s; "
            f"on an idle 2-core machine the wall time is about {cpu + wcpu / 2:.1f} s"
        )
        print(
            f"  result: {last['imported']:,} imported, {last['updated']:,} updated, "
            f"{last['skipped']:,} skipped, {last['problems']:,} problems"
        )
        print("  runs: " + ", ".join(f"{r['wall']:.2f} s" for r in runs))
        print(f"  load average {load_average()} on 2 cores (other work inflates wall time)")


if __name__ == "__main__":
    main()
