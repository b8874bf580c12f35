"""The pages in Czech where English used to leak: the Communication page's suppression
panel and timeline chart, outcomes ("flashes") that follow a language switch, file
sizes in the viewer's number format, the bulk send's description of a filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms import i18n
from comms import templates as tpl
from comms.ui.common import LANGUAGE_KEY
from tests.grid import select_rows
from tests.seed_history import add_client, add_message

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "pages"


def page(name: str, lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.session_state[LANGUAGE_KEY] = lang
    for key, value in state.items():
        at.session_state[key] = value
    return run(at)


def run(obj) -> AppTest:
    """Run the app (or a widget's app after an interaction); it must not raise."""
    at = obj.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def switch_to(at: AppTest, lang: str) -> AppTest:
    """What the sidebar switch does: the session's language, then a rerun."""
    at.session_state[LANGUAGE_KEY] = lang
    return run(at)


@pytest.fixture
def czech():
    """Czech in this thread too: AppTest calls a widget's format_func here, not in the page."""
    i18n.set_language("cs")
    yield
    i18n.set_language("en")


def column_config(table) -> dict:
    """A drawn dataframe's column_config (labels, formats), by column."""
    return json.loads(table.proto.columns)


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "success", "warning", "info"):
        parts += [str(e.value) for e in at.get(kind)]
    return "\n".join(parts)


# -- Communication: the suppression panel ---------------------------------------------


def test_the_suppression_panel_speaks_czech(store, czech):
    at = page("communication.py", "cs")
    text = texts(at)
    assert "0 adres. Nikomu z tohoto seznamu se neposílají hromadné zprávy" in text
    assert "(důvod „odhlášen ze zpráv“)" in text
    assert "**Nahrát seznam** (CSV nebo TXT" in text
    assert at.text_input(key="supp_upload_reason").value == "nahraný seznam"
    assert at.text_input(key="supp_hand_reason").value == "požádal(a) o ukončení zpráv"
    assert at.button(key="supp_add").label == "Přidat na seznam"
    data = "email\nann@example.com\nnot an address\n+420 602 111 222\nann@example.com\n"
    run(at.get("file_uploader")[0].upload("optout.csv", data.encode("cp1250"), "text/csv"))
    text = texts(at)
    assert "2 adresy (e-maily: 1, telefony: 1)" in text
    assert "1 opakovaný řádek se započítal jednou" in text
    assert "řádek se záhlavím se přeskočil" in text
    assert "1 řádek není e-mail ani telefonní číslo a vynechá se:" in at.warning[0].value
    bad = column_config(at.dataframe[-1])
    assert (bad["Line"]["label"], bad["Problem"]["label"]) == ("Řádek", "Problém")
    assert at.button(key="supp_import").label == "Přidat 2 adresy"
    run(at.button(key="supp_import").click())
    assert "Na seznam blokovaných adres přibyly 2 adresy (už na něm bylo: 0)." in (
        at.success[0].value
    )
    # Left as filled in, the reason is stored as its code (and shown translated).
    reasons = {r["reason"] for r in store.rows("SELECT reason FROM suppressions")}
    assert reasons == {"uploaded list"}
    table = at.dataframe[-1]
    columns = column_config(table)
    assert columns["created_at"]["label"] == "Přidáno"
    assert columns["created_at"]["type_config"]["format"] == "D. M. YYYY HH:mm"
    assert columns["created_by"]["label"] == "Přidal(a)"
    assert set(table.value["reason"]) == {"nahraný seznam"}
    assert set(table.value["channel"]) == {"E-mail", "SMS"}


def test_an_address_added_by_hand_in_czech(store, czech):
    at = page("communication.py", "cs")
    run(at.text_input(key="supp_address").set_value("Ann@example.com"))
    run(at.button(key="supp_add").click())
    assert "Ann@example.com (E-mail) je teď na seznamu blokovaných adres." in at.success[0].value
    assert store.rows("SELECT reason FROM suppressions") == [{"reason": "asked to stop"}]
    # A reason the person typed is kept as typed.
    at.text_input(key="supp_address").set_value("+420 602 111 222")
    run(at.text_input(key="supp_hand_reason").set_value("volal na infolinku"))
    run(at.button(key="supp_add").click())
    reasons = {r["reason"] for r in store.rows("SELECT reason FROM suppressions")}
    assert reasons == {"asked to stop", "volal na infolinku"}


# -- Communication: the timeline chart --------------------------------------------------


def chart_spec(at: AppTest) -> dict:
    (chart,) = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def test_the_timeline_chart_speaks_czech(store, czech):
    cid = add_client(store)
    add_message(store, cid, subject="Leden", status="sent")
    add_message(store, cid, channel="sms", subject=None, body_text="Ahoj", status="draft")
    at = page("communication.py", "cs", comms_comm_client_id=cid)
    spec = chart_spec(at)
    encoding = spec["encoding"]
    assert encoding["color"]["title"] == "Stav"
    assert (
        set(encoding["color"]["scale"]["domain"])
        == {
            i18n._("sent"),
            i18n._("draft"),
        }
        and "sent" not in encoding["color"]["scale"]["domain"]
    )
    assert encoding["x"]["axis"]["format"] == "%-d. %-m. %Y %H:%M"
    tips = {t["field"]: t for t in encoding["tooltip"]}
    assert [tips[f]["title"] for f in ("id", "ts", "channel", "status", "title")] == [
        "Zpráva",
        "Kdy",
        "Kanál",
        "Stav",
        "Předmět / text",
    ]
    assert tips["ts"]["format"] == "%-d. %-m. %Y %H:%M" and tips["id"]["format"] == "d"
    locale = spec["config"]["locale"]
    assert locale["number"]["decimal"] == "," and locale["number"]["thousands"] == "\xa0"
    assert locale["time"]["months"][0] == "leden" and locale["time"]["days"][0] == "neděle"


