"""The Clients page's upload panel under AppTest: consent stated on purpose, the sheet of a
workbook, the report's wording, a stray separator, and the page's own export uploaded back."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from comms.clients import export_csv, import_clients

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "directory.py")
PLAIN = (
    "Jméno;E-mail;Telefon\nJan Novák;jan@example.cz;777123456\nEva Malá;eva@example.cz;602111222\n"
)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def at(store) -> AppTest:
    return run(AppTest.from_file(PAGE, default_timeout=30))


def upload(at: AppTest, name: str, data: bytes) -> str:
    at.file_uploader(key="dir_upload").set_value((name, data, "text/csv"))
    run(at)
    return hashlib.sha1(data).hexdigest()[:10]


def import_button(at: AppTest, key: str):
    return at.button(key="dir_import_" + key)


def test_a_file_without_consent_columns_needs_the_uploaders_choice(at, store):
    key = upload(at, "jaro.csv", PLAIN.encode())
    radio = at.radio(key=f"dir_consent_{key}_email_sms")
    assert radio.label == "Consent these clients gave to e-mail and SMS"
    assert radio.options == ["E-mail and SMS", "E-mail only", "SMS only", "Neither"]
    assert radio.value is None
    assert any(c.value.startswith("Required: marketing e-mail and SMS") for c in at.caption)
    assert import_button(at, key).disabled  # nothing chosen, nothing to import
    radio.set_value("E-mail only")
    run(at)
    assert not import_button(at, key).disabled
    import_button(at, key).click()
    run(at)
    assert at.success[0].value == "List 'jaro': 2 imported, 0 updated, 0 skipped."
    assert any(c.value == "Consent: E-mail: stated: yes; SMS: stated: no" for c in at.caption)
    flags = store.rows("SELECT consent_email, consent_sms FROM clients")
    assert flags == [{"consent_email": True, "consent_sms": False}] * 2
    detail = json.loads(store.scalar("SELECT detail FROM action_log WHERE action = 'import'"))
    assert detail["consent_stated"] == "email" and detail["consent_stated_by"]


def test_a_file_with_a_consent_column_needs_no_choice(at, store):
    key = upload(at, "jaro.csv", b"Name;Email;Souhlas SMS\nJan;jan@example.cz;ano\n")
    assert any(
        c.value == "Consent from the file: SMS from column 'Souhlas SMS'" for c in at.caption
    )
    radio = at.radio(key=f"dir_consent_{key}_email")
    assert radio.options == ["Yes, to e-mail", "No"]
    radio.set_value("No")
    run(at)
    import_button(at, key).click()
    run(at)
    assert store.rows("SELECT consent_email, consent_sms FROM clients") == [
        {"consent_email": False, "consent_sms": True}
    ]


def test_the_report_names_a_row_a_stray_separator_shifted(at, store):
    data = (PLAIN + "Petr;petr@example.cz;Brno; 605 11 22 33\n;;\nZora;;\n").encode()
    key = upload(at, "jaro.csv", data)
    at.radio(key=f"dir_consent_{key}_email_sms").set_value("Neither")
    run(at)
    import_button(at, key).click()
    run(at)
    assert at.success[0].value == "List 'jaro': 2 imported, 0 updated, 3 skipped."
    warning = at.warning[0].value
    assert warning == "3 rows not imported; each is listed below with its reason."
    assert "empty rows are skipped" not in warning
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert table["row"].tolist() == [4, 5, 6]
    assert table["imported"].tolist() == ["no", "no", "no"]
    assert table["reason"].iloc[0].startswith("4 cells where the header has 3 columns")
    assert table["reason"].tolist()[1:] == ["empty row", "no e-mail or phone"]
    assert store.scalar("SELECT count(*) FROM clients") == 2


def test_a_workbook_offers_its_sheets_and_names_other_lists(at, store):
    book = openpyxl.Workbook()
    book.active.title = "Úvod"
    book.active.append(["Jarní akce 2025"])
    for title, rows in (
        ("Klienti", [["Name", "Email", "Souhlas"], ["Jan", "jan@example.cz", "ano"]]),
        ("Archiv", [["Name", "Email", "Souhlas"], ["Old", "old@example.cz", "ne"]]),
    ):
        ws = book.create_sheet(title)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    key = upload(at, "jaro.xlsx", buf.getvalue())
    sheet = at.selectbox(key="dir_sheet_" + key)
    assert sheet.options == ["Úvod", "Klienti", "Archiv"] and sheet.value == "Klienti"
    assert at.info[0].value.startswith("Sheet 'Archiv' also looks like a client list")
    sheet.set_value("Archiv")
    run(at)
    detected = next(c.value for c in at.caption if c.value.startswith("Detected"))
    assert detected.endswith("sheet 'Archiv'")
    import_button(at, key).click()
    run(at)
    assert at.success[0].value == "List 'jaro' (sheet 'Archiv'): 1 imported, 0 updated, 0 skipped."
    assert [r["name"] for r in store.rows("SELECT name FROM clients")] == ["Old"]


def test_the_pages_own_export_uploads_back_unchanged(at, store):
    import_clients(store, PLAIN.encode(), list_name="Jaro", consent="email,sms")
    exported = export_csv(store)
    key = upload(at, "clients.csv", exported)
    assert at.text_input(key="dir_list_name_" + key).value == ""  # the file's lists column
    assert not [r for r in at.radio if (r.key or "").startswith("dir_consent_")]
    assert any("export of this app" in i.value for i in at.info)
    import_button(at, key).click()
    run(at)
    assert at.success[0].value == "The file's lists: 0 imported, 2 updated, 0 skipped."
    assert export_csv(store) == exported


def test_a_malformed_setting_is_one_line_on_the_page_not_a_traceback(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_UPLOAD_MB", "hunter2-Pa55word")
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    assert [e.value for e in at.error] == [
        "COMMS_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1, e.g. 50."
    ]
    monkeypatch.setenv("COMMS_MAX_UPLOAD_MB", "50")
    monkeypatch.setenv("COMMS_MAX_ROWS", "many")
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    upload(at, "jaro.csv", PLAIN.encode())
    assert [e.value for e in at.error] == [
        "COMMS_MAX_ROWS must be a whole number of rows, at least 1, e.g. 1000000."
    ]
    assert store.scalar("SELECT count(*) FROM clients") == 0


@pytest.fixture
def czech():
    """Czech in this thread too: AppTest calls a widget's format_func here, not in the page."""
    from comms.i18n import set_language

    set_language("cs")
    yield
    set_language("en")


