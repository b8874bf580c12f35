"""Import a generated 100,000-row client list (Windows-1250, ';') with validation.

Prints the median wall time of 3 runs, each in a fresh process into a fresh
database file, and that process's peak RSS (targets: <= 10 s, <= 1 GB). The
baseline is reading and parsing the same file without normalising or writing.
Validation runs in spawned worker processes (about 20 MB each: they import only
comms.rules.validation); their CPU time is printed, and with it the wall time an idle
machine would take, since the machine is usually shared.
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
import json, resource, sys, time
from comms.store import open_store
from comms.clients import import_clients
from bench.common import peak_rss_mb

def cpu(who):
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime

store = open_store(sys.argv[2])
t0, c0, k0 = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
r = import_clients(store, sys.argv[1], list_name="bench", region="CZ")
wall = time.perf_counter() - t0
main_cpu = cpu(resource.RUSAGE_SELF) - c0
workers_cpu = cpu(resource.RUSAGE_CHILDREN) - k0
print(json.dumps({"wall": wall, "rss": peak_rss_mb(), "cpu": main_cpu, "wcpu": workers_cpu,
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
        cpu = statistics.median(r["cpu"] for r in runs)
        wcpu = statistics.median(r["wcpu"] for r in runs)
        last = runs[-1]
        print(f"  baseline read+parse only : {base['wall']:6.2f} s, peak RSS {base['rss']:6.0f} MB")
        print(
            f"  import (median of {RUNS})    : {wall:6.2f} s, peak RSS {rss:6.0f} MB "
            f"(target <= 10 s, <= 1024 MB); ratio to baseline {wall / base['wall']:.1f}x"
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
