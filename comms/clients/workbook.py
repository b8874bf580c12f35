"""Reading an XLSX workbook safely: archive checks, a scan of each sheet, the sheet to use, rows.

An XLSX file is a zip archive of XML parts, and a small one can unpack to
gigabytes (a "zip bomb"): 525 KB that inflates to 3,000,000 rows, or one row of
3,000,000 cells. openpyxl (read-only mode) streams a sheet row by row, but it
builds each whole row before handing it over, pads rows to the sheet's declared
size, and reads the shared strings and styles whole. So, before openpyxl parses
anything (invariants X1-X3):

  X1  the archive's central directory is small, and the declared unpacked size
      of its XML parts is within `config.max_unpacked_bytes()` (shared strings,
      which openpyxl keeps in memory, within a fifth of it; any other part that
      it reads whole within 20 MB). zipfile never inflates a part past its
      declared size, so these sizes bound the work.
  X2  every sheet is scanned as bytes, streamed through zlib a megabyte at a
      time: its rows are counted (by their `r` numbers too, since openpyxl fills
      gaps with empty rows) and its widest row too, stopping at the first row
      past `config.max_rows()` or cell past `config.max_columns()`. The scan also
      finds formula cells that have no saved value (data_only reads them as empty).
  X3  the sheet's declared dimension is dropped (`reset_dimensions`), so a false
      one cannot make openpyxl pad; rows are then read one at a time with the
      same caps checked again on what openpyxl yields.

The scan costs about a second per million rows; a bomb is refused in seconds
and a few megabytes.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from comms import i18n
from comms.errors import ImportFailed
from comms.i18n import _

# X1: parts openpyxl reads whole (everything but the sheets it streams and media it skips).
MAX_PART_BYTES = 20 * 1024 * 1024
MAX_PARTS = 10_000
# X2: one row's XML (a row of 1,000 cells of Excel's longest text is about 64 MB; real
# rows are a few kilobytes).
MAX_ROW_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024

_NAME = rb"(?:[A-Za-z_][\w.\-]*:)?"  # any namespace prefix: openpyxl matches by namespace
_SHEET_DATA = re.compile(b"<" + _NAME + rb"sheetData[\s/>]")
_SHEET_DATA_END = re.compile(b"</" + _NAME + rb"sheetData\s*>")
_ROW = re.compile(b"<" + _NAME + rb"row[\s/>]")
_CELL = re.compile(b"<" + _NAME + rb"c[\s/>]")  # inside sheetData only cells are named c
_FORMULA = re.compile(b"<" + _NAME + rb"f[\s/>]")
_VALUE = re.compile(b"<" + _NAME + rb"v\s*>\s*[^<\s]")
_ROW_NUMBER = re.compile(rb"\sr\s*=\s*[\"']\s*(\d+)")
_ROW_NUMBERS = re.compile(b"<" + _NAME + rb"row\s[^>]*?\br\s*=\s*[\"']\s*(\d+)")
_CELL_COLUMN = re.compile(rb"\sr\s*=\s*[\"']\s*([A-Za-z]{1,3})\d")


@dataclass
class Limits:
    rows: int
    columns: int
    unpacked: int  # bytes


@dataclass
class SheetScan:
    """What X2 found in one sheet's XML, without parsing it."""

    rows: int = 0  # the highest row number (openpyxl yields this many rows)
    too_large: str | None = None  # why the sheet cannot be read, in one sentence
    formulas: dict[int, list[int]] = field(default_factory=dict)  # row -> 1-based columns


@dataclass
class Sheet:
    """One worksheet as the import sees it: its name, first rows and scan."""

    name: str
    hidden: bool
    scan: SheetScan
    head: list[list[str]] = field(default_factory=list)  # the first rows, as text


def column_letter(index: int) -> str:
    """1 -> 'A', 28 -> 'AB'."""
    letters = ""
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def cell_text(value: object) -> str:
    """An XLSX cell as the text a person sees (12.0 -> '12', dates ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


# -- X1: the archive -----------------------------------------------------------------------


def _entry_count(data: bytes) -> int:
    """The number of entries the end-of-central-directory record declares (before zipfile
    reads the whole directory into memory)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or len(data) < at + 22:
        raise ImportFailed(_("The file looks like XLSX but is damaged."))
    (entries,) = struct.unpack_from("<H", data, at + 10)
    if entries == 0xFFFF or data.rfind(b"PK\x06\x07", max(0, at - 20), at) >= 0:
        entries = MAX_PARTS + 1  # ZIP64: only for archives far beyond any client list
    return entries


