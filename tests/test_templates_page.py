"""The Templates page under AppTest, on a real DuckDB file."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from comms import templates as tpl

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "templates.py")


def seed(store):
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (id, name, email, email_valid, city, attributes) VALUES"
            " (1, 'Jana Nová', 'jana@example.com', true, 'Brno', '{\"points\": 42}'),"
            " (2, '<b>Evil</b>', 'evil@example.com', true, NULL, '{}')"
        )
    )


def run(store):
    seed(store)
    return AppTest.from_file(PAGE, default_timeout=30).run()


def test_create_email_template_with_preview_and_fields(store):
    at = run(store)
    assert not at.exception
    assert "No templates yet" in at.info[0].value
    at.text_input(key="tpl_name").input("Points")
    at.text_input(key="tpl_subject").input("Hi {{ first_name }}")
    at.text_area(key="tpl_body").input("You have **{{ points }}** points in {{ city }}.").run()
    assert any("Fields used: `city`, `first_name`, `points`" in c.value for c in at.caption)
    assert any("**Subject:** Hi Jana" in m.value for m in at.markdown)
    fields = at.dataframe[0].value if len(at.dataframe) == 1 else at.dataframe[-1].value
    assert "{{ points }}" in set(fields["field"]) and "42" in set(fields["value"])
    at.button(key="tpl_save").click().run()
    assert not at.exception
    assert "created" in at.success[0].value
    t = tpl.get_template_by_name(store, "Points")
    assert (t.channel, t.subject, t.body_format) == ("email", "Hi {{ first_name }}", "markdown")
    listed = at.dataframe[0]  # the template list, drawn first
    assert listed.value.iloc[0]["channel"] == "E-mail"  # the label people read, not "email"
    assert listed.proto.placeholder == ""  # an SMS template's empty subject is blank


def test_preview_for_a_client_missing_a_field(store):
    at = run(store)
    at.text_input(key="tpl_name").input("P")
    at.text_area(key="tpl_body").input("{{ city }}").run()
    at.selectbox(key="tpl_preview_client").select(2).run()
    assert "missing field: city" in at.warning[0].value


def test_syntax_error_shown_with_line_and_not_saved(store):
    at = run(store)
    at.text_input(key="tpl_name").input("Broken")
    at.text_area(key="tpl_body").input("ok\n{% if x %}").run()
    assert "body: syntax error on line 2" in at.error[0].value
    assert at.button(key="tpl_save").disabled
    at.text_area(key="tpl_body").input("{{ cycler.__init__.__globals__ }}").run()
    assert "Python internals" in at.error[0].value
    assert store.scalar("SELECT count(*) FROM templates") == 0


def test_edit_duplicate_delete_and_sms_counter(store):
    seed(store)
    tid = tpl.create_template(store, name="Remind", channel="sms", body="Ahoj {{ name }}")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.selectbox(key="tpl_select").select(tid).run()
    assert at.text_area(key="tpl_body").value == "Ahoj {{ name }}"
    at.text_area(key="tpl_body").input("Ahoj {{ name }}, " + "ž" * 80).run()
    assert any("UCS-2" in c.value for c in at.caption)
    at.button(key="tpl_save").click().run()
    assert tpl.get_template(store, tid).body.endswith("ž" * 80)
    at.button(key="tpl_duplicate").click().run()
    assert "Remind (copy)" in at.success[0].value
    copy = tpl.get_template_by_name(store, "Remind (copy)")
    assert at.selectbox(key="tpl_select").value == copy.id
    at.button(key="tpl_delete").click().run()
    assert "deleted" in at.success[0].value
    assert [t["name"] for t in tpl.list_templates(store)] == ["Remind"]


def test_duplicate_name_refused(store):
    seed(store)
    tpl.create_template(store, name="A", channel="sms", body="x")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_input(key="tpl_name").input("a")
    at.text_area(key="tpl_body").input("y").run()
    at.button(key="tpl_save").click().run()
    assert "already exists" in at.error[0].value


def test_attachments_listed_and_removable(store):
    seed(store)
    tid = tpl.create_template(store, name="Offer", channel="email", subject="S", body="B")
    aid = tpl.attach(store, tid, "price list.pdf", b"%PDF-1.4")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.selectbox(key="tpl_select").select(tid).run()
    assert any("price list.pdf" in m.value and "application/pdf" in m.value for m in at.markdown)
    # the uploader states the per-message limit (10 MB), not the server's 200 MB
    (uploader,) = at.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 10
    at.button(key=f"tpl_detach_{aid}").click().run()
    assert tpl.get_template(store, tid).attachments == []
    assert not any("price list.pdf" in m.value for m in at.markdown)


def test_templates_page_and_sms_counter_in_czech(store):
    from comms import i18n
    from comms.ui.common import LANGUAGE_KEY

    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[LANGUAGE_KEY] = "cs"
    at.run()
    assert not at.exception
    assert at.title[0].value == "Šablony"
    assert "Zatím tu nejsou žádné šablony" in at.info[0].value
    # AppTest calls the widgets' format_func in this thread: Czech here too.
    i18n.set_language("cs")
    try:
        at.radio(key="tpl_channel").set_value("sms").run()
        at.text_area(key="tpl_body").input("Dobrý den, {{ first_name }}…").run()
    finally:
        i18n.set_language("en")
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "znaků · **UCS-2** · **1** segment SMS" in captions
    assert "kvůli znakům" in captions and "ý → y" in captions
