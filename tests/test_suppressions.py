"""The suppression list: uploads (bad lines, headers, duplicates, binary files), by hand, removal."""

from __future__ import annotations

import pytest

from comms.clients import suppressions


def test_parse_address_list_reports_bad_lines():
    data = (
        "e-mail\n"
        "Petr@Example.com\n"
        "not-an-address@\n"
        "\n"
        "+420 602 111 222\n"
        "602111222\n"
        "hello\n"
        "petr@example.com\n"
    ).encode("cp1250")
    parsed = suppressions.parse_address_list(data, region="CZ")
    assert parsed.header_skipped
    assert [(a, ch) for _, a, ch in parsed.entries] == [
        ("Petr@example.com", "email"),
        ("+420602111222", "sms"),
    ]
    assert parsed.duplicates == 2  # 602111222 and petr@example.com again
    lines = {line: text for line, text, _ in parsed.errors}
    assert lines == {3: "not-an-address@", 7: "hello"}
    assert all("invalid" in reason for _, _, reason in parsed.errors)


def test_import_csv_first_column_and_idempotent(store):
    parsed = suppressions.parse_address_list(b"a@example.com;Ann\nb@example.com;Bob\n")
    assert suppressions.import_suppressions(store, parsed, "newsletter bounce") == 2
    assert suppressions.import_suppressions(store, parsed, "again") == 0
    df = suppressions.list_suppressions(store, channel="email")
    assert sorted(df["address"]) == ["a@example.com", "b@example.com"]
    assert set(df["reason"]) == {"newsletter bounce"}
    assert suppressions.remove_suppression(store, "a@example.com", "email") == 1
    assert suppressions.count_suppressions(store) == 2 - 1


def test_uploads_are_decoded_like_client_lists():
    text = "Telefonní číslo;Poznámka\n+420 602 111 222;Šťastný\njiří@example.cz;\n"
    for data in (text.encode("cp1250"), text.encode("utf-16"), text.encode("utf-8-sig")):
        parsed = suppressions.parse_address_list(data, region="CZ")
        assert parsed.header_skipped and not parsed.errors
        assert [(a, ch) for _, a, ch in parsed.entries] == [
            ("+420602111222", "sms"),
            ("jiří@example.cz", "email"),
        ]


def test_binary_upload_is_refused():
    with pytest.raises(suppressions.InvalidField, match="not a text file"):
        suppressions.parse_address_list(b"\x00\x01\x02PK")


def test_add_suppression_by_hand(store):
    assert suppressions.add_suppression(store, "+420 603 000 111", "complaint") == (
        "+420603000111",
        "sms",
    )
    with pytest.raises(suppressions.InvalidField):
        suppressions.add_suppression(store, "x@", "bad")
    with pytest.raises(suppressions.InvalidField, match="not an address for email"):
        suppressions.add_suppression(store, "+420603000111", "x", channel="email")