def _too_big(limit_mb: float) -> str:
    return _(
        "The workbook unpacks to more than {limit} MB of data, far more than a "
        "client list needs (setting COMMS_MAX_XLSX_UNPACKED_MB); save the client sheet "
        "alone as a new workbook or as CSV and try again."
    ).format(limit=i18n.number(round(limit_mb)))


def check_archive(data: bytes, limits: Limits) -> zipfile.ZipFile:
    """The archive, once its declared sizes are within the limits (X1)."""
    if _entry_count(data) > MAX_PARTS:
        raise ImportFailed(
            _(
                "The workbook has more than {parts} parts; it is not a client list "
                "(save the client sheet as a new workbook or as CSV)."
            ).format(parts=i18n.number(MAX_PARTS))
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, struct.error):
        raise ImportFailed(_("The file looks like XLSX but is damaged.")) from None
    xml = [i for i in archive.infolist() if i.filename.lower().endswith((".xml", ".rels"))]
    if sum(i.file_size for i in xml) > limits.unpacked:
        raise ImportFailed(_too_big(limits.unpacked / 1048576))
    for info in xml:
        name = info.filename.lower()
        if "/worksheets/" in name:
            continue  # streamed, and scanned first (X2)
        cap = limits.unpacked // 5 if name.endswith("sharedstrings.xml") else MAX_PART_BYTES
        if info.file_size > cap:
            raise ImportFailed(_too_big(cap / 1048576))
    return archive


# -- X2: one sheet's XML, scanned as bytes ---------------------------------------------------------


def _too_many_rows(limits: Limits) -> str:
    return _(
        "The sheet has more than {rows} rows; a client list may have at most "
        "{rows} (setting COMMS_MAX_ROWS). Split it into smaller files."
    ).format(rows=i18n.number(limits.rows))


def too_wide(columns: int, limits: Limits) -> str:
    return _(
        "The file has {columns} columns; a client list may have at most {most} "
        "columns (setting COMMS_MAX_COLUMNS). Remove the extra columns and try again."
    ).format(columns=i18n.number(columns), most=i18n.number(limits.columns))


def _too_many_cells(limits: Limits) -> str:
    return _(
        "A row of the sheet has more than {most} cells; a client list may have at "
        "most {most} columns (setting COMMS_MAX_COLUMNS). Remove the extra columns "
        "and try again."
    ).format(most=i18n.number(limits.columns))


def _row_too_big() -> str:
    return _("A row of the sheet holds more than {size} MB; it is not a client list.").format(
        size=MAX_ROW_BYTES // 1048576
    )


def _formula_cells(buf: bytes, start: int, end: int) -> list[int]:
    """1-based columns of the row's formula cells that have no saved value."""
    out = []
    column = 0
    starts = [m.start() for m in _CELL.finditer(buf, start, end)] + [end]
    for s, e in zip(starts, starts[1:], strict=False):
        tag_end = buf.find(b">", s, e)
        ref = _CELL_COLUMN.search(buf, s, tag_end if tag_end >= 0 else e)
        column = _column_index(ref.group(1)) if ref else column + 1
        if _FORMULA.search(buf, s, e) and not _VALUE.search(buf, s, e):
            out.append(column)
    return out


