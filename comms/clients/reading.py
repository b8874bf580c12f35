"""Reading an uploaded file: bytes -> text -> header + rows, column mapping, bulk checks.

Nothing here touches the database. `decode` and `sniff_delimiter` turn bytes
into text and guess the separator (client lists and suppression lists alike);
`read_table` turns CSV / XLSX bytes into a `RawTable` (encoding, delimiter, sheet
and header row detected; workbooks through comms.clients.workbook, which keeps
zip bombs out); `read_source` reads a path, refusing devices, FIFOs and files
over the upload limit before reading them; `detect_mapping` guesses which column is the name,
e-mail, phone ... from Czech and English header names.
A whole file that cannot be read raises ImportFailed with one sentence a person
can act on. The caps (rows, columns, upload and unpacked size) come from comms.config.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from comms import config, i18n
from comms.clients import workbook
from comms.clients.workbook import Limits
from comms.errors import ImportFailed
from comms.i18n import N_, _, ngettext
from comms.rules.text import fold

# Junk title rows that Excel exports put above the header are looked for here.
HEADER_SCAN_ROWS = 20

# Fields a column can be mapped to; anything else is kept as an attribute.
FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "city",
    "tags",
    "consent",
    "consent_email",
    "consent_sms",
    "lists",
)
ATTRIBUTE = "attribute"  # keep the column as an attribute (the default)
IGNORE = "ignore"  # drop the column
TARGETS = (*FIELDS, ATTRIBUTE, IGNORE)

# Header synonyms, compared as header_words (folded, ASCII words only).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "full name",
        "fullname",
        "jmeno a prijmeni",
        "cele jmeno",
        "klient",
        "client",
        "zakaznik",
        "customer",
        "contact",
        "kontakt",
        "contact name",
        "nazev",
        "display name",
    ),
    "first_name": ("first name", "firstname", "given name", "krestni jmeno", "krestni", "jmeno"),
    "last_name": ("last name", "lastname", "surname", "family name", "prijmeni"),
    "email": (
        "email",
        "e mail",
        "mail",
        "email address",
        "e mail address",
        "emailova adresa",
        "e mailova adresa",
        "adresa email",
        "email 1",
        "primary email",
    ),
    "phone": (
        "phone",
        "telephone",
        "tel",
        "telefon",
        "mobil",
        "mobile",
        "mobile phone",
        "cell",
        "cell phone",
        "gsm",
        "phone number",
        "telefonni cislo",
        "cislo telefonu",
        "mobilni telefon",
        "mobilni cislo",
        "tel cislo",
        "mobile number",
    ),
    "company": (
        "company",
        "firma",
        "spolecnost",
        "organizace",
        "organization",
        "organisation",
        "employer",
        "zamestnavatel",
        "company name",
        "nazev firmy",
    ),
    "city": ("city", "town", "mesto", "obec", "misto", "sidlo"),
    "tags": ("tags", "tag", "stitky", "stitek", "tagy", "labels", "label"),
    "consent": (
        "consent",
        "souhlas",
        "gdpr",
        "gdpr souhlas",
        "souhlas gdpr",
        "marketing consent",
        "souhlas s marketingem",
        "opt in",
        "optin",
        "marketingovy souhlas",
    ),
    "consent_email": (
        "email consent",
        "e mail consent",
        "consent email",
        "consent e mail",
        "souhlas email",
        "souhlas e mail",
        "email opt in",
    ),
    "consent_sms": ("sms consent", "consent sms", "souhlas sms", "sms opt in"),
    "lists": ("lists", "seznamy"),  # the export's column: a client's lists, ' | ' between
}
# The export's own columns (comms.clients.export) that the store computes: a file
# that has all three is that export, and they are not imported again.
EXPORT_COMPUTED = ("id", "email_valid", "phone_kind")
LIST_SEPARATOR = "|"
_SYNONYM_INDEX = {syn: fld for fld, syns in _SYNONYMS.items() for syn in syns}


def header_words(header: str) -> str:
    """A header as folded ASCII words: 'Příjmení:' -> 'prijmeni', 'Plocha (m²)' -> 'plocha m2'."""
    # NFKC first: Excel's no-break spaces, superscripts and ligatures become plain
    # characters; letters without an ASCII form ('ß', 'ł') are dropped.
    text = fold(unicodedata.normalize("NFKC", str(header)))
    text = text.encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def attribute_key(header: str) -> str:
    """A header as a template variable name: 'Datum narození' -> 'datum_narozeni'."""
    key = header_words(header).replace(" ", "_")
    if not key:
        return "column"
    if key[0].isdigit():
        key = "col_" + key
    return key


def field_for_header(header: str) -> str | None:
    """The field a header names (Czech or English synonym), or None."""
    return _SYNONYM_INDEX.get(header_words(header))


@dataclass
class RawTable:
    """An uploaded file read as text: the header and the data rows with their file row numbers."""

    kind: str  # 'csv' | 'xlsx'
    encoding: str | None
    delimiter: str | None
    header_row: int  # 1-based row (CSV: line) number of the header in the file
    headers: list[str]  # unique display names ("E-mail", "E-mail (2)" for a repeat)
    rows: list[list[str]]  # each padded / cut to len(headers)
    row_numbers: list[int]  # 1-based row / line number of each data row in the file
    # Row number -> how many cells the row has, for rows with values right of the header's
    # last column: in a CSV file a stray separator shifted them (not imported); in a
    # workbook they are values in a column without a name (ignored).
    wide: dict[int, int] = field(default_factory=dict)
    # Row number -> headers of its formula cells that have no saved value (XLSX).
    formulas: dict[int, list[str]] = field(default_factory=dict)
    sheet: str | None = None  # the worksheet read (XLSX)
    sheets: list[str] = field(default_factory=list)  # every worksheet of the workbook
    notes: list[str] = field(default_factory=list)  # e.g. other sheets that look like lists

    @property
    def delimiter_name(self) -> str:
        return {",": "comma", ";": "semicolon", "\t": "tab"}.get(self.delimiter or "", "-")


def limits() -> Limits:
    """The configured caps on rows, columns and a workbook's unpacked size."""
    return Limits(config.max_rows(), config.max_columns(), config.max_unpacked_bytes())


