"""Client edits with re-validation, opt-out / opt-in, and the suppression list."""

from __future__ import annotations

import json

import pytest

from comms.clients import profile
from comms.errors import NotFound
from tests.seed_history import add_client


def test_edit_normalises_and_logs(store):
    cid = add_client(store)
    diff = profile.update_client(
        store,
        cid,
        {
            "email": "  Jana.N@Example.CZ ",
            "phone": "602 123 456",
            "tags": "vip, prague, vip",
            "attributes": {"segment": "A", "points": 12},
        },
    )
    c = profile.load_client(store, cid)
    assert c["email"] == "Jana.N@example.cz"
    assert c["phone"] == "+420602123456" and c["phone_kind"] == "mobile"
    assert c["tags"] == ["vip", "prague"]
    assert c["attributes"] == {"segment": "A", "points": 12}
    assert set(diff) == {"email", "phone", "tags", "attributes"}
    log = store.rows("SELECT action, client_id, detail FROM action_log")
    assert [r["action"] for r in log] == ["client edited"]
    assert log[0]["client_id"] == cid
    assert json.loads(log[0]["detail"])["changed"]["phone"][1] == "+420602123456"


def test_bad_email_names_field_and_saves_nothing(store):
    cid = add_client(store)
    with pytest.raises(profile.InvalidField) as exc:
        profile.update_client(store, cid, {"name": "Changed", "email": "jana@@example"})
    assert exc.value.field == "e-mail"
    assert "e-mail" in str(exc.value) and "Nothing was saved" in str(exc.value)
    assert ".)" not in str(exc.value)  # the checker's sentence ends inside the parentheses
    c = profile.load_client(store, cid)
    assert c["name"] == "Jana Nováková" and c["email"] == "jana@example.cz"
    assert store.scalar("SELECT count(*) FROM action_log") == 0


def test_bad_phone_and_bad_attributes_are_refused(store):
    cid = add_client(store)
    with pytest.raises(profile.InvalidField, match="phone"):
        profile.update_client(store, cid, {"phone": "12"})
    with pytest.raises(profile.InvalidField, match="attributes"):
        profile.update_client(store, cid, {"attributes": "{not json"})
    with pytest.raises(profile.InvalidField, match="name"):
        profile.update_client(store, cid, {"name": "  "})
    assert profile.load_client(store, cid)["phone"] == "+420601123456"


def test_email_of_another_client_is_refused(store):
    add_client(store, name="Other", email="other@example.cz")
    cid = add_client(store)
    with pytest.raises(profile.InvalidField, match="already belongs"):
        profile.update_client(store, cid, {"email": "other@example.cz"})


def test_clearing_email_is_allowed(store):
    cid = add_client(store)
    profile.update_client(store, cid, {"email": ""})
    c = profile.load_client(store, cid)
    assert c["email"] is None and c["email_valid"] is False


def test_unknown_client(store):
    with pytest.raises(NotFound):
        profile.update_client(store, 999, {"name": "X"})


def test_opt_out_and_back_in(store):
    cid = add_client(store)
    out = profile.opt_out(store, cid, "sms", "asked by phone")
    assert out["address"] == "+420601123456"
    c = profile.load_client(store, cid)
    assert c["consent_sms"] is False and c["consent_email"] is True
    assert c["suppressed"]["sms"]["reason"] == "asked by phone"
    assert c["suppressed"]["email"] is None
    # twice does not duplicate the suppression
    profile.opt_out(store, cid, "sms", "again")
    assert store.scalar("SELECT count(*) FROM suppressions") == 1
    profile.opt_in(store, cid, "sms")
    c = profile.load_client(store, cid)
    assert c["consent_sms"] is True and c["suppressed"]["sms"] is None
    actions = [r["action"] for r in store.rows("SELECT action FROM action_log ORDER BY id")]
    assert actions == ["opt-out", "opt-out", "opt-in"]


def test_opt_out_needs_a_reason(store):
    cid = add_client(store)
    with pytest.raises(profile.InvalidField, match="reason"):
        profile.opt_out(store, cid, "email", " ")
    assert profile.load_client(store, cid)["consent_email"] is True


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
    parsed = profile.parse_address_list(data, region="CZ")
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
    parsed = profile.parse_address_list(b"a@example.com;Ann\nb@example.com;Bob\n")
    assert profile.import_suppressions(store, parsed, "newsletter bounce") == 2
    assert profile.import_suppressions(store, parsed, "again") == 0
    df = profile.list_suppressions(store, channel="email")
    assert sorted(df["address"]) == ["a@example.com", "b@example.com"]
    assert set(df["reason"]) == {"newsletter bounce"}
    assert profile.remove_suppression(store, "a@example.com", "email") == 1
    assert profile.count_suppressions(store) == 2 - 1


def test_binary_upload_is_refused():
    with pytest.raises(profile.InvalidField, match="not a text file"):
        profile.parse_address_list(b"\x00\x01\x02PK")


def test_add_suppression_by_hand(store):
    assert profile.add_suppression(store, "+420 603 000 111", "complaint") == (
        "+420603000111",
        "sms",
    )
    with pytest.raises(profile.InvalidField):
        profile.add_suppression(store, "x@", "bad")
    with pytest.raises(profile.InvalidField, match="not an address for email"):
        profile.add_suppression(store, "+420603000111", "x", channel="email")
