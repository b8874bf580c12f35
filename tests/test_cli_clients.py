"""`comms init`, `comms import`, `comms clients` as a person runs them (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def comms(*args: str, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "comms", *args, "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def db(db_path: Path) -> Path:
    return db_path


def test_init_loads_the_sample_once(db):
    first = comms("init", "--json", db=db)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["sample_loaded"] is True and out["clients"] > 150
    assert out["starter_templates"] == 5
    again = json.loads(comms("init", "--json", db=db).stdout)
    assert again == {**out, "sample_loaded": False, "starter_templates": 0}
    listed = json.loads(comms("clients", "--list", "Sample", "--json", db=db).stdout)
    assert len(listed) == out["clients"]
    names = {t["name"] for t in json.loads(comms("templates", "list", "--json", db=db).stdout)}
    assert {"Jarní nabídka (e-mail)", "Spring offer (e-mail, English)"} <= names


def test_init_speaks_czech(db):
    first = comms("init", "--lang", "cs", db=db)
    assert first.returncode == 0, first.stderr
    assert "ukázkových klientů do seznamu 'Sample'" in first.stdout
    assert "Přidáno 5 ukázkových šablon" in first.stdout
    again = comms("init", "--lang", "cs", db=db)
    assert "připraveno" in again.stdout and "šablon" not in again.stdout


def test_import_json_report_and_clients_json(db, tmp_path):
    f = tmp_path / "jaro.csv"
    f.write_bytes(
        "Jméno;E-mail;Mobil;Segment\nJan Novák;jan@example.cz;0664 123 4567;A\n"
        "Eva;eva@;;B\n;;;\n".encode("cp1250")
    )
    run = comms(
        "import", str(f), "--list", "Jaro", "--region", "AT", "--consent", "email", "--json", db=db
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["imported"], report["updated"], report["skipped"]) == (2, 0, 1)
    assert report["problems"][0]["row"] == 3
    assert report["problems"][0]["reason"].startswith("invalid e-mail")
    assert report["problems"][1] == {"row": 4, "reason": "empty row", "skipped": True}
    assert report["consent"] == {"email": "stated: yes", "sms": "stated: no"}
    run = comms("clients", "--search", "novak", "--json", db=db)
    clients = json.loads(run.stdout)
    assert len(clients) == 1
    jan = clients[0]
    assert jan["name"] == "Jan Novák" and jan["email"] == "jan@example.cz"
    assert jan["phone"] == "+436641234567" and jan["list"] == "Jaro"
    assert jan["lists"] == ["Jaro"] and jan["segment"] == "A" and isinstance(jan["id"], int)
    assert (jan["consent_email"], jan["consent_sms"]) == (True, False)


def test_import_text_output_names_rows(db, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("Name,Email\nJan,jan@example.cz\nEva,bad@\n", encoding="utf-8")
    run = comms("import", str(f), "--consent", "email,sms", db=db)
    assert run.returncode == 0
    assert run.stdout.splitlines()[0] == (
        "List 'x': 2 imported, 0 updated, 0 skipped, 1 problems (csv, utf-8, header on row 1)."
    )
    assert "row 3: invalid e-mail" in run.stdout
    listed = comms("clients", db=db)
    assert "Jan" in listed.stdout and listed.stdout.strip().endswith("2 clients")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "The file is empty."),
        (b"\x00\x01\x02binary", "binary"),
        ("Poznámka\nahoj\n".encode(), "No usable column"),
    ],
)
def test_whole_file_failure_exits_non_zero_with_one_line(db, tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    run = comms("import", str(f), "--json", db=db)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("comms: ")
    assert json.loads(comms("clients", "--json", db=db).stdout) == []


def test_missing_file(db, tmp_path):
    run = comms("import", str(tmp_path / "nope.csv"), db=db)
    assert run.returncode == 1 and "No such file" in run.stderr
