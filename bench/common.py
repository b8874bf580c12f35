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


def timed_process(cmd: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run cmd to the end: its wall time, its own CPU (user + sys, all threads), its stdout.

    The CPU comes from wait4() on this very child, so nothing else this process
    started (a sink, an earlier child) is counted. Process start and imports are
    part of both figures.
    """
    import os
    import tempfile

    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, **kwargs)
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.decode()[-2000:]}")
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "stdout": stdout}


def insert_clients(store: Any, rows: list[dict[str, str]]) -> None:
    """Clients as an import stores them: ids 1..n, name, email and/or phone, the rest as attributes.

    Setup for the send benchmarks (the addresses are valid; a phone is a mobile in E.164).
    """
    extra = [k for k in rows[0] if k not in ("name", "email", "phone")]
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (id, name, email, email_valid, phone, phone_kind, attributes)"
            " SELECT id, name, email, email IS NOT NULL, phone,"
            " CASE WHEN phone IS NOT NULL THEN 'mobile' END, attrs::JSON FROM"
            " (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS name,"
            " unnest(?::VARCHAR[]) AS email, unnest(?::VARCHAR[]) AS phone,"
            " unnest(?::VARCHAR[]) AS attrs)",
            [
                list(range(1, len(rows) + 1)),
                [r["name"] for r in rows],
                [r.get("email") for r in rows],
                [r.get("phone") for r in rows],
                [json.dumps({k: r[k] for k in extra}) for r in rows],
            ],
        )
    )


# -- the e-mail the send benchmarks send (ours from a stored template, mailmerge's equivalent) --

EMAIL_FROM = "Comms Bench <bench@example.com>"
EMAIL_SUBJECT = "Your November statement, {{ name }}"
EMAIL_BODY = (  # Markdown, the default body format of a template
    "Dear {{ name }},\n\n"
    "your statement for November is ready. Your balance is **{{ balance }} CZK**.\n\n"
    "- pay by bank transfer within 14 days\n"
    "- or reply to this e-mail if you have any questions\n\n"
    "Kind regards,  \nThe Bench Team"
)


def create_email_template(store: Any) -> int:
    """The stored template ours generates from (comms' own template storage); its id."""
    from comms import templates

    return templates.create_template(
        store, name="bench statement", channel="email", subject=EMAIL_SUBJECT, body=EMAIL_BODY
    )


def mailmerge_template() -> str:
    """mailmerge's equivalent: the same subject, text and the HTML our Markdown becomes.

    A ready multipart/alternative, so mailmerge renders with Jinja2 but converts
    no Markdown per message (ours converts at generation, not at sending).
    """
    from comms import templates

    html = templates.markdown_to_html(EMAIL_BODY)  # the placeholders pass through unchanged
    return (
        f"TO: {{{{ email }}}}\nSUBJECT: {EMAIL_SUBJECT}\nFROM: {EMAIL_FROM}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="=_bench"\n\n'
        f"--=_bench\nContent-Type: text/plain; charset=utf-8\n\n{EMAIL_BODY}\n"
        f"--=_bench\nContent-Type: text/html; charset=utf-8\n\n{html}\n--=_bench--\n"
    )


def mailmerge_command(folder: Path, *, dry_run: bool) -> list[str]:
    """mailmerge over folder's template.txt, database.csv and server.conf (raw output)."""
    exe = Path(sys.executable).parent / "mailmerge"
    return [
        str(exe),
        "--dry-run" if dry_run else "--no-dry-run",
        "--no-limit",
        "--template",
        str(folder / "template.txt"),
        "--database",
        str(folder / "database.csv"),
        "--config",
        str(folder / "server.conf"),
        "--output-format",
        "raw",
    ]
