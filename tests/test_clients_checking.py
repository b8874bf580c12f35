"""The import's bulk address checks (comms.clients.checking) give exactly what email-validator
and phonenumbers give when called directly, value by value, over a varied sample: many
regions, formats, lengths, prefixes and broken inputs, with many numbers per prefix so that
the per-prefix shortcut is taken again and again."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from comms.clients.checking import EmailChecks, PhoneChecks, check_values
from comms.rules.validation import _KIND_NAMES, EmailCheck, PhoneCheck


def library_email(raw: str) -> EmailCheck:
    """What the import stores for an address, from email-validator called directly."""
    text = raw.strip()
    if not text:
        return EmailCheck(False, "", "no e-mail")
    if "\r" in text or "\n" in text:
        return EmailCheck(False, text, "invalid e-mail: contains a line break")
    try:
        return EmailCheck(True, validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        return EmailCheck(False, text, f"invalid e-mail: {exc}")


def library_phone(raw: str, region: str) -> PhoneCheck:
    """What the import stores for a number, from phonenumbers called directly."""
    text = raw.strip()
    if not text:
        return PhoneCheck(False, "", "invalid", "no phone")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return PhoneCheck(False, text, "invalid", f"invalid phone: {exc._msg}")
    if not phonenumbers.is_valid_number(number):
        return PhoneCheck(False, text, "invalid", "invalid phone: not a valid number")
    return PhoneCheck(
        True,
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        _KIND_NAMES.get(phonenumbers.number_type(number), "unknown"),
    )


# -- e-mail ---------------------------------------------------------------------------------------

DOMAINS = [
    "seznam.cz",
    "GMAIL.COM",
    "email.cz",
    "firma.co.uk",
    "sub.domain.example.org",
    "háček.cz",
    "xn--hek-ela4t.cz",
    "ÉCOLE.fr",
    "localhost",
    "example",
    "test.test",
    "a.b",
    "x-y.cz",
    "-bad.cz",
    "bad-.cz",
    "two..dots.cz",
    "trailing.cz.",
    "under_score.cz",
    "123.456",
    "exa mple.cz",
    "[192.168.0.1]",
    "[IPv6:::1]",
    "münchen.de",
    "a" * 64 + ".cz",
    ".".join(["abcdefghij"] * 26) + ".cz",
    "e.mail",
    "xn--zz.cz",
    "ÿ.com",
    "中国.cn",
    "domain.c",
    "domain.technology",
    "",
]
LOCALS = [
    "jan",
    "jan.novak",
    "Jan.Novak",
    "jan+tag",
    "jan_novak",
    "j",
    "1234",
    "o'brien",
    "a!#$%&'*+/=?^_`{|}~-b",
    ".jan",
    "jan.",
    "ja..n",
    "jan novak",
    "jána",
    "иван",
    "postmaster",
    "Postmaster",
    "ABUSE",
    '"quoted"',
    '"with space"',
    "a" * 64,
    "a" * 65,
    "x" * 240,
    "jan@",
    "",
    "(comment)jan",
    "jan\\x",
    "jan,novak",
    "jan;novak",
    "ü",
]


def email_sample() -> list[str]:
    rng = random.Random(5)
    out = [f"{lo}@{do}" for lo in LOCALS for do in DOMAINS]
    out += [
        f"{rng.choice(LOCALS)}{rng.randint(0, 99999)}@{rng.choice(DOMAINS[:8])}"
        for _ in range(20_000)
    ]
    out += [
        "jan",
        "@seznam.cz",
        "jan@@seznam.cz",
        "jan@seznam@cz",
        "Jan Novák <jan@seznam.cz>",
        "<jan@seznam.cz>",
        " jan@seznam.cz ",
        "jan@seznam.cz\n",
        "jan(at)seznam.cz",
        "jan＠seznam.cz",
        "-",
        "n/a",
        "jan@seznam.cz>",
        "jan<@seznam.cz",
        "\tjan@x.cz",
        "a@" + "b" * 250 + ".cz",
        "x" * 60 + "@" + "y" * 190 + ".cz",
    ]
    return out


def test_every_address_gets_email_validators_answer():
    sample = email_sample()
    checks = EmailChecks()
    for raw in sample:
        assert checks.check(raw) == library_email(raw), raw
    assert len(checks._domains) < len(sample) / 20  # each domain validated once, not per row


# -- phones ---------------------------------------------------------------------------------------

REGIONS = ["CZ", "SK", "DE", "AT", "GB", "US", "IT", "FR", "PL", "AR", "BR", "JE", "IN", "AU"]
TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.VOIP,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
]


def phone_sample(rng: random.Random) -> list[str]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for numtype in TYPES:
            example = phonenumbers.example_number_for_type(region, numtype)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            digits = e164[1:]
            for _ in range(12):  # the same prefix, other endings: the shortcut's classes
                cut = rng.randint(2, 6)
                tail = "".join(rng.choice("0123456789") for _ in range(cut))
                out.append("+" + digits[:-cut] + tail)
            out += [
                e164,
                "00" + digits,
                " ".join([e164[:4], e164[4:7], e164[7:]]),
                national,
                national.replace(" ", ""),
                e164[:-1],  # one digit short
                e164 + str(rng.randint(0, 9)),  # one digit long
                "+" + digits[:3] + "0" + digits[3:],  # a national prefix after the code
            ]
    # Numbers as a Czech list has them, many per prefix.
    for _ in range(6000):
        prefix = rng.choice(
            [
                "601",
                "602",
                "603",
                "604",
                "605",
                "608",
                "702",
                "720",
                "731",
                "775",
                "777",
                "778",
                "799",
                "222",
                "283",
                "311",
                "910",
                "800",
            ]
        )
        rest = "".join(rng.choice("0123456789") for _ in range(rng.choice([5, 6, 6, 6, 7])))
        number = prefix + rest
        out.append(
            rng.choice(
                [
                    number,
                    f"{number[:3]} {number[3:6]} {number[6:]}",
                    "+420" + number,
                    "+420 " + number,
                    "00420" + number,
                    "0" + number,
                ]
            )
        )
    out += [
        "",
        "12",
        "1 2",
        "123",
        "tel. 777 123 456",
        "777-123-456",
        "(777) 123 456",
        "+",
        "+ 420 777 123 456",
        "+420",
        "00",
        "0000000000",
        "+0000000000",
        "777 123 45a",
        "1-800-FLOWERS",
        "+1 800 356 9377",
        "+44 7911 123456 ext 12",
        "+44 (0) 7911 123456",
        "777123456;",
        "٧٧٧١٢٣٤٥٦",
        "+4207771234567890123",
        "+999 123 456 789",
    ]
    return out


@pytest.mark.parametrize("region", ["CZ", "US", "GB", "DE", "BR", "JE"])
def test_every_number_gets_phonenumbers_answer(region, monkeypatch):
    from comms.clients import checking

    asked = []
    library = checking.check_phone
    monkeypatch.setattr(
        checking, "check_phone", lambda raw, r: asked.append(raw) or library(raw, r)
    )
    rng = random.Random(region)
    sample = phone_sample(rng)
    checks = PhoneChecks(region)
    for raw in sample:
        assert checks.check(raw) == library_phone(raw, region), (raw, region)
    # The shortcut answered many numbers without the library (prefix classes were found).
    classes = sum(len(c) for c in checks._classes.values())
    assert classes > 50 and len(asked) < 0.8 * len(sample)


def test_check_values_is_the_same_in_bulk():
    rng = random.Random(1)
    emails = email_sample()[:3000]
    phones = phone_sample(rng)[:3000]
    got = check_values({"email": emails, "phone": phones}, "CZ")
    assert got["email"] == [library_email(v) for v in emails]
    assert got["phone"] == [library_phone(v, "CZ") for v in phones]


# -- the phone worker beside an import -----------------------------------------------------------


def test_the_phone_worker_gives_the_same_answers_and_a_failed_one_changes_nothing(monkeypatch):
    from comms.clients import checking

    monkeypatch.setattr(checking, "PARALLEL_MIN_VALUES", 10)
    phones = phone_sample(random.Random(3))[:400]
    here = PhoneChecks("CZ")
    expected = [here.answer(v) for v in phones]
    beside = checking.PhonesBeside(phones, "CZ")
    assert beside._proc is not None  # a worker process did the checks
    assert beside.results() == expected
    monkeypatch.setattr(checking, "_WORKER", "raise SystemExit(3)")
    failed = checking.PhonesBeside(phones, "CZ")
    assert failed.results() == expected  # checked here instead


def test_an_import_loads_neither_pandas_nor_pyarrow(tmp_path):
    """They cost a third of a second to load (pyarrow loads pandas); the import needs neither."""
    import subprocess
    import sys
    from pathlib import Path

    from comms.clients.sample import csv_text

    path = tmp_path / "list.csv"
    path.write_text(csv_text(50), encoding="utf-8")
    code = (
        "import sys\n"
        "from comms.cli import main\n"
        f"main(['import', {str(path)!r}, '--db', {str(tmp_path / 'x.duckdb')!r}])\n"
        "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