# -- bytes -> text -------------------------------------------------------------


class NotText(ImportFailed):
    """The bytes are binary (an image, a program, an old .xls ...), not text at all."""


# Bytes that are letters in Windows-1250 (Š Ś Ť Ž Ź š ś ť ž ź) but C1 control codes
# in ISO-8859-2, and bytes that are Czech letters in ISO-8859-2 (Š Ť Ž š ť ž)
# but symbols in Windows-1250 (© « ® ą » ľ). The rest of Czech is identical.
_CP1250_ONLY = bytes([0x8A, 0x8C, 0x8D, 0x8E, 0x8F, 0x9A, 0x9C, 0x9D, 0x9E, 0x9F])
_ISO_ONLY = bytes([0xA9, 0xAB, 0xAE, 0xB9, 0xBB, 0xBE])
# How much of a file the binary and code-page checks look at: enough for the header
# and many rows, and it keeps them at a few milliseconds on a 10 MB file.
_SNIFF_BYTES = 65536
_BINARY = N_("The file is binary, not a CSV or XLSX table.")


def _count_any(data: bytes, chars: bytes) -> int:
    return sum(data.count(bytes([b])) for b in chars)


def _is_windows_cyrillic(data: bytes) -> bool:
    """Whether non-UTF-8 bytes read better as Windows-1251 (Russian, Ukrainian) than as Czech.

    charset-normalizer judges this well. It is not asked to choose between
    Windows-1250 and ISO-8859-2: it reads Czech ISO-8859-2 as Windows-1250 and
    Polish Windows-1250 as Windows-1252, where the byte counts above do not err.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_SNIFF_BYTES], cp_isolation=["cp1250", "iso8859_2", "cp1251"]).best()
    return best is not None and best.encoding == "cp1251"


def _no_nul(text: str | bytes, nul: str | bytes) -> None:
    """One rule for the whole file: a NUL anywhere means binary or damaged, never a cell."""
    at = text.find(nul)  # type: ignore[arg-type]
    if at < 0:
        return
    if at < _SNIFF_BYTES:
        raise NotText(_(_BINARY))
    line = text.count("\n" if isinstance(text, str) else b"\n", 0, at) + 1  # type: ignore[arg-type]
    raise NotText(
        _(
            "The file has a NUL byte on line {line}: it is damaged or binary, not a CSV table. "
            "Save it again from the program that made it."
        ).format(line=i18n.number(line))
    )


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-8 (BOM or not), UTF-16 with BOM, Windows-1250,
    ISO-8859-2 or Windows-1251; NotText when the bytes are binary (a NUL anywhere)."""
    if data.startswith(b"\xef\xbb\xbf"):
        text, encoding = _decode_or_fail(data[3:], "utf-8"), "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, encoding = _decode_or_fail(data, "utf-16"), "utf-16"  # Excel's "Unicode text"
    else:
        _no_nul(data, b"\x00")
        text, encoding = _decode_without_bom(data)
    _no_nul(text, "\x00")
    if _looks_binary(text):
        raise NotText(_(_BINARY))
    return text, encoding


