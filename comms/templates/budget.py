"""Render budgets: how long one message's render may run, and how much it may make.

A template is a small program written by a colleague, so every render gets a
budget (comms.config: COMMS_RENDER_SECONDS, default 0.5 s of the rendering
thread's CPU time; COMMS_RENDER_MAX_KB, default 1,024 KB of text per message)
and a render that blows it stops with RenderTooSlow or RenderTooLarge, which
comms.templates.rendering turns into the named reasons `template too slow` and
`template too large`, or into one sentence at save and preview.

Invariants, cited where they are enforced:

* B1 (time): `run` marks this thread's slot with a fresh token; a watchdog
  thread reads the rendering thread's own CPU clock and, once one token has
  used the budget, raises RenderTooSlow in that thread
  (PyThreadState_SetAsyncExc). The interpreter delivers it between bytecodes,
  so it stops any loop, also one that outputs nothing. It cannot interrupt one
  long C call (a huge `**`, `*` or str.center), which is why B2 checks sizes
  BEFORE such calls run. CPU time, not wall time: a loaded machine makes
  renders slower, not refused.
* B2 (size): what can make a big value from a few characters of template is
  checked before it runs: `*` and `**` (the result's size estimated from the
  operands), `%` and str.format (field widths), the filters and str methods
  that take a width or a count (center, indent, wordwrap, replace, join,
  batch, slice, tojson, urlize, zfill, expandtabs, translate) and lipsum.
  Everything else is checked right after (`+`, `~`, every filter and call).
* B3 (output): every piece of output that can repeat (inside a loop, macro,
  block, `{% set %}` or `{% filter %}` block) is counted as it is made
  (`counted`, emitted by the renderer's code generator), so a loop is cut as
  soon as this render's pieces pass the cap; the pieces that cannot repeat are
  bounded by the template's own size and B2, and the joined result is checked
  once more. Nothing a render makes is bigger than a few times the cap.
* B4 (the exception never lands outside its render): the watchdog fires only
  under the slot's lock, after marking the token fired and seeing the slot
  still hold it; `run` clears the token first and, when it finds its token
  fired, takes the lock (so the exception has been set) and clears any
  exception not yet delivered before it returns.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from comms import config, i18n
from comms.i18n import N_, _

T = TypeVar("T")

# An integer of more bits than this (about 30,000 digits) is refused: Python
# could not even show it (str() stops at 4,300 digits), and squaring it again is
# how `((9**9999)**9999)**9999` would hang a process.
MAX_BITS = 100_000
_MAX_DIGITS = int(MAX_BITS * 0.30103)
# How many renders in a row may blow the time budget before a batch stops
# rendering (comms.templates.batch): each costs the whole budget.
SLOW_IN_A_ROW = 3


@dataclass(frozen=True)
class Limits:
    """One message's render budget."""

    seconds: float  # CPU time of the rendering thread
    max_chars: int  # characters of text (subject, text and HTML together)

    @property
    def size_text(self) -> str:
        kb = self.max_chars / 1024
        return f"{kb / 1024:g} MB" if kb >= 1024 else f"{kb:g} KB"


def from_config() -> Limits:
    """The budget the settings give (comms.config.render_seconds / render_max_bytes)."""
    return Limits(config.render_seconds(), config.render_max_bytes())


_limits = Limits(0.5, 1024 * 1024)


def limits() -> Limits:
    """The budget renders in this process run under."""
    return _limits


def use(new: Limits) -> None:
    """Make `new` the budget of every render from now on (compile_template reads the settings)."""
    global _limits
    _limits = new


# -- the refusals -------------------------------------------------------------------
class RenderTooSlow(BaseException):  # noqa: N818  (a BaseException: see below)
    """A render used its whole time budget.

    A BaseException, like KeyboardInterrupt, because it is raised asynchronously
    at any bytecode (B1): no `except Exception` inside Jinja or a filter may
    swallow it and carry on looping.
    """