def test_the_timeline_chart_in_english(store):
    cid = add_client(store)
    add_message(store, cid, subject="January", status="sent")
    spec = chart_spec(page("communication.py", comms_comm_client_id=cid))
    assert spec["encoding"]["color"]["title"] == "Status"
    assert spec["encoding"]["color"]["scale"]["domain"] == ["sent"]
    assert spec["config"]["locale"]["number"]["thousands"] == ","


def test_the_attempts_table_of_a_message_in_czech(store, czech):
    cid = add_client(store)
    mid = add_message(store, cid, status="failed", reason="rejected by server", error="550 no")
    store.cursor().execute(
        "INSERT INTO message_attempts (message_id, attempt, outcome, detail)"
        " VALUES (?, 1, 'permanent', '550 no')",
        [mid],
    )
    at = page("communication.py", "cs")
    run(select_rows(at, "comm_table", [0]))
    attempts = at.dataframe[1]
    assert attempts.value["Výsledek"].tolist() == ["trvalá chyba"]
    assert column_config(attempts)["Kdy"]["type_config"]["format"] == "D. M. YYYY HH:mm:ss"


# -- outcomes follow a language switch ------------------------------------------------


def test_an_outcome_made_in_english_reads_czech_after_the_switch(store):
    cid = add_client(store)
    add_message(store, cid, status="failed", reason="rejected by server", error="550 no")
    at = page("communication.py")
    run(select_rows(at, "comm_table", [0]))
    run(at.button(key="comm_retry").click())
    assert at.success[0].value == "Queued again: 1 message."
    i18n.set_language("cs")
    try:
        switch_to(at, "cs")
    finally:
        i18n.set_language("en")
    assert at.success[0].value == "Znovu ve frontě: 1 zpráva."
    switch_to(at, "en")
    assert at.success[0].value == "Queued again: 1 message."


def test_the_client_detail_outcome_follows_the_switch(store):
    cid = add_client(store)
    at = page("client.py", comms_client_id=cid)
    at.text_input(key="cd_email_subject").set_value("Hi")
    at.text_area(key="cd_email_body").set_value("Hello {{ name }}")
    run(at.button(key="cd_save_draft").click())
    assert "saved as a draft" in at.success[0].value
    switch_to(at, "cs")
    assert "je uložená jako koncept" in at.success[0].value


def test_the_settings_test_result_follows_the_switch(store):
    at = page("settings.py")
    at.text_input(key="settings_test_to_email").set_value("tester@example.com")
    run(at.button(key="settings_test_send_email").click())
    assert any("Sent message #1 to tester@example.com" in s.value for s in at.success)
    switch_to(at, "cs")
    assert any("Odeslali jsme zprávu č. 1 na tester@example.com" in s.value for s in at.success)


def test_a_plain_string_flash_still_shows(store):
    """set_flash keeps taking a plain string (shown as it is)."""

    def script():
        from comms.ui.common import set_flash, show_flash

        set_flash("k_flash", "info", "plain words")
        show_flash("k_flash")

    at = AppTest.from_function(script).run()
    assert not at.exception and at.info[0].value == "plain words"


# -- sizes and the wizard -------------------------------------------------------------


def test_file_sizes_in_czech(store, czech):
    add_client(store)
    tid = tpl.create_template(store, name="Nabídka", channel="email", subject="S", body="B")
    tpl.attach(store, tid, "ceník.pdf", b"%PDF-1.4" + b"x" * (1536 * 1024 - 8))
    at = page("templates.py", "cs")
    run(at.selectbox(key="tpl_select").select(tid))
    assert any("ceník.pdf" in m.value and "1,5 MB" in m.value for m in at.markdown)
    assert any("Využito 1,5 MB z 10 MB na zprávu." in c.value for c in at.caption)
    i18n.set_language("en")
    assert i18n.size(1536 * 1024) == "1.5 MB"


def test_the_wizard_names_the_filter_in_czech(store, czech):
    cid = add_client(store)
    store.cursor().execute("UPDATE clients SET lists = ['VIP'] WHERE id = ?", [cid])
    at = page(
        "wizard.py",
        "cs",
        comms_selection={"filter": {"list": "VIP", "consent_email": True}},
        comms_wizard_channel="email",
    )
    assert "(seznam: VIP, Souhlas s e-maily: ano)" in at.markdown[0].value.replace("\\", "")


def test_a_new_email_template_starts_in_czech(store, czech):
    at = page("templates.py", "cs")
    # no name in the greeting: Czech would need the vocative, the field holds the nominative
    assert at.text_input(key="tpl_subject").value == "Novinka pro vás"
    assert at.text_area(key="tpl_body").value == "Dobrý den,\n\n…\n\nS pozdravem"
