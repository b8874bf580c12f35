"""Formula-injection-safe CSV export."""

import csv
import io
from datetime import datetime

import pandas as pd

from comms.csv_export import dataframe_to_csv, rows_to_csv, safe_cell


def read_back(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Excel reads accents"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_every_formula_prefix_gets_an_apostrophe():
    for text in ["=1+1", "+420 777", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']:
        assert safe_cell(text) == "'" + text


def test_plain_text_numbers_and_empty_values_are_unchanged():
    assert safe_cell("Jana Nováková") == "Jana Nováková"
    assert safe_cell("a=b") == "a=b"
    assert safe_cell(-5) == "-5"
    assert safe_cell(2.5) == "2.5"
    assert safe_cell(None) == ""
    assert safe_cell(float("nan")) == ""
    assert safe_cell(True) == "true"
    assert safe_cell(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"
    assert safe_cell({"reason": "=x"}) == '{"reason": "=x"}'


def test_rows_to_csv_quotes_and_neutralises():
    data = rows_to_csv(
        [{"name": "=cmd|' /C calc'!A0", "note": 'says "hi", bye'}, {"name": "Petr", "note": None}],
        ["name", "note"],
    )
    assert read_back(data) == [
        ["name", "note"],
        ["'=cmd|' /C calc'!A0", 'says "hi", bye'],
        ["Petr", ""],
    ]


def test_dataframe_export_keeps_types_and_is_safe():
    df = pd.DataFrame({"id": [1, 2], "who": ["@admin", "Žofie"], "n": [-1.5, 3.0]})
    assert read_back(dataframe_to_csv(df)) == [
        ["id", "who", "n"],
        ["1", "'@admin", "-1.5"],
        ["2", "Žofie", "3.0"],
    ]


def test_dataframe_export_handles_json_bools_nulls_and_chunks():
    df = pd.DataFrame(
        {
            "=head": ["a", None],
            "detail": [{"error": "=550"}, None],
            "ok": [True, False],
            "n": pd.array([1, None], dtype="Int64"),
        }
    )
    first = dataframe_to_csv(df)
    more = dataframe_to_csv(df.iloc[:1], header=False, bom=False)
    assert read_back(first + more) == [
        ["'=head", "detail", "ok", "n"],
        ["a", '{"error": "=550"}', "true", "1"],
        ["", "", "false", ""],
        ["a", '{"error": "=550"}', "true", "1"],
    ]
    risky = pd.DataFrame({"x": ["+1", "-", "@a", "\tb", "ok"]})
    assert [r[0] for r in read_back(dataframe_to_csv(risky))[1:]] == [
        "'+1",
        "'-",
        "'@a",
        "'\tb",
        "ok",
    ]