class RenderTooLarge(Exception):  # noqa: N818
    """A render made (or was about to make) more text, or a larger number, than allowed."""

    def __init__(self, what: str = "text") -> None:
        super().__init__(what)
        self.what = what  # "text" or "number"


_TOO_SLOW = N_(
    "This template takes longer than {seconds} s to fill in for one client"
    " (a loop that runs too long?)"
)
_TOO_BIG_NUMBER = N_(
    "This template computes a number too large to fill in for one client"
    " (more than {digits} digits)"
)
_TOO_MUCH_TEXT = N_(
    "This template makes more than {size} of text for one client (a value repeated too many times?)"
)


def _localised(shown: bool) -> bool:
    """Whether a sentence is in the viewer's language with its number format: only when
    it is shown (stored sentences stay English) and the viewer's language is not English
    (whose numbers keep the form they have always had here)."""
    return shown and i18n.language() != i18n.DEFAULT


def too_slow_sentence(budget: Limits | None = None, *, shown: bool = False) -> str:
    """What a person is told about a render that ran out of time.

    English by default: it is stored as a message's error detail. shown: in the viewer's
    language, for a refusal at save or preview (RenderFailed.sentence).
    """
    b = budget or _limits
    if _localised(shown):
        return _(_TOO_SLOW).format(seconds=i18n.number(b.seconds))
    return _TOO_SLOW.format(seconds=f"{b.seconds:g}")


def too_large_sentence(
    exc: RenderTooLarge, budget: Limits | None = None, *, shown: bool = False
) -> str:
    """What a person is told about a render that made too much (English unless shown)."""
    b = budget or _limits
    local = _localised(shown)
    if exc.what == "number":
        digits = i18n.number(_MAX_DIGITS) if local else f"{_MAX_DIGITS:,}"
        return (_(_TOO_BIG_NUMBER) if local else _TOO_BIG_NUMBER).format(digits=digits)
    size = i18n.size(b.max_chars) if local else b.size_text
    return (_(_TOO_MUCH_TEXT) if local else _TOO_MUCH_TEXT).format(size=size)


# -- time (B1, B4) ------------------------------------------------------------------
# int PyThreadState_SetAsyncExc(unsigned long id, PyObject *exc): exc NULL clears a
# pending one. Own prototypes, so ctypes.pythonapi's shared entry is left as it is.
_ASYNC_EXC = ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(_ASYNC_EXC)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(_ASYNC_EXC)


class _Slot:
    """One rendering thread as the watchdog sees it."""

    __slots__ = (
        "active",
        "chars",
        "clock",
        "counting",
        "fired",
        "ident",
        "lock",
        "seen",
        "seen_at",
        "thread",
    )

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.ident = threading.get_ident()
        self.active = 0  # the token of the render running now, 0 between renders
        self.fired = 0  # the last token the watchdog fired at
        self.seen = 0  # the token the watchdog saw last, and the thread's CPU clock then
        self.seen_at = 0.0
        self.chars = 0  # output counted in render `counting` (B3)
        self.counting = 0
        self.lock = threading.Lock()
        try:
            clock_id = time.pthread_getcpuclockid(self.ident)
            self.clock: Callable[[], float] = functools.partial(time.clock_gettime, clock_id)
            self.clock()
        except (AttributeError, OSError):  # no per-thread CPU clock here: wall time
            self.clock = time.monotonic


_local = threading.local()
_tokens = itertools.count(1)


