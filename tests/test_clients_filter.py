"""Filter queries over clients in DuckDB: filters, count, first page, options, selections,
lookups and the formula-safe CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from comms.clients import (
    ClientFilter,
    clients_for_ids,
    clients_for_selection,
    count_clients,
    data_version,
    export_csv,
    filter_options,
    filter_where,
    get_client,
    list_clients,
    options,
    page_and_count,
    selection_where,
)
from comms.clients import import_clients as _import_clients
from comms.rules.text import fold, fold_sql


def import_clients(store, source, **kw):
    """The import as these tests use it: consent stated for files without a consent column."""
    kw.setdefault("consent", "email,sms")
    return _import_clients(store, source, **kw)


SPRING = (
    "Jméno;Příjmení;E-mail;Telefon;Město;Firma;Štítky;Souhlas;Segment;Poznámka\n"
    "Jan;Novák;jan@example.cz;777 123 456;Praha;Alfa s.r.o.;vip, newsletter;ano;A;volat ráno\n"
    "Eva;Malá;eva@;+420 222 333 444;Brno;Beta a.s.;newsletter;ano;B;\n"
    "Šárka;Žáková;sarka@example.cz;;Plzeň;;vip;ne;A;preferuje SMS\n"
    "Petr;Dvořák;petr@example.cz;602 111 222;praha;Gama;;ano;C;\n"
)
AUTUMN = "Name;Email;Phone;City\nJohn Smith;john@example.com;+44 7911 123456;London\n"


@pytest.fixture
def seeded(store):
    import_clients(store, SPRING.encode(), list_name="Jaro")
    import_clients(store, AUTUMN.encode(), list_name="Podzim")
    import_clients(store, b"Email\npetr@example.cz\n", list_name="Podzim")
    return store


def names(store, **kw) -> list[str]:
    return list_clients(store, ClientFilter(**kw))["name"].tolist()


def test_no_filter_lists_everyone_in_id_order(seeded):
    assert count_clients(seeded) == 5
    assert names(seeded) == ["Jan Novák", "Eva Malá", "Šárka Žáková", "Petr Dvořák", "John Smith"]
    assert filter_where(ClientFilter()) == ("true", [])


@pytest.mark.parametrize(
    "search, expected",
    [
        ("novak", ["Jan Novák"]),  # diacritics-insensitive
        ("ŽÁKOVÁ", ["Šárka Žáková"]),
        ("example.com", ["John Smith"]),
        ("alfa", ["Jan Novák"]),  # company
        ("praha", ["Jan Novák", "Petr Dvořák"]),  # city, any case
        ("ráno", ["Jan Novák"]),  # an attribute value
        ("777 123", ["Jan Novák"]),  # phone digits with spaces
        ("+420602", ["Petr Dvořák"]),
        ("praha dvorak", ["Petr Dvořák"]),  # every word must match
        ("nobody", []),
        ("100%_", []),  # LIKE wildcards are plain text
    ],
)
def test_free_text_search(seeded, search, expected):
    assert names(seeded, search=search) == expected
    assert count_clients(seeded, ClientFilter(search=search)) == len(expected)


def test_list_tag_city_filters(seeded):
    assert names(seeded, list="Podzim") == ["Petr Dvořák", "John Smith"]
    assert names(seeded, tag="vip") == ["Jan Novák", "Šárka Žáková"]
    assert names(seeded, city="PRAHA") == ["Jan Novák", "Petr Dvořák"]
    assert names(seeded, list="Jaro", tag="newsletter", city="Brno") == ["Eva Malá"]


def test_attribute_equals_and_contains(seeded):
    assert names(seeded, attribute="segment", attribute_value="a") == ["Jan Novák", "Šárka Žáková"]
    assert names(seeded, attribute="poznamka", attribute_op="contains", attribute_value="SMS") == [
        "Šárka Žáková"
    ]
    assert names(seeded, attribute="company", attribute_op="contains", attribute_value="s.r.o") == [
        "Jan Novák"
    ]
    # An attribute without a value filters nothing.
    assert count_clients(seeded, ClientFilter(attribute="segment")) == 5
    # A hostile key is a parameter, not SQL.
    assert names(seeded, attribute="x') OR 1=1 --", attribute_value="y") == []


def test_flag_filters(seeded):
    assert "Eva Malá" not in names(seeded, has_valid_email=True)
    assert names(seeded, has_valid_email=False) == ["Eva Malá"]
    assert names(seeded, has_mobile=True) == ["Jan Novák", "Petr Dvořák", "John Smith"]
    assert names(seeded, has_mobile=False) == ["Eva Malá", "Šárka Žáková"]
    assert names(seeded, consent_email=False) == ["Šárka Žáková"]
    assert names(seeded, consent_sms=True, has_mobile=True, list="Jaro") == [
        "Jan Novák",
        "Petr Dvořák",
    ]


def test_first_page_limit_and_offset(seeded):
    assert len(list_clients(seeded, ClientFilter(), limit=2)) == 2
    assert list_clients(seeded, ClientFilter(), limit=2, offset=4)["name"].tolist() == [
        "John Smith"
    ]
    df = list_clients(seeded, ClientFilter(search="jan"))
    row = df.iloc[0]
    assert row["list"] == "Jaro" and bool(row["mobile"]) and bool(row["email_valid"])
    assert list(row["tags"]) == ["vip", "newsletter"]


def test_filter_options(seeded):
    opts = filter_options(seeded)
    assert opts["lists"] == ["Jaro", "Podzim"]
    assert opts["tags"] == ["newsletter", "vip"]
    assert "Praha" in opts["cities"] and "London" in opts["cities"]
    assert opts["attributes"] == ["poznamka", "segment"]


def test_filter_round_trips_through_a_dict():
    f = ClientFilter(search="x", tag="vip", has_mobile=True, attribute_op="contains")
    assert ClientFilter.from_dict(f.to_dict()) == f
    assert ClientFilter.from_dict({"search": "x", "unknown": 1}) == ClientFilter(search="x")
    assert ClientFilter.from_dict(None).is_empty()


def test_selection_where_for_ids_and_for_all_matching(seeded):
    ids = [int(i) for i in list_clients(seeded, ClientFilter(tag="vip"))["id"]]
    where, params = selection_where({"client_ids": ids})
    got = seeded.rows(f"SELECT c.name FROM clients c WHERE {where} ORDER BY c.id", params)
    assert [r["name"] for r in got] == ["Jan Novák", "Šárka Žáková"]
    sel = {"filter": ClientFilter(city="praha").to_dict(), "count": 2}
    assert [c["name"] for c in clients_for_selection(seeded, sel)] == ["Jan Novák", "Petr Dvořák"]
    assert clients_for_selection(seeded, {"client_ids": []}) == []
    with pytest.raises(ValueError):
        selection_where({"nothing": 1})


def test_get_client_and_clients_for_ids(seeded):
    petr_id = int(list_clients(seeded, ClientFilter(search="petr"))["id"].iloc[0])
    petr = get_client(seeded, petr_id)
    assert petr["lists"] == ["Jaro", "Podzim"] and petr["list"] == "Podzim"
    assert petr["attributes"] == {"segment": "C"}
    assert petr["phone"] == "+420602111222"
    assert get_client(seeded, 999_999) is None
    got = clients_for_ids(seeded, [petr_id, 999_999, 1])
    assert [c["id"] for c in got] == [1, petr_id]
    assert clients_for_ids(seeded, []) == []


def test_export_csv_of_the_filtered_list(seeded):
    data = export_csv(seeded, ClientFilter(list="Jaro"))
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert [r["name"] for r in rows] == ["Jan Novák", "Eva Malá", "Šárka Žáková", "Petr Dvořák"]
    assert rows[0]["phone"] == "'+420777123456"  # '+' would start a formula
    assert rows[0]["tags"] == "vip, newsletter" and rows[0]["segment"] == "A"
    assert rows[3]["lists"] == "Jaro | Podzim"
    assert rows[1]["email_valid"] == "false"


@pytest.mark.parametrize(
    "f",
    [
        ClientFilter(),
        ClientFilter(search="praha"),
        ClientFilter(tag="vip", has_mobile=True),
        ClientFilter(search="nobody"),
        ClientFilter(attribute="segment", attribute_value="A"),
    ],
)
@pytest.mark.parametrize("sort", ["id", "name", "city"])
def test_page_and_count_equals_count_plus_first_page(seeded, f, sort):
    total, df = page_and_count(seeded, f, limit=2, sort=sort, lang="cs")
    assert total == count_clients(seeded, f)
    expected = list_clients(seeded, f, limit=2, sort=sort, lang="cs")
    assert df["id"].tolist() == expected["id"].tolist()
    assert list(df.columns) == list(expected.columns)


def test_sorted_by_name_or_city_the_viewers_way(seeded):
    """Czech: Š after S, Ž after Z; a city's clients in the order added; no city last."""
    by_name = list_clients(seeded, sort="name", lang="cs")["name"].tolist()
    assert by_name == ["Eva Malá", "Jan Novák", "John Smith", "Petr Dvořák", "Šárka Žáková"]
    assert list_clients(seeded, sort="name", lang="en")["name"].tolist()[-1] == "Šárka Žáková"
    by_city = list_clients(seeded, sort="city", lang="cs")
    # 'Praha' and 'praha' are one letter sequence: case only orders them
    assert by_city["city"].tolist() == ["Brno", "London", "Plzeň", "praha", "Praha"]


