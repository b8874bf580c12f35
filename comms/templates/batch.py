"""One template rendered for many clients: here, and in a worker process beside this one.

`render_rows` is the bulk generator's render step. It yields, chunk by chunk
in the order they finish, one result per client row: (subject, text, HTML,
reason, detail), the reason and detail None when the render succeeded, else
the per-recipient reason, with (for a missing field) the draft that shows
`{{ field }}` where the value is missing, and None where nothing could be made. It never
touches the database: the generator renders every row first and only then
takes the store's write lock to store them (comms.messages.generate).

With PARALLEL_MIN rows or more and a second core, a worker process takes
chunks from the same queue as this process. Invariants:

* P1: the results never depend on the worker. A chunk it does not give back
  (it could not start, died, or sent something unreadable) is rendered here.
* P2: the worker only renders: it is a fresh interpreter that imports
  comms.templates (Jinja, Markdown; no DuckDB, no pandas) and sees the rows
  and the template it is sent, nothing else. multiprocessing would re-run the
  parent's __main__ (a page script under Streamlit), and fork is unsafe in
  the app's threaded process.
* P3: a render in the worker has the same budget as here (the Limits are
  sent with the job; the worker has its own watchdog).
* P5: a caller may give a finishing step (`Finish`: a module, a function of it,
  and its argument): each chunk's results then come back as
  function(argument, names, rows, results), made where the chunk was rendered.
  The bulk generator checks and converts its chunks that way (comms.messages
  .chunks), so a worker sends back a chunk ready to store. The module must be
  as light as this one (P2).
* P4: once SLOW_IN_A_ROW renders in a row ran out of time (in one renderer),
  the rest of the batch is not rendered: each remaining row gets the same
  reason, saying so. A template that runs away for every client would
  otherwise cost the whole time budget once per client.
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from comms.rules.validation import TEMPLATE_TOO_SLOW
from comms.templates import budget
from comms.templates.context import RowContexts, row_context
from comms.templates.rendering import BUDGET_REASONS, CompiledTemplate, RenderFailed

# Below this many rows a worker process costs more than it saves (it starts in ~0.2 s).
PARALLEL_MIN = 10_000
MAX_WORKERS = 3
_IN_FLIGHT = 2  # chunks sent to a worker ahead, so it never waits for the next one
WORKER_CODE = "from comms.templates.batch import serve; serve()"  # what a worker runs


# One row's result: (subject, text, html, reason, detail). Plain tuples: 100,000
# of them cross the pipe from a worker.
Result = tuple[str | None, str | None, str | None, str | None, str | None]
_OK = (None, None)
# P5: (module, function, argument); function(argument, names, rows, results) per chunk.
Finish = tuple[str, str, Any]


def _finisher(finish: Finish | None) -> Any:
    """The chunk step of P5, or one that gives the results as they are."""
    if finish is None:
        return lambda names, rows, results: results
    module, function, argument = finish
    fn = getattr(importlib.import_module(module), function)
    return lambda names, rows, results: fn(argument, names, rows, results)


class _Renderer:
    """Renders chunks of rows with one compiled template, remembering P4's run of time-outs."""

    def __init__(self, compiled: CompiledTemplate, names: Sequence[str]) -> None:
        self.compiled = compiled
        self.names = list(names)
        self.context = RowContexts(self.names, frozenset(compiled.fields))
        self.slow_in_a_row = 0

    @property
    def stopped(self) -> bool:
        return self.slow_in_a_row >= budget.SLOW_IN_A_ROW

    def chunk(self, rows: Sequence[Sequence[Any]]) -> list[Result]:
        context, render = self.context, self.compiled.render_parts
        out: list[Result] = []
        for values in rows:
            if self.slow_in_a_row >= budget.SLOW_IN_A_ROW:  # P4
                out.append(not_rendered())
                continue
            try:
                out.append(render(context(values)) + _OK)
                self.slow_in_a_row = 0
            except RenderFailed as exc:
                out.append(self._failed(values, exc))
        return out

    def _failed(self, values: Sequence[Any], exc: RenderFailed) -> Result:
        self.slow_in_a_row = self.slow_in_a_row + 1 if exc.reason == TEMPLATE_TOO_SLOW else 0
        if exc.reason in BUDGET_REASONS:  # a draft would blow the budget again
            return (None, None, None, exc.reason, exc.detail)
        # Keep what can be rendered, `{{ field }}` marking what is missing, so
        # the review shows the message and a person can complete it by hand.
        row = dict(zip(self.names, values, strict=True))
        draft = self.compiled.render_draft(row_context(row, None))
        if draft is None:
            return (None, None, None, exc.reason, exc.detail)
        return (draft.subject, draft.text, draft.html, exc.reason, exc.detail)


def not_rendered() -> Result:
    """The result of a row P4 left out."""
    return (
        None,
        None,
        None,
        TEMPLATE_TOO_SLOW,
        f"{budget.too_slow_sentence()}: it ran out of time for {budget.SLOW_IN_A_ROW} clients"
        " in a row, so it was not tried for the rest",
    )


