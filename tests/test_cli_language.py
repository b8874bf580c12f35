"""The CLI speaks the language of LC_ALL / LANG or `--lang` (issue 12): a file that
cannot be imported is one sentence on stderr in that language, and every command's help
(argparse's own words too) and output lines are Czech when Czech is asked for, English
otherwise; --json stays machine codes. The cases run the real `comms` command, in a
process or through comms.cli.main."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY_CS = "comms: Soubor je binární, není to tabulka CSV ani XLSX."
BINARY_EN = "comms: The file is binary, not a CSV or XLSX table."


def comms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "comms", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**base, "PYTHONIOENCODING": "utf-8", **env},
    )


@pytest.fixture
def bad_bin(tmp_path: Path) -> Path:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03\xff\xfe\x00")
    return path


def failed(run: subprocess.CompletedProcess) -> str:
    assert run.returncode != 0, run.stderr
    assert run.stdout == ""
    return run.stderr.strip()


@pytest.mark.parametrize(
    "env",
    [{"LANG": "cs_CZ.UTF-8"}, {"LC_ALL": "cs_CZ.UTF-8", "LANG": "en_US.UTF-8"}],
)
def test_czech_from_the_environment(bad_bin: Path, tmp_path: Path, env: dict[str, str]) -> None:
    run = comms("import", str(bad_bin), "--db", str(tmp_path / "c.duckdb"), env=env)
    assert failed(run) == BINARY_CS


@pytest.mark.parametrize("env", [{"LANG": "C"}, {"LANG": "en_US.UTF-8"}, {}])
def test_english_otherwise(bad_bin: Path, tmp_path: Path, env: dict[str, str]) -> None:
    run = comms("import", str(bad_bin), "--db", str(tmp_path / "c.duckdb"), env=env)
    assert failed(run) == BINARY_EN


@pytest.mark.parametrize(
    "args",
    [
        ("--lang", "cs", "import", "{bad}"),
        ("import", "{bad}", "--lang", "cs"),
        ("import", "{bad}", "--lang=cs"),
    ],
)
def test_lang_option_overrides_the_environment(
    bad_bin: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    argv = [a.format(bad=bad_bin) for a in args] + ["--db", str(tmp_path / "c.duckdb")]
    run = comms(*argv, env={"LANG": "en_US.UTF-8"})
    assert failed(run) == BINARY_CS


def test_lang_en_overrides_czech_environment(bad_bin: Path, tmp_path: Path) -> None:
    run = comms(
        "import",
        str(bad_bin),
        "--lang",
        "en",
        "--db",
        str(tmp_path / "c.duckdb"),
        env={"LANG": "cs_CZ.UTF-8"},
    )
    assert failed(run) == BINARY_EN


def test_czech_names_the_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.csv"
    run = comms("import", str(missing), "--db", str(tmp_path / "c.duckdb"), env={"LANG": "cs_CZ"})
    assert failed(run) == f"comms: Soubor neexistuje: {missing}."


def test_unknown_language_is_a_usage_error(bad_bin: Path, tmp_path: Path) -> None:
    run = comms("--lang", "xx", "import", str(bad_bin), env={"LANG": "C"})
    assert run.returncode == 2
    assert run.stderr.strip() == "comms: unknown language 'xx'; choose one of: en, cs."


def test_czech_empty_file_and_damaged_workbook(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    run = comms("import", str(empty), "--db", str(tmp_path / "c.duckdb"), env={"LANG": "cs_CZ"})
    assert failed(run) == "comms: Soubor je prázdný."
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x01" * 64)
    run = comms("import", str(broken), "--db", str(tmp_path / "c.duckdb"), env={"LANG": "cs_CZ"})
    assert failed(run) == "comms: Soubor vypadá jako XLSX, ale je poškozený."


# -- the whole command line in Czech: help, argparse's own words, every command's lines ------


@pytest.fixture(autouse=True)
def english_afterwards():
    """main() sets the language of this thread; the next test starts in English."""
    yield
    from comms import i18n

    i18n.set_language("en")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from comms.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, env",
    [
        (("--lang", "cs", "import", "--help"), {"LANG": "en_US.UTF-8"}),
        (("import", "--help"), {"LANG": "cs_CZ.UTF-8"}),
    ],
)
def test_import_help_in_czech(argv: tuple[str, ...], env: dict[str, str]) -> None:
    run_ = comms(*argv, env=env)
    assert run_.returncode == 0, run_.stderr
    out = run_.stdout
    assert out.startswith("použití: comms import ")
    assert "poziční argumenty:" in out and "volby:" in out
    assert "zobrazí tuto nápovědu a skončí" in out
    assert "Naimportuje seznam klientů ze souboru CSV nebo XLSX do Adresáře klientů" in out
    assert "soubor CSV nebo XLSX" in out  # FILE's help
    assert "vypsat výsledky jako JSON" in out  # --json, from the shared options
    assert "usage:" not in out and "options:" not in out


def test_send_help_in_czech_from_lang() -> None:
    run_ = comms("send", "--help", env={"LANG": "cs_CZ.UTF-8"})
    assert run_.returncode == 0, run_.stderr
    assert run_.stdout.startswith("použití: comms send ")
    assert "Odešle všechny zprávy ve frontě, které jsou na řadě" in run_.stdout
    assert "--batch ID    jen tato dávka" in run_.stdout


def test_command_list_in_czech() -> None:
    run_ = comms("--help", env={"LC_ALL": "cs_CZ.UTF-8"})
    assert run_.returncode == 0, run_.stderr
    assert "Komunikace s klienty." in run_.stdout
    assert "šablony e-mailů a SMS" in run_.stdout  # templates
    assert "Log akcí, od nejnovějších záznamů" in run_.stdout  # log


@pytest.mark.parametrize("env", [{"LANG": "C"}, {}])
def test_help_in_english_otherwise(env: dict[str, str]) -> None:
    run_ = comms("send", "--help", env=env)
    assert run_.returncode == 0, run_.stderr
    assert run_.stdout.startswith("usage: comms send ")
    assert "options:" in run_.stdout and "show this help message and exit" in run_.stdout
    assert "Send every queued message that is due" in run_.stdout
    assert "only this batch" in run_.stdout


def test_argparse_errors_in_czech(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run(capsys, "--lang", "cs", "generate", "--all")
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "comms generate: chybí povinné argumenty: --template (viz `comms generate --help`)"
    )
    with pytest.raises(SystemExit):
        run(capsys, "--lang", "cs", "history", "x")
    assert "argument CLIENT_ID: neplatná hodnota (int): 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "--lang", "cs", "clients", "--nic")
    assert "neznámé argumenty: --nic" in capsys.readouterr().err


def test_argparse_errors_stay_english(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "--lang", "en", "generate", "--all")
    assert "the following arguments are required: --template" in capsys.readouterr().err


def test_argparse_messages_have_czech() -> None:
    from comms import i18n
    from comms.cli import ARGPARSE_MESSAGES

    assert all(i18n.has_translation(m, "cs") for m in ARGPARSE_MESSAGES)
    i18n.set_language("cs")
    forms = {i18n.ngettext("expected %s argument", "expected %s arguments", n) for n in (1, 3, 5)}
    assert forms == {"očekává %s hodnotu", "očekává %s hodnoty", "očekává %s hodnot"}


def test_send_on_an_empty_outbox(db_path: Path) -> None:
    cs = comms("send", "--db", str(db_path), env={"LANG": "cs_CZ.UTF-8"})
    assert cs.returncode == 0, cs.stderr
    assert cs.stdout == "odesláno 0, selhalo 0, opakováno 0, přerušeno 0 za 0,0 s\n"
    en = comms("send", "--db", str(db_path), env={"LANG": "C"})
    assert en.stdout == "sent 0, failed 0, retried 0, interrupted 0 in 0.0s\n"
    as_json = comms("send", "--json", "--db", str(db_path), env={"LANG": "cs_CZ.UTF-8"})
    assert json.loads(as_json.stdout)["sent"] == 0  # JSON keys stay machine codes


def test_clients_in_czech(store, db_path: Path, tmp_path: Path, capsys) -> None:
    from tests.seed_history import add_client

    add_client(store, name="Jana Nováková", lists=["Jaro"])
    for name in ("Petr", "Eva", "Ota", "Iva"):
        add_client(store, name=name, email=f"{name.lower()}@example.cz", lists=["Jaro"])
    db = ("--db", str(db_path))
    for limit, line in (("1", "1 klient"), ("3", "3 klienti"), ("5", "5 klientů")):
        code, out, _ = run(capsys, "--lang", "cs", "clients", "--limit", limit, *db)
        assert code == 0 and out.splitlines()[-1] == line
    code, out, _ = run(capsys, "--lang", "cs", "clients", "--search", "Nováková", *db)
    assert "Jana Nováková" in out and out.splitlines()[-1] == "1 klient"
    code, out, _ = run(capsys, "clients", "--lang", "en", "--limit", "1", *db)
    assert out.splitlines()[-1] == "1 clients"  # English as before
    target = tmp_path / "k.csv"
    code, out, _ = run(capsys, "--lang", "cs", "clients", "--csv", str(target), *db)
    assert out == f"5 klientů zapsáno do {target}.\n"
    code, out, _ = run(capsys, "--lang", "cs", "clients", "--json", *db)
    assert {"id", "name", "email"} <= set(json.loads(out)[0])


def test_import_report_in_czech(db_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("Name,Email\nJan,jan@example.cz\nEva,bad@\n", encoding="utf-8")
    run_ = comms(
        "import", str(f), "--consent", "email,sms", "--db", str(db_path), env={"LANG": "cs_CZ"}
    )
    assert run_.returncode == 0, run_.stderr
    lines = run_.stdout.splitlines()
    assert lines[0] == (
        "Seznam 'x': nově 2, aktualizováno 0, přeskočeno 0, problémů 1"
        " (csv, utf-8, záhlaví na řádku 1)."
    )
    assert any(line.startswith("  řádek 3: neplatný e-mail") for line in lines), lines


def test_templates_in_czech(db_path: Path, tmp_path: Path, capsys) -> None:
    db = ("--db", str(db_path))
    code, out, _ = run(capsys, "--lang", "cs", "templates", "list", *db)
    assert out == "Zatím tu nejsou žádné šablony: vytvoříte je příkazem `comms templates add`.\n"
    body = tmp_path / "b.md"
    body.write_text("Dobrý den, {{ name }}", encoding="utf-8")
    pdfs = []
    for i in range(3):
        pdf = tmp_path / f"p{i}.pdf"
        pdf.write_bytes(b"%PDF")
        pdfs.append(str(pdf))
    code, out, err = run(
        capsys,
        "--lang",
        "cs",
        "templates",
        "add",
        "--name",
        "Jaro",
        "--channel",
        "email",
        "--subject",
        "Novinky",
        "--body-file",
        str(body),
        "--attach",
        *pdfs,
        *db,
    )
    assert code == 0, err
    assert out.endswith(" „Jaro“ (e-mail) je uložená.\n") and out.startswith("Šablona ")
    code, out, _ = run(capsys, "--lang", "cs", "templates", "list", *db)
    assert "Jaro  [e-mail, 3 přílohy] předmět: Novinky" in out
    code, out, _ = run(capsys, "templates", "list", *db)
    assert "Jaro  [email, 3 attachment(s)] subject: Novinky" in out  # English as before


def test_generate_and_queue_in_czech(store, db_path: Path, capsys) -> None:
    from tests.seed_history import add_client, add_template

    add_client(store)
    add_client(store, name="Bez adresy", email="bez@", email_valid=False)
    add_template(store, "Vítejte", "email", "Dobrý den, {{ name }}", subject="Vítejte")
    db = ("--db", str(db_path))
    code, out, err = run(capsys, "--lang", "cs", "generate", "--template", "Vítejte", "--all", *db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(": 2 zprávy – k odeslání 1, neplatných 1.")
    assert lines[1].split() == ["1", "neplatný", "e-mail"]
    batch = lines[0].split()[1].rstrip(":")
    assert lines[-1] == f"Do fronty je zařadíte příkazem: comms queue --batch {batch}"
    code, out, _ = run(capsys, "--lang", "cs", "queue", "--batch", batch, *db)
    assert out == (f"Dávka {batch}: do fronty k okamžitému odeslání zařazeno 1 ze 2 zpráv.\n")


def test_history_log_and_compose_in_czech(store, db_path: Path, tmp_path: Path, capsys) -> None:
    from tests.seed_history import add_client, add_message

    cid = add_client(store)
    add_message(store, cid, subject="Vítejte", status="delivered", channel="sms", source="bulk")
    db = ("--db", str(db_path))
    code, out, _ = run(capsys, "--lang", "cs", "history", str(cid), *db)
    assert code == 0
    assert " SMS   doručeno    hromadné odeslání Vítejte" in out
    # the time in the Czech format ("1. 12. 2026 14:05"), English keeps ISO
    assert re.search(r"^\s+\d+  \d{1,2}\. \d{1,2}\. \d{4} \d{2}:\d{2}\s+SMS", out, re.M), out
    code, english, _ = run(capsys, "history", str(cid), *db)
    assert re.search(r"^\s+\d+  \d{4}-\d{2}-\d{2} \d{2}:\d{2}  sms", english, re.M), english
    body = tmp_path / "b.txt"
    body.write_text("Dobrý den", encoding="utf-8")
    code, out, err = run(
        capsys,
        "--lang",
        "cs",
        "compose",
        "--client",
        str(cid),
        "--channel",
        "email",
        "--subject",
        "Ahoj",
        "--body-file",
        str(body),
        *db,
    )
    assert code == 0, err
    assert out.startswith("Zpráva ") and out.endswith(" pro jana@example.cz: koncept.\n")
    message_id = out.split()[1]
    code, out, _ = run(capsys, "--lang", "cs", "send-draft", message_id, *db)
    assert out == "Do fronty zařazena 1 zpráva; odejde při příštím odesílání (`comms send`).\n"
    code, out, _ = run(capsys, "--lang", "cs", "log", *db)
    assert code == 0
    composed = next(line for line in out.splitlines() if " napsání zprávy " in line)
    assert f" v pořádku  zpráva={message_id} klient={cid}  " in composed
    code, out, _ = run(capsys, "log", *db)
    assert f"client={cid}" in out and " ok " in out  # English as before


def test_missing_client_in_czech(db_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--lang", "cs", "history", "999", "--db", str(db_path))
    assert code == 1 and err == "comms: Klient s číslem 999 neexistuje.\n"


def test_suppressions_in_czech(db_path: Path, tmp_path: Path, capsys) -> None:
    listing = tmp_path / "optout.txt"
    listing.write_text("ann@example.com\nnot an address\n+420 602 111 222\n", encoding="utf-8")
    db = ("--db", str(db_path))
    code, out, err = run(capsys, "--lang", "cs", "suppressions", "import", str(listing), *db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Přidáno adres: 2, už na seznamu: 0, chybných řádků: 1."
    assert lines[1].startswith("  řádek 2: 'not an address': ")
    code, out, _ = run(capsys, "--lang", "cs", "suppressions", "list", "--channel", "sms", *db)
    assert out.split() == ["+420602111222", "SMS", *out.split()[2:6], "nahraný", "seznam"]
    assert re.fullmatch(r"\d{1,2}\. \d{1,2}\. \d{4} \d{2}:\d{2}", " ".join(out.split()[2:6]))
    code, out, _ = run(capsys, "suppressions", "list", "--channel", "sms", *db)
    assert out.split()[1] == "sms" and out.rstrip().endswith("  uploaded list")