def _decode_without_bom(data: bytes) -> tuple[str, str]:
    """UTF-8, else the Windows or ISO code page the bytes are most likely written in."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _is_windows_cyrillic(data):
        return data.decode("cp1251", errors="replace"), "cp1251"
    cp = _count_any(data, _CP1250_ONLY)
    iso = _count_any(data, _ISO_ONLY)
    order = ["iso-8859-2", "cp1250"] if iso > cp else ["cp1250", "iso-8859-2"]
    for enc in order:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise ImportFailed(
        _("The file's text encoding is not readable (expected UTF-8 or Windows-1250).")
    )


def _decode_or_fail(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            _(
                "The file says it is {encoding} but byte {byte} is not: save it again as UTF-8 CSV."
            ).format(encoding=encoding.upper(), byte=exc.start)
        ) from None


def _looks_binary(text: str) -> bool:
    sample = text[:_SNIFF_BYTES]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    c1 = sum(1 for ch in sample if 0x80 <= ord(ch) < 0xA0)
    return (controls + c1) / len(sample) > 0.02


def sniff_delimiter(text: str) -> str:
    """The delimiter among ; , tab that splits the first lines most consistently."""
    lines = [ln for ln in text[:200_000].splitlines() if ln.strip()][:50]
    if not lines:
        return ","
    best, best_score = ",", -1.0
    for delim in (";", "\t", ","):
        try:
            counts = [len(r) - 1 for r in csv.reader(lines, delimiter=delim)]
        except csv.Error:
            continue
        counts = [c for c in counts if c > 0]
        if not counts:
            continue
        # The most common count, weighted by how many lines share it.
        mode = max(set(counts), key=counts.count)
        score = counts.count(mode) * (1 + min(mode, 50) / 100)
        if score > best_score:
            best, best_score = delim, score
    return best


# -- file -> rows ----------------------------------------------------------------


def _check_line_widths(text: str, delimiter: str, cap: Limits) -> int:
    """Refuse a line with far more separators than a list has columns, before csv builds it
    (50 MB of ';' would be 50 million cells). Only lines long enough to hold that many are
    counted, so a normal file costs one split. Returns the number of lines."""
    most = 4 * cap.columns + 16  # quoted values may hold separators too
    lines = text.splitlines()
    if max(map(len, lines), default=0) <= most:
        return len(lines)
    for number, line in enumerate(lines, start=1):
        if len(line) > most and line.count(delimiter) > most:
            raise ImportFailed(
                _(
                    "Line {line} has {cells} cells; a client list may have at most {most} "
                    "columns (setting COMMS_MAX_COLUMNS). Remove the extra columns and try again."
                ).format(
                    line=i18n.number(number),
                    cells=i18n.number(line.count(delimiter) + 1),
                    most=i18n.number(cap.columns),
                )
            )
    return len(lines)


def too_wide_tail(cap: Limits) -> str:
    return (
        f"a client list may have at most {cap.columns:,} columns (setting COMMS_MAX_COLUMNS). "
        "Remove the extra columns and try again."
    )


def _read_csv(text: str, delimiter: str, cap: Limits) -> tuple[list[list[str]], list[int]]:
    """The rows and the line each starts on (a quoted value may hold line breaks)."""
    lines = _check_line_widths(text, delimiter, cap)
    most = cap.rows + HEADER_SCAN_ROWS
    if lines <= most:  # never more rows than lines: read them all at once
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise ImportFailed(_malformed(reader.line_num, exc)) from None
        if reader.line_num == len(rows):  # one line each: row n is on line n
            return rows, list(range(1, len(rows) + 1))
    rows = []
    numbers: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            rows.append(row)
            numbers.append(start)
            start = reader.line_num + 1
            if len(rows) > most:
                raise ImportFailed(_too_many_rows(cap))
    except csv.Error as exc:
        raise ImportFailed(_malformed(reader.line_num, exc)) from None
    return rows, numbers


def _malformed(line: int, exc: csv.Error) -> str:
    return _("The CSV file is malformed at line {line}: {error}.").format(line=line, error=exc)


def _too_many_rows(cap: Limits) -> str:
    return _(
        "The file has more than {rows} rows; a client list may have at most "
        "{rows} (setting COMMS_MAX_ROWS). Split it into smaller files."
    ).format(rows=i18n.number(cap.rows))


def _header_hits(row: list[str]) -> int:
    return sum(1 for c in row if c.strip() and field_for_header(c))


def _header_index(rows: list[list[str]]) -> int:
    """Index of the header among the first rows: the row naming most known fields,
    else the first row as wide as the data below it (junk title rows are narrow)."""
    scan = rows[:HEADER_SCAN_ROWS]
    hits = [_header_hits(r) for r in scan]
    if max(hits, default=0) > 0:
        return hits.index(max(hits))
    widths = [sum(1 for c in r if c.strip()) for r in scan]
    widest = max(widths, default=0)
    for i, w in enumerate(widths):
        if w and w >= max(1, widest // 2):
            return i
    return 0


def _has_rows_below_header(head: list[list[str]]) -> bool:
    """Whether some row below the header (found in `head`) has a value."""
    if not any(any(c.strip() for c in r) for r in head):
        return False
    h = _header_index(head)
    return any(any(c.strip() for c in r) for r in head[h + 1 :])


def _names_fields(head: list[list[str]]) -> bool:
    return any(_header_hits(r) for r in head[:HEADER_SCAN_ROWS]) and _has_rows_below_header(head)


def _unique_headers(cells: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, cell in enumerate(cells, start=1):
        name = cell.strip() or f"Column {i}"
        base = name
        if name.lower() in seen:
            seen[base.lower()] += 1
            name = f"{base} ({seen[base.lower()]})"
        seen.setdefault(name.lower(), 1)
        out.append(name)
    return out


@dataclass
class _Read:
    """Rows of one file (or sheet) before the header is found."""

    rows: list[list[str]]
    numbers: list[int]
    formulas: dict[int, list[int]] = field(default_factory=dict)
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _choose_sheet(found: list[workbook.Sheet], sheet: str | None) -> workbook.Sheet:
    """The named sheet, else the first visible one whose header names a known column and
    has rows below it, else the first with any rows below a header, else the first."""
    if sheet is not None:
        for s in found:
            if s.name == sheet:
                return s
        names = ", ".join(f"'{s.name}'" for s in found)
        raise ImportFailed(
            _("The workbook has no sheet '{sheet}'; its sheets are {names}.").format(
                sheet=sheet, names=names
            )
        )
    visible = [s for s in found if not s.hidden] or found
    for test in (_names_fields, _has_rows_below_header):
        for s in visible:
            if test(s.head):
                return s
    return visible[0]


def _read_xlsx(data: bytes, sheet: str | None, cap: Limits) -> _Read:
    book, archive, scans = workbook.open_workbook(data, cap)
    try:
        found = workbook.sheets(book, archive, scans, cap, HEADER_SCAN_ROWS + 5)
        if not found:
            raise ImportFailed(_("The workbook has no worksheets."))
        chosen = _choose_sheet(found, sheet)
        ws = book[chosen.name]
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, cells in workbook.rows(ws, cap, keep=frozenset(chosen.scan.formulas)):
            rows.append(cells)
            numbers.append(number)
        notes = [
            ngettext(
                "Sheet '{sheet}' also looks like a client list ({rows} row) and was not "
                "imported; choose that sheet to import it.",
                "Sheet '{sheet}' also looks like a client list ({rows} rows) and was not "
                "imported; choose that sheet to import it.",
                s.scan.rows,
            ).format(sheet=s.name, rows=i18n.number(s.scan.rows))
            for s in found
            if s is not chosen
            and not s.hidden
            and s.scan.too_large is None
            and _names_fields(s.head)
        ]
        if len(found) > 1:
            notes.insert(
                0,
                _("Read sheet '{sheet}' of {count}.").format(sheet=chosen.name, count=len(found)),
            )
        return _Read(
            rows,
            numbers,
            chosen.scan.formulas,
            chosen.name,
            [s.name for s in found],
            notes,
        )
    finally:
        book.close()
        archive.close()


def read_table(data: bytes, filename: str | None = None, *, sheet: str | None = None) -> RawTable:
    """Read CSV or XLSX bytes into a RawTable; ImportFailed when it is not a usable table.

    sheet: the worksheet to read (XLSX); by default the first whose header names a
    known column and has rows below it.
    """
    if not data or not data.strip():
        raise ImportFailed(_("The file is empty."))
    cap = limits()
    name = (filename or "").lower()
    encoding = delimiter = None
    if data.startswith(b"PK\x03\x04"):
        kind = "xlsx"
        read = _read_xlsx(data, sheet, cap)
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFailed(_("Old Excel .xls files are not supported: save it as .xlsx or CSV."))
    elif name.endswith((".xlsx", ".xlsm")):
        raise ImportFailed(_("The file is named .xlsx but is not an Excel workbook."))
    else:
        text, encoding = decode(data)
        delimiter = sniff_delimiter(text)
        kind = "csv"
        read = _Read(*_read_csv(text, delimiter, cap))
    rows, numbers = read.rows, read.numbers
    # Excel leaves trailing empty cells on every row; they are not columns.
    if not any(any(c.strip() for c in r) for r in rows):
        if read.formulas:
            raise ImportFailed(_formulas_only(read))
        raise ImportFailed(_("The file is empty: it has no cells with text."))
    h = _header_index(rows)
    header_cells = rows[h]
    # The header decides the width: cells to the right of the last named column
    # have no name to map (see RawTable.wide).
    width = max((i + 1 for i, c in enumerate(header_cells) if c.strip()), default=0)
    if width > cap.columns:
        raise ImportFailed(workbook.too_wide(width, cap))
    headers = _unique_headers((header_cells + [""] * width)[:width])
    data_rows: list[list[str]] = []
    data_numbers: list[int] = []
    wide: dict[int, int] = {}
    for row, number in zip(rows[h + 1 :], numbers[h + 1 :], strict=True):
        if len(row) != width:
            if len(row) > width:
                cells = max((i + 1 for i, c in enumerate(row) if c.strip()), default=0)
                if cells > width:
                    wide[number] = cells
                row = row[:width]
            else:
                row = row + [""] * (width - len(row))
        data_rows.append(row)
        data_numbers.append(number)
    if len(data_rows) > cap.rows:
        raise ImportFailed(_too_many_rows(cap))
    formulas = {
        n: [headers[c - 1] if c <= width else f"column {workbook.column_letter(c)}" for c in cols]
        for n, cols in read.formulas.items()
        if n > numbers[h]
    }
    if not any(any(c.strip() for c in r) for r in data_rows):
        if formulas:
            raise ImportFailed(_formulas_only(read))
        raise ImportFailed(
            _("The file has a header (row {row}) but no client rows below it.").format(
                row=numbers[h]
            )
        )
    return RawTable(
        kind=kind,
        encoding=encoding,
        delimiter=delimiter,
        header_row=numbers[h],
        headers=headers,
        rows=data_rows,
        row_numbers=data_numbers,
        wide=wide,
        formulas=formulas,
        sheet=read.sheet,
        sheets=read.sheets,
        notes=read.notes,
    )


FORMULA_WITHOUT_VALUE = "formula without a saved value"
SAVE_IN_EXCEL = "open the file in Excel and save it, then import it again"


def _formulas_only(read: _Read) -> str:
    if read.sheet:
        text = _(
            "The cells of sheet '{sheet}' are formulas without saved values (the program "
            "that wrote the file did not calculate them): open the file in Excel and save "
            "it, then import it again."
        )
    else:
        text = _(
            "The cells are formulas without saved values (the program that wrote the "
            "file did not calculate them): open the file in Excel and save it, then "
            "import it again."
        )
    return text.format(sheet=read.sheet)


def _megabytes(n_bytes: int, digits: int) -> str:
    """Megabytes without grouping, with the language's decimal mark ('3072.0', '3072,0')."""
    from babel.numbers import format_decimal

    fmt = "0." + "0" * digits if digits else "0"
    return format_decimal(n_bytes / 1048576, format=fmt, locale=i18n.babel_locale())


