"""The Clients directory page under Streamlit's AppTest: filters, selection, actions, upload report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms.clients import ClientFilter, import_clients
from comms.ui import directory
from tests import grid

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "directory.py")
LIST = (
    "Jméno;Příjmení;E-mail;Telefon;Město;Štítky;Segment\n"
    "Jan;Novák;jan@example.cz;777123456;Praha;vip;A\n"
    "Eva;Malá;eva@;222333444;Brno;;B\n"
    "Petr;Dvořák;petr@example.cz;602111222;Praha;vip;A\n"
    "John;Smith;john@example.com;+44 7911 123456;London;;C\n"
)


@pytest.fixture
def seeded(store):
    import_clients(store, LIST.encode(), list_name="Jaro", consent="email,sms")
    return store


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def at(seeded) -> AppTest:
    return run(AppTest.from_file(PAGE, default_timeout=30))


def heading(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "matching client" in m.value)


def buttons(at: AppTest) -> dict[str, tuple[bool, str]]:
    return {b.key: (b.disabled, b.help or "") for b in at.button if b.key.startswith("dir_act_")}


def select_rows(at: AppTest, rows: list[int]) -> AppTest:
    """AppTest cannot click rows: set the client table's selection state instead."""
    return run(grid.select_rows(at, directory.TABLE_KEY, rows))


def test_empty_database_opens_the_upload_panel(store):
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    assert at.title[0].value == "Client directory"
    assert "upload a client list" in at.info[0].value
    assert at.expander[0].label.startswith("Upload a client list")
    assert not at.dataframe


def test_table_shows_count_and_columns(at):
    assert heading(at) == "**4 matching clients**"
    df = at.dataframe[0].value
    assert list(df.columns) == [
        "name",
        "email",
        "phone",
        "list",
        "city",
        "company",
        "tags",
        "valid e-mail",
        "mobile",
        "consent",
        "added",
    ]
    assert df["name"].tolist() == ["Jan Novák", "Eva Malá", "Petr Dvořák", "John Smith"]
    assert df["valid e-mail"].tolist() == [True, False, True, True]
    assert df["mobile"].tolist() == [True, False, True, True]
    assert df["list"].tolist() == ["Jaro"] * 4
    assert at.toggle[0].label == "Select all 4 matching clients"


def test_filters_narrow_the_table_in_duckdb(at):
    at.text_input(key="dir_search").set_value("praha")
    run(at)
    assert heading(at) == "**2 matching clients**"
    at.text_input(key="dir_search").set_value("")
    at.selectbox(key="dir_tag").set_value("vip")
    at.selectbox(key="dir_valid_email").set_value("Yes")
    run(at)
    assert at.dataframe[0].value["name"].tolist() == ["Jan Novák", "Petr Dvořák"]
    at.selectbox(key="dir_tag").set_value("Any")
    at.selectbox(key="dir_attr").set_value("segment")
    at.text_input(key="dir_attr_value").set_value("c")
    run(at)
    assert at.dataframe[0].value["name"].tolist() == ["John Smith"]
    assert set(at.selectbox(key="dir_list").options) == {"Any", "Jaro"}
    assert "segment" in at.selectbox(key="dir_attr").options


def test_two_rows_selected_enable_the_bulk_actions(at):
    assert all(disabled for disabled, _ in buttons(at).values())
    select_rows(at, [0, 2])
    assert at.caption[-1].value == "Selected: 2 clients"
    state = buttons(at)
    assert state["dir_act_email"][0] is False
    assert state["dir_act_sms"][0] is False
    assert state["dir_act_client"] == (True, "Select exactly one client (tick one row).")
    assert state["dir_act_comm"][0] is True


def test_one_row_enables_the_client_actions(at):
    select_rows(at, [1])
    state = buttons(at)
    assert state["dir_act_client"][0] is False
    assert state["dir_act_comm"][0] is False


def test_send_email_hands_the_selected_ids_to_the_wizard(at):
    select_rows(at, [0, 2])
    at.button(key="dir_act_email").click()
    run(at)
    assert at.session_state["comms_wizard_channel"] == "email"
    sel = at.session_state["comms_selection"]
    assert list(sel) == ["client_ids"] and len(sel["client_ids"]) == 2