def test_filter_choices_sorted_for_the_viewer(seeded):
    from comms.clients.options import sorted_choices

    more = "Name;Email;City;Tags\nŽ;z@example.cz;Žďár;čtvrtletník\nC;c@example.cz;Cheb;\n"
    import_clients(seeded, more.encode(), list_name="Č")
    opts = sorted_choices(filter_options(seeded), "cs")
    assert opts["cities"] == ["Brno", "Cheb", "London", "Plzeň", "praha", "Praha", "Žďár"]
    assert opts["lists"] == ["Č", "Jaro", "Podzim"]
    assert opts["tags"] == ["čtvrtletník", "newsletter", "vip"]
    assert sorted_choices(filter_options(seeded), "en")["lists"] == ["Č", "Jaro", "Podzim"]


def test_search_terms_with_like_wildcards_match_literally(store):
    import_clients(store, b"Name;Email\nJan;jan_novak@example.cz\nJana;janxnovak@example.cz\n")
    assert names(store, search="jan_n") == ["Jan"]
    assert names(store, search="JAN_") == ["Jan"]


# Words whose folding differs in some way: Czech, German, Polish, Nordic, Greek,
# Cyrillic, a ligature and a superscript (kept by both sides), Hangul.
FOLD_WORDS = [
    "Šťastný Žluťoučký kůň",
    "ŘEHOŘ Ďáblík",
    "Straße",
    "Łódź Żółć",
    "Ørsted Ångström",
    "Ελλάδα",
    "Йошкар-Ола",
    "ﬁrma x²",
    "한국어",
]


