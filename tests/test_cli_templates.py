import json
import subprocess
import sys
from pathlib import Path

import pytest

from comms.cli import main
from comms.store import open_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def seeded(db_path):
    store = open_store(db_path)
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (name, email, email_valid, phone, phone_kind, city, lists)"
            " VALUES ('Jana', 'jana@example.com', true, '+420601123456', 'mobile', 'Brno', ['VIP']),"
            " ('Petr', 'petr@', false, '+420221234567', 'fixed_line', 'Praha', ['VIP']),"
            " ('Eva', 'eva@example.com', true, '+420601123457', 'mobile', NULL, ['Other'])"
        )
    )
    store.close()
    return db_path


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_generate_queue(seeded, tmp_path, capsys):
    body = tmp_path / "body.md"
    body.write_text("Dobrý den {{ name }} z {{ city }}", encoding="utf-8")
    pdf = tmp_path / "terms.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    code, out, err = run(
        [
            "templates",
            "add",
            "--name",
            "Welcome",
            "--channel",
            "email",
            "--subject",
            "Hi {{ name }}",
            "--body-file",
            str(body),
            "--attach",
            str(pdf),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    added = json.loads(out)
    assert added["fields"] == ["city", "name"] and added["attachments"] == ["terms.pdf"]

    code, out, _ = run(["templates", "list", "--json"], capsys)
    assert [t["name"] for t in json.loads(out)] == ["Welcome"]

    code, out, err = run(["generate", "--template", "Welcome", "--all", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert {k: result[k] for k in ("total", "valid", "invalid")} == {
        "total": 3,
        "valid": 1,
        "invalid": 2,
    }
    assert result["reasons"] == {"invalid e-mail": 1, "missing field: city": 1}
    assert "segments" not in result

    code, out, err = run(["queue", "--batch", str(result["batch_id"]), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["queued"] == 1


def test_generate_sms_by_list_and_ids(seeded, tmp_path, capsys):
    body = tmp_path / "sms.txt"
    body.write_text("Ahoj {{ name }}, řekněte „ano“ " + "x" * 140, encoding="utf-8")
    assert (
        run(
            ["templates", "add", "--name", "S", "--channel", "sms", "--body-file", str(body)],
            capsys,
        )[0]
        == 0
    )
    code, out, _ = run(["generate", "--template", "s", "--list", "VIP", "--gsm7", "--json"], capsys)
    result = json.loads(out)
    assert (result["total"], result["valid"], result["reasons"]) == (2, 1, {"not a mobile": 1})
    assert result["segments"] == 2  # 'Ahoj Jana, reknete "ano" ' + 140 x: 165 GSM-7 septets
    code, out, _ = run(["generate", "--template", "S", "--ids", "1,3", "--json"], capsys)
    result = json.loads(out)
    assert (
        result["valid"] == 2 and result["segments"] == 6
    )  # UCS-2 without --gsm7: 166 units, 3 each


def test_bad_template_exits_nonzero_with_one_line(seeded, tmp_path, capsys):
    body = tmp_path / "bad.md"
    body.write_text("Hello\n{{ name }", encoding="utf-8")
    code, out, err = run(
        [
            "templates",
            "add",
            "--name",
            "Bad",
            "--channel",
            "email",
            "--subject",
            "S",
            "--body-file",
            str(body),
        ],
        capsys,
    )
    assert code == 1
    assert err.strip() == "comms: body: syntax error on line 2: unexpected '}'"
    body.write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    code, out, err = run(
        ["templates", "add", "--name", "Evil", "--channel", "sms", "--body-file", str(body)],
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Python internals" in err
    code, out, err = run(["generate", "--template", "Nope", "--all"], capsys)
    assert code == 1 and "No template named 'Nope'" in err
    store = open_store(seeded)
    assert store.scalar("SELECT count(*) FROM templates") == 0
    assert store.scalar("SELECT count(*) FROM attachments") == 0
    store.close()


def test_queue_bad_time_and_text_output(seeded, tmp_path, capsys):
    body = tmp_path / "b.md"
    body.write_text("Hi {{ name }}", encoding="utf-8")
    run(
        [
            "templates",
            "add",
            "--name",
            "T",
            "--channel",
            "email",
            "--subject",
            "S",
            "--body-file",
            str(body),
        ],
        capsys,
    )
    code, out, _ = run(["generate", "--template", "T", "--search", "jana"], capsys)
    assert code == 0 and out.startswith("Batch 1: 1 messages, 1 ready, 0 invalid.")
    code, _, err = run(["queue", "--batch", "1", "--at", "tomorrow"], capsys)
    assert code == 1 and "ISO-8601" in err
    code, out, _ = run(["queue", "--batch", "1", "--at", "2030-01-02T09:30"], capsys)
    assert code == 0 and "1 of 1 messages queued for 2030-01-02 09:30:00" in out


def test_cli_runs_as_a_process(seeded, tmp_path):
    body = tmp_path / "b.md"
    body.write_text("Hi {{ name }", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "comms",
            "templates",
            "add",
            "--name",
            "X",
            "--channel",
            "sms",
            "--body-file",
            str(body),
            "--db",
            str(seeded),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("comms: body: syntax error on line 1")


def test_templates_list_text(seeded, tmp_path, capsys):
    code, out, _ = run(["templates", "list"], capsys)
    assert code == 0 and "No templates yet" in out
    body = tmp_path / "b.html"
    body.write_text("<p>Hi {{ name }}</p>", encoding="utf-8")
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF")
    run(
        [
            "templates",
            "add",
            "--name",
            "H",
            "--channel",
            "email",
            "--subject",
            "S",
            "--body-file",
            str(body),
            "--attach",
            str(pdf),
        ],
        capsys,
    )
    code, out, _ = run(["templates", "list"], capsys)
    assert "H  [email, 1 attachment(s)] subject: S" in out
    code, out, _ = run(["templates", "list", "--json"], capsys)
    assert json.loads(out)[0]["body_format"] == "html"  # from the .html suffix


def test_a_refused_template_leaves_no_attachment_behind(seeded, tmp_path, capsys):
    body = tmp_path / "body.md"
    body.write_text("Hello {{ name }}", encoding="utf-8")
    price = tmp_path / "price.pdf"
    price.write_bytes(b"%PDF-1.4 price list")
    db = ["--db", str(seeded)]
    add = ["templates", "add", "--channel", "email", "--subject", "Hi", "--body-file", str(body)]
    assert run([*add, "--name", "Offer", *db], capsys)[0] == 0
    code, _, err = run([*add, "--name", "offer", "--attach", str(price), *db], capsys)
    assert code == 1 and "offer" in err.lower()
    store = open_store(seeded)
    assert store.scalar("SELECT count(*) FROM attachments") == 0
    assert store.scalar("SELECT count(*) FROM templates") == 1
    store.close()
