"""CSV exports that are safe to open in a spreadsheet.

A cell that starts with = + - @ (or a tab / carriage return, which some
spreadsheets skip before parsing) is read as a formula by Excel and
LibreOffice; a formula can exfiltrate data or run commands (OWASP "CSV
injection"). Such text cells get a leading apostrophe, which spreadsheets show
as plain text. Numbers are left alone: a negative number is not a formula.
`safe_cell` is the rule for one Python value, `safe_sql` the same rule as SQL
for exports that DuckDB writes itself.

The file is UTF-8 with a BOM so that Excel shows accented names correctly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """One value as CSV text, neutralised when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return "" if math.isnan(value) else repr(float(value))
    pd = sys.modules.get("pandas")  # no pandas value exists unless pandas was loaded
    if pd is not None and isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else value.isoformat(sep=" ")
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        try:
            if pd is not None and pd.isna(value):
                return ""
        except (TypeError, ValueError):  # arrays and other non-scalars
            pass
        text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def safe_sql(expr: str) -> str:
    """SQL for a text expression that no spreadsheet runs as a formula (safe_cell's rule)."""
    firsts = ", ".join(f"chr({ord(c)})" for c in FORMULA_PREFIXES)
    return f"CASE WHEN left({expr}, 1) IN ({firsts}) THEN chr(39) || {expr} ELSE {expr} END"


def rows_to_csv(
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
    columns: Sequence[str],
    *,
    delimiter: str = ",",
) -> bytes:
    """Rows (dicts or sequences in `columns` order) as formula-safe UTF-8 CSV bytes with a BOM."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        if isinstance(row, Mapping):
            writer.writerow([safe_cell(row.get(c)) for c in columns])
        else:
            writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def _text_column(s: pd.Series) -> pd.Series:
    """A non-numeric column as text (JSON for dicts / lists), neutralised where needed."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s):
        return s.map({True: "true", False: "false"})
    if s.dtype == object:
        s = s.map(
            lambda v: (
                json.dumps(v, ensure_ascii=False, default=str)
                if isinstance(v, (dict, list, tuple))
                else v
            ),
            na_action="ignore",
        ).astype("str")
    elif not pd.api.types.is_string_dtype(s):
        s = s.astype("str")
    risky = s.str.startswith(FORMULA_PREFIXES, na=False)
    return s.where(~risky, "'" + s)


def dataframe_to_csv(
    df: pd.DataFrame, *, delimiter: str = ",", header: bool = True, bom: bool = True
) -> bytes:
    """A DataFrame as formula-safe UTF-8 CSV bytes (index not written), vectorised.

    header=False and bom=False let a caller append further chunks of one file.
    """
    import pandas as pd

    out = df.copy(deep=False)
    for col in out.columns:
        series = out[col]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if not (numeric or pd.api.types.is_datetime64_any_dtype(series)):
            out[col] = _text_column(series)
    text = out.to_csv(
        index=False,
        sep=delimiter,
        lineterminator="\r\n",
        header=[safe_cell(str(c)) for c in out.columns] if header else False,
    )
    data = text.encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data
