"""The directory's filter choices (lists, tags, cities, attribute keys), kept current by writes.

Collecting them from the clients table reads every client (about 50-100 ms at
a million clients), more than the directory's whole first render may take. So
each Store keeps, in this process, how many clients carry each value, and every
write to clients goes through `write_clients`: inside the write's transaction
the writer counts the values of the rows it touches before and after its
change (`Change.remove` / `Change.add`, one small query each), and once the
transaction committed the difference is added to the kept counts.

O1  The kept counts are those of the database state named by their stamp
    (queries.data_version). `filter_options` uses them only while that stamp is
    current; otherwise it recounts, and keeps the recount only if no write
    committed meanwhile (same stamp, no write_clients in flight or finished).
O2  A write adds its difference only onto the state it started from (its
    stamp before the change); otherwise the kept counts are dropped. A write
    that bypasses write_clients (raw SQL in a test, another tool) or rolls back
    therefore costs one recount, never a wrong choice.

Every write of a process is serialised by the store (W1), so two differences
never interleave; the lock here only orders them with readers.

The choices are kept language-neutral (plain code-point order); the page sorts
them the viewer's way when it shows them (`sorted_choices`: in Czech Č after C,
"Ch" after H, Ř after R, Š after S, Ž after Z).
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb

from comms.clients.queries import DATA_VERSION_SQL
from comms.i18n import sorted_texts
from comms.store import Store

T = TypeVar("T")
KINDS = ("lists", "tags", "cities", "attributes")

# Clients per option value over the rows `{where}` selects (alias c), one query.
_COUNT_SQL = """
SELECT 'lists' AS kind, v, count(*) AS n
FROM (SELECT unnest(c.lists) AS v FROM clients c WHERE {where}) GROUP BY v
UNION ALL
SELECT 'tags', v, count(*) FROM (SELECT unnest(c.tags) AS v FROM clients c WHERE {where}) GROUP BY v
UNION ALL
SELECT 'cities', c.city, count(*) FROM clients c WHERE {where} GROUP BY c.city
UNION ALL
SELECT 'attributes', v, count(*)
FROM (SELECT unnest(json_keys(c.attributes)) AS v FROM clients c WHERE {where}) GROUP BY v
"""

Counts = dict[str, Counter]


def _count(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> Counts:
    counts: Counts = {kind: Counter() for kind in KINDS}
    rows = cur.execute(_COUNT_SQL.format(where=where), params * 4).fetchall()
    for kind, value, n in rows:
        if value not in (None, ""):
            counts[kind][value] += n
    return counts


def _choices(counts: Counts) -> dict[str, list[str]]:
    return {kind: sorted(v for v, n in counts[kind].items() if n > 0) for kind in KINDS}


def sorted_choices(choices: dict[str, list[str]], lang: str | None = None) -> dict[str, list[str]]:
    """Filter choices as a person reads them: sorted the way `lang` (by default the
    viewer's language) sorts text, through comms.i18n.sorted_texts."""
    return {kind: sorted_texts(values, lang) for kind, values in choices.items()}


def _stamp(cur: duckdb.DuckDBPyConnection) -> str:
    return str(cur.execute(DATA_VERSION_SQL).fetchall()[0][0])


@dataclass
class _Kept:
    """One Store's counts, the stamp they belong to, and the writes readers must not miss."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stamp: str | None = None
    counts: Counts | None = None
    in_flight: int = 0  # write_clients between their change and adding its difference
    finished: int = 0  # write_clients that ended (committed or not)


_KEPT: weakref.WeakKeyDictionary[Store, _Kept] = weakref.WeakKeyDictionary()
_KEPT_GUARD = threading.Lock()


def _kept(store: Store) -> _Kept:
    with _KEPT_GUARD:
        kept = _KEPT.get(store)
        if kept is None:
            kept = _KEPT[store] = _Kept()
        return kept


def filter_options(store: Store) -> dict[str, list[str]]:
    """Distinct lists, tags, cities and attribute keys for the filter widgets, in
    code-point order (language-neutral; sorted_choices orders them for a viewer)."""
    kept = _kept(store)
    cur = store.cursor()
    stamp = _stamp(cur)
    with kept.lock:
        if kept.counts is not None and kept.stamp == stamp:
            return _choices(kept.counts)
        finished = kept.finished
    counts = _count(cur, "true", [])
    again = _stamp(cur)
    with kept.lock:  # O1
        if again == stamp and kept.finished == finished and not kept.in_flight:
            kept.stamp, kept.counts = stamp, counts
    return _choices(counts)


class Change:
    """What one write does to the option counts; the writer reports the rows it touches."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur
        self.stamp_before = _stamp(cur)
        self.delta: Counts = {kind: Counter() for kind in KINDS}

    def remove(self, where: str, params: list[Any] | None = None) -> None:
        """Call before changing the rows `where` selects (alias c): their values go."""
        for kind, values in _count(self._cur, where, params or []).items():
            self.delta[kind].subtract(values)

    def add(self, where: str, params: list[Any] | None = None) -> None:
        """Call after changing (or inserting) the rows `where` selects: their values come."""
        for kind, values in _count(self._cur, where, params or []).items():
            self.delta[kind].update(values)


def write_clients(store: Store, fn: Callable[[duckdb.DuckDBPyConnection, Change], T]) -> T:
    """store.write for a write to clients: fn(cursor, change) reports what it touches."""
    kept = _kept(store)
    done: dict[str, Any] = {}

    def run(cur: duckdb.DuckDBPyConnection) -> T:
        change = Change(cur)
        out = fn(cur, change)
        stamp_after = _stamp(cur)
        with kept.lock:
            kept.in_flight += 1
        done.update(change=change, stamp_after=stamp_after)
        return out

    try:
        out = store.write(run)
    except BaseException:
        if done:  # the commit failed: nothing changed, but a reader's recount may be mixed
            with kept.lock:
                kept.in_flight -= 1
                kept.finished += 1
        raise
    change: Change = done["change"]
    with kept.lock:
        kept.in_flight -= 1
        kept.finished += 1
        if kept.counts is not None and kept.stamp == change.stamp_before:  # O2
            for kind in KINDS:  # Counter addition keeps positive counts only
                kept.counts[kind] = kept.counts[kind] + change.delta[kind]
            kept.stamp = done["stamp_after"]
        else:
            kept.counts = None
    return out
