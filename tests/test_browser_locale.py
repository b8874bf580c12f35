"""The browser's language decides when the person chose none: Chromium launched with
locale cs-CZ reads the app in Czech (menu, numbers grouped with a no-break space,
names sorted the Czech way), with en-US in English ("1,234", accents next to their letter).

Streamlit reports the browser's navigator.language as st.context.locale, which
comms.ui.common.use_language takes when no switch, no saved choice says otherwise.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.grid import grid_of, row_of, settle

pytestmark = pytest.mark.browser

COUNT = 1_234  # enough for grouping to show
NAMED = ["Žofie Zelená", "Chrudoš Chládek", "Hana Hrubá", "Cyril Černý"]


def seed(store) -> None:
    """COUNT clients: 'Zákazník 1' ... and four whose order differs between the languages."""

    def write(cur) -> None:
        cur.execute(
            "INSERT INTO clients (name, email, email_valid, city) "
            "SELECT 'Zákazník ' || i, 'z' || i || '@example.cz', true, 'Praha' "
            "FROM range(1, ?) t(i)",
            [COUNT - len(NAMED) + 1],
        )
        for n, name in enumerate(NAMED):
            cur.execute(
                "INSERT INTO clients (name, email, email_valid, city) VALUES (?, ?, true, ?)",
                [name, f"k{n}@example.cz", "Brno"],
            )

    store.write(write)


@pytest.fixture
def open_in(browser, tmp_path):
    """open_in('cs-CZ'): a fresh page in a browser context with that locale (a screenshot
    of each is left in tmp_path)."""
    contexts = []

    def open_page(locale: str) -> Page:
        context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        return pg

    yield open_page
    for n, context in enumerate(contexts):
        try:
            context.pages[0].screenshot(path=str(tmp_path / f"locale-{n}.png"), full_page=True)
        except Exception:
            pass
        context.close()


# locale -> menu labels, the page title, the count heading, the sort choice, names by order
CASES = {
    "cs-CZ": {
        "menu": ["Úvod", "Klienti", "Komunikace", "Log akcí", "Šablony", "Nastavení"],
        "clients": "Klienti",
        "language": "Čeština",
        "title": "Adresář klientů",
        "count": re.compile(r"^1\s234 odpovídajících klientů$"),
        # CLDR Czech groups with a no-break space (U+00A0; some data has U+202F)
        "grouped": re.compile("1[\u00a0\u202f]234 odpovídajících klientů"),
        "sort": ("Seřadit podle", "Jméno"),
        "order": ["Cyril Černý", "Hana Hrubá", "Chrudoš Chládek"],  # "Ch" after H
    },
    "en-US": {
        "menu": ["Home", "Clients", "Communication", "Action log", "Templates", "Settings"],
        "clients": "Clients",
        "language": "English",
        "title": "Client directory",
        "count": re.compile(r"^1,234 matching clients$"),
        "grouped": re.compile("1,234 matching clients"),
        "sort": ("Sort by", "Name"),
        "order": ["Chrudoš Chládek", "Cyril Černý", "Hana Hrubá"],  # Č with C, Ch under C
    },
}


@pytest.mark.parametrize("locale", sorted(CASES))
def test_the_browsers_locale_sets_menu_numbers_and_order(run_app, open_in, locale):
    want = CASES[locale]
    url = run_app(seed=seed)
    page = open_in(locale)
    page.goto(url)
    assert page.evaluate("navigator.language") == locale

    sidebar = page.get_by_test_id("stSidebar")
    for label in want["menu"]:
        expect(sidebar.get_by_role("link", name=label, exact=True)).to_be_visible()
    # No choice was made: the switch shows the language taken from the browser.
    expect(sidebar.get_by_role("combobox", name="Jazyk / Language")).to_have_value(want["language"])

    sidebar.get_by_role("link", name=want["clients"], exact=True).click()
    expect(page.get_by_role("heading", name=want["title"])).to_be_visible()
    # Playwright's text matching folds every space (no-break ones too) into " ", so the
    # heading is found by its words and its grouping read from the raw text.
    heading = page.get_by_text(want["count"])
    expect(heading).to_have_count(1)
    assert want["grouped"].fullmatch(heading.text_content() or ""), heading.text_content()
    settle(page)

    # Sorted on the server, the language's way: the four named clients in their order.
    label, choice = want["sort"]
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=choice, exact=True).click()
    settle(page)
    grid = grid_of(page)
    positions = []
    for name in want["order"]:
        row = row_of(grid, name)
        expect(row).to_have_count(1)
        positions.append(int(row.get_attribute("aria-rowindex")))
    # the first three rows of all 1,234 (aria-rowindex 1 is the header row)
    assert positions == [2, 3, 4], (want["order"], positions)