def scan_sheet(stream: Any, limits: Limits) -> SheetScan:
    """Rows, widest row and formulas without values of one sheet's XML (X2)."""
    scan = SheetScan()
    max_row = limits.rows + 100  # junk title rows and the header sit above the data
    # A row of more than `columns` cells is longer than this (the shortest cell is <c/>).
    long_row = 4 * limits.columns
    buf = b""
    in_data = False
    done = False
    while not done:
        chunk = stream.read(_CHUNK)
        if not chunk:
            done = True
        buf += chunk
        if not in_data:
            m = _SHEET_DATA.search(buf)
            if m is None:
                buf = buf[-256:]  # a tag split across two reads
                continue
            in_data = True
            buf = buf[m.start() :]
            if buf[: buf.find(b">") + 1].endswith(b"/>"):
                break  # <sheetData/>: no rows
        end = _SHEET_DATA_END.search(buf)
        if end is not None:
            buf, done = buf[: end.start()], True
        starts = [m.start() for m in _ROW.finditer(buf)]
        if done:
            starts.append(len(buf))
        if len(starts) < 2:
            if len(buf) > MAX_ROW_BYTES:
                scan.too_large = _row_too_big()
                return scan
            if len(_CELL.findall(buf)) > limits.columns:
                scan.too_large = _too_many_cells(limits)
                return scan
            continue
        first, last = starts[0], starts[-1]
        numbers = _ROW_NUMBERS.findall(buf, first, last)
        if len(numbers) == len(starts) - 1:  # every row says its number (Excel, openpyxl)
            scan.rows = max(scan.rows, max(map(int, numbers)))
        else:  # openpyxl counts on from the last number for a row without one
            for s, e in zip(starts, starts[1:], strict=False):
                tag_end = buf.find(b">", s, e)
                number = _ROW_NUMBER.search(buf, s, tag_end if tag_end >= 0 else e)
                scan.rows = int(number.group(1)) if number else scan.rows + 1
        if scan.rows > max_row:
            scan.too_large = _too_many_rows(limits)
            return scan
        has_formulas = _FORMULA.search(buf, first, last) is not None
        for s, e in zip(starts, starts[1:], strict=False):
            if e - s > long_row:
                cells = len(_CELL.findall(buf, s, e))
                if cells > limits.columns:
                    scan.too_large = _too_many_cells(limits)
                    return scan
            if has_formulas and _FORMULA.search(buf, s, e):
                columns = _formula_cells(buf, s, e)
                if columns:
                    tag_end = buf.find(b">", s, e)
                    number = _ROW_NUMBER.search(buf, s, tag_end if tag_end >= 0 else e)
                    scan.formulas[int(number.group(1)) if number else scan.rows] = columns
        # Keep the row still being read; a giant one is refused before it is whole.
        buf = buf[last:]
    return scan


# -- X3: the sheets, and the rows of the chosen one -------------------------------------------------


def _scan(archive: zipfile.ZipFile, name: str, limits: Limits) -> SheetScan:
    try:
        with archive.open(name) as stream:
            return scan_sheet(stream, limits)
    except Exception:  # a bad CRC, zlib.error ...: a damaged archive
        raise ImportFailed(_("The file looks like XLSX but is damaged.")) from None


def open_workbook(data: bytes, limits: Limits) -> tuple[Any, zipfile.ZipFile, dict[str, SheetScan]]:
    """The openpyxl workbook (read-only, saved values), its archive and every sheet's scan,
    after X1 and X2: openpyxl reads a sheet without a <dimension> whole when it opens
    the workbook, so every sheet is scanned, and refused when too large, before that."""
    import openpyxl  # only needed for XLSX

    archive = check_archive(data, limits)
    scans: dict[str, SheetScan] = {}
    try:
        for info in archive.infolist():
            name = info.filename
            if "worksheets/" in name.lower() and name.lower().endswith(".xml"):
                scans[name] = scan = _scan(archive, name, limits)
                if scan.too_large:
                    raise ImportFailed(scan.too_large)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except ImportFailed:
        archive.close()
        raise
    except Exception as exc:  # openpyxl raises many types for broken files
        archive.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportFailed(
            _("The XLSX file cannot be opened: {reason}.").format(reason=reason)
        ) from None
    return book, archive, scans


def sheets(
    book: Any, archive: zipfile.ZipFile, scans: dict[str, SheetScan], limits: Limits, head: int
) -> list[Sheet]:
    """Every worksheet with its scan (X2) and first `head` rows."""
    out = []
    for ws in book.worksheets:
        path = ws._worksheet_path.lstrip("/")  # openpyxl's name of the part
        scan = scans.get(path) or _scan(archive, path, limits)  # a part under another folder
        if scan.too_large:
            raise ImportFailed(scan.too_large)
        sheet = Sheet(ws.title, ws.sheet_state != "visible", scan)
        sheet.head = [row for _, row in rows(ws, limits, stop=head)]
        out.append(sheet)
    return out


def rows(ws: Any, limits: Limits, stop: int | None = None, keep: frozenset[int] = frozenset()):
    """(row number, cells as text) of a worksheet's rows that hold a value, streamed,
    trailing empty cells dropped (X3). A blank row is not a row of the list: a sheet
    has no "empty row" to report (openpyxl yields one for every row number it skips).
    Rows in `keep` (formulas without values) are yielded even when they look empty."""
    ws.reset_dimensions()  # X3: a false <dimension> must not pad rows or add empty ones
    for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
        if stop is not None and number > stop:
            return
        if number > limits.rows + 100:
            raise ImportFailed(_too_many_rows(limits))
        width = len(values)
        while width and values[width - 1] in (None, ""):
            width -= 1
        if width > limits.columns:
            raise ImportFailed(too_wide(width, limits))
        cells = [cell_text(v) for v in values[:width]]
        if any(cells) or number in keep:
            yield number, cells