class _Work:
    """The rows a render is for, shared by this process and its workers.

    `rows` is a sequence, or a function fetch(n) giving the next n rows ([] at
    the end): the bulk generator passes its query's fetchmany, so rendering
    starts with the first rows read, not after the last. Each chunk is kept
    once handed out (P1 renders it here again if a worker does not give it back).
    """

    def __init__(self, names: Sequence[str], rows: Rows, size: int) -> None:
        self.names, self.size = list(names), size
        self._fetch = rows if callable(rows) else _slicer(rows)
        self._chunks: dict[int, Sequence[Any]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self.stopped = False  # P4: nothing more is handed out

    def take(self) -> int | None:
        """The start of the next chunk to render (None: no more)."""
        with self._lock:
            return None if self.stopped else self._take()

    def _take(self) -> int | None:
        rows = self._fetch(self.size)
        if not rows:
            return None
        start, self._next = self._next, self._next + len(rows)
        self._chunks[start] = rows
        return start

    def rest(self) -> list[int]:
        """Every start never handed out (after a stop)."""
        with self._lock:
            return list(iter(self._take, None))

    def chunk(self, start: int) -> Sequence[Any]:
        return self._chunks[start]

    def done(self, start: int) -> None:
        """The chunk's results are in: its rows are not needed any more."""
        self._chunks.pop(start, None)


# What a render is for: the rows, or fetch(n) giving the next n of them ([] at the end).
Rows = Sequence[Sequence[Any]] | Callable[[int], Sequence[Sequence[Any]]]


def _slicer(rows: Sequence[Any]) -> Callable[[int], Sequence[Any]]:
    at = 0

    def fetch(n: int) -> Sequence[Any]:
        nonlocal at
        chunk, at = rows[at : at + n], at + n
        return chunk

    return fetch


def _send_message(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("<Q", len(data)) + data)


def _receive_message(sock: socket.socket) -> Any:
    """One message, read in as few system calls as the kernel allows (see _Worker)."""
    header = _receive_exactly(sock, 8)
    return pickle.loads(_receive_exactly(sock, struct.unpack("<Q", header)[0]))


def _receive_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
        if n == 0:
            raise EOFError("the render worker ended")
        got += n
    return buffer


class _Worker:
    """One worker process and the two threads that feed it and read it (P1).

    They talk over a socket pair, each message length-prefixed and received
    with MSG_WAITALL: the reading thread then needs the GIL once per chunk of
    results, not once per pipe buffer (a pipe read returns 64 KB, and each
    return waits for the rendering thread to let the GIL go, up to 5 ms).
    """

    def __init__(self, job: dict) -> None:
        self.job = job
        self.work: _Work | None = None
        self.has_work = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[int, Any]] = []  # taken by the main thread (P5: finished)
        self.in_flight: set[int] = set()
        self.redo: list[int] = []  # chunks the worker did not give back (P1)
        self.slots = threading.Semaphore(_IN_FLIGHT)
        self.failed = False
        self.sock, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(  # noqa: S603  (our own interpreter, our own module)
                [sys.executable, "-c", WORKER_CODE],
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": _pythonpath()},
            )
        finally:
            theirs.close()
        self.sender = threading.Thread(target=self._send, daemon=True, name="comms-render-send")
        self.reader = threading.Thread(target=self._read, daemon=True, name="comms-render-read")
        self.sender.start()
        self.reader.start()

    def start(self, work: _Work) -> None:
        self.work = work
        self.has_work.set()

    def _send(self) -> None:
        try:
            _send_message(self.sock, self.job)
            self.has_work.wait()
            self.ready.wait()
            work = self.work
            while work is not None and not self.failed:
                self.slots.acquire()
                start = work.take()
                if start is None or self.failed:
                    break
                with self.lock:
                    self.in_flight.add(start)
                _send_message(self.sock, (start, work.names, work.chunk(start)))
            _send_message(self.sock, None)
        except (OSError, ValueError, pickle.PickleError):
            self._fail()

    def _read(self) -> None:
        try:
            if _receive_message(self.sock) != "ready":
                raise ValueError("the render worker did not start")
            self.ready.set()
            while (message := _receive_message(self.sock)) is not None:
                start, results, stopped = message
                with self.lock:
                    self.in_flight.discard(start)
                    self.results.append((start, results))
                if stopped and self.work is not None:
                    self.work.stopped = True
                self.slots.release()
        except Exception:  # EOF, a dead process, garbage: its chunks are redone here (P1)
            self._fail()

    def _fail(self) -> None:
        self.failed = True
        self.ready.set()
        self.has_work.set()
        self.slots.release()
        with self.lock:
            self.redo.extend(self.in_flight)
            self.in_flight.clear()

    def take_results(self) -> list[tuple[int, Any]]:
        with self.lock:
            out, self.results = self.results, []
        return out

    def finish(self) -> None:
        """Wait for the chunks the worker holds (none are left to hand out), then end it."""
        if not self.ready.is_set():  # still starting: it holds nothing, so stop it
            self.failed = True
            self.proc.kill()
        self.has_work.set()
        self.reader.join()
        self.sender.join()
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.failed = True
                self.proc.kill()
                self.proc.wait()
        self.sock.close()


