"""Client edits with re-validation, and opt-out / opt-in per channel."""

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