class _Watchdog:
    """The one thread per process that stops renders over their time budget."""

    TICK = 0.02  # how often it looks (a render stops within budget + about one tick)
    IDLE_AFTER = 100  # ticks without a render before it sleeps until the next one

    def __init__(self) -> None:
        self.slots: dict[int, _Slot] = {}
        self.guard = threading.Lock()
        self.wake = threading.Event()
        self.idle = False  # True while the thread sleeps until a render wakes it
        self.thread: threading.Thread | None = None

    def register(self) -> _Slot:
        slot = _Slot()
        with self.guard:
            self.slots[slot.ident] = slot
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._loop, name="comms-render-watchdog", daemon=True
                )
                self.thread.start()
        _local.slot = slot
        return slot

    def _loop(self) -> None:
        quiet = 0
        while True:
            if self._look():
                quiet = 0
            else:
                quiet += 1
            if quiet < self.IDLE_AFTER:
                time.sleep(self.TICK)
                continue
            # Idle: publish it, then look once more, so a render that started
            # without seeing `idle` is still watched (it wakes us otherwise).
            self.idle = True
            if not self._look():
                self.wake.wait()
                self.wake.clear()
            self.idle = False
            quiet = 0

    def _look(self) -> bool:
        """Check every slot once; whether any render is running."""
        busy = False
        with self.guard:
            slots = list(self.slots.values())
        for slot in slots:
            token = slot.active
            if not token:
                if not slot.thread.is_alive():
                    with self.guard:
                        self.slots.pop(slot.ident, None)
                continue
            busy = True
            try:
                now = slot.clock()
            except OSError:  # the thread is gone
                with self.guard:
                    self.slots.pop(slot.ident, None)
                continue
            if token != slot.seen:
                slot.seen, slot.seen_at = token, now
            elif now - slot.seen_at >= _limits.seconds:
                self._fire(slot, token)
        return busy

    @staticmethod
    def _fire(slot: _Slot, token: int) -> None:
        with slot.lock:  # B4
            slot.fired = token
            if slot.active == token:
                _set_async_exc(slot.ident, RenderTooSlow)


_watchdog = _Watchdog()