@pytest.mark.parametrize("word", FOLD_WORDS)
def test_search_folds_like_the_sql_it_is_compared_with(store, word):
    assert store.scalar(f"SELECT {fold_sql('?')}", [word]) == fold(word)


def test_search_finds_accented_text_with_or_without_its_accents(store):
    import_clients(
        store,
        "Name;Email;Firma;Poznámka\n"
        "Klient Jedna;jiří@example.cz;Łódź Żółć;\n"
        "Klient Dva;dva@example.cz;;Ørsted ﬁrma\n".encode(),
    )
    for term in ("jiří", "jiri", "JIŘÍ@"):  # the e-mail alone matches
        assert names(store, search=term) == ["Klient Jedna"], term
    for term in ("żółć", "zołc", "ŁÓDŹ"):  # 'ł' has no accent to strip: it stays
        assert names(store, search=term) == ["Klient Jedna"], term
    assert names(store, search="zolc") == []
    for term in ("ørsted", "ﬁrma"):  # an attribute value, as typed
        assert names(store, search=term) == ["Klient Dva"], term


def options_in_the_table(store) -> dict[str, list[str]]:
    """The filter choices read straight from every client, as the directory once did."""

    def values(sql: str) -> list[str]:
        return [r["v"] for r in store.rows(sql) if r["v"] not in (None, "")]

    return {
        "lists": values("SELECT DISTINCT unnest(lists) AS v FROM clients ORDER BY v"),
        "tags": values("SELECT DISTINCT unnest(tags) AS v FROM clients ORDER BY v"),
        "cities": values("SELECT DISTINCT city AS v FROM clients ORDER BY v"),
        "attributes": values(
            "SELECT DISTINCT unnest(json_keys(attributes)) AS v FROM clients ORDER BY v"
        ),
    }