def test_open_client_detail_and_communication_hand_off_one_id(seeded, at):
    eva_id = seeded.scalar("SELECT id FROM clients WHERE email = 'eva@'")
    select_rows(at, [1])
    at.button(key="dir_act_client").click()
    run(at)
    assert at.session_state["comms_client_id"] == eva_id
    select_rows(at, [1])
    at.button(key="dir_act_comm").click()
    run(at)
    assert at.session_state["comms_comm_client_id"] == eva_id


def test_select_all_matching_hands_over_the_filter(at):
    at.text_input(key="dir_search").set_value("praha")
    run(at)
    at.toggle[0].set_value(True)
    run(at)
    assert at.caption[-1].value == "Selected: 2 clients"
    at.button(key="dir_act_sms").click()
    run(at)
    assert at.session_state["comms_wizard_channel"] == "sms"
    sel = at.session_state["comms_selection"]
    assert sel == {"filter": ClientFilter(search="praha").to_dict(), "count": 2}


def selected_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith(("Selected", "Nothing")))


def test_a_selection_survives_a_new_filter_until_cleared(at):
    select_rows(at, [0, 1])  # Jan (Praha), Eva (Brno)
    assert selected_caption(at) == "Selected: 2 clients"
    at.text_input(key="dir_search").set_value("praha")
    run(at)
    # Eva is filtered out but still selected; Jan is still ticked in the table.
    assert selected_caption(at) == "Selected: 2 clients (1 not on this page)"
    assert grid.ticked_rows(at, directory.TABLE_KEY) == [0]
    at.button(key="dir_act_email").click()
    run(at)
    assert len(at.session_state["comms_selection"]["client_ids"]) == 2
    at.button(key="dir_clear_selection").click()
    run(at)
    assert selected_caption(at) == "Nothing selected."
    assert all(disabled for disabled, _ in buttons(at).values())


def test_import_report_is_shown_with_problem_rows(seeded, at):
    report = import_clients(
        seeded, b"Name;Email\nZora;zora@\n;\n", list_name="Nove", consent="email,sms"
    )
    at.session_state[directory.REPORT_KEY] = report.to_dict()
    run(at)
    assert at.success[0].value == "List 'Nove': 1 imported, 0 updated, 1 skipped."
    problems = next(d.value for d in at.dataframe if list(d.value.columns)[:2] == ["row", "reason"])
    assert problems["row"].tolist() == [2, 3]
    assert problems["reason"].iloc[1] == "empty row"
    assert heading(at) == "**5 matching clients**"


def test_download_button_is_offered(at):
    assert at.get("download_button")[0].proto.label == "Download the filtered list (CSV)"


MESSY = (
    "Export klientů;;\r\n"
    ";;\r\n"
    "Kontaktní osoba;E-mail;Mobil\r\n"
    "Zdeňka Šťastná;zdenka@example.cz;777 000 111\r\n"
    "Jiří Říha;jiri@;602 000 111\r\n"
).encode("cp1250")


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="dir_upload").set_value((name, data, "text/csv"))
    run(at)
    return state_consent(at)


def state_consent(at: AppTest) -> AppTest:
    """A file without consent columns needs the uploader to state consent: choose
    e-mail and SMS in the upload panel's consent control (the importer's), when it is there."""
    for widget in [*at.radio, *at.selectbox, *at.get("button_group")]:
        if "consent" not in (getattr(widget, "label", "") or "").lower():
            continue
        both = [o for o in widget.options if "sms" in str(o).lower() and "mail" in str(o).lower()]
        if both and widget.value != both[0]:
            widget.set_value(both[0])
            return run(at)
    return at


