import subprocess
import sys
import threading

import pytest

from comms.errors import DatabaseInUse
from comms.store import MIGRATIONS, Store, open_store


def test_schema_created_and_versioned(store):
    assert store.schema_version() == len(MIGRATIONS)
    tables = {
        r["table_name"] for r in store.rows("SELECT table_name FROM information_schema.tables")
    }
    for name in (
        "clients",
        "templates",
        "attachments",
        "batches",
        "messages",
        "action_log",
        "suppressions",
    ):
        assert name in tables


def test_reopening_does_not_migrate_twice(db_path):
    first = Store(db_path)
    first.close()
    second = Store(db_path)
    assert second.scalar("SELECT count(*) FROM schema_version") == len(MIGRATIONS)
    second.close()


def test_open_store_is_one_per_process(db_path):
    a = open_store(db_path)
    assert open_store(str(db_path)) is a
    a.close()


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO clients (name) VALUES ('Half')")
            raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM clients") == 0


def test_cursor_per_thread_and_concurrent_writes(store):
    errors = []

    def work(n):
        try:
            for i in range(20):
                store.write(
                    lambda cur, name=f"t{n}-{i}": cur.execute(
                        "INSERT INTO clients (name) VALUES (?)", [name]
                    )
                )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.scalar("SELECT count(*) FROM clients") == 80
    assert store.scalar("SELECT count(DISTINCT id) FROM clients") == 80


def test_second_process_gets_clear_in_use_message(store, db_path):
    code = (
        "import sys\n"
        "from comms.store import Store\n"
        "from comms.errors import DatabaseInUse\n"
        f"try:\n    Store({str(db_path)!r})\n"
        "except DatabaseInUse as e:\n    print(e); sys.exit(2)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "is in use by" in proc.stdout
    assert "PID" in proc.stdout
    assert DatabaseInUse.__mro__[1].__name__ == "CommsError"