def kept_counts_are_current(store) -> bool:
    """Whether filter_options answers from the counts its writes kept (no recount)."""
    kept = options._kept(store)
    return kept.counts is not None and kept.stamp == data_version(store)


def test_filter_options_stay_right_after_import_edit_and_opt_out(seeded, monkeypatch):
    from comms import actionlog
    from comms.clients import profile
    from tests.seed_history import add_client

    assert filter_options(seeded) == options_in_the_table(seeded)  # counted once
    petr = int(list_clients(seeded, ClientFilter(search="petr"))["id"].iloc[0])
    sarka = int(list_clients(seeded, ClientFilter(search="sarka"))["id"].iloc[0])
    steps = [
        # a new list, tag, city and attribute; an update that moves a client's city
        lambda: import_clients(
            seeded,
            "Name;Email;City;Tags;Zdroj\n"
            "Nová Klientka;nova@example.cz;Zlín;jaro 2025;web\n"
            "Petr Dvořák;petr@example.cz;Kolín;;\n".encode(),
            list_name="Web",
        ),
        # the only client in Plzeň moves; one of the two 'vip' clients drops the tag
        lambda: profile.update_client(seeded, sarka, {"city": "Ostrava", "tags": "nový"}),
        # the last 'poznamka' attribute goes, and the last 'Kolín'
        lambda: profile.update_client(seeded, petr, {"attributes": {}, "city": "Praha"}),
        lambda: profile.opt_out(seeded, petr, "email", "asked by phone"),
        lambda: profile.opt_in(seeded, petr, "email"),
        lambda: profile.update_client(seeded, petr, {"name": "Petr D."}),  # no choice changes
    ]
    for step in steps:
        step()
        assert kept_counts_are_current(seeded)
        assert filter_options(seeded) == options_in_the_table(seeded)
    opts = filter_options(seeded)
    assert "Plzeň" not in opts["cities"] and "Kolín" not in opts["cities"]
    assert "Zlín" in opts["cities"] and "Ostrava" in opts["cities"]
    assert opts["lists"] == ["Jaro", "Podzim", "Web"]
    assert opts["tags"] == ["jaro 2025", "newsletter", "nový", "vip"]
    assert "zdroj" in opts["attributes"]

    # A write that fails writes nothing, and the choices stay those of the table.
    monkeypatch.setattr(actionlog, "record", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        import_clients(seeded, b"Name;Email;City\nX;x@example.cz;Cheb\n", list_name="Nic")
    with pytest.raises(ZeroDivisionError):
        profile.update_client(seeded, petr, {"city": "Cheb"})
    monkeypatch.undo()
    assert filter_options(seeded) == options_in_the_table(seeded)

    # A write around write_clients (raw SQL) is noticed by the stamp and recounted.
    add_client(seeded, name="Raw", email="raw@example.cz", city="Tábor", tags=["raw"])
    assert not kept_counts_are_current(seeded)
    assert filter_options(seeded) == options_in_the_table(seeded)
    assert "Tábor" in filter_options(seeded)["cities"]
    assert kept_counts_are_current(seeded)
