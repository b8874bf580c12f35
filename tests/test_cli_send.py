"""`comms send` as cron runs it: JSON counts, progress on stderr, the "in use" refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from servers import SmtpSink
from test_outbox import seed

from comms import outbox
from comms.store import open_store

ROOT = Path(__file__).resolve().parent.parent


def comms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "comms", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )


def test_json_counts_and_exit_when_nothing_due(db_path: Path) -> None:
    store = open_store(db_path)
    batch_id, _ = seed(store, 5)
    outbox.queue(store, batch_id=batch_id)
    store.close()
    with SmtpSink() as sink:
        sink.always("client4@example.com", "550 5.1.1 No such user")
        run = comms("send", "--db", str(db_path), "--json", env=sink.env())
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {"sent", "failed", "retried", "interrupted"} <= set(report)
    assert (report["sent"], report["failed"], report["interrupted"]) == (4, 1, 0)
    again = comms("send", "--db", str(db_path), "--json", env=sink.env())
    assert json.loads(again.stdout)["sent"] == 0


def test_progress_goes_to_stderr_and_batch_filter(db_path: Path) -> None:
    store = open_store(db_path)
    b1, _ = seed(store, 3)
    b2, _ = seed(store, 2)
    outbox.queue(store, batch_id=b1)
    outbox.queue(store, batch_id=b2)
    store.close()
    run = comms("send", "--db", str(db_path), "--batch", str(b2))  # outbox folder (demo)
    assert run.returncode == 0, run.stderr
    assert "sent 2, failed 0" in run.stdout
    assert "(2/2)" in run.stderr
    store = open_store(db_path)
    assert outbox.progress(store, b1)["queued"] == 3
    assert outbox.progress(store, b2)["sent"] == 2
    store.close()


def test_cli_refuses_clearly_while_another_process_holds_the_database(db_path: Path) -> None:
    open_store(db_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from comms.store import open_store; s = open_store(sys.argv[1]);"
            " print('READY', flush=True); sys.stdin.read()",
            str(db_path),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "READY"
        run = comms("send", "--db", str(db_path), "--json")
    finally:
        holder.communicate("")
    assert run.returncode == 2
    assert "in use" in run.stderr and str(holder.pid) in run.stderr
    assert run.stdout == ""


def test_unknown_batch_is_a_clear_error(db_path: Path) -> None:
    open_store(db_path).close()
    run = comms("send", "--db", str(db_path), "--batch", "999")
    assert run.returncode == 1 and "No batch with id 999" in run.stderr
