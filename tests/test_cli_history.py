"""`comms history`, `comms compose`, `comms send-draft`, `comms log`."""

from __future__ import annotations

import json
import subprocess
import sys

from comms.cli import main
from tests.seed_history import add_client, add_message, add_template


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compose_draft_then_send_draft_then_history(store, db_path, tmp_path, capsys):
    cid = add_client(store)
    body = tmp_path / "body.md"
    body.write_text("Dear {{ name }},\n\nsee you in {{ city }}.", encoding="utf-8")
    code, out, _ = run(
        capsys,
        "compose",
        "--db",
        str(db_path),
        "--client",
        str(cid),
        "--channel",
        "email",
        "--subject",
        "Meeting",
        "--body-file",
        str(body),
        "--json",
    )
    assert code == 0
    made = json.loads(out)
    assert made["status"] == "draft" and made["to_address"] == "jana@example.cz"

    code, out, _ = run(capsys, "send-draft", str(made["message_id"]), "--db", str(db_path))
    assert code == 0 and "Queued 1" in out

    code, out, _ = run(capsys, "history", str(cid), "--json", "--db", str(db_path))
    rows = json.loads(out)
    assert len(rows) == 1
    row = rows[0]
    assert {"id", "channel", "status", "subject", "body", "source", "sent_at"} <= set(row)
    assert (row["id"], row["status"], row["source"]) == (made["message_id"], "queued", "cli")
    assert row["body"] == "Dear Jana Nováková,\n\nsee you in Brno."


def test_compose_sms_from_template_with_send(store, db_path, capsys):
    cid = add_client(store)
    add_template(store, "parcel", "sms", "Ahoj {{ name }}, balík je připraven.")
    code, out, _ = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "sms",
        "--template",
        "parcel",
        "--gsm7",
        "--send",
        "--json",
        "--db",
        str(db_path),
    )
    assert code == 0
    made = json.loads(out)
    assert made["status"] == "queued" and made["segments"] == 1 and made["encoding"] == "GSM-7"
    assert (
        store.scalar("SELECT body_text FROM messages") == "Ahoj Jana Novakova, balik je pripraven."
    )


def test_compose_errors_are_one_line(store, db_path, capsys):
    cid = add_client(store, consent_email=False)
    add_template(store, "parcel", "sms", "Hi")
    code, _, err = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "email",
        "--template",
        "parcel",
        "--db",
        str(db_path),
    )
    assert code == 1 and "sms template" in err and err.count("\n") == 1
    code, _, err = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "email",
        "--template",
        "nope",
        "--db",
        str(db_path),
    )
    assert code == 1 and "No template" in err
    code, _, err = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "email",
        "--subject",
        "x",
        "--body-file",
        "/nonexistent",
        "--db",
        str(db_path),
    )
    assert code == 1 and "--body-file" in err
    code, _, err = run(capsys, "history", "999", "--db", str(db_path))
    assert code == 1 and "No client with id 999" in err
    add_message(store, cid, status="sent")
    code, _, err = run(capsys, "send-draft", "1", "--db", str(db_path))
    assert code == 1 and "Cannot queue" in err
    assert store.scalar("SELECT count(*) FROM messages") == 1


def test_log_lists_actions(store, db_path, tmp_path, capsys):
    cid = add_client(store)
    body = tmp_path / "b.txt"
    body.write_text("hello", encoding="utf-8")
    run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "sms",
        "--body-file",
        str(body),
        "--send",
        "--db",
        str(db_path),
    )
    code, out, _ = run(capsys, "log", "--json", "--db", str(db_path))
    entries = json.loads(out)
    assert code == 0
    assert [e["action"] for e in entries] == ["queue", "compose"]
    assert entries[1]["client_id"] == cid and entries[1]["detail"]["source"] == "cli"
    code, out, _ = run(capsys, "log", "--db", str(db_path))
    assert "compose" in out and f"client={cid}" in out


def test_history_text_output_in_a_real_process(store, db_path):
    cid = add_client(store)
    add_message(store, cid, subject="Welcome aboard")
    store.close()
    proc = subprocess.run(
        [sys.executable, "-m", "comms", "history", str(cid), "--db", str(db_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Welcome aboard" in proc.stdout and "sent" in proc.stdout


def test_compose_email_with_attachment(store, db_path, tmp_path, capsys):
    cid = add_client(store)
    body = tmp_path / "b.md"
    body.write_text("See the file.", encoding="utf-8")
    pdf = tmp_path / "terms.pdf"
    pdf.write_bytes(b"%PDF-1.4 terms")
    code, out, _ = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "email",
        "--subject",
        "Terms",
        "--body-file",
        str(body),
        "--attach",
        str(pdf),
        "--json",
        "--db",
        str(db_path),
    )
    assert code == 0
    mid = json.loads(out)["message_id"]
    names = store.rows(
        "SELECT a.filename FROM message_attachments ma JOIN attachments a"
        " ON a.id = ma.attachment_id WHERE ma.message_id = ?",
        [mid],
    )
    assert names == [{"filename": "terms.pdf"}]
    code, _, err = run(
        capsys,
        "compose",
        "--client",
        str(cid),
        "--channel",
        "sms",
        "--body-file",
        str(body),
        "--attach",
        str(pdf),
        "--db",
        str(db_path),
    )
    assert code == 1 and "only e-mails carry attachments" in err


def test_suppressions_import_and_list(store, db_path, tmp_path, capsys):
    listing = tmp_path / "optout.txt"
    listing.write_text("Ann@Example.com\n\nnot an address\n+420 602 111 222\n", encoding="utf-8")
    code, out, _ = run(
        capsys,
        "suppressions",
        "import",
        str(listing),
        "--reason",
        "bounced",
        "--json",
        "--db",
        str(db_path),
    )
    assert code == 0
    report = json.loads(out)
    assert (report["addresses"], report["added"]) == (2, 2)
    assert report["problems"] == [
        {"line": 3, "text": "not an address", "reason": report["problems"][0]["reason"]}
    ]
    assert "invalid" in report["problems"][0]["reason"]
    code, out, _ = run(capsys, "suppressions", "list", "--json", "--db", str(db_path))
    assert sorted(r["address"] for r in json.loads(out)) == ["+420602111222", "Ann@example.com"]
    code, _, err = run(capsys, "suppressions", "import", "/nope.txt", "--db", str(db_path))
    assert code == 1 and "No such file: /nope.txt." in err