def run(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) under this thread's render budget (B1, B3, B4).

    Raises RenderTooSlow once the call has used the budget's CPU time, and
    RenderTooLarge from the size checks. A call inside another keeps the outer budget.
    """
    try:
        slot = _local.slot
    except AttributeError:
        slot = _watchdog.register()
    if slot.active:
        return fn(*args)
    # Every render pays what follows (~0.3 us): a token, two stores, two reads.
    slot.active = token = next(_tokens)
    if _watchdog.idle:
        _watchdog.wake.set()
    try:
        result = fn(*args)
    finally:
        slot.active = 0
        if slot.fired == token:  # B4: the exception is set; clear it if not delivered yet
            with slot.lock:
                _clear_async_exc(slot.ident, None)
            raise RenderTooSlow
    return result


# -- size (B2, B3) ------------------------------------------------------------------
def size(value: Any, limit: int) -> int:
    """About how many characters str(value) has; stops counting once past `limit`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    if isinstance(value, bytes | bytearray):
        return 4 * len(value) + 3
    if isinstance(value, Mapping):
        items: Any = itertools.chain.from_iterable(value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return 32
    total = 2
    for item in items:
        total += size(item, limit - total) + 2
        if total > limit:
            break
    return total


def check(value: T) -> T:
    """value, unless it is (or would print as) more text than the budget allows (B2)."""
    limit = _limits.max_chars
    if value.__class__ is str:
        if len(value) > limit:
            raise RenderTooLarge()
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_BITS:
            raise RenderTooLarge("number")
    elif size(value, limit) > limit:
        raise RenderTooLarge()
    return value


def counted(piece: str) -> str:
    """One piece of output that can repeat, added to this render's count (B3)."""
    slot = getattr(_local, "slot", None)
    if slot is not None and slot.active:
        if slot.counting != slot.active:  # this render's first counted piece
            slot.counting, slot.chars = slot.active, 0
        slot.chars += len(piece)
        if slot.chars > _limits.max_chars:
            raise RenderTooLarge()
    return piece


def _refuse_over(n: Any, limit: int | None = None) -> None:
    if isinstance(n, int) and n > (_limits.max_chars if limit is None else limit):
        raise RenderTooLarge()


def _repeat(seq: Any, times: Any) -> None:
    if isinstance(times, int) and times > 1 and isinstance(seq, str | bytes | list | tuple):
        limit = _limits.max_chars
        if times * max(size(seq, limit), 1) > limit:
            raise RenderTooLarge()


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.")
_DIGITS = re.compile(r"\d+")


def _printf(fmt: str, args: Any) -> None:
    """Refuse `'%1000000000s' % x` (and a `*` width given as a huge argument) before it runs."""
    star = False
    for width, precision in _PRINTF_SPEC.findall(fmt):
        for n in (width, precision):
            if n == "*":
                star = True
            elif n:
                _refuse_over(int(n))
    if star:
        for arg in args if isinstance(args, tuple) else (args,):
            _refuse_over(arg)


def format_spec(spec: str) -> None:
    """Refuse `'{:>1000000000}'.format(x)` before it runs (a width or precision over the cap)."""
    for n in _DIGITS.findall(spec):
        _refuse_over(int(n))


def binop(op: str, left: Any, right: Any) -> Any:
    """An intercepted binary operator (`+ * ** %`), bounded before and after (B2)."""
    if op == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_BITS:
                raise RenderTooLarge("number")
        else:
            _repeat(left, right)
            _repeat(right, left)
        return check(left * right)
    if op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 1 and abs(left) > 1:
            if right * (abs(left).bit_length() - 1) > MAX_BITS:
                raise RenderTooLarge("number")
        return check(left**right)
    if op == "%":
        if isinstance(left, str):
            _printf(left, right)
        return check(left % right)
    if op == "+":
        return check(left + right)
    raise ValueError(f"operator {op!r} is not bounded here")


# The filters (and lipsum) that make a large result from small arguments, each with
# a check of its arguments before it runs. Positions are the filter's own
# parameters after the value (Jinja's context/environment argument excluded).
def _arg(args: tuple, kwargs: Mapping[str, Any], i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _lines(s: Any) -> int:
    return str(s).count("\n") + 1


def _pre_center(args: tuple, kwargs: dict) -> None:
    _refuse_over(_arg(args, kwargs, 1, "width", 80))


def _pre_indent(args: tuple, kwargs: dict) -> None:
    width = _arg(args, kwargs, 1, "width", 4)
    per_line = len(width) if isinstance(width, str) else width
    if isinstance(per_line, int) and args:
        _refuse_over(len(str(args[0])) + _lines(args[0]) * per_line)


def _pre_wordwrap(args: tuple, kwargs: dict) -> None:
    wrap = _arg(args, kwargs, 3, "wrapstring")
    width = _arg(args, kwargs, 1, "width", 79)
    if isinstance(wrap, str) and isinstance(width, int) and args:
        text = str(args[0])
        _refuse_over(len(text) + (len(text) // max(width, 1) + _lines(text)) * len(wrap))


def _pre_replace(args: tuple, kwargs: dict) -> None:
    if len(args) < 3:
        return
    s, old, new = (str(a) for a in args[:3])
    count = _arg(args, kwargs, 3, "count")
    n = len(s) + 1 if not old else s.count(old)
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    _refuse_over(len(s) + n * (len(new) - len(old)))


def _pre_format(args: tuple, kwargs: dict) -> None:
    if args and isinstance(args[0], str):
        _printf(args[0], tuple(args[1:]) or tuple(kwargs.values()))


def _join_size(items: list, sep: Any) -> None:
    limit = _limits.max_chars
    total = len(str(sep)) * max(len(items) - 1, 0)
    for item in items:
        total += size(item, limit)
        if total > limit:
            raise RenderTooLarge()


def _pre_join(args: tuple, kwargs: dict) -> tuple:
    if not args:
        return args
    items = list(args[0]) if not isinstance(args[0], str) else args[0]
    _join_size(list(items), _arg(args, kwargs, 1, "d", ""))
    return (items, *args[1:])


def _pre_batch(args: tuple, kwargs: dict) -> None:
    count = _arg(args, kwargs, 1, "linecount", 1)
    fill = _arg(args, kwargs, 2, "fill_with")
    if isinstance(count, int):
        _refuse_over(count * max(size(fill, _limits.max_chars), 1))


def _pre_slice(args: tuple, kwargs: dict) -> None:
    count = _arg(args, kwargs, 1, "slices", 1)
    fill = _arg(args, kwargs, 2, "fill_with")
    if isinstance(count, int):
        _refuse_over(count * max(size(fill, _limits.max_chars), 1))


def _pre_tojson(args: tuple, kwargs: dict) -> None:
    indent = _arg(args, kwargs, 1, "indent")
    _refuse_over(len(indent) if isinstance(indent, str) else indent, 100)


def _pre_urlize(args: tuple, kwargs: dict) -> None:
    extra = sum(len(str(_arg(args, kwargs, i, n) or "")) for i, n in ((3, "target"), (4, "rel")))
    _refuse_over(extra, 1000)


_FILTER_CHECKS: dict[str, Callable[[tuple, dict], tuple | None]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "replace": _pre_replace,
    "format": _pre_format,
    "join": _pre_join,
    "batch": _pre_batch,
    "slice": _pre_slice,
    "tojson": _pre_tojson,
    "urlize": _pre_urlize,
}


def _bounded_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    pre = _FILTER_CHECKS.get(name)
    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)  # keeps Jinja's pass_context / pass_eval_context marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if pre is not None:
            changed = pre(args[skip:], kwargs)
            if changed is not None:
                args = (*args[:skip], *changed)
        return check(f(*args, **kwargs))

    return bounded


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every filter with its result checked, and the amplifying ones checked before (B2)."""
    return {name: _bounded_filter(name, f) for name, f in filters.items()}


def bounded_lipsum(lipsum: Callable[..., str]) -> Callable[..., str]:
    """lipsum(n, html, min, max) refused when it would make more than the cap."""

    @functools.wraps(lipsum)
    def bounded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
        if isinstance(n, int) and isinstance(max, int):
            _refuse_over(n * max * 12)
        return check(lipsum(n, html, min, max))

    return bounded


# str (and bytes) methods that make a large result from small arguments.
def _method_width(s: Any, args: tuple, kwargs: dict) -> tuple:
    _refuse_over(_arg(args, kwargs, 0, "width", 0))
    return args


def _method_expandtabs(s: Any, args: tuple, kwargs: dict) -> tuple:
    tabsize = _arg(args, kwargs, 0, "tabsize", 8)
    if isinstance(tabsize, int):
        _refuse_over(len(s) + s.count("\t" if isinstance(s, str) else b"\t") * tabsize)
    return args


def _method_replace(s: Any, args: tuple, kwargs: dict) -> tuple:
    if len(args) >= 2 and all(isinstance(a, str | bytes) for a in args[:2]):
        old, new = args[0], args[1]
        count = _arg(args, kwargs, 2, "count", -1)
        n = len(s) + 1 if not old else s.count(old)
        if isinstance(count, int) and count >= 0:
            n = min(n, count)
        _refuse_over(len(s) + n * (len(new) - len(old)))
    return args


def _method_join(s: Any, args: tuple, kwargs: dict) -> tuple:
    if args:
        items = list(args[0])
        _join_size(items, s)
        return (items, *args[1:])
    return args


def _method_translate(s: Any, args: tuple, kwargs: dict) -> tuple:
    table = args[0] if args else None
    if isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        _refuse_over(len(s) * longest)
    return args


_METHOD_CHECKS: dict[str, Callable[[Any, tuple, dict], tuple]] = {
    "center": _method_width,
    "ljust": _method_width,
    "rjust": _method_width,
    "zfill": _method_width,
    "expandtabs": _method_expandtabs,
    "replace": _method_replace,
    "join": _method_join,
    "translate": _method_translate,
}


def bounded_method(value: Any) -> Callable[..., Any] | None:
    """A str / bytes method that can amplify (str.center ...), checked; None for any other value."""
    name = getattr(value, "__name__", None)
    pre = _METHOD_CHECKS.get(name) if isinstance(name, str) else None
    if pre is None or not isinstance(getattr(value, "__self__", None), str | bytes):
        return None
    owner = value.__self__

    @functools.wraps(value)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return check(value(*pre(owner, args, kwargs), **kwargs))

    return bounded