def test_the_upload_and_its_report_in_czech(store, czech):
    """Every label in Czech; the choices a widget returns stay the English codes."""
    from comms.ui.common import LANGUAGE_KEY

    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = "cs"
    run(at)
    assert at.info[0].value == "Zatím tu nejsou žádní klienti: nahrajte seznam klientů výše."
    key = upload(at, "jaro.csv", PLAIN.encode())
    radio = at.radio(key=f"dir_consent_{key}_email_sms")
    assert radio.options == ["E-mail i SMS", "Jen e-mail", "Jen SMS", "Ani jedno"]
    detected = next(c.value for c in at.caption if c.value.startswith("Rozpoznáno"))
    assert "2 řádky" in detected and "oddělovač: středník" in detected
    radio.set_value("E-mail only")  # the code; Czech is only what is shown
    run(at)
    import_button(at, key).click()
    run(at)
    assert at.success[0].value == ("Seznam 'jaro': importováno 2, aktualizováno 0, přeskočeno 0.")
    assert at.toggle[0].label == "Vybrat všechny 2 odpovídající klienty"
    assert at.button(key="dir_act_email").label == "Odesílání e-mailu vybraným klientům"
    assert at.selectbox(key="dir_valid_email").options == ["Vše", "Ano", "Ne"]
    at.selectbox(key="dir_valid_email").set_value("Yes")
    run(at)
    assert any(m.value == "**2 odpovídající klienti**" for m in at.markdown)
    assert any(c.value == "Nic není vybráno." for c in at.caption)
    assert any(c.value == "Souhlas: E-mail: uvedeno: ano; SMS: uvedeno: ne" for c in at.caption)


@pytest.mark.parametrize("lang", ["en", "cs"])
def test_the_sheet_read_is_named_once_in_either_language(store, lang):
    """The note naming the sheet read is in the summary; the panels do not repeat it."""
    from comms.ui.common import LANGUAGE_KEY

    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = lang
    run(at)
    book = openpyxl.Workbook()
    book.active.title = "Úvod"
    book.active.append(["Jarní akce 2025"])
    ws = book.create_sheet("Klienti")
    for r in (["Name", "Email", "Souhlas"], ["Jan", "jan@example.cz", "ano"]):
        ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    key = upload(at, "jaro.xlsx", buf.getvalue())
    repeated = ("Read sheet", "Načten list")
    assert not [i.value for i in at.info if i.value.startswith(repeated)]
    import_button(at, key).click()
    run(at)
    assert "Klienti" in at.success[0].value
    assert not [i.value for i in at.info if i.value.startswith(repeated)]
