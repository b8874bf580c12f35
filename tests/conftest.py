"""Shared fixtures: a real DuckDB file per test, the app under AppTest, the app
served by a real Streamlit server on 127.0.0.1 and driven by Debian's chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from comms.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Without these, chromium reaches for Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database file; also $COMMS_DB so the app and CLI use it."""
    path = tmp_path / "comms.duckdb"
    monkeypatch.setenv("COMMS_DB", str(path))
    monkeypatch.setenv("COMMS_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("COMMS_SECRETS", str(tmp_path / "no-secrets.toml"))
    return path


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """The process-wide Store on the fresh file, closed afterwards."""
    st = open_store(db_path)
    yield st
    st.close()


@pytest.fixture
def sender(store: Store) -> Iterator[object]:
    """The app's background sender for the test's store, as `make run` starts it."""
    from comms.sending import dispatcher

    bg = dispatcher.start_background(store, poll_seconds=0.05)
    yield bg
    dispatcher.stop_background(store)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


@pytest.fixture
def run_app(db_path: Path, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `streamlit run app.py` on 127.0.0.1 and return its URL.

    Call it as run_app(seed=fn, env={...}): fn(store) fills the database first.
    The server process then holds the DuckDB file, so the test must not open
    it until the server is stopped (stop_app() or the end of the test).
    """
    procs: list[subprocess.Popen] = []

    def start(
        seed: Callable[[Store], None] | None = None, env: dict[str, str] | None = None
    ) -> str:
        st = open_store(db_path)
        if seed:
            seed(st)
        st.close()
        port = free_port()
        full_env = {**os.environ, **(env or {})}
        log = open(tmp_path / "streamlit.log", "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/_stcore/health")
        return url

    start.stop = lambda: _stop(procs)  # type: ignore[attr-defined]
    yield start
    _stop(procs)


def _stop(procs: list[subprocess.Popen]) -> None:
    while procs:
        proc = procs.pop()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (which cannot download browsers here)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path: Path):
    """A fresh browser page; a screenshot is left in tmp_path when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    try:
        pg.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    except Exception:
        pass
    context.close()