def _pythonpath() -> str:
    # The worker must import this very copy of comms (a checkout, an editable install).
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)


def workers_for(rows: int, reserved: int = 0) -> int:
    """How many worker processes a render of `rows` rows gets: one per idle core, or none.

    None below PARALLEL_MIN rows (a worker takes ~0.2 s to start), and none for
    a core that is busy already (the 1-minute load average): a worker competing
    for a core costs its start and the pipe, and saves nothing.
    """
    if rows < PARALLEL_MIN:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        idle = cores - os.getloadavg()[0]
    except OSError:
        idle = cores - 1
    spare = cores - 1 - reserved  # this process's thread(s) keep theirs
    return max(0, min(int(idle + 0.25) - reserved, spare, MAX_WORKERS, rows // PARALLEL_MIN))


class Renderers:
    """This process and `workers` worker processes, ready to render one template.

    Made before the rows are read, so that the workers start (import, compile)
    while this process loads the clients. Use it as a context manager: leaving
    it ends any worker still running.
    """

    def __init__(
        self, compiled: CompiledTemplate, workers: int = 0, finish: Finish | None = None
    ) -> None:
        self.compiled = compiled
        self.finish = _finisher(finish)
        job = {
            "template": (
                compiled.channel,
                compiled.subject_source,
                compiled.body_source,
                compiled.body_format,
                compiled.gsm7,
            ),
            "limits": budget.limits(),  # P3
            "finish": finish,  # P5
        }
        self.pool = [_Worker(job) for _ in range(workers)]

    def __enter__(self) -> Renderers:
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.pool:
            if worker.proc.poll() is None:
                worker.failed = True
                worker.proc.kill()
                worker.proc.wait()
            worker.sock.close()

    def render(self, names: Sequence[str], rows: Rows, size: int) -> Iterator[tuple[int, Any]]:
        """(start, results of the rows from start, `size` of them) per chunk, as chunks finish.

        rows are the bulk generator's client rows (comms.templates.context.ROW_COLUMNS
        among their columns, `names`), or fetch(n) giving them n at a time (_Work). The
        results are a list of Result, or what the finishing step made of them (P5).
        Call it once.
        """
        work = _Work(names, rows, size)
        renderer = _Renderer(self.compiled, names)
        finish = self.finish

        def here(start: int, results: list[Result] | None = None) -> tuple[int, Any]:
            chunk = work.chunk(start)
            out = finish(names, chunk, renderer.chunk(chunk) if results is None else results)
            work.done(start)
            return start, out

        def theirs(worker: _Worker) -> Iterator[tuple[int, Any]]:
            for start, out in worker.take_results():
                work.done(start)
                yield start, out

        for worker in self.pool:
            worker.start(work)
        while True:
            for worker in self.pool:
                yield from theirs(worker)
            start = work.take()
            if start is None:
                break
            yield here(start)
            if renderer.stopped:
                work.stopped = True
        for worker in self.pool:
            worker.finish()
            yield from theirs(worker)
            for start in worker.redo:  # P1
                yield here(start)
        for start in work.rest():  # P4: never handed out
            yield here(start, [not_rendered() for _ in work.chunk(start)])


def render_rows(
    compiled: CompiledTemplate,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    size: int,
    *,
    workers: int | None = None,
) -> Iterator[tuple[int, list[Result]]]:
    """Renderers(compiled, workers).render(names, rows, size), workers by default workers_for."""
    count = workers_for(len(rows)) if workers is None else workers
    with Renderers(compiled, count) as renderers:
        yield from renderers.render(names, rows, size)


def serve() -> None:
    """The worker process: a job, then chunks of rows; their results back (P2, P3).

    Its stdin and stdout are the same socket (see _Worker); anything printed
    by mistake goes to stderr.
    """
    sock = socket.socket(fileno=os.dup(sys.stdin.fileno()))
    sys.stdout = sys.stderr
    job = _receive_message(sock)
    budget.use(job["limits"])
    channel, subject, body, body_format, gsm7 = job["template"]
    compiled = CompiledTemplate(channel, subject, body, body_format, gsm7=gsm7)
    finish = _finisher(job["finish"])  # P5
    renderers: dict[tuple[str, ...], _Renderer] = {}
    _send_message(sock, "ready")
    while (message := _receive_message(sock)) is not None:
        start, names, rows = message
        renderer = renderers.get(tuple(names))
        if renderer is None:
            renderer = renderers[tuple(names)] = _Renderer(compiled, names)
        results = finish(names, rows, renderer.chunk(rows))
        _send_message(sock, (start, results, renderer.stopped))
    _send_message(sock, None)
