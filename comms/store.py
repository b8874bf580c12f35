"""The DuckDB store: one file, one connection per process, a cursor per thread, ONE writer.

DuckDB allows one writing process per file. Inside that process the connection
object must not be shared across threads, so each thread gets its own cursor
(`connection.cursor()`).

Invariant W1 (enforced in `Store.transaction`): every write of this process runs
inside `Store.transaction`, which holds the process-wide write lock of the file
from BEGIN to COMMIT/ROLLBACK. Write transactions therefore never interleave,
and no correctness depends on DuckDB detecting a write-write conflict between
cursors: DuckDB 2.0.1 raises none for `UPDATE ... RETURNING` on an indexed table
and silently keeps the last writer's row, which once sent messages twice.
Reads take no lock: they run on the thread's cursor in autocommit mode and see
committed data only. A transaction opened while this thread already holds one
joins it (one BEGIN, one COMMIT), so helpers that write can be composed.

Invariant W2 (`Store.appending`): a transaction that only adds rows (INSERT,
and nextval for their ids) runs without the write lock and takes it only for
COMMIT. Its rows are invisible to every other transaction until then, and
nothing else can touch them, so there is nothing to conflict with ("appends
will never conflict, even on the same table": DuckDB's concurrency docs). The
bulk generator stores a batch this way while it is still rendering
(comms.messages.generate, G2). Its cursor refuses anything but an INSERT.

The file is attached with row groups of ROW_GROUP_SIZE rows (DuckDB's default
is 122,880): a big append then writes its data, compressed, while the
transaction runs (DuckDB's optimistic writes flush each full row group), and
its COMMIT only links it in. With the default a 100,000-message batch fits in
one row group, all of it compressed and written at COMMIT, 0.44 s under the
write lock (bench_generate).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from comms.errors import DatabaseInUse, DatabaseUnusable
from comms.i18n import N_, _

if TYPE_CHECKING:  # pandas costs ~0.4 s to import: only the pages need it
    import pandas as pd

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "comms.duckdb"
T = TypeVar("T")

# Each entry moves the schema one version up. Never edit a released entry:
# append a new one, so existing database files migrate forward.
MIGRATIONS: list[str] = [
    # 1: the whole data model of DESIGN.md
    """
    CREATE SEQUENCE IF NOT EXISTS client_id_seq START 1;
    CREATE TABLE IF NOT EXISTS clients (
        id            BIGINT DEFAULT nextval('client_id_seq') NOT NULL,
        name          VARCHAR,
        first_name    VARCHAR,
        last_name     VARCHAR,
        email         VARCHAR,          -- normalised when valid, as given when not
        email_valid   BOOLEAN NOT NULL DEFAULT false,
        email_error   VARCHAR,
        phone         VARCHAR,          -- E.164 when parsed, as given when not
        phone_kind    VARCHAR,          -- mobile, fixed_line, fixed_line_or_mobile, ..., invalid
        company       VARCHAR,
        city          VARCHAR,
        lists         VARCHAR[] NOT NULL DEFAULT [],
        tags          VARCHAR[] NOT NULL DEFAULT [],
        consent_email BOOLEAN NOT NULL DEFAULT true,
        consent_sms   BOOLEAN NOT NULL DEFAULT true,
        attributes    JSON NOT NULL DEFAULT '{}',
        created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
    );

    CREATE SEQUENCE IF NOT EXISTS template_id_seq START 1;
    CREATE TABLE IF NOT EXISTS templates (
        id          BIGINT DEFAULT nextval('template_id_seq') NOT NULL,
        name        VARCHAR NOT NULL,
        channel     VARCHAR NOT NULL,   -- email | sms
        subject     VARCHAR,
        body        VARCHAR NOT NULL,
        body_format VARCHAR NOT NULL DEFAULT 'markdown',  -- markdown | html | text
        created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
    );

    CREATE SEQUENCE IF NOT EXISTS attachment_id_seq START 1;
    CREATE TABLE IF NOT EXISTS attachments (
        id           BIGINT DEFAULT nextval('attachment_id_seq') NOT NULL,
        sha256       VARCHAR NOT NULL,  -- content hash: one row per distinct content
        filename     VARCHAR NOT NULL,
        content_type VARCHAR NOT NULL,
        size         BIGINT NOT NULL,
        data         BLOB NOT NULL,
        created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE IF NOT EXISTS template_attachments (
        template_id   BIGINT NOT NULL,
        attachment_id BIGINT NOT NULL
    );

    CREATE SEQUENCE IF NOT EXISTS batch_id_seq START 1;
    CREATE TABLE IF NOT EXISTS batches (
        id          BIGINT DEFAULT nextval('batch_id_seq') NOT NULL,
        template_id BIGINT,
        channel     VARCHAR NOT NULL,
        source      VARCHAR NOT NULL DEFAULT 'bulk',
        name        VARCHAR,
        subject     VARCHAR,
        body        VARCHAR,
        body_format VARCHAR,
        created_by  VARCHAR,
        created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
        total       INTEGER NOT NULL DEFAULT 0,
        valid       INTEGER NOT NULL DEFAULT 0,
        invalid     INTEGER NOT NULL DEFAULT 0,
        paused      BOOLEAN NOT NULL DEFAULT false
    );
    CREATE TABLE IF NOT EXISTS batch_attachments (
        batch_id      BIGINT NOT NULL,
        attachment_id BIGINT NOT NULL
    );

    CREATE SEQUENCE IF NOT EXISTS message_id_seq START 1;
    CREATE TABLE IF NOT EXISTS messages (
        id             BIGINT DEFAULT nextval('message_id_seq') NOT NULL,
        client_id      BIGINT,
        channel        VARCHAR NOT NULL,   -- email | sms
        source         VARCHAR NOT NULL,   -- bulk | client detail | cli | test
        batch_id       BIGINT,
        to_address     VARCHAR,
        to_name        VARCHAR,
        subject        VARCHAR,
        body_text      VARCHAR,
        body_html      VARCHAR,
        status         VARCHAR NOT NULL,   -- see comms.outbox.STATUSES
        reason         VARCHAR,            -- why invalid (generation) or failed (sending)
        error          VARCHAR,            -- the last server text
        attempts       INTEGER NOT NULL DEFAULT 0,
        segments       INTEGER,
        encoding       VARCHAR,
        excluded       BOOLEAN NOT NULL DEFAULT false,
        scheduled_at   TIMESTAMP,
        next_attempt_at TIMESTAMP,
        claimed_by     VARCHAR,
        sent_at        TIMESTAMP,
        provider_id    VARCHAR,            -- Message-ID or Twilio SID
        created_by     VARCHAR,
        created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE IF NOT EXISTS message_attachments (
        message_id    BIGINT NOT NULL,
        attachment_id BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS message_attempts (
        message_id BIGINT NOT NULL,
        attempt    INTEGER NOT NULL,
        ts         TIMESTAMP NOT NULL DEFAULT current_timestamp,
        outcome    VARCHAR NOT NULL,       -- sent | transient | permanent | interrupted
        detail     VARCHAR
    );

    CREATE SEQUENCE IF NOT EXISTS action_id_seq START 1;
    CREATE TABLE IF NOT EXISTS action_log (
        id         BIGINT DEFAULT nextval('action_id_seq') NOT NULL,
        ts         TIMESTAMP NOT NULL DEFAULT current_timestamp,
        "user"     VARCHAR NOT NULL,
        action     VARCHAR NOT NULL,
        batch_id   BIGINT,
        message_id BIGINT,
        client_id  BIGINT,
        outcome    VARCHAR NOT NULL DEFAULT 'ok',
        detail     JSON
    );

    CREATE TABLE IF NOT EXISTS suppressions (
        address    VARCHAR NOT NULL,       -- normalised e-mail or E.164 phone
        channel    VARCHAR NOT NULL,       -- email | sms
        reason     VARCHAR,
        created_by VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );

    CREATE TABLE IF NOT EXISTS settings (
        key   VARCHAR NOT NULL,
        value VARCHAR
    );
    """,
    # 2: one client's messages are found through an index (client detail, history, the
    # Communication list narrowed to a client): bench/bench_history.py measured 10M
    # messages at ~130-500 ms per client without it and ~10-30 ms with it.
    """
    CREATE INDEX IF NOT EXISTS messages_client_idx ON messages (client_id);
    """,
    # 3: exclusion is a status of its own (comms.outbox.states), not a flag beside `draft`
    """
    UPDATE messages SET status = 'excluded', excluded = false
    WHERE excluded AND status IN ('draft', 'invalid');
    """,
    # 4: a send run's per-message outcomes live in message_attempts, named by the run's id;
    # the action log keeps one line per run (not one per message: 26k rows for 26k sends)
    """
    ALTER TABLE message_attempts ADD COLUMN IF NOT EXISTS run_id VARCHAR;
    """,
    # 5: what came back after sending (comms.feedback): delivery reports, bounces,
    # complaints and unsubscribes per message; SMS replies; when to poll Twilio next
    """
    CREATE SEQUENCE IF NOT EXISTS feedback_event_id_seq START 1;
    CREATE TABLE IF NOT EXISTS feedback_events (
        id          BIGINT DEFAULT nextval('feedback_event_id_seq') NOT NULL,
        ts          TIMESTAMP NOT NULL DEFAULT current_timestamp,
        kind        VARCHAR NOT NULL,  -- delivered | undelivered | bounced | soft bounce | ...
        message_id  BIGINT,
        client_id   BIGINT,
        batch_id    BIGINT,
        channel     VARCHAR,
        address     VARCHAR,
        code        VARCHAR,           -- 5.1.1, Twilio's 30003, ...
        detail      VARCHAR,           -- the diagnostic or the code's meaning
        source      VARCHAR NOT NULL,  -- twilio callback | twilio poll | imap | file | web | mailto
        dedupe_key  VARCHAR            -- one report seen twice is applied once
    );
    CREATE INDEX IF NOT EXISTS feedback_events_message_idx ON feedback_events (message_id);
    CREATE SEQUENCE IF NOT EXISTS inbound_id_seq START 1;
    CREATE TABLE IF NOT EXISTS inbound_messages (
        id           BIGINT DEFAULT nextval('inbound_id_seq') NOT NULL,
        received_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
        channel      VARCHAR NOT NULL,
        client_id    BIGINT,
        from_address VARCHAR,
        to_address   VARCHAR,
        body         VARCHAR,
        provider_id  VARCHAR,          -- Twilio's MessageSid
        keyword      VARCHAR           -- stop | start | NULL
    );
    CREATE TABLE IF NOT EXISTS sms_polls (
        message_id BIGINT NOT NULL,
        polls      INTEGER NOT NULL DEFAULT 0,
        next_at    TIMESTAMP
    );
    """,
]

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<proc>.+?) \(PID (?P<pid>\d+)\)")


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """--db, else $COMMS_DB, else data/comms.duckdb."""
    chosen = path or os.environ.get("COMMS_DB") or DEFAULT_DB
    try:
        return Path(chosen).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unknown ~user
        raise DatabaseUnusable(
            _("The database path {path} cannot be used: {error}.").format(path=chosen, error=exc)
        ) from None


# Why DuckDB could not open a file, as its IOException words it, and what a person reads.
_FOLDER = N_("it is a folder, not a file")
_OPEN_FAILURES = (
    ("not a valid duckdb database", N_("it is not a DuckDB database file")),
    ("is a directory", _FOLDER),
    ("permission denied", N_("permission denied")),
    ("read-only file system", N_("the file system is read-only")),
    ("no such file or directory", N_("no file can be created in its folder")),
)


def _unusable(path: Path, why: str) -> DatabaseUnusable:
    """`why` already in the viewer's language."""
    return DatabaseUnusable(
        _(
            "The database {path} cannot be opened: {why}. Give another file with --db PATH "
            "or COMMS_DB (the default is data/comms.duckdb)."
        ).format(path=path, why=why)
    )


CATALOG = "comms"  # the attached file's name inside the connection
ROW_GROUP_SIZE = 16_384  # rows (a multiple of DuckDB's vector of 2,048); see W2 above


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the file; DatabaseInUse / DatabaseUnusable in one sentence."""
    if path.is_dir():
        raise _unusable(path, _(_FOLDER))
    if path.exists() and not path.is_file():
        raise _unusable(path, _("it is a device or a pipe, not a file"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = _("its folder cannot be created ({error})").format(error=exc.strerror.lower())
        raise _unusable(path, why) from None
    con = duckdb.connect()
    try:
        literal = str(path).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute(f"USE {CATALOG}")
        return con
    except duckdb.Error as exc:
        con.close()
        text = str(exc).lower()
        if "lock" in text:
            raise DatabaseInUse(_in_use_message(path, exc)) from None
        say = next((say for key, say in _OPEN_FAILURES if key in text), None)
        # else DuckDB's own words, without its "IO Error:" prefix
        why = _(say) if say else str(exc).split(": ", 1)[-1].rstrip(".!")
        raise _unusable(path, why) from None


def _in_use_message(path: Path, exc: Exception) -> str:
    match = _LOCK_RE.search(str(exc))
    if match:
        text = _(
            "The database {path} is in use by {process} (PID {pid}); DuckDB allows one "
            "writing process. Stop the app (or the other command) or use the app itself, "
            "then try again."
        )
        proc, pid = os.path.basename(match.group("proc")), match.group("pid")
    else:
        text = _(
            "The database {path} is in use; DuckDB allows one writing process. Stop the app "
            "(or the other command) or use the app itself, then try again."
        )
        proc = pid = None
    return text.format(path=path, process=proc, pid=pid)


def dicts(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict]:
    """A query's rows as dicts, on a given cursor (inside a transaction)."""
    res = cur.execute(sql, params or [])
    names = [d[0] for d in res.description]
    return [dict(zip(names, row, strict=True)) for row in res.fetchall()]


_WRITE_LOCKS: dict[Path, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    """The one write lock of a database file in this process (W1), shared by its Stores."""
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path, threading.RLock())


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass  # DuckDB already aborted it


class AppendOnly:
    """A cursor for W2: INSERT statements (and nextval) only, anything else refused."""

    _ALLOWED = ("INSERT", "SELECT NEXTVAL(")

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        if not sql.lstrip().upper().startswith(self._ALLOWED):
            raise ValueError(f"an appending transaction only adds rows, not: {sql[:60]!r}")
        return self._cur.execute(sql, params or [])

    def register(self, name: str, table: Any) -> None:
        self._cur.register(name, table)

    def unregister(self, name: str) -> None:
        self._cur.unregister(name)


class Store:
    """One DuckDB database file, shared by every thread of this process."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = resolve_db_path(path)
        self._con = _connect(self.path)
        self._local = threading.local()
        self._write_lock = _write_lock(self.path)
        self._closed = False
        self.migrate()

    # -- connections -------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.new_cursor()
        return cur

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own, for one thread (close it): a long read beside this thread's."""
        cur = self._con.cursor()
        cur.execute(f"USE {CATALOG}")  # a cursor starts in the connection's in-memory catalog
        return cur

    def in_transaction(self) -> bool:
        """Whether this thread is inside a write transaction (holding the write lock)."""
        return bool(getattr(self._local, "depth", 0))

    @contextmanager
    def appending(self) -> Iterator[AppendOnly]:
        """W2: BEGIN ... COMMIT of a transaction that only INSERTs, the write lock only at COMMIT.

        On a cursor of its own (use it from one thread); ROLLBACK on error.
        """
        cur = self.new_cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield AppendOnly(cur)
            except BaseException:
                _rollback(cur)
                raise
            with self._write_lock:
                cur.execute("COMMIT")
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT on this thread's cursor under the write lock (W1); ROLLBACK on error.

        Inside a transaction this thread already holds, it joins that one.
        """
        with self._write_lock:
            if getattr(self._local, "depth", 0):
                self._local.depth += 1
                try:
                    yield self.cursor()
                finally:
                    self._local.depth -= 1
                return
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            self._local.depth = 1
            try:
                yield cur
            except BaseException:
                _rollback(cur)
                raise
            else:
                cur.execute("COMMIT")
            finally:
                self._local.depth = 0

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run fn(cursor) in one transaction of the one writer (W1)."""
        with self.transaction() as cur:
            return fn(cur)

    # -- reads ---------------------------------------------------------------
    def df(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> pd.DataFrame:
        """A query's result as a pandas DataFrame."""
        return self.cursor().execute(sql, params or []).df()

    def rows(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> list[dict]:
        """A query's result as a list of dicts."""
        return dicts(self.cursor(), sql, params)

    def scalar(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.cursor().execute(sql, params or []).fetchone()
        return row[0] if row else None

    # -- schema --------------------------------------------------------------
    def schema_version(self) -> int:
        cur = self.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> None:
        """Apply every migration newer than the file's schema version, each in a transaction."""
        with self._write_lock:
            current = self.schema_version()
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                with self.transaction() as cur:
                    cur.execute(sql)
                    cur.execute("INSERT INTO schema_version VALUES (?)", [version])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._con.close()
            with _STORES_LOCK:
                for key, store in list(_STORES.items()):
                    if store is self:
                        del _STORES[key]


_STORES: dict[Path, Store] = {}
_STORES_LOCK = threading.Lock()


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The process-wide Store for a database file (one connection per process)."""
    resolved = resolve_db_path(path)
    with _STORES_LOCK:
        store = _STORES.get(resolved)
        if store is None or store._closed:
            store = Store(resolved)
            _STORES[resolved] = store
        return store
