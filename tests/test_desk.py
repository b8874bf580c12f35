"""`from comms import Desk`: the notebook API over a real DuckDB file and a real SMTP sink."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from servers import SmtpSink

from comms import Desk
from comms.cli import main as cli_main
from comms.desk import DeskClosed, InvalidArgument
from comms.errors import CommsError, InvalidTransition, NotFound

ROOT = Path(__file__).resolve().parent.parent

CLIENTS_CSV = (
    "Jméno;Příjmení;E-mail;Telefon;Město\n"
    "Jana;Nováková;jana@example.com;+420 601 000 001;Praha\n"
    "Petr;Svoboda;petr@example.com;;Brno\n"
    "Eva;Malá;eva@example.com;603 000 003;Praha\n"
    "Bez;Adresy;;;Plzeň\n"  # no e-mail, no phone: a problem row, skipped
    "Karel;Novotný;karel(at)example.com;;Ostrava\n"  # kept, but no valid e-mail
)
SENDABLE = {"jana@example.com", "petr@example.com", "eva@example.com"}


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1, and the settings that point the smtp backend at it."""
    with SmtpSink() as s:
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        yield s


@pytest.fixture
def desk(db_path: Path) -> Iterator[Desk]:
    d = Desk()  # $COMMS_DB, set by db_path
    yield d
    d.close()


