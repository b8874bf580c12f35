"""Names and cities sorted the viewer's way: Czech (Č after C, "Ch" after H, Ř after R,
Š after S, Ž after Z) or English (accents next to their letter), in Python lists
(comms.i18n.sorted_texts) and in the directory's server-side pages (ORDER BY ... COLLATE)."""

from __future__ import annotations

import pandas as pd
import pytest

from comms import i18n
from comms.clients import ClientFilter, import_clients, list_clients, page_and_count
from comms.clients.options import filter_options, sorted_choices
from comms.clients.queries import SORTS, order_by

CITIES = [
    "Ústí nad Labem",
    "Brno",
    "České Budějovice",
    "Chomutov",
    "Hradec Králové",
    "Cheb",
    "Řevnice",
    "Rakovník",
    "Šumperk",
    "Žatec",
    "Zlín",
    "Ostrava",
]
CZECH = [
    "Brno",
    "České Budějovice",
    "Hradec Králové",
    "Cheb",  # "Ch" is a letter of its own, after H
    "Chomutov",
    "Ostrava",
    "Rakovník",
    "Řevnice",  # Ř after R
    "Šumperk",
    "Ústí nad Labem",
    "Zlín",
    "Žatec",  # Ž after Z
]
ENGLISH = [
    "Brno",
    "České Budějovice",  # Č with C
    "Cheb",
    "Chomutov",
    "Hradec Králové",
    "Ostrava",
    "Rakovník",
    "Řevnice",
    "Šumperk",
    "Ústí nad Labem",
    "Žatec",  # Ž with Z, before "Zl"
    "Zlín",
]


def test_czech_order_of_czech_cities():
    assert i18n.sorted_texts(CITIES, "cs") == CZECH
    # what plain sorted() did: every accented capital after Z
    assert sorted(CITIES)[-5:] == [
        "Ústí nad Labem",
        "České Budějovice",
        "Řevnice",
        "Šumperk",
        "Žatec",
    ]


def test_english_order_of_czech_cities():
    assert i18n.sorted_texts(CITIES, "en") == ENGLISH


def test_the_viewers_language_decides_by_default():
    i18n.set_language("cs")
    try:
        assert i18n.collation() == "cs"
        assert i18n.sorted_texts(CITIES) == CZECH
    finally:
        i18n.set_language("en")
    assert i18n.collation() == "en"
    assert i18n.sorted_texts(CITIES) == ENGLISH


def test_sorted_texts_edge_cases():
    assert i18n.sorted_texts([]) == []
    assert i18n.sorted_texts([None, "b", None, "a"]) == ["a", "b"]  # type: ignore[list-item]
    # case never outweighs the letter; equal texts keep one order
    assert i18n.sorted_texts(["jaro", "Podzim", "crm", "Jaro"], "cs") == [
        "crm",
        "jaro",
        "Jaro",
        "Podzim",
    ]


def test_order_by_names_the_collation_and_breaks_ties_by_id():
    assert order_by("id") == "c.id"
    assert order_by("name", "cs") == "c.name COLLATE cs NULLS LAST, c.id"
    assert order_by("city", "en") == "c.city COLLATE en NULLS LAST, c.id"
    with pytest.raises(ValueError):
        order_by("email; DROP TABLE clients")
    assert set(SORTS) == {"id", "name", "city", "company"}


@pytest.fixture
def cities(store):
    """One client per city (name 'Klient <city>'), two more in Brno, one without a city."""
    rows = [f"Klient {c};k{n}@example.cz;{c}" for n, c in enumerate(CITIES)]
    rows += ["Adam Brněnský;adam@example.cz;Brno", "Zuzana;zuzana@example.cz;Brno"]
    rows += ["Bez Města;bez@example.cz;"]
    data = ("Name;Email;City\n" + "\n".join(rows) + "\n").encode()
    import_clients(store, data, list_name="Města", consent="email,sms")
    return store


def test_directory_sorted_by_name_in_czech(cities):
    names = list_clients(cities, sort="name", lang="cs")["name"].tolist()
    assert names[:2] == ["Adam Brněnský", "Bez Města"]
    assert names[2:-1] == [f"Klient {c}" for c in CZECH]
    assert names[-1] == "Zuzana"
    english = list_clients(cities, sort="name", lang="en")["name"].tolist()
    assert english[2:-1] == [f"Klient {c}" for c in ENGLISH]


def test_directory_sorted_by_city_with_ties_by_id_and_no_city_last(cities):
    df = list_clients(cities, sort="city", lang="cs")
    assert df["city"].tolist()[:3] == ["Brno"] * 3
    assert df["id"].tolist()[:3] == sorted(df["id"].tolist()[:3])  # ties in the order added
    assert df["city"].tolist()[3:-1] == CZECH[1:]
    assert df["name"].iloc[-1] == "Bez Města" and pd.isna(df["city"].iloc[-1])


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("lang", ["cs", "en"])
def test_pages_of_a_sorted_directory_cover_every_client_once(cities, sort, lang):
    whole = list_clients(cities, sort=sort, lang=lang)["id"].tolist()
    assert len(whole) == len(set(whole)) == len(CITIES) + 3
    paged = []
    for offset in range(0, len(whole), 4):
        paged += list_clients(cities, limit=4, offset=offset, sort=sort, lang=lang)["id"].tolist()
    assert paged == whole


@pytest.mark.parametrize("sort", SORTS)
def test_page_and_count_sorts_the_filtered_first_page_alike(cities, sort):
    f = ClientFilter(search="klient")
    total, first = page_and_count(cities, f, limit=5, sort=sort, lang="cs")
    assert total == len(CITIES)
    expected = list_clients(cities, f, limit=5, sort=sort, lang="cs")
    assert first["id"].tolist() == expected["id"].tolist()


def test_filter_choices_in_the_viewers_order(cities):
    kept = filter_options(cities)
    assert kept["cities"] == sorted(CITIES)  # kept language-neutral
    assert sorted_choices(kept, "cs")["cities"] == CZECH
    assert sorted_choices(kept, "en")["cities"] == ENGLISH
    assert sorted_choices(kept, "cs")["lists"] == ["Města"]
