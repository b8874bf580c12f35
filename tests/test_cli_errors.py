"""Everything a person can get wrong on the command line (issue 9): one line on stderr
naming the problem, a non-zero exit code, nothing written and nothing echoed that might
be a secret. Each case runs the real `comms` command in a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comms.clients import export_csv
from comms.store import open_store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2-Pa55word"
LIST = "Name;Email;Souhlas\nJan;jan@example.cz;ano\nEva;eva@example.cz;ne\n"


def comms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "comms", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def one_line(run: subprocess.CompletedProcess, code: int = 1) -> str:
    """The single stderr line of a failed run (nothing on stdout)."""
    assert run.returncode == code, (run.returncode, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def stored(db: Path) -> tuple[int, int]:
    """(clients, action-log entries) in the database file."""
    store = open_store(db)
    try:
        return store.scalar("SELECT count(*) FROM clients"), store.scalar(
            "SELECT count(*) FROM action_log"
        )
    finally:
        store.close()


@pytest.fixture
def list_csv(tmp_path: Path) -> Path:
    path = tmp_path / "jaro.csv"
    path.write_text(LIST, encoding="utf-8")
    return path


# -- unreadable inputs -------------------------------------------------------------------------------


def test_import_of_a_device_is_refused_before_reading(db_path):
    line = one_line(comms("import", "/dev/zero", "--consent", "none"))
    assert (
        line == "comms: /dev/zero is a device or socket, not a file: save the list as a file first."
    )
    assert stored(db_path) == (0, 0)


def test_import_of_a_fifo_does_not_hang(db_path, tmp_path):
    fifo = tmp_path / "clients.csv"
    os.mkfifo(fifo)
    line = one_line(comms("import", str(fifo), "--consent", "none"))
    assert (
        line == f"comms: {fifo} is a named pipe (FIFO), not a file: save the list as a file first."
    )
    assert stored(db_path) == (0, 0)


def test_db_at_a_folder(tmp_path, list_csv):
    folder = tmp_path / "data"
    folder.mkdir()
    line = one_line(comms("import", str(list_csv), "--db", str(folder)))
    assert line == (
        f"comms: The database {folder} cannot be opened: it is a folder, not a file. Give another"
        " file with --db PATH or COMMS_DB (the default is data/comms.duckdb)."
    )
    assert list(folder.iterdir()) == []


def test_db_at_a_file_that_is_not_duckdb(tmp_path, list_csv):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    line = one_line(comms("clients", "--db", str(notes)))
    assert line == (
        f"comms: The database {notes} cannot be opened: it is not a DuckDB database file. Give"
        " another file with --db PATH or COMMS_DB (the default is data/comms.duckdb)."
    )
    assert notes.read_text() == "my notes\n"


def test_db_where_no_file_can_be_created(list_csv):
    line = one_line(comms("log", "--db", "/proc/comms-test.duckdb"))
    assert line == (
        "comms: The database /proc/comms-test.duckdb cannot be opened: no file can be created"
        " in its folder. Give another file with --db PATH or COMMS_DB (the default is"
        " data/comms.duckdb)."
    )


def test_db_below_a_file(tmp_path, list_csv):
    line = one_line(comms("clients", "--db", str(list_csv / "comms.duckdb")))
    assert line.startswith(f"comms: The database {list_csv / 'comms.duckdb'} cannot be opened:")
    assert list_csv.read_text() == LIST


@pytest.mark.parametrize(
    "args, command",
    [
        (["clients", "--limit", "-1"], "clients"),
        (["log", "--limit", "-5"], "log"),
        (["history", "1", "--limit", "0"], "history"),
        (["clients", "--limit", "ten"], "clients"),
    ],
)
def test_a_negative_limit_is_one_usage_line(db_path, args, command):
    line = one_line(comms(*args), code=2)
    assert line == (
        f"comms {command}: argument --limit: must be a whole number, at least 1"
        f" (see `comms {command} --help`)"
    )
    assert not db_path.exists()


# -- bad settings: named, never echoed --------------------------------------------------------------


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {"COMMS_MAX_UPLOAD_MB": "abc"},
            "comms: COMMS_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1, e.g. 50.",
        ),
        (
            {"COMMS_MAX_UPLOAD_MB": SECRET},
            "comms: COMMS_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1, e.g. 50.",
        ),
        (
            {"COMMS_MAX_ROWS": "-3"},
            "comms: COMMS_MAX_ROWS must be a whole number of rows, at least 1, e.g. 1000000.",
        ),
        (
            {"COMMS_REGION": SECRET},
            "comms: COMMS_REGION must be a two-letter country code, e.g. CZ.",
        ),
    ],
)
def test_a_malformed_setting_is_named_and_its_value_never_repeated(
    db_path, list_csv, env, expected
):
    run = comms("import", str(list_csv), env=env)
    assert one_line(run) == expected
    assert SECRET not in run.stderr
    assert stored(db_path) == (0, 0)


def test_a_malformed_setting_in_secrets_toml_names_the_key(db_path, list_csv, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[comms]\nmax_upload_mb = "{SECRET}"\n')
    run = comms("import", str(list_csv), env={"COMMS_SECRETS": str(secrets)})
    assert one_line(run) == (
        "comms: max_upload_mb in [comms] of secrets.toml (COMMS_MAX_UPLOAD_MB) must be a whole"
        " number of megabytes, at least 1, e.g. 50."
    )
    assert SECRET not in run.stderr
    assert stored(db_path) == (0, 0)


def test_a_malformed_secrets_toml_is_one_line_without_its_text(db_path, list_csv, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[smtp]\nhost = "mail.example.com"\npassword = "{SECRET}\n')
    run = comms("import", str(list_csv), env={"COMMS_SECRETS": str(secrets)})
    assert one_line(run) == (
        f"comms: {secrets} is not valid TOML at line 3: fix it (see"
        " .streamlit/secrets.toml.example) or remove it."
    )
    assert SECRET not in run.stderr
    assert stored(db_path) == (0, 0)


# -- import options --------------------------------------------------------------------------------


def test_a_file_without_consent_needs_the_option(db_path, tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("Name;Email\nJan;jan@example.cz\n")
    assert one_line(comms("import", str(plain))) == (
        "comms: The file has no consent column for e-mail and SMS: state the consent these"
        " clients gave with --consent email,sms|email|sms|none (or add a column such as"
        " 'Souhlas'); nothing was imported."
    )
    assert stored(db_path) == (0, 0)
    assert one_line(comms("import", str(plain), "--consent", "fax")).startswith(
        "comms: The stated consent must be one of email,sms, email, sms, none"
    )
    run = comms("import", str(plain), "--consent", "sms", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["consent"] == {"email": "stated: no", "sms": "stated: yes"}
    store = open_store(db_path)
    try:
        entry = store.rows("SELECT \"user\", detail FROM action_log WHERE action = 'import'")[0]
    finally:
        store.close()
    detail = json.loads(entry["detail"])
    assert detail["consent_stated"] == "sms" and detail["consent_stated_by"] == entry["user"]


def test_an_unknown_sheet_is_one_line(db_path, tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Klienti"
    book.active.append(["Email"])
    book.active.append(["jan@example.cz"])
    path = tmp_path / "x.xlsx"
    book.save(path)
    line = one_line(comms("import", str(path), "--sheet", "Data", "--consent", "none"))
    assert line == "comms: The workbook has no sheet 'Data'; its sheets are 'Klienti'."
    run = comms("import", str(path), "--sheet", "Klienti", "--consent", "none")
    assert run.returncode == 0 and "sheet 'Klienti'" in run.stdout


# -- comms clients --csv ----------------------------------------------------------------------------


def test_clients_csv_writes_the_pages_file(db_path, list_csv, tmp_path):
    assert comms("import", str(list_csv), "--list", "Jaro").returncode == 0
    out = tmp_path / "out.csv"
    run = comms("clients", "--search", "jan", "--csv", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"1 clients written to {out}.\n"
    from comms.clients import ClientFilter

    store = open_store(db_path)
    try:
        assert out.read_bytes() == export_csv(store, ClientFilter(search="jan"))
    finally:
        store.close()


def test_clients_csv_refusals(db_path, list_csv, tmp_path):
    assert comms("import", str(list_csv)).returncode == 0
    assert one_line(comms("clients", "--csv", str(tmp_path))) == (
        f"comms: --csv {tmp_path} is a folder; give a file name such as {tmp_path / 'clients.csv'}."
    )
    assert one_line(comms("clients", "--csv", str(tmp_path / "a.csv"), "--limit", "3")) == (
        "comms: --limit does not apply to --csv: the file holds every matching client."
    )
    assert one_line(comms("clients", "--csv", "/proc/x/clients.csv")).startswith(
        "comms: --csv /proc/x/clients.csv cannot be written:"
    )
    assert not (tmp_path / "a.csv").exists()
