"""The CLI speaks the language of LC_ALL / LANG or `--lang` (issue 12): a file that
cannot be imported is one sentence on stderr in that language. Each case runs the
real `comms` command in a process."""

from __future__ import annotations

import os
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