def test_upload_shows_detection_and_mapping_then_imports(at, seeded):
    upload(at, "crm.csv", MESSY)
    detected = next(c.value for c in at.caption if c.value.startswith("Detected"))
    assert detected == (
        "Detected: CSV, 2 rows, header on row 3, encoding cp1250, delimiter: semicolon"
    )
    mapping = at.data_editor[0].value
    assert mapping["column"].tolist() == ["Kontaktní osoba", "E-mail", "Mobil"]
    assert mapping["maps to"].tolist() == ["attribute", "email", "phone"]
    assert mapping["template variable"].tolist() == ["kontaktni_osoba", "email", "phone"]
    assert (
        at.text_input(key=next(k for k in _keys(at) if k.startswith("dir_list_name_"))).value
        == "crm"
    )
    # The person corrects the mapping: the contact column is the name.
    editor_key = "dir_mapping_" + hashlib.sha1(MESSY).hexdigest()[:10]
    at.session_state[editor_key] = {
        "edited_rows": {0: {"maps to": "name"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    run(at)
    at.button(key="dir_import_" + hashlib.sha1(MESSY).hexdigest()[:10]).click()
    run(at)
    assert at.success[0].value == "List 'crm': 2 imported, 0 updated, 0 skipped."
    assert heading(at) == "**6 matching clients**"
    names = seeded.rows("SELECT name FROM clients WHERE list_contains(lists, 'crm') ORDER BY id")
    assert [r["name"] for r in names] == ["Zdeňka Šťastná", "Jiří Říha"]
    # sorted the English way (case does not put 'crm' after 'Jaro'), not by code point
    assert at.selectbox(key="dir_list").options == ["Any", "crm", "Jaro"]


def _keys(at: AppTest) -> list[str]:
    return [w.key for w in at.text_input if w.key]


def test_upload_of_a_bad_file_shows_one_error_and_imports_nothing(at, seeded):
    upload(at, "photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert at.error[0].value == "The file is binary, not a CSV or XLSX table."
    assert not [b for b in at.button if (b.key or "").startswith("dir_import_")]
    assert seeded.scalar("SELECT count(*) FROM clients") == 4


def test_pages_past_the_first_come_from_the_server_and_keep_the_selection(seeded, monkeypatch):
    monkeypatch.setattr(directory, "PAGE_ROWS", 3)
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    assert heading(at) == "**4 matching clients** (showing 1–3)"
    assert at.dataframe[0].value["name"].tolist() == ["Jan Novák", "Eva Malá", "Petr Dvořák"]
    select_rows(at, [0])  # Jan, on page 1
    at.pagination[0].select(2)
    run(at)
    assert heading(at) == "**4 matching clients** (showing 4–4)"
    assert at.dataframe[0].value["name"].tolist() == ["John Smith"]
    select_rows(at, [0])  # John, on page 2
    assert selected_caption(at) == "Selected: 2 clients (1 not on this page)"
    at.pagination[0].select(1)
    run(at)
    assert grid.ticked_rows(at, directory.TABLE_KEY) == [0]  # Jan still ticked
    at.button(key="dir_act_sms").click()
    run(at)
    jan, john = (
        seeded.scalar("SELECT id FROM clients WHERE name = ?", [n])
        for n in ("Jan Novák", "John Smith")
    )
    assert sorted(at.session_state["comms_selection"]["client_ids"]) == sorted([jan, john])


def test_a_new_filter_starts_at_its_first_page(seeded, monkeypatch):
    monkeypatch.setattr(directory, "PAGE_ROWS", 3)
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    at.pagination[0].select(2)
    run(at)
    at.text_input(key="dir_search").set_value("praha")
    run(at)
    assert heading(at) == "**2 matching clients**"
    assert not at.pagination


def test_template_variable_follows_a_remapped_column(at, seeded):
    upload(at, "crm.csv", MESSY)
    editor_key = "dir_mapping_" + hashlib.sha1(MESSY).hexdigest()[:10]
    at.session_state[editor_key] = {
        "edited_rows": {0: {"maps to": "name"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    run(at)
    mapping = at.data_editor[0].value
    assert mapping["maps to"].tolist() == ["name", "email", "phone"]
    assert mapping["template variable"].tolist() == ["name", "email", "phone"]


def test_action_labels_are_whole(at):
    labels = [b.label for b in at.button if (b.key or "").startswith("dir_act_")]
    assert "Show communication of the selected client" in labels


# -- sorting: server-side, in the viewer's language, selection kept -------------------


def shown_names(at: AppTest) -> list[str]:
    return grid.table_of(at, directory.TABLE_KEY).value["name"].tolist()


def test_sort_by_name_orders_every_page_and_keeps_the_selection(seeded, monkeypatch):
    monkeypatch.setattr(directory, "PAGE_ROWS", 3)
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    assert at.selectbox(key=directory.SORT_KEY).value == "id"  # the order added by default
    assert shown_names(at) == ["Jan Novák", "Eva Malá", "Petr Dvořák"]
    select_rows(at, [0])  # Jan, on page 1
    at.pagination[0].select(2)
    run(at)
    select_rows(at, [0])  # John, on page 2
    assert selected_caption(at) == "Selected: 2 clients (1 not on this page)"

    at.selectbox(key=directory.SORT_KEY).set_value("name")
    run(at)
    # A new order starts at its first page, sorted across every page on the server.
    assert heading(at) == "**4 matching clients** (showing 1–3)"
    assert shown_names(at) == ["Eva Malá", "Jan Novák", "John Smith"]
    assert grid.ticked_rows(at, directory.TABLE_KEY) == [1, 2]  # Jan and John, still
    assert selected_caption(at) == "Selected: 2 clients"
    at.pagination[0].select(2)
    run(at)
    assert shown_names(at) == ["Petr Dvořák"]
    assert selected_caption(at) == "Selected: 2 clients (2 not on this page)"
    at.button(key="dir_act_email").click()
    run(at)
    jan, john = (
        seeded.scalar("SELECT id FROM clients WHERE name = ?", [n])
        for n in ("Jan Novák", "John Smith")
    )
    assert sorted(at.session_state["comms_selection"]["client_ids"]) == sorted([jan, john])


def test_several_pages_say_the_header_click_sorts_one_page(seeded, monkeypatch):
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    assert not [c for c in at.caption if "column header" in c.value]  # one page: all rows
    monkeypatch.setattr(directory, "PAGE_ROWS", 3)
    at = run(AppTest.from_file(PAGE, default_timeout=30))
    hint = [c.value for c in at.caption if "column header" in c.value]
    assert hint == [
        "A click on a column header sorts only the rows of this page; "
        "“Sort by” sorts all 4 matching clients."
    ]


CZECH_CITIES = (
    "Name;Email;City\n"
    "Žofie Zelená;zofie@example.cz;Žatec\n"
    "Cyril Černý;cyril@example.cz;České Budějovice\n"
    "Hana Hrubá;hana@example.cz;Hradec Králové\n"
    "Chrudoš Chládek;chrudos@example.cz;Cheb\n"
    "Řehoř Říha;rehor@example.cz;Řevnice\n"
    "Zdeněk Zach;zdenek@example.cz;Zlín\n"
)


@pytest.fixture
def czech():
    """Czech in the test's thread too: AppTest formats a widget's choices with the page's
    format_func (through _()) when it sends their state."""
    from comms.i18n import set_language

    set_language("cs")
    yield
    set_language("en")


def test_czech_viewer_gets_czech_order_in_filters_and_table(seeded, czech):
    from comms.i18n import set_language
    from comms.ui.common import LANGUAGE_KEY

    import_clients(seeded, CZECH_CITIES.encode(), list_name="Čechy", consent="email,sms")
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = "cs"
    run(at)
    cities = at.selectbox(key="dir_city").options
    assert cities[0] == "Vše"
    assert cities[1:] == [
        "Brno",
        "České Budějovice",
        "Hradec Králové",
        "Cheb",
        "London",
        "Praha",
        "Řevnice",
        "Zlín",
        "Žatec",
    ]
    assert at.selectbox(key="dir_list").options[1:] == ["Čechy", "Jaro"]  # Č after C, before J
    sort = at.selectbox(key=directory.SORT_KEY)
    assert sort.label == "Seřadit podle"
    assert sort.options == ["Pořadí přidání", "Jméno", "Město", "Firma"]
    sort.set_value("name")
    run(at)
    assert shown_names(at) == [
        "Cyril Černý",
        "Eva Malá",
        "Hana Hrubá",
        "Chrudoš Chládek",  # "Ch" after H
        "Jan Novák",
        "John Smith",
        "Petr Dvořák",
        "Řehoř Říha",  # Ř after R (no R name here: after P)
        "Zdeněk Zach",
        "Žofie Zelená",  # Ž after Z
    ]
    # The same clients in English: accents next to their letter, "Ch" under C.
    set_language("en")
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = "en"
    at.session_state[directory.SORT_KEY] = "name"
    run(at)
    assert shown_names(at)[:4] == ["Chrudoš Chládek", "Cyril Černý", "Eva Malá", "Hana Hrubá"]
    assert at.selectbox(key="dir_city").options[1:4] == ["Brno", "České Budějovice", "Cheb"]


def test_the_added_column_is_a_date_in_the_viewers_format(seeded):
    import json

    from comms.ui.common import LANGUAGE_KEY

    for lang, fmt in (("en", "MMM D, YYYY, HH:mm"), ("cs", "D. M. YYYY HH:mm")):
        at = AppTest.from_file(PAGE, default_timeout=30)
        at.session_state[LANGUAGE_KEY] = lang
        run(at)
        table = grid.table_of(at, directory.TABLE_KEY)
        config = json.loads(table.proto.columns)
        assert config["added"]["type_config"]["format"] == fmt
        assert str(table.value["added"].dtype).startswith("datetime64")