@pytest.fixture
def clients_csv(tmp_path: Path) -> Path:
    path = tmp_path / "clients.csv"
    path.write_text(CLIENTS_CSV, encoding="utf-8")
    return path


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    """Run `comms ... --json` in this process and parse what it printed."""
    capsys.readouterr()
    assert cli_main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def as_json(value: object) -> object:
    """What the CLI's print_json would make of a value (datetimes become strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def test_import_template_generate_send_and_follow(
    desk: Desk, sink: SmtpSink, clients_csv: Path, tmp_path: Path
) -> None:
    report = desk.import_clients(clients_csv, list_name="Spring fair", consent=("email", "sms"))
    assert (report["imported"], report["skipped"], report["list_name"]) == (4, 1, "Spring fair")
    assert {p["row"] for p in report["problems"]} >= {5}

    clients = desk.clients(list_name="Spring fair")
    assert [c["email"] for c in clients][:3] == [
        "jana@example.com",
        "petr@example.com",
        "eva@example.com",
    ]
    assert [c["name"] for c in desk.clients(search="Malá")] == ["Eva Malá"]

    price = tmp_path / "price.txt"
    price.write_text("prices", encoding="utf-8")
    template = desk.add_template(
        "Fair", "email", "Dear {{ first_name }} from {{ city }}", subject="Hi", attachments=[price]
    )
    assert template["fields"] == ["city", "first_name"]
    assert template["attachments"] == ["price.txt"]

    batch = desk.generate("Fair", list_name="Spring fair")
    assert (batch["total"], batch["valid"], batch["invalid"]) == (4, 3, 1)
    assert batch["segments"] is None  # e-mail
    assert {m["status"] for m in desk.messages(batch["batch_id"])} == {"draft", "invalid"}

    queued = desk.queue(batch["batch_id"])
    assert queued == {"batch_id": batch["batch_id"], "queued": 3, "scheduled_at": None}
    desk.start_sending(poll_seconds=0.05)
    desk.wait_until_sent(timeout=60)

    sent = desk.messages(batch_id=batch["batch_id"], status="sent")
    assert {m["to"] for m in sent} == SENDABLE
    assert all(m["provider_id"] and m["client_id"] and m["channel"] == "email" for m in sent)
    assert sorted(m["provider_id"] for m in sent) == sorted(sink.message_ids())
    assert sorted(sink.recipients()) == sorted(SENDABLE)
    assert b"price.txt" in sink.received[0].data
    assert [m["status"] for m in desk.messages(batch["batch_id"], status=["invalid"])] == [
        "invalid"
    ]

    jana = next(c for c in clients if c["email"] == "jana@example.com")
    (mine,) = desk.history(jana["id"])
    assert (mine["status"], mine["body"]) == ("sent", "Dear Jana from Praha")

    with pytest.raises(CommsError, match=r"Cannot cancel message \d+ \(sent\)"):
        desk.cancel([sent[0]["id"]])
    with pytest.raises(InvalidTransition):
        desk.retry(sent[0]["id"])
    assert desk.messages(batch["batch_id"], "sent") == sent  # nothing moved


def test_send_now_cancel_and_retry_return_how_many_moved(
    desk: Desk, sink: SmtpSink, clients_csv: Path
) -> None:
    desk.import_clients(clients_csv, list_name="L", consent="email,sms")
    desk.add_template("T", "email", "Hello {{ first_name }}", subject="S")
    batch = desk.generate("T", list_name="L")
    ids = [m["id"] for m in desk.messages(batch["batch_id"], "draft")]
    tomorrow = (datetime.now() + timedelta(days=1)).isoformat(timespec="minutes")
    assert desk.queue(batch["batch_id"], at=tomorrow)["queued"] == 3
    desk.wait_until_sent(timeout=1)  # scheduled for tomorrow: nothing is due

    assert desk.cancel(ids[0]) == 1
    desk.start_sending(poll_seconds=0.05)
    assert desk.send_now(ids[1:]) == 2
    desk.wait_until_sent(timeout=60)
    statuses = {m["id"]: m["status"] for m in desk.messages(batch["batch_id"])}
    assert [statuses[i] for i in ids] == ["cancelled", "sent", "sent"]
    assert len(sink.received) == 2
    assert desk.send_now([]) == 0

    sink.always("jana@example.com", "550 5.1.1 No such user")
    other = desk.generate("T", ids=[c["id"] for c in desk.clients(search="jana@")])
    desk.queue(other["batch_id"])
    desk.wait_until_sent(timeout=60)
    (failed,) = desk.messages(other["batch_id"], "failed")
    assert "No such user" in failed["error"]
    assert desk.retry([failed["id"]]) == 1
    desk.wait_until_sent(timeout=60)
    assert desk.messages(other["batch_id"])[0]["status"] == "failed"


def test_dicts_have_the_cli_json_keys(
    desk: Desk, db_path: Path, clients_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(db_path)]
    mine = desk.import_clients(clients_csv, list_name="Fair", consent="email,sms")
    theirs = cli_json(
        capsys, "import", str(clients_csv), "--list", "Fair", "--consent", "email,sms", *db
    )
    assert set(mine) == set(theirs)
    assert (theirs["imported"], theirs["updated"]) == (0, 4)  # the same clients, updated
    assert as_json({k: mine[k] for k in ("mapping", "keys", "rows", "kind")}) == {
        k: theirs[k] for k in ("mapping", "keys", "rows", "kind")
    }

    assert as_json(desk.clients()) == cli_json(capsys, "clients", *db)
    assert as_json(desk.clients(search="Praha", list_name="Fair")) == cli_json(
        capsys, "clients", "--search", "Praha", "--list", "Fair", *db
    )

    body = tmp_path / "body.md"
    body.write_text("Hi {{ first_name }}", encoding="utf-8")
    template = desk.add_template("Mine", "email", "Hi {{ first_name }}", subject="S")
    cli_template = cli_json(
        capsys, "templates", "add", "--name", "Theirs", "--channel", "email",
        "--subject", "S", "--body-file", str(body), *db,
    )  # fmt: skip
    assert set(template) == set(cli_template)
    assert {**template, "id": 0, "name": ""} == {**cli_template, "id": 0, "name": ""}

    batch = desk.generate("Mine", list_name="Fair")
    cli_batch = cli_json(capsys, "generate", "--template", "Theirs", "--list", "Fair", *db)
    assert set(batch) - set(cli_batch) == {"segments"} and set(cli_batch) <= set(batch)
    queued = desk.queue(batch["batch_id"])
    assert set(queued) == set(cli_json(capsys, "queue", "--batch", str(cli_batch["batch_id"]), *db))

    client_id = desk.clients(search="jana@")[0]["id"]
    history = desk.history(client_id)
    assert len(history) == 2
    assert as_json(history) == cli_json(capsys, "history", str(client_id), *db)


def test_four_threads_at_once(desk: Desk, sink: SmtpSink, clients_csv: Path) -> None:
    desk.import_clients(clients_csv, list_name="L", consent="email,sms")
    desk.add_template("T", "email", "Hello {{ first_name }}", subject="S")
    later = desk.generate("T", list_name="L")
    desk.queue(later["batch_id"], at=datetime.now() + timedelta(days=1))
    to_cancel = [m["id"] for m in desk.messages(later["batch_id"], "queued")]
    now = desk.generate("T", list_name="L")
    client_ids = [c["id"] for c in desk.clients()]
    desk.start_sending(poll_seconds=0.05)

    errors: list[BaseException] = []
    start = threading.Barrier(4)
    cancelled: list[int] = []

    def run(fn) -> None:
        try:
            start.wait()
            fn()
        except BaseException as exc:  # collected, asserted in the test's thread
            errors.append(exc)

    def read_clients() -> None:
        for _ in range(30):
            assert len(desk.clients(list_name="L")) == 4

    def read_messages() -> None:
        desk.queue(now["batch_id"])  # sent by the background sender meanwhile
        for _ in range(30):
            assert len(desk.messages(now["batch_id"])) == 4

    def read_history() -> None:
        for _ in range(10):
            for cid in client_ids:
                desk.history(cid)

    def cancel() -> None:
        for mid in to_cancel:
            cancelled.append(desk.cancel([mid]))

    threads = [
        threading.Thread(target=run, args=(fn,))
        for fn in (read_clients, read_messages, read_history, cancel)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert cancelled == [1, 1, 1]
    desk.wait_until_sent(timeout=60)
    assert {m["status"] for m in desk.messages(later["batch_id"])} == {"cancelled", "invalid"}
    assert len(desk.messages(now["batch_id"], "sent")) == 3
    assert len(sink.received) == 3


def test_refusals_are_comms_errors_with_a_sentence(desk: Desk, clients_csv: Path) -> None:
    desk.import_clients(clients_csv, list_name="L", consent="email,sms")
    desk.add_template("T", "sms", "Hi {{ first_name }}")
    cases = [
        (lambda: desk.messages(status="bogus"), InvalidArgument, "Unknown status 'bogus'"),
        (lambda: desk.cancel(["x"]), InvalidArgument, "message_ids must be ids"),
        (lambda: desk.cancel([999]), NotFound, "No message with id 999"),
        (lambda: desk.send_now(3.5j), InvalidArgument, "message_ids must be"),
        (lambda: desk.history(999), NotFound, "No client with id 999"),
        (lambda: desk.history([1, 2]), InvalidArgument, "client_id must be one id"),
        (lambda: desk.generate("T"), InvalidArgument, "exactly one of list_name, ids"),
        (lambda: desk.generate("T", list_name="L", ids=[1]), InvalidArgument, "not list_name and ids"),
        (lambda: desk.generate("Nope", list_name="L"), NotFound, "No template named 'Nope'"),
        (lambda: desk.generate(99, list_name="L"), NotFound, "Template 99 does not exist"),
        (lambda: desk.generate(None, list_name="L"), InvalidArgument, "a name or an id"),
        (lambda: desk.queue(1, at="tomorrow"), InvalidArgument, "is not a time"),
        (lambda: desk.queue(42), NotFound, "Batch 42 does not exist"),
        (lambda: desk.add_template("X", "fax", "b"), InvalidArgument, "channel must be one of"),
        (lambda: desk.add_template("T", "sms", "again"), CommsError, "already exists"),
        (lambda: desk.add_template("X", "sms", "b", attachments=["/nonexistent"]), CommsError, "does not exist"),
        (lambda: desk.import_clients(clients_csv, consent=("email", "fax")), InvalidArgument, "unknown channel 'fax'"),
        (lambda: desk.import_clients(clients_csv.with_name("missing.csv")), CommsError, "No such file"),
    ]  # fmt: skip
    for call, kind, sentence in cases:
        with pytest.raises(kind, match=re.escape(sentence)):
            call()
    assert issubclass(InvalidArgument, CommsError) and issubclass(InvalidArgument, ValueError)


def test_consent_stated_for_some_channels(desk: Desk, clients_csv: Path, tmp_path: Path) -> None:
    # The file says nothing about consent and none is stated: refused, nothing written.
    with pytest.raises(CommsError, match="consent"):
        desk.import_clients(clients_csv, list_name="L")
    assert desk.clients() == []
    assert desk.store.scalar("SELECT count(*) FROM action_log WHERE action = 'import'") == 0
    # Consent stated for e-mail only: recorded as stated, per channel.
    email_only = tmp_path / "email_only.csv"
    email_only.write_text("name,email\nOta,ota@example.com\nIva,iva@example.com\n", "utf-8")
    desk.import_clients(email_only, list_name="K", consent=("email",))
    assert {(c["consent_email"], c["consent_sms"]) for c in desk.clients(list_name="K")} == {
        (True, False)
    }

    # A file with an SMS consent column: the file says it, so it is accepted.
    with_column = tmp_path / "with_sms_consent.csv"
    with_column.write_text(
        "name,email,phone,SMS consent\nJana,jana@example.com,+420601000001,no\n"
        "Petr,petr@example.com,+420601000002,yes\n",
        encoding="utf-8",
    )
    report = desk.import_clients(with_column, list_name="L", consent="email")
    assert report["mapping"]["SMS consent"] == "consent_sms"
    assert [(c["consent_email"], c["consent_sms"]) for c in desk.clients(list_name="L")] == [
        (True, False),
        (True, True),
    ]

    # Both channels stated: what the core records for new clients when the file says
    # nothing; a stored client keeps its flags (Jana's "no" to SMS is not undone).
    desk.import_clients(clients_csv, list_name="M", consent=["sms", "email"])
    consents = {
        c["email"]: (c["consent_email"], c["consent_sms"]) for c in desk.clients(list_name="M")
    }
    assert consents.pop("jana@example.com") == (True, False)
    assert set(consents.values()) == {(True, True)}


def test_wait_until_sent_without_a_sender_says_so(desk: Desk, clients_csv: Path) -> None:
    desk.wait_until_sent(timeout=0)  # nothing due: returns at once
    desk.import_clients(clients_csv, list_name="L", consent="email,sms")
    desk.add_template("T", "email", "Hello", subject="S")
    batch = desk.generate("T", list_name="L")
    desk.queue(batch["batch_id"])
    with pytest.raises(TimeoutError, match=r"3 message\(s\) are still due.*call start_sending\(\)"):
        desk.wait_until_sent(timeout=0.3)
    assert {m["status"] for m in desk.messages(batch["batch_id"], "queued")} == {"queued"}


def test_open_close_and_the_db_rules(db_path: Path, tmp_path: Path) -> None:
    with Desk() as desk:
        assert desk.path == db_path.resolve()
        assert desk.clients() == []
    with pytest.raises(DeskClosed, match="is closed; open a new Desk"):
        desk.clients()
    desk.close()  # twice is fine

    other = tmp_path / "other.duckdb"
    explicit = Desk(other)  # the argument wins over $COMMS_DB
    assert explicit.path == other.resolve() and other.exists()
    explicit.close()

    # All Desks on one file share its connection: closing one closes it for the other.
    a, b = Desk(), Desk()
    a.close()
    with pytest.raises(DeskClosed, match="was closed"):
        b.clients()
    b.close()


def test_import_comms_desk_without_streamlit() -> None:
    code = "import sys; from comms import Desk; assert 'streamlit' not in sys.modules, 'streamlit'"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def readme_example() -> str:
    """The first ```python block of the README's "Notebook API" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Notebook API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the Notebook API section has no python example"
    return match.group(1)


def test_readme_example_runs(
    db_path: Path,
    sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "clients.csv").write_text(CLIENTS_CSV, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md (Notebook API)", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "4 imported, 2 problem rows" in out
    assert "3 ready, 1 invalid" in out
    assert out.count(" sent <") == 3  # id, address, status, Message-ID per message
    assert sorted(sink.recipients()) == sorted(SENDABLE)
    with Desk() as desk:
        assert [m["status"] for m in desk.messages(status="sent")] == ["sent"] * 3