def _too_large(size: int, limit: int) -> ImportFailed:
    return ImportFailed(
        _(
            "The file is {size} MB; the upload limit is {limit} MB (setting COMMS_MAX_UPLOAD_MB)."
        ).format(size=_megabytes(size, 1), limit=_megabytes(limit, 0))
    )


def read_source(source: bytes | str | Path, limit: int | None = None) -> tuple[bytes, str | None]:
    """Bytes and file name from bytes or a path, refused beyond `limit` bytes (default:
    the upload limit) before reading; only regular files are read (a device such as
    /dev/zero never ends, and a FIFO blocks until someone writes to it)."""
    limit = config.max_upload_bytes() if limit is None else limit
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) > limit:
            raise _too_large(len(source), limit)
        return bytes(source), None
    path = Path(source)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what it is.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ImportFailed(_("No such file: {path}.").format(path=path)) from None
    except IsADirectoryError:
        raise ImportFailed(_("{path} is a folder, not a file.").format(path=path)) from None
    except OSError as exc:
        raise ImportFailed(
            _("{path} cannot be read: {reason}.").format(path=path, reason=exc.strerror)
        ) from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ImportFailed(_("{path} is a folder, not a file.").format(path=path))
        if not stat.S_ISREG(mode):
            if stat.S_ISFIFO(mode):
                what = _(
                    "{path} is a named pipe (FIFO), not a file: save the list as a file first."
                )
            else:
                what = _("{path} is a device or socket, not a file: save the list as a file first.")
            raise ImportFailed(what.format(path=path))
        size = os.fstat(fd).st_size
        if size > limit:
            raise _too_large(size, limit)
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ImportFailed(
                _("{path} cannot be read: {reason}.").format(path=path, reason=exc.strerror)
            ) from None
    if len(data) > limit:  # it grew while being read
        raise _too_large(len(data), limit)
    return data, path.name


