"""Import of client lists: encodings, delimiters, headers, mapping, normalisation, dedupe,
the report, all-or-nothing, and hostile files."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from comms import actionlog
from comms.clients import (
    ClientFilter,
    export_csv,
    get_client,
    preview_import,
    query_clients,
)
from comms.clients import import_clients as _import_clients
from comms.clients.reading import decode, detect_mapping, read_table, sniff_delimiter
from comms.clients.sample import load_sample_if_empty
from comms.errors import ImportFailed


def import_clients(store, source, **kw):
    """The import as these tests use it: consent stated for files without a consent column."""
    kw.setdefault("consent", "email,sms")
    return _import_clients(store, source, **kw)


CZECH = "Jméno;Příjmení;E-mail;Telefon;Město\r\nŠárka;Žďárská;sarka@seznam.cz;777 123 456;Šternberk\r\nŤaťána;Šťastná;tatana@email.cz;+420 602 111 222;Žatec\r\n"


def clients(store) -> list[dict]:
    return query_clients(store)


def one(store, **where) -> dict:
    rows = [c for c in clients(store) if all(c.get(k) == v for k, v in where.items())]
    assert len(rows) == 1, rows
    return rows[0]


# -- encodings and delimiters ---------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, expected",
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp1250", "cp1250"),
        ("iso-8859-2", "iso-8859-2"),
    ],
)
def test_czech_text_is_decoded_in_every_encoding(store, encoding, expected):
    report = import_clients(store, CZECH.encode(encoding), filename="a.csv", list_name="L")
    assert report.encoding == expected
    assert report.imported == 2
    names = sorted(c["name"] for c in clients(store))
    assert names == ["Šárka Žďárská", "Ťaťána Šťastná"]
    assert one(store, email="sarka@seznam.cz")["city"] == "Šternberk"


def test_cp1250_and_iso_8859_2_are_told_apart_by_their_distinct_letters():
    text = "Jméno;Město\nŠťastný Žluťoučký kůň;Šumperk\n"
    for enc in ("cp1250", "iso-8859-2"):
        decoded, found = decode(text.encode(enc))
        assert found == enc
        assert decoded == text


def test_windows_1251_cyrillic_is_read_as_cyrillic(store):
    text = (
        "Прізвище;Ім'я;E-mail;City\r\n"
        "Шевченко;Олена;olena@example.ua;Київ\r\n"
        "Коваленко;Іван;ivan@example.ua;Львів\r\n"
        "Бондаренко;Марія;maria@example.ua;Одеса\r\n"
    )
    assert decode(text.encode("cp1251")) == (text, "cp1251")
    report = import_clients(store, text.encode("cp1251"), filename="ua.csv")
    assert report.encoding == "cp1251" and report.imported == 3
    assert one(store, email="olena@example.ua")["city"] == "Київ"


def test_utf16_unicode_text_from_excel_is_read():
    text = "Name\tEmail\r\nJana Nová\tjana@example.cz\r\n"
    table = read_table(text.encode("utf-16"))
    assert table.encoding == "utf-16"
    assert table.delimiter == "\t"
    assert table.rows == [["Jana Nová", "jana@example.cz"]]


@pytest.mark.parametrize("delimiter, name", [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_delimiters_are_detected(store, delimiter, name):
    text = delimiter.join(["Name", "E-mail", "Company"]) + "\n"
    text += delimiter.join(["Jan Novák", "jan@example.com", '"Alfa, s.r.o."']) + "\n"
    text += delimiter.join(["Eva Malá", "eva@example.com", "Beta"]) + "\n"
    preview = preview_import(text.encode(), "x.csv")
    assert preview.delimiter == delimiter and preview.delimiter_name == name
    report = import_clients(store, text.encode(), filename="x.csv")
    assert report.imported == 2
    assert one(store, name="Jan Novák")["company"] == "Alfa, s.r.o."


def test_sniffer_prefers_the_consistent_delimiter():
    text = "Jméno;Poznámka\nJan;ano, ne, možná\nEva;jedna, dvě\n"
    assert sniff_delimiter(text) == ";"


# -- header row and mapping --------------------------------------------------------------


def test_junk_title_rows_above_the_header_are_skipped_and_row_numbers_kept(store):
    text = (
        "Export klientů;;;\n"
        "Vytvořeno 1.2.2025;;;\n"
        ";;;\n"
        "Jméno a příjmení;E-mail;Mobil;Poznámka\n"
        "Jan Novák;jan@example.cz;777123456;\n"
        "Eva Malá;eva@;777654321;pozor\n"
    )
    report = import_clients(store, text.encode("cp1250"), filename="export.csv")
    assert report.header_row == 4
    assert report.mapping["Jméno a příjmení"] == "name"
    assert report.mapping["Mobil"] == "phone"
    assert report.imported == 2
    assert [p["row"] for p in report.problems] == [6]
    assert report.problems[0]["reason"].startswith("invalid e-mail")


@pytest.mark.parametrize(
    "headers, expected",
    [
        (
            ["JMÉNO", "Prijmeni", "E-MAIL", "telefon", "MĚSTO", "Firma", "Štítky", "Souhlas"],
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "city",
                "company",
                "tags",
                "consent",
            ],
        ),
        (
            ["Name", "Surname", "Email Address", "Mobile", "City", "Company", "Tags", "Consent"],
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "city",
                "company",
                "tags",
                "consent",
            ],
        ),
        (["Jméno", "e-mail", "Tel."], ["name", "email", "phone"]),
        (["Full name", "mail", "Phone number", "Segment"], ["name", "email", "phone", "attribute"]),
        (
            ["Jméno", "Příjmení", "Souhlas e-mail", "Souhlas SMS"],
            ["first_name", "last_name", "consent_email", "consent_sms"],
        ),
    ],
)
def test_czech_and_english_header_synonyms(headers, expected):
    mapping = detect_mapping(headers)
    assert [mapping[h] for h in headers] == expected


def test_headers_with_no_break_spaces_and_superscripts(store):
    text = "E-mail\xa0address;Plocha (m²);Straße\njan@example.cz;80;Hlavní\n"
    report = import_clients(store, text.encode())
    assert report.mapping["E-mail\xa0address"] == "email"
    assert report.keys == {"Plocha (m²)": "plocha_m2", "Straße": "strae"}


def test_preview_shows_detection_and_an_explicit_mapping_corrects_it(store):
    text = "Kontaktní osoba;Adresa;Číslo\nJan Novák;jan@example.cz;777123456\n"
    preview = preview_import(text.encode(), "x.csv")
    assert preview.mapping == {
        "Kontaktní osoba": "attribute",
        "Adresa": "attribute",
        "Číslo": "attribute",
    }
    assert preview.keys == {
        "Kontaktní osoba": "kontaktni_osoba",
        "Adresa": "adresa",
        "Číslo": "cislo",
    }
    assert preview.rows == 1 and list(preview.sample.columns) == preview.headers
    with pytest.raises(ImportFailed, match="No usable column"):
        import_clients(store, text.encode(), filename="x.csv")
    report = import_clients(
        store,
        text.encode(),
        filename="x.csv",
        mapping={"Kontaktní osoba": "name", "Adresa": "email", "Číslo": "phone"},
    )
    assert report.imported == 1
    c = one(store, name="Jan Novák")
    assert c["email"] == "jan@example.cz" and c["phone"] == "+420777123456"


def test_mapping_may_ignore_a_column_and_rejects_bad_targets(store):
    text = b"Name;Email;Secret\nJan;jan@example.cz;xyz\n"
    import_clients(store, text, filename="x.csv", mapping={"Secret": "ignore"})
    assert get_client(store, one(store, name="Jan")["id"])["attributes"] == {}
    with pytest.raises(ImportFailed, match="does not have"):
        import_clients(store, text, mapping={"Nope": "email"})
    with pytest.raises(ImportFailed, match="choose one of"):
        import_clients(store, text, mapping={"Secret": "password"})
    with pytest.raises(ImportFailed, match="several columns"):
        import_clients(store, text, mapping={"Secret": "email"} | {"Email": "email"})


# -- normalisation -----------------------------------------------------------------------


def test_email_phone_name_tags_consent_and_attributes_are_normalised(store):
    text = (
        "Jméno;Příjmení;E-mail;Telefon;Štítky;Souhlas;Datum narození;Sleva %\n"
        "Jan;Novák;Jan.Novak@Example.CZ;00420 777 123 456;vip, newsletter;ano;1980-01-02;10\n"
        "Eva;Malá;eva(at)example.cz;+420 222 333 444;b2b;ne;;\n"
        "Petr;Velký;petr@example.cz;12;;;;\n"
    )
    report = import_clients(store, text.encode(), filename="x.csv", list_name="Jaro")
    assert report.imported == 3
    assert report.keys == {"Datum narození": "datum_narozeni", "Sleva %": "sleva"}
    jan = get_client(store, one(store, last_name="Novák")["id"])
    assert jan["name"] == "Jan Novák"
    assert jan["email"] == "Jan.Novak@example.cz" and jan["email_valid"] is True
    assert jan["phone"] == "+420777123456" and jan["phone_kind"] == "mobile"
    assert jan["tags"] == ["vip", "newsletter"]
    assert jan["consent_email"] is True and jan["consent_sms"] is True
    assert jan["attributes"] == {"datum_narozeni": "1980-01-02", "sleva": "10"}
    assert jan["lists"] == ["Jaro"] and jan["list"] == "Jaro"
    eva = one(store, last_name="Malá")
    assert eva["email_valid"] is False and eva["email"] == "eva(at)example.cz"
    assert eva["phone_kind"] == "fixed_line"
    assert eva["consent_email"] is False
    petr = one(store, last_name="Velký")
    assert petr["phone_kind"] == "invalid" and petr["phone"] == "12"
    reasons = {(p["row"], p["reason"].split(":")[0]) for p in report.problems}
    assert reasons == {(3, "invalid e-mail"), (4, "invalid phone")}


def test_phone_region_is_overridable(store):
    text = b"Name;Phone\nHans;0664 1234567\n"
    import_clients(store, text, region="AT")
    assert one(store, name="Hans")["phone"] == "+436641234567"


def test_default_region_comes_from_config(store, monkeypatch):
    monkeypatch.setenv("COMMS_REGION", "SK")
    import_clients(store, b"Name;Phone\nJano;0905 123 456\n")
    assert one(store, name="Jano")["phone"] == "+421905123456"


# -- dedupe and the report ------------------------------------------------------------------


def test_duplicates_within_the_file_are_merged(store):
    text = (
        "Name;Email;Phone;City\n"
        "Jan Novák;jan@example.cz;777123456;\n"  # row 2
        "JAN NOVÁK;JAN@example.cz;;Brno\n"  # row 3: same e-mail, other case
        "Eva;eva@example.cz;602111222;\n"  # row 4
        "Eva M.;;+420602111222;Praha\n"  # row 5: phone only, same phone as row 4
        "Petr;-;;\n"  # row 6: placeholders must not merge people
        "Pavel;-;;\n"  # row 7
    )
    report = import_clients(store, text.encode(), filename="x.csv")
    assert (report.imported, report.updated, report.skipped) == (4, 0, 2)
    assert report.imported + report.updated + report.skipped == report.rows == 6
    dup = [p for p in report.problems if p["reason"].startswith("duplicate")]
    assert dup == [
        {"row": 3, "reason": "duplicate of row 2: merged into one client", "skipped": True},
        {"row": 5, "reason": "duplicate of row 4: merged into one client", "skipped": True},
    ]
    jan = one(store, email="JAN@example.cz")
    assert jan["city"] == "Brno" and jan["phone"] == "+420777123456"
    assert one(store, email="eva@example.cz")["city"] == "Praha"


def test_reimport_updates_instead_of_duplicating_and_appends_the_list(store):
    first = b"Jmeno;E-mail;Telefon;Stitky;Segment\nJan;jan@example.cz;777123456;vip;A\nEva;;602111222;;B\nNikdo;-;;;C\n"
    r1 = import_clients(store, first, list_name="Jaro")
    assert (r1.imported, r1.updated) == (3, 0)
    second = b"Name;Email;Phone;Tags;Score\nJan N.;JAN@EXAMPLE.CZ;;newsletter;5\nEva;eva@example.cz;+420 602 111 222;;\nNikdo;-;;;\n"
    r2 = import_clients(store, second, list_name="Podzim")
    assert (r2.imported, r2.updated, r2.skipped) == (0, 3, 0)
    assert len(clients(store)) == 3
    jan = get_client(store, one(store, phone="+420777123456")["id"])
    assert jan["name"] == "Jan N." and jan["lists"] == ["Jaro", "Podzim"]
    assert jan["tags"] == ["vip", "newsletter"]
    assert jan["attributes"] == {"segment": "A", "score": "5"}
    eva = one(store, phone="+420602111222")
    assert eva["email"] == "eva@example.cz" and eva["lists"] == ["Jaro", "Podzim"]
    r3 = import_clients(store, second, list_name="Podzim")
    assert one(store, phone="+420602111222")["lists"] == ["Jaro", "Podzim"]
    assert r3.updated == 3


def test_same_phone_different_valid_emails_are_different_people(store):
    import_clients(store, b"Name;Email;Phone\nMother;mum@example.cz;777123456\n")
    r = import_clients(store, b"Name;Email;Phone\nSon;son@example.cz;777123456\n")
    assert (r.imported, r.updated) == (1, 0)
    assert len(clients(store)) == 2


def test_empty_and_anonymous_rows_are_skipped_with_their_row_numbers(store):
    text = "Name;Email;City\nJan;jan@example.cz;\n;;\nTotal;;Brno\n\nEva;eva@example.cz;\n"
    report = import_clients(store, text.encode())
    assert report.imported == 2 and report.skipped == 3
    assert report.problems == [
        {"row": 3, "reason": "empty row", "skipped": True},
        {"row": 4, "reason": "no e-mail or phone", "skipped": True},
        {"row": 5, "reason": "empty row", "skipped": True},
    ]


def test_quoted_line_breaks_keep_file_line_numbers(store):
    text = 'Name;Email;Note\nJan;jan@example.cz;"two\nlines"\nEva;bad@;x\n'
    report = import_clients(store, text.encode())
    assert report.problems[0]["row"] == 4


def test_import_writes_one_action_log_entry_with_counts(store):
    report = import_clients(store, CZECH.encode(), filename="jaro.csv")
    assert report.list_name == "jaro"
    log = store.rows("SELECT action, detail FROM action_log")
    assert len(log) == 1 and log[0]["action"] == "import"
    detail = json.loads(log[0]["detail"])
    assert detail["imported"] == 2 and detail["list"] == "jaro" and detail["file"] == "jaro.csv"


def test_import_is_all_or_nothing_when_the_write_fails(store, monkeypatch):
    import_clients(store, b"Name;Email\nJan;jan@example.cz\n", list_name="A")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(actionlog, "record", broken)
    with pytest.raises(RuntimeError):
        import_clients(
            store, b"Name;Email\nJan;jan@example.cz\nEva;eva@example.cz\n", list_name="B"
        )
    assert [c["lists"] for c in clients(store)] == [["A"]]
    assert store.scalar("SELECT count(*) FROM action_log") == 1


def test_sample_list_loads_once(store):
    report = load_sample_if_empty(store)
    assert report is not None and report.list_name == "Sample"
    assert 150 <= report.imported <= 200
    kinds = {c["phone_kind"] for c in clients(store)}
    assert {"mobile", "fixed_line", "invalid"} <= kinds
    assert any(not c["email_valid"] for c in clients(store))
    assert any(p["reason"].startswith("duplicate") for p in report.problems)
    assert load_sample_if_empty(store) is None


# -- XLSX --------------------------------------------------------------------------------------


def xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_xlsx_with_title_row_numbers_and_dates(store):
    from datetime import date

    data = xlsx(
        [
            ["Seznam klientů 2025"],
            [],
            ["Jméno", "Příjmení", "E-mail", "Telefon", "Narozen", "Body"],
            ["Jan", "Novák", "jan@example.cz", 420777123456, date(1980, 1, 2), 12.0],
            ["Eva", "Malá", "eva@", 602111222, None, 3.5],
        ]
    )
    report = import_clients(store, data, filename="klienti.xlsx")
    assert report.kind == "xlsx" and report.header_row == 3
    assert report.imported == 2
    assert report.problems == [
        {
            "row": 5,
            "reason": "invalid e-mail: There must be something after the @-sign.",
            "skipped": False,
        }
    ]
    jan = get_client(store, one(store, name="Jan Novák")["id"])
    assert jan["phone"] == "+420777123456"
    assert jan["attributes"] == {"narozen": "1980-01-02", "body": "12"}
    assert one(store, name="Eva Malá")["phone"] == "+420602111222"


def test_xlsx_formula_cells_are_kept_as_text_and_exported_neutralised(store):
    data = xlsx([["Name", "Email", "Note"], ["Jan", "jan@example.cz", "=cmd|' /C calc'!A0"]])
    import_clients(store, data, filename="x.xlsx")
    csv_text = export_csv(store).decode("utf-8-sig")
    assert "=cmd" not in csv_text.replace("'=cmd", "")


# -- hostile files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b";;;\n;;;\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        (bytes(range(1, 32)) * 200, "binary"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "xls"),
        (b"PK\x03\x04 not really a zip", "damaged"),
        ("Poznámka\nahoj\nnazdar\n".encode(), "No usable column"),
        (b"Name;Email\n", "no client rows"),
        (b"Name;Email\n;\n;\n", "no client rows"),
    ],
)
def test_whole_file_failures_raise_one_message_and_write_nothing(store, data, message):
    with pytest.raises(ImportFailed, match=message):
        import_clients(store, data, filename="bad.csv")
    assert store.scalar("SELECT count(*) FROM clients") == 0
    assert store.scalar("SELECT count(*) FROM action_log") == 0


def test_text_named_xlsx_is_refused(store):
    with pytest.raises(ImportFailed, match="not an Excel workbook"):
        import_clients(store, b"Name;Email\nJan;jan@example.cz\n", filename="list.xlsx")


def test_missing_file_is_a_clear_failure(store, tmp_path):
    with pytest.raises(ImportFailed, match="No such file"):
        import_clients(store, tmp_path / "nope.csv")


def test_over_the_size_limit(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_UPLOAD_MB", "1")
    data = b"Name;Email\n" + b"Jan;jan@example.cz\n" * 60_000
    with pytest.raises(ImportFailed, match="upload limit is 1 MB"):
        import_clients(store, data)
    assert store.scalar("SELECT count(*) FROM clients") == 0


def test_one_column_of_emails_is_enough(store):
    report = import_clients(store, b"E-mail\njan@example.cz\neva@example.cz\n")
    assert report.imported == 2


def test_ten_thousand_columns_are_refused(store):
    header = ";".join(["email"] + [f"c{i}" for i in range(9_999)])
    row = ";".join(["jan@example.cz"] + ["x"] * 9_999)
    with pytest.raises(ImportFailed, match="at most 1,000 columns"):
        import_clients(store, (header + "\n" + row + "\n").encode())
    assert store.scalar("SELECT count(*) FROM clients") == 0


def test_duplicate_headers_keep_both_columns(store):
    report = import_clients(store, b"Name;Email;Email;Note;Note\nJan;jan@example.cz;j@x.cz;a;b\n")
    assert report.mapping == {
        "Name": "name",
        "Email": "email",
        "Email (2)": "attribute",
        "Note": "attribute",
        "Note (2)": "attribute",
    }
    jan = get_client(store, one(store, name="Jan")["id"])
    assert jan["email"] == "jan@example.cz"
    assert jan["attributes"] == {"email_2": "j@x.cz", "note": "a", "note_2": "b"}


def test_short_rows_are_padded_and_a_stray_separator_leaves_the_row_out(store):
    # Issue 10: an unquoted ';' shifted the phone into the city; the row is not imported.
    text = b"Name;Email;City\nJan;jan@example.cz\nEva;eva@example.cz;Brno;605 11 22 33\n"
    report = import_clients(store, text)
    assert (report.imported, report.skipped) == (1, 1)
    assert report.problems == [
        {
            "row": 3,
            "reason": "4 cells where the header has 3 columns: a value holds an unquoted ';',"
            " which shifts the cells after it; quote that value or remove the extra ';'"
            " (row not imported)",
            "skipped": True,
        }
    ]
    assert one(store, name="Jan")["city"] is None
    assert [c["name"] for c in clients(store)] == ["Jan"]
    # Empty trailing cells (Excel's ';;;') are not a shift.
    assert import_clients(store, b"Name;Email\nOla;ola@example.cz;;;\n").problems == []


def test_a_value_right_of_the_last_named_column_of_a_sheet_is_reported_not_imported(store):
    data = xlsx([["Name", "Email"], ["Jan", "jan@example.cz", None, "note"]])
    report = import_clients(store, data, filename="x.xlsx")
    assert report.imported == 1
    assert report.problems == [
        {
            "row": 2,
            "reason": "values right of the last named column, up to column D, ignored (give"
            " those columns a header to keep them)",
            "skipped": False,
        }
    ]


def test_formula_cells_are_stored_as_text_and_neutralised_in_the_export(store):
    text = (
        "Name;Email;Company;Note\n"
        "=HYPERLINK(\"http://x\");a@example.cz;+cmd|' /C calc'!A0;@SUM(1)\n"
        "Eva;eva@example.cz;-2+3;\tx\n"
    )
    import_clients(store, text.encode())
    assert one(store, email="a@example.cz")["company"] == "+cmd|' /C calc'!A0"
    exported = export_csv(store, ClientFilter()).decode("utf-8-sig")
    import csv

    rows = list(csv.reader(io.StringIO(exported), delimiter=";"))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert '\'=HYPERLINK("http://x")' in rows[1]
    assert "'-2+3" in rows[2]


def test_attribute_values_with_quotes_backslashes_and_line_breaks_survive(store):
    text = 'Name;Email;Note;Path\nJan;jan@example.cz;"say ""hi""\nthen\tgo";C:\\temp\\x\x01\n'
    import_clients(store, text.encode())
    attrs = get_client(store, one(store, name="Jan")["id"])["attributes"]
    assert attrs == {"note": 'say "hi"\nthen\tgo', "path": "C:\\temp\\x"}


def test_an_invalid_address_never_replaces_a_valid_one(store):
    import_clients(store, b"Name;Email;Phone\nJan;jan@example.cz;777123456\n")
    # Matched by phone: the new e-mail is broken, the stored one stays.
    r = import_clients(store, b"Name;Email;Phone\nJan;jan(at)example;777123456\n")
    assert r.updated == 1
    jan = one(store, name="Jan")
    assert jan["email"] == "jan@example.cz" and jan["email_valid"] is True
    # Matched by e-mail: the new phone is broken, the stored one stays.
    import_clients(store, b"Name;Email;Phone\nJan;jan@example.cz;12\n")
    assert one(store, name="Jan")["phone"] == "+420777123456"
    # Within one file too: a later typo does not win over a good number.
    import_clients(
        store, b"Name;Email;Phone\nEva;eva@example.cz;602111222\nEva;eva@example.cz;60\n"
    )
    eva = one(store, name="Eva")
    assert eva["phone"] == "+420602111222" and eva["phone_kind"] == "mobile"
    # A valid new address does replace the stored one.
    import_clients(store, b"Name;Email;Phone\nJan;jan@example.cz;+420 602 999 888\n")
    assert one(store, name="Jan")["phone"] == "+420602999888"


def test_the_committed_messy_excel_export_imports(store):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "sample_clients_messy.xlsx"
    report = import_clients(store, path)
    assert report.kind == "xlsx" and report.header_row == 3
    assert report.mapping["Full name"] == "name" and report.mapping["Mobile"] == "phone"
    assert report.keys == {"Member since": "member_since", "Points": "points"}
    assert report.imported == 40
    total = {  # the "Total" row: a label and =SUM() that openpyxl saved without a value
        "row": 45,
        "reason": "no e-mail or phone (formula without a saved value in Points: open the file"
        " in Excel and save it, then import it again)",
        "skipped": True,
    }
    assert total in report.problems
    valid = [c for c in clients(store) if c["phone_kind"] not in (None, "invalid")]
    assert len(valid) > 30  # numbers that Excel stored as numbers parse too
    assert all(c["phone"].startswith("+") for c in valid)


# -- the export imports back unchanged (issue 10) -------------------------------------------------


def test_the_export_imports_back_unchanged_into_the_same_and_a_fresh_database(store, tmp_path):
    from comms.clients.sample import csv_text
    from comms.store import Store

    _import_clients(store, csv_text(300, seed=3).encode("cp1250"), list_name="Jaro")
    _import_clients(store, CZECH.encode(), list_name="Podzim, 2025", consent="sms")
    exported = export_csv(store)
    rows = exported.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("id;name;first_name;last_name;email;email_valid;phone;phone_kind;")
    assert any(";'+420" in r for r in rows)  # the formula guard, undone on the way back
    before = store.rows("SELECT count(*) AS n FROM action_log")[0]["n"]

    # Into the same database: every client matched, nothing changed, no attribute added.
    report = _import_clients(store, exported, filename="clients.csv")
    assert report.imported == 0 and report.updated == len(clients(store))
    assert report.mapping["id"] == report.mapping["email_valid"] == "ignore"
    assert report.mapping["phone_kind"] == "ignore" and report.mapping["lists"] == "lists"
    assert not [k for k in report.keys.values() if k.endswith("_2")]
    assert "export of this app" in report.notes[-1]
    assert report.consent == {"email": "column 'consent_email'", "sms": "column 'consent_sms'"}
    assert export_csv(store) == exported
    assert store.rows("SELECT count(*) AS n FROM action_log")[0]["n"] == before + 1

    # Into a fresh database: the same clients, lists and all, the same file.
    fresh = Store(tmp_path / "fresh.duckdb")
    try:
        report = _import_clients(fresh, exported, filename="clients.csv")
        assert report.imported == len(clients(store))
        assert export_csv(fresh) == exported
    finally:
        fresh.close()


def test_the_export_lists_all_of_a_clients_lists(store):
    import_clients(store, b"Name;Email\nJan;jan@example.cz\n", list_name="Jaro")
    import_clients(store, b"Name;Email\nJan;jan@example.cz\n", list_name="Podzim, 2025")
    rows = list(csv.reader(io.StringIO(export_csv(store).decode("utf-8-sig")), delimiter=";"))
    assert rows[1][rows[0].index("lists")] == "Jaro | Podzim, 2025"


def test_a_list_name_with_the_export_separator_is_refused(store):
    with pytest.raises(ImportFailed, match="cannot contain '|'"):
        import_clients(store, b"Name;Email\nJan;jan@example.cz\n", list_name="A | B")
    assert store.scalar("SELECT count(*) FROM clients") == 0


def test_a_row_after_a_value_with_a_line_break_is_named_by_its_line(store):
    text = 'Name;Email;Note\nJan;jan@example.cz;"two\nlines"\nEva;eva@;x\n'
    report = import_clients(store, text.encode())
    assert report.problems == [
        {
            "row": 4,
            "reason": "invalid e-mail: There must be something after the @-sign.",
            "skipped": False,
        }
    ]
