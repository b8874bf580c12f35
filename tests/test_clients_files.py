"""Files that hang, exhaust or confuse a reader (issue 9): zip bombs, workbooks of several
sheets, formulas without values, NUL bytes, devices and FIFOs. Each case asserts the one
sentence a person reads and that nothing was written."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from comms.clients import import_clients, preview_import
from comms.errors import ImportFailed

ROOT = Path(__file__).resolve().parent.parent
SHEET = b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>Email</t></is></c></row>'


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        ws = book.create_sheet(title)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def with_sheet_xml(body: bytes, dimension: bytes = b"") -> bytes:
    """A valid workbook whose only sheet's XML is replaced (sheetData holding `body`)."""
    src = zipfile.ZipFile(io.BytesIO(workbook(("Klienti", [["Email"], ["a@example.cz"]]))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = SHEET + dimension + b"<sheetData>" + body + b"</sheetData></worksheet>"
            z.writestr(info.filename, data, compresslevel=9)
    return out.getvalue()


def nothing_written(store) -> bool:
    return (
        store.scalar("SELECT count(*) FROM clients") == 0
        and store.scalar("SELECT count(*) FROM action_log") == 0
    )


def refused_in_a_small_process(tmp_path: Path, data: bytes) -> dict:
    """read_table in a child process limited to 768 MB of address space: a regression
    fails with MemoryError instead of taking the machine down."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(data)
    code = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))\n"
        "from comms.clients.reading import read_table\n"
        "from comms.errors import ImportFailed\n"
        "try:\n"
        "    t = read_table(open(sys.argv[1], 'rb').read(), 'bomb.xlsx')\n"
        "    out = {'rows': len(t.rows)}\n"
        "except ImportFailed as exc:\n"
        "    out = {'refused': str(exc)}\n"
        "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
        "print(json.dumps({**out, 'peak_mb': peak // 1024}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


# -- zip bombs ------------------------------------------------------------------------------------


def test_a_workbook_that_inflates_to_three_million_rows_is_refused(tmp_path):
    row = b'<row><c t="inlineStr"><is><t>a@example.cz</t></is></c></row>'
    data = with_sheet_xml(HEADER_ROW + row * 3_000_000)
    assert len(data) < 1_000_000  # under 2 % of the upload limit
    out = refused_in_a_small_process(tmp_path, data)
    assert out["refused"] == (
        "The sheet has more than 1,000,000 rows; a client list may have at most 1,000,000"
        " (setting COMMS_MAX_ROWS). Split it into smaller files."
    )
    assert out["peak_mb"] < 400


def test_a_row_of_three_million_cells_is_refused(tmp_path):
    data = with_sheet_xml(HEADER_ROW + b'<row r="2">' + b"<c><v>1</v></c>" * 3_000_000 + b"</row>")
    out = refused_in_a_small_process(tmp_path, data)
    assert out["refused"] == (
        "A row of the sheet has more than 1,000 cells; a client list may have at most 1,000"
        " columns (setting COMMS_MAX_COLUMNS). Remove the extra columns and try again."
    )
    assert out["peak_mb"] < 400


def test_a_row_number_far_down_is_refused_and_a_gap_adds_no_rows(tmp_path, store):
    far = HEADER_ROW + b'<row r="5000000"><c r="A5000000"><v>1</v></c></row>'
    assert (
        "more than 1,000,000 rows"
        in refused_in_a_small_process(tmp_path, with_sheet_xml(far))["refused"]
    )
    gap = HEADER_ROW + (
        b'<row r="900000"><c r="A900000" t="inlineStr"><is><t>a@example.cz</t></is></c></row>'
    )
    report = import_clients(store, with_sheet_xml(gap), filename="x.xlsx", consent="none")
    assert (report.rows, report.imported, report.problems) == (1, 1, [])


def test_a_cell_in_the_last_excel_column_is_refused(store):
    body = HEADER_ROW + b'<row r="2"><c r="XFD2"><v>1</v></c></row>'
    with pytest.raises(
        ImportFailed, match="has 16,384 columns; a client list may have at most 1,000 columns"
    ):
        import_clients(store, with_sheet_xml(body), filename="x.xlsx", consent="none")
    assert nothing_written(store)


def test_a_false_dimension_does_not_pad_the_sheet(store):
    body = HEADER_ROW + b'<row r="2"><c r="A2" t="inlineStr"><is><t>a@example.cz</t></is></c></row>'
    data = with_sheet_xml(body, dimension=b'<dimension ref="A1:XFD1048576"/>')
    report = import_clients(store, data, filename="x.xlsx", consent="none")
    assert (report.rows, report.imported) == (1, 1)


def test_shared_strings_that_unpack_past_the_limit_are_refused_before_parsing(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_XLSX_UNPACKED_MB", "10")
    src = zipfile.ZipFile(io.BytesIO(workbook(("Klienti", [["Email"], ["a@example.cz"]]))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b"<si><t>a</t></si>" * 250_000 + b"</sst>")
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, out.getvalue(), filename="x.xlsx", consent="none")
    assert str(exc.value) == (
        "The workbook unpacks to more than 2 MB of data, far more than a client list needs"
        " (setting COMMS_MAX_XLSX_UNPACKED_MB); save the client sheet alone as a new workbook"
        " or as CSV and try again."
    )
    assert nothing_written(store)


def test_the_row_and_column_caps_are_settings(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_ROWS", "2")
    with pytest.raises(ImportFailed, match="more than 2 rows; .* at most 2 .*COMMS_MAX_ROWS"):
        import_clients(store, b"Email\na@example.cz\nb@example.cz\nc@example.cz\n", consent="none")
    monkeypatch.setenv("COMMS_MAX_COLUMNS", "2")
    with pytest.raises(ImportFailed, match="has 3 columns; .* at most 2 columns"):
        import_clients(store, b"Email;A;B\na@example.cz;1;2\n", consent="none")
    assert nothing_written(store)


# -- workbooks with several sheets ------------------------------------------------------------------

COVER = ("Úvod", [["Seznam klientů pro jarní akci"], ["Připravila: Eva, 3. 3. 2025"]])
DATA = ("Klienti", [["Jméno", "E-mail"], ["Jan", "jan@example.cz"], ["Eva", "eva@example.cz"]])
ARCHIVE = ("Archiv", [["Name", "Email"], ["Old", "old@example.cz"]])


def test_a_cover_sheet_is_passed_over_for_the_first_sheet_with_a_header(store):
    report = import_clients(store, workbook(COVER, DATA), filename="jaro.xlsx", consent="email")
    assert report.sheet == "Klienti" and report.imported == 2
    assert report.notes == ["Read sheet 'Klienti' of 2."]


def test_another_sheet_that_looks_like_a_list_is_reported_and_can_be_chosen(store):
    data = workbook(COVER, DATA, ARCHIVE)
    preview = preview_import(data, "jaro.xlsx")
    assert preview.sheet == "Klienti" and preview.sheets == ["Úvod", "Klienti", "Archiv"]
    assert preview.notes == [
        "Read sheet 'Klienti' of 3.",
        "Sheet 'Archiv' also looks like a client list (2 rows) and was not imported; choose"
        " that sheet to import it.",
    ]
    report = import_clients(store, data, filename="jaro.xlsx", sheet="Archiv", consent="none")
    assert report.sheet == "Archiv" and report.imported == 1
    assert [r["name"] for r in store.rows("SELECT name FROM clients")] == ["Old"]
    entry = store.rows("SELECT detail FROM action_log WHERE action = 'import'")[0]
    assert json.loads(entry["detail"])["sheet"] == "Archiv"


def test_an_unknown_sheet_is_one_sentence_naming_the_sheets(store):
    with pytest.raises(ImportFailed) as exc:
        import_clients(
            store, workbook(COVER, DATA), filename="x.xlsx", sheet="Data", consent="none"
        )
    assert str(exc.value) == "The workbook has no sheet 'Data'; its sheets are 'Úvod', 'Klienti'."
    assert nothing_written(store)


# -- formulas without saved values -------------------------------------------------------------------


def test_formulas_without_saved_values_are_named_not_called_empty_rows(store):
    # openpyxl, like many generators, writes formulas without calculating them.
    data = workbook(
        (
            "Klienti",
            [
                ["Name", "Email", "Total"],
                ["Jan", "jan@example.cz", "=1+1"],
                [None, '=CONCAT("a","@example.cz")', None],
            ],
        )
    )
    report = import_clients(store, data, filename="x.xlsx", consent="none")
    assert report.imported == 1
    save = "open the file in Excel and save it, then import it again"
    assert report.problems == [
        {"row": 2, "reason": f"formula without a saved value in Total: {save}", "skipped": False},
        {"row": 3, "reason": f"formula without a saved value in Email: {save}", "skipped": True},
    ]


def test_a_sheet_of_formulas_only_is_refused_with_what_to_do(store):
    data = workbook(("Klienti", [["Name", "Email"], ['=UPPER("jan")', '=LOWER("J@X.CZ")']]))
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, data, filename="x.xlsx", consent="none")
    assert str(exc.value) == (
        "The cells of sheet 'Klienti' are formulas without saved values (the program that wrote"
        " the file did not calculate them): open the file in Excel and save it, then import it"
        " again."
    )
    assert nothing_written(store)


# -- NUL bytes: one rule for the whole file ----------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"Name;Email\nJ\x00an;jan@example.cz\n", "The file is binary, not a CSV or XLSX table."),
        (
            b"Name;Email\n" + b"Jan;jan@example.cz\n" * 5000 + b"X\x00Y;x@example.cz\n",
            "The file has a NUL byte on line 5,002: it is damaged or binary, not a CSV table."
            " Save it again from the program that made it.",
        ),
        (
            ("Name;Email\n" + "Jan;jan@example.cz\n" * 5000 + "X\x00Y;x@example.cz\n").encode(
                "utf-16"
            ),
            "The file has a NUL byte on line 5,002: it is damaged or binary, not a CSV table."
            " Save it again from the program that made it.",
        ),
    ],
)
def test_a_nul_byte_anywhere_refuses_the_file(store, data, message):
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, data, consent="none")
    assert str(exc.value) == message
    assert nothing_written(store)


# -- paths that are not files ---------------------------------------------------------------------


def test_a_device_is_refused_without_reading_it(store):
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, "/dev/zero", consent="none")
    assert (
        str(exc.value)
        == "/dev/zero is a device or socket, not a file: save the list as a file first."
    )
    assert nothing_written(store)


def test_a_fifo_is_refused_without_waiting_for_a_writer(store, tmp_path):
    fifo = tmp_path / "list.csv"
    os.mkfifo(fifo)
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, fifo, consent="none")
    assert str(exc.value) == (
        f"{fifo} is a named pipe (FIFO), not a file: save the list as a file first."
    )
    assert nothing_written(store)


def test_a_file_over_the_limit_is_refused_by_its_size(store, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_UPLOAD_MB", "1")
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:  # sparse: 3 GB that are never read
        fh.truncate(3 << 30)
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, big, consent="none")
    assert str(exc.value) == (
        "The file is 3072.0 MB; the upload limit is 1 MB (setting COMMS_MAX_UPLOAD_MB)."
    )
    assert nothing_written(store)
