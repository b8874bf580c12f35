"""The core's refusals in the reader's language: Czech when the viewer's language is
Czech, the English sentences unchanged otherwise; what is stored stays English."""

from __future__ import annotations

import pytest

from comms import config, i18n
from comms import templates as tpl
from comms.clients import import_clients
from comms.clients.profile import validate_changes
from comms.errors import ConfigError, ConsentNotStated, ImportFailed, NotFound, TemplateError
from comms.templates import attachments as att
from comms.templates import budget
from comms.templates.rendering import RenderFailed, compile_template, render_preview
from comms.templates.storage import validate_template


@pytest.fixture(params=["en", "cs"])
def lang(request):
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


def said(lang: str, english: str, czech: str) -> str:
    return czech if lang == "cs" else english


def test_an_import_refusal(store, lang):
    data = "Poznámka;Kód\nahoj;1\n".encode()
    with pytest.raises(ImportFailed) as exc:
        import_clients(store, data, filename="x.csv", consent="none")
    assert str(exc.value) == said(
        lang,
        "No usable column: none of the columns is a name, e-mail or phone (columns: Poznámka,"
        " Kód). Map one in the column mapping.",
        "Žádný použitelný sloupec: žádný ze sloupců není jméno, e-mail ani telefon (sloupce:"
        " Poznámka, Kód). Jeden z nich přiřaďte v mapování sloupců.",
    )
    assert store.scalar("SELECT count(*) FROM clients") == 0


def test_consent_not_stated(store, lang):
    with pytest.raises(ConsentNotStated) as exc:
        import_clients(store, b"name;email\nJana;jana@example.com\n", filename="x.csv")
    assert str(exc.value).startswith(
        said(
            lang,
            "The file has no consent column for e-mail and SMS: state the consent",
            "Soubor nemá sloupec se souhlasem pro e-mail a SMS: uveďte, s čím",
        )
    )


def test_the_import_reports_problem_rows_in_the_viewers_language(store, lang):
    data = b"name;email\nJana;jana@example.com\nJana N;jana@example.com\n"
    report = import_clients(store, data, filename="x.csv", consent="email,sms")
    assert [p["reason"] for p in report.problems] == [
        said(
            lang,
            "duplicate of row 2: merged into one client",
            "duplicita řádku 2: sloučeno do jednoho klienta",
        )
    ]
    # ... while the action log's entry stays English codes
    detail = store.scalar("SELECT CAST(detail AS VARCHAR) FROM action_log WHERE action = 'import'")
    assert '"stated: yes"' in detail


def test_a_template_that_does_not_parse(lang):
    with pytest.raises(TemplateError) as exc:
        validate_template("t", "email", "Hi", "Hello {{ name", "markdown")
    assert str(exc.value).startswith(
        said(lang, "body: syntax error on line 1: ", "text zprávy: chyba syntaxe na řádku 1: ")
    )


def test_saving_a_template_without_a_name_or_with_a_taken_one(store, lang):
    with pytest.raises(TemplateError, match=said(lang, "needs a name", "musí mít název")):
        tpl.create_template(store, name=" ", channel="sms", body="Hi")
    tpl.create_template(store, name="Jaro", channel="sms", body="Hi")
    with pytest.raises(TemplateError) as exc:
        tpl.create_template(store, name="jaro", channel="sms", body="Hi")
    assert str(exc.value) == said(
        lang,
        "A template named 'jaro' already exists; choose another name.",
        "Šablona s názvem 'jaro' už existuje; zvolte jiný název.",
    )


def test_a_template_over_its_budget_is_refused_in_the_viewers_language(lang):
    with pytest.raises(TemplateError) as exc:
        validate_template("t", "sms", None, "{{ 'x' * 10**7 }}", "text")
    assert str(exc.value) == said(
        lang,
        "This template makes more than 1 MB of text for one client (a value repeated too many"
        " times?); nothing was saved.",
        "Tato šablona vytvoří pro jednoho klienta víc než 1 MB textu (neopakuje se nějaká"
        " hodnota příliš často?); nic nebylo uloženo.",
    )


def test_a_missing_template(store, lang):
    with pytest.raises(NotFound) as exc:
        tpl.get_template(store, 999)
    assert str(exc.value) == said(lang, "Template 999 does not exist.", "Šablona 999 neexistuje.")
    with pytest.raises(NotFound, match=said(lang, "No template named", "Šablona s názvem")):
        tpl.get_template_by_name(store, "nic")


def test_a_malformed_setting(monkeypatch, lang):
    monkeypatch.setenv("COMMS_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ConfigError) as exc:
        config.max_upload_bytes()
    # The example keeps the form a setting takes (no decimal comma), in any language.
    assert str(exc.value) == said(
        lang,
        "COMMS_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1, e.g. 50.",
        "COMMS_MAX_UPLOAD_MB musí být celé číslo v megabajtech, nejméně 1, např. 50.",
    )
    monkeypatch.setenv("COMMS_REGION", "Czechia")
    with pytest.raises(ConfigError, match=said(lang, "two-letter", "dvoupísmenný")):
        config.default_region()


def test_an_edited_field(lang):
    with pytest.raises(Exception) as exc:
        validate_changes({"name": ""})
    assert str(exc.value) == said(
        lang,
        "name: cannot be empty. Nothing was saved.",
        "jméno: nesmí být prázdné. Nic nebylo uloženo.",
    )


def test_sizes_follow_the_language(lang):
    assert i18n.size(1536 * 1024) == said(lang, "1.5 MB", "1,5 MB")
    assert att.human_size(1536 * 1024) == said(lang, "1.5 MB", "1,5 MB")
    assert att.human_size(1024 * 1024) == said(lang, "1.0 MB", "1 MB")  # English as it was


def test_a_failed_render_is_stored_in_english_and_shown_in_the_viewers_language(lang):
    compiled = compile_template("email", "Hi", "Hello {{ points }}")
    with pytest.raises(RenderFailed) as exc:
        compiled.render({})
    # reason and detail go to the database (messages.reason / error): English codes
    assert exc.value.reason == "missing field: points"
    assert exc.value.detail.startswith("this client has no value for “points”")
    assert exc.value.sentence().startswith(
        said(lang, "this client has no value for “points”", "tento klient nemá vyplněno „points“")
    )
    assert budget.too_slow_sentence(budget.Limits(0.5, 1024)) == (
        "This template takes longer than 0.5 s to fill in for one client (a loop that runs"
        " too long?)"
    )
    with pytest.raises(TemplateError) as shown:
        render_preview(compiled, {})
    assert str(shown.value).startswith(
        said(lang, "missing field: points — this client", "chybí pole: points — tento klient")
    )