# -- mapping -------------------------------------------------------------------------


def is_own_export(headers: list[str]) -> bool:
    """Whether the headers are those of this app's CSV export (comms.clients.export)."""
    return set(EXPORT_COMPUTED) <= set(headers)


def detect_mapping(headers: list[str]) -> dict[str, str]:
    """{header: target} guessed from synonyms; unknown columns become attributes.

    The export's computed columns (EXPORT_COMPUTED) are ignored in the export itself.
    """
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    own = is_own_export(headers)
    for header in headers:
        if own and header in EXPORT_COMPUTED:
            mapping[header] = IGNORE
            continue
        fld = field_for_header(header)
        if fld and fld not in taken:
            mapping[header] = fld
            taken.add(fld)
        else:
            mapping[header] = ATTRIBUTE
    return _settle_names(mapping)


def _settle_names(mapping: dict[str, str]) -> dict[str, str]:
    """'Jméno' alone is the whole name; 'Name' beside 'Surname' is the first name."""
    fields = set(mapping.values())
    if "first_name" in fields and not fields & {"last_name", "name"}:
        return {h: ("name" if t == "first_name" else t) for h, t in mapping.items()}
    if "name" in fields and "last_name" in fields and "first_name" not in fields:
        return {h: ("first_name" if t == "name" else t) for h, t in mapping.items()}
    return mapping


