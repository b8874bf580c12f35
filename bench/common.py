"""Shared benchmark helpers: a median timer, peak RSS, and running a step in a fresh process."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn: Callable[[], Any], runs: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_wall_cpu(fn: Callable[[], Any], runs: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of this process) of fn(), seconds.

    On a shared machine the wall time includes waiting for a core; the CPU time
    does not, so printing both tells load from cost.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def load_average() -> str:
    """The 1-minute load average, to read the timings against."""
    try:
        import os

        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(code: str, *args: str) -> dict[str, Any]:
    """Run python code in a fresh interpreter (clean peak RSS); it prints one JSON line last."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"
