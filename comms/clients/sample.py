"""The sample client list: a deterministic generator of realistic lists, and loading it.

The generator feeds the committed sample, the tests and the benchmarks;
`load_sample_if_empty` imports the committed sample into a database with no clients.
`python -m comms.clients.sample > data/sample_clients.csv` rewrites the committed sample;
`python -m comms.clients.sample data/sample_clients_messy.xlsx` the messy Excel export.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from pathlib import Path

from comms import config
from comms.clients.importing import ImportReport, import_clients
from comms.rules.text import fold
from comms.store import Store

SAMPLE_CSV = config.ROOT / "data" / "sample_clients.csv"

FIRST = [
    ("Jan", "Novák"),
    ("Petr", "Svoboda"),
    ("Jana", "Nováková"),
    ("Tomáš", "Dvořák"),
    ("Eva", "Černá"),
    ("Lukáš", "Procházka"),
    ("Kateřina", "Kučerová"),
    ("Martin", "Veselý"),
    ("Lucie", "Horáková"),
    ("Jiří", "Němec"),
    ("Tereza", "Marková"),
    ("Ondřej", "Pokorný"),
    ("Zuzana", "Šťastná"),
    ("Michal", "Růžička"),
    ("Veronika", "Benešová"),
    ("Jakub", "Fiala"),
    ("Markéta", "Sedláčková"),
    ("David", "Doležal"),
    ("Barbora", "Zemanová"),
    ("Radek", "Kolář"),
    ("Žaneta", "Šimková"),
    ("Vojtěch", "Hájek"),
    ("Anna", "Müller"),
    ("John", "Smith"),
    ("Emily", "Johnson"),
    ("Lukas", "Schneider"),
    ("Sophie", "Dubois"),
    ("Marco", "Rossi"),
    ("Agnieszka", "Kowalska"),
    ("Olena", "Shevchenko"),
    ("Mateo", "García"),
    ("Ingrid", "Larsen"),
    ("Ján", "Kováč"),
    ("Zoltán", "Nagy"),
]
# (city, phone region prefix for landlines, country code)
CITIES = [
    ("Praha", "+420 2", "CZ"),
    ("Brno", "+420 5", "CZ"),
    ("Ostrava", "+420 59", "CZ"),
    ("Plzeň", "+420 37", "CZ"),
    ("Olomouc", "+420 58", "CZ"),
    ("České Budějovice", "+420 38", "CZ"),
    ("Hradec Králové", "+420 49", "CZ"),
    ("Ústí nad Labem", "+420 47", "CZ"),
    ("Liberec", "+420 48", "CZ"),
    ("Pardubice", "+420 46", "CZ"),
    ("Zlín", "+420 57", "CZ"),
    ("Jihlava", "+420 56", "CZ"),
    ("Bratislava", None, "SK"),
    ("Wien", None, "AT"),
    ("Berlin", None, "DE"),
    ("London", None, "GB"),
]
COMPANIES = [
    "Alfa Stavby s.r.o.",
    "Beta Software a.s.",
    "Český Pekař s.r.o.",
    "Dřevo & Nábytek s.r.o.",
    "Energie Plus a.s.",
    "Green Garden s.r.o.",
    "Horská Chata Šumava",
    "Invest Consulting",
    "Kavárna U Mostu",
    "Logistika Žďár s.r.o.",
    "",
    "",
]
TAGS = ["vip", "newsletter", "b2b", "b2c", "event 2025", "nový", "věrnostní program"]
SEGMENTS = ["A", "B", "C"]
DOMAINS = ["seznam.cz", "email.cz", "gmail.com", "centrum.cz", "post.cz", "firma.cz", "outlook.com"]
BAD_EMAILS = ["{f}.{l}@", "{f}.{l}(at)seznam.cz", "{f} {l}@email.cz", "{l}@@firma.cz", "-"]
BAD_PHONES = ["123", "+420 12", "tel. neuvedeno", "777 12 34"]
HEADERS = [
    "Jméno",
    "Příjmení",
    "E-mail",
    "Telefon",
    "Město",
    "Firma",
    "Štítky",
    "Souhlas",
    "Segment",
    "Datum registrace",
    "Poznámka",
]


CZ_MOBILE = ["602", "603", "604", "605", "606", "607", "608", "702", "720", "721", "723", "724"]
CZ_MOBILE += ["725", "728", "730", "731", "732", "733", "734", "736", "737", "739", "773", "774"]
CZ_MOBILE += ["775", "776", "777", "778", "779"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _mobile(rng: random.Random, country: str) -> str:
    """A mobile number written the ways people write them."""
    if country == "CZ":
        n = rng.choice(CZ_MOBILE) + _digits(rng, 6)
        return rng.choice([f"+420 {n[:3]} {n[3:6]} {n[6:]}", f"{n[:3]} {n[3:6]} {n[6:]}", n])
    if country == "SK":
        return f"+421 9{rng.choice('0145')}{rng.choice('0123456789')} {_digits(rng, 3)} {_digits(rng, 3)}"
    if country == "AT":
        return f"+43 664 {_digits(rng, 7)}"
    if country == "DE":
        return f"+49 151 {rng.choice('123456789')}{_digits(rng, 7)}"
    return f"+44 7911 {_digits(rng, 6)}"


def _landline(rng: random.Random, prefix: str) -> str:
    """A Czech fixed-line number: '+420 ' and 9 digits starting with the area prefix."""
    area = prefix.removeprefix("+420 ")
    n = area + _digits(rng, 9 - len(area))
    return f"+420 {n[:3]} {n[3:6]} {n[6:]}"


def rows(
    n: int = 200, seed: int = 42, *, bad_emails: float = 0.04, bad_phones: float = 0.04
) -> list[list[str]]:
    """n client rows (by default about 4% bad e-mails, 4% bad phones, 10% landlines, a few
    duplicates)."""
    rng = random.Random(seed)
    out: list[list[str]] = []
    for i in range(n):
        if i > 10 and rng.random() < 0.03:  # a duplicate of an earlier client, maybe re-cased
            dup = list(rng.choice(out))
            dup[2] = dup[2].upper() if dup[2] else dup[2]
            dup[7] = rng.choice(["ano", "ne"])
            out.append(dup)
            continue
        first, _ = rng.choice(FIRST)
        _, last = rng.choice(FIRST)
        city, landline, country = rng.choice(CITIES[:12] * 3 + CITIES[12:])
        r = rng.random()
        if r < bad_emails:
            email = rng.choice(BAD_EMAILS).format(f=fold(first), l=fold(last))
        elif r < bad_emails + 0.03:
            email = ""
        else:
            email = f"{fold(first)}.{fold(last)}{i}@{rng.choice(DOMAINS)}"
        r = rng.random()
        if r < bad_phones:
            phone = rng.choice(BAD_PHONES)
        elif r < bad_phones + 0.10 and landline:
            phone = _landline(rng, landline)
        elif r < bad_phones + 0.14:
            phone = ""
        else:
            phone = _mobile(rng, country)
        tags = ", ".join(rng.sample(TAGS, rng.choice([0, 1, 1, 2])))
        out.append(
            [
                first,
                last,
                email,
                phone,
                city,
                rng.choice(COMPANIES),
                tags,
                rng.choice(["ano", "ano", "ano", "ne"]),
                rng.choice(SEGMENTS),
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice(["", "", "", "", "", "", "volat dopoledne", "preferuje e-mail", "=1+1"]),
            ]
        )
    return out


def csv_text(n: int = 200, seed: int = 42, delimiter: str = ";", **rates: float) -> str:
    """The client list as CSV text with Czech headers (rates: rows()'s bad_emails, bad_phones)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(rows(n, seed, **rates))
    return buf.getvalue()


def write_messy_xlsx(path: str, n: int = 40, seed: int = 11) -> None:
    """An Excel export as people really send them: a title and a blank row above the header,
    English headers, phone numbers stored as numbers, dates, a formula, blank rows."""
    from datetime import date

    import openpyxl

    rng = random.Random(seed)
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Klienti"
    ws.append(["Client export (CRM), generated 2025-03-01"])
    ws.append([])
    ws.append(
        ["Full name", "E-mail address", "Mobile", "Town", "Company", "Member since", "Points"]
    )
    for i, r in enumerate(rows(n, seed)):
        phone = r[3].replace(" ", "")
        cell: object = phone
        if phone.startswith("+420") and phone[1:].isdigit():
            cell = int(phone[1:])  # Excel turned the number into a number
        ws.append(
            [
                f"{r[0]} {r[1]}",
                r[2],
                cell,
                r[4],
                r[5],
                date(2020 + rng.randint(0, 5), rng.randint(1, 12), rng.randint(1, 28)),
                rng.randint(0, 500),
            ]
        )
        if i == 10:
            ws.append([])
    ws.append(["Total", None, None, None, None, None, "=SUM(G4:G44)"])
    book.save(path)


def load_sample_if_empty(store: Store, path: Path = SAMPLE_CSV) -> ImportReport | None:
    """Import data/sample_clients.csv as list 'Sample' when there are no clients yet."""
    if store.scalar("SELECT count(*) FROM clients"):
        return None
    return import_clients(store, path, list_name="Sample")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].endswith(".xlsx"):
        write_messy_xlsx(sys.argv[1])
    else:
        sys.stdout.write(csv_text(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
