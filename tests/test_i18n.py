"""Czech and English: every string a person reads has a Czech translation, every page
renders in both languages, and the language is the viewer's, never the data's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from streamlit.testing.v1 import AppTest

from comms import i18n
from comms.outbox import delivery, states
from comms.rules import validation
from comms.ui.common import LANGUAGE_KEY

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**.py", "python")]


def extracted() -> dict[str | tuple[str, str], str]:
    """Every msgid (a (singular, plural) pair for ngettext) of comms/, pages/ and app.py
    (Babel, as babel.cfg), with where it is."""
    found: dict[str | tuple[str, str], str] = {}

    def add(where: str, message) -> None:
        if message:
            found.setdefault(message, where)

    for folder in ("comms", "pages"):
        for name, line, message, _c, _x in extract_from_dir(
            ROOT / folder, method_map=METHODS, keywords=KEYWORDS
        ):
            add(f"{folder}/{name}:{line}", message)
    for line, message, _c, _x in extract_from_file("python", ROOT / "app.py", keywords=KEYWORDS):
        add(f"app.py:{line}", message)
    return found


def recorded_actions() -> set[str]:
    """Action names the core writes to the action log (actionlog.record's literal actions)."""
    names: set[str] = set()
    for path in (ROOT / "comms").rglob("*.py"):
        if "ui" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "record":
                if len(node.args) >= 2:
                    arg = node.args[1]
                    for value in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                        if isinstance(value, ast.Constant) and isinstance(value.value, str):
                            names.add(value.value)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "action"
                        and isinstance(value, ast.Constant)
                    ):
                        names.add(value.value)
    return names


def stored_codes() -> set[str]:
    """Codes stored in the database and shown through _() when read."""
    reasons = {
        value
        for module in (validation, states)
        for name, value in vars(module).items()
        if isinstance(value, str)
        and name.isupper()
        and (name.startswith("REASON_") or module is validation)
        and name != "DEFAULT_REGION"
    }
    return (
        set(states.STATUSES)
        | set(states.SOURCES)
        | set(states.TRANSITIONS)
        | set(delivery.KINDS)
        | set(validation.CHANNEL_NAMES.values())
        | reasons
        | recorded_actions()
    )


def translated(message: str | tuple[str, str]) -> bool:
    """Whether Czech has the message (a plural: its forms, looked up through ngettext)."""
    if isinstance(message, str):
        return i18n.has_translation(message, "cs")
    i18n.set_language("cs")
    try:
        return all(i18n.ngettext(*message, n) not in message for n in (1, 3, 5))
    finally:
        i18n.set_language("en")


def test_every_extracted_message_has_czech():
    missing = [
        f"{where}: {message!r}" for message, where in extracted().items() if not translated(message)
    ]
    assert not missing, f"{len(missing)} msgids lack Czech:\n" + "\n".join(missing)


def test_every_stored_code_has_czech():
    missing = sorted(c for c in stored_codes() if not i18n.has_translation(c, "cs"))
    assert not missing, missing


def test_seed_erp_terms():
    i18n.set_language("cs")
    try:
        assert i18n._("Client directory") == "Adresář klientů"
        assert i18n._("Action log") == "Log akcí"
        assert i18n._("Communication") == "Komunikace"
        assert i18n._("Template") == "Šablona"
    finally:
        i18n.set_language("en")


# page file -> (English title, Czech title)
PAGES = {
    "home.py": ("Client communication desk", "Komunikace s klienty"),
    "settings.py": ("Settings", "Nastavení"),
    "action_log.py": ("Action log", "Log akcí"),
    "templates.py": ("Templates", "Šablony"),
    "outbox.py": ("Outbox", "Odchozí"),
    "directory.py": ("Client directory", "Adresář klientů"),
    "communication.py": ("Communication", "Komunikace"),
    "client.py": ("Client detail", "Detail klienta"),
    "wizard.py": ("Bulk send", "Hromadné odesílání"),
}


def run_page(page: str, lang: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    at.session_state[LANGUAGE_KEY] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize("lang", ["en", "cs"])
def test_page_renders_in_both_languages(store, page, lang):
    at = run_page(page, lang)
    english, czech = PAGES[page]
    assert at.title[0].value == (czech if lang == "cs" else english)


def test_browser_locale_decides_without_a_choice(store):
    from comms.ui import common

    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60).run()
    assert at.session_state[common.LANGUAGE_KEY] in i18n.LANGUAGES


def test_numbers_follow_the_language():
    from comms.ui.common import number

    i18n.set_language("cs")
    try:
        assert number(1234567) == "1\xa0234\xa0567"
    finally:
        i18n.set_language("en")
    assert number(1234567) == "1,234,567"


def snapshot(store) -> dict[str, list]:
    tables = [r[0] for r in store.cursor().execute("SHOW TABLES").fetchall()]
    return {
        t: sorted(map(repr, store.cursor().execute(f"SELECT * FROM {t}").fetchall()))
        for t in tables
    }


def test_switching_language_changes_nothing_in_the_database(store):
    from tests.seed_history import add_client, add_message, add_template

    cid = add_client(store)
    add_template(store, "t", "email", "hi", subject="s")
    add_message(store, cid, status="failed", reason="invalid e-mail")
    before = snapshot(store)
    for page in PAGES:
        for lang in ("cs", "en"):
            run_page(page, lang)
    assert snapshot(store) == before


def test_a_signed_in_users_language_is_remembered(store):
    from comms import preferences

    assert preferences.saved_language(store, "ana@example.com") is None
    preferences.save_language(store, "ana@example.com", "cs")
    preferences.save_language(store, "ana@example.com", "cs")  # one row per user
    preferences.save_language(store, "bob@example.com", "en")
    assert preferences.saved_language(store, "ana@example.com") == "cs"
    assert preferences.saved_language(store, "bob@example.com") == "en"
    assert preferences.saved_language(store, None) is None
    assert store.scalar("SELECT count(*) FROM settings WHERE key LIKE 'language:%'") == 2