def check_mapping(headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """A full mapping over headers from a user's (partial) one; ImportFailed when unusable."""
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise ImportFailed(
            _(
                "The mapping names column {column!r}, which the file does not have "
                "(columns: {columns})."
            ).format(column=unknown[0], columns=", ".join(headers[:20]))
        )
    full = detect_mapping(headers)
    # A user's choice wins; a field the user gave to one column leaves the guessed one.
    chosen = {t for t in mapping.values() if t in FIELDS}
    for h, t in list(full.items()):
        if h not in mapping and t in chosen:
            full[h] = ATTRIBUTE
    for h, t in mapping.items():
        if t not in TARGETS:
            raise ImportFailed(
                _("Column {column!r} is mapped to {target!r}; choose one of: {targets}.").format(
                    column=h, target=t, targets=", ".join(TARGETS)
                )
            )
        full[h] = t
    twice = [t for t in FIELDS if list(full.values()).count(t) > 1]
    if twice:
        cols = [h for h, t in full.items() if t == twice[0]]
        raise ImportFailed(
            _("Field {field!r} is mapped to several columns: {columns}.").format(
                field=twice[0], columns=", ".join(cols)
            )
        )
    if not set(full.values()) & {"name", "first_name", "last_name", "email", "phone"}:
        raise ImportFailed(
            _(
                "No usable column: none of the columns is a name, e-mail or phone "
                "(columns: {columns}). Map one in the column mapping."
            ).format(columns=", ".join(headers[:20]))
        )
    return full
