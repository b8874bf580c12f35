"""The example templates of a fresh install: added once, each valid, each renders for the
sample clients, and the Czech SMS pair shows what diacritics cost."""

from __future__ import annotations

import pytest

from comms import templates as tpl
from comms.clients.sample import load_sample_if_empty
from comms.errors import TemplateError
from comms.feedback.links import UNSUBSCRIBE_URL
from comms.rules.sms import GSM7, UCS2, is_gsm7, sms_info, to_gsm7
from comms.store import Store
from comms.templates import starter
from comms.templates.storage import validate_template


@pytest.fixture
def sampled(store: Store) -> Store:
    """The store as `comms init` leaves it: the sample clients loaded."""
    assert load_sample_if_empty(store)
    return store


def _by_name(store: Store) -> dict[str, tpl.Template]:
    return {r["name"]: tpl.get_template(store, r["id"]) for r in tpl.list_templates(store)}


def test_a_fresh_store_gets_the_starters_once(store: Store) -> None:
    assert starter.add_starter_templates(store) == 5
    made = _by_name(store)
    assert sorted(made) == sorted(s["name"] for s in starter.STARTERS)
    assert sorted(t.channel for t in made.values()) == ["email", "email", "sms", "sms", "sms"]
    for t in made.values():
        validate_template(t.name, t.channel, t.subject, t.body, t.body_format)
        assert t.body_format == ("markdown" if t.channel == "email" else "text")
    # Logged like any template made by hand: one "template create" each.
    logged = store.rows("SELECT detail FROM action_log WHERE action = 'template create'")
    assert len(logged) == 5

    assert starter.add_starter_templates(store) == 0  # the second `comms init`
    assert store.scalar("SELECT count(*) FROM templates") == 5
    assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'template create'") == 5


def test_none_are_added_beside_a_users_own_template(store: Store) -> None:
    tpl.create_template(store, name="Mine", channel="sms", body="Hello")
    assert starter.add_starter_templates(store) == 0
    assert [r["name"] for r in tpl.list_templates(store)] == ["Mine"]


def test_a_starter_that_fails_its_checks_adds_none(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction: the fifth template failing rolls back the first four."""
    broken = {**starter.STARTERS[-1], "body": "{{ unclosed"}
    monkeypatch.setattr(starter, "STARTERS", (*starter.STARTERS[:-1], broken))
    with pytest.raises(TemplateError):
        starter.add_starter_templates(store)
    assert store.scalar("SELECT count(*) FROM templates") == 0
    assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'template create'") == 0


def test_every_starter_renders_for_every_sample_client(sampled: Store) -> None:
    """Only fields the sample list has, the optional ones guarded: no 'missing field'."""
    starter.add_starter_templates(sampled)
    ids = [r["id"] for r in sampled.rows("SELECT id FROM clients ORDER BY id")]
    assert len(ids) >= 100
    for t in _by_name(sampled).values():
        compiled = t.compile()
        for cid in ids:
            rendered = tpl.render_preview(
                compiled, tpl.context_for(tpl.sample_client(sampled, cid))
            )
            assert "{{" not in rendered.text and "{%" not in rendered.text, t.name
            if t.channel == "email":
                assert rendered.subject and "{{" not in rendered.subject
                assert f'href="{UNSUBSCRIBE_URL}"' in rendered.html, t.name


def test_the_emails_fill_in_the_clients_fields(sampled: Store) -> None:
    starter.add_starter_templates(sampled)
    made = _by_name(sampled)
    with_company = sampled.scalar(
        "SELECT id FROM clients WHERE company IS NOT NULL AND city IS NOT NULL ORDER BY id"
    )
    client = tpl.sample_client(sampled, with_company)
    ctx = tpl.context_for(client)

    czech = tpl.render_preview(made["Jarní nabídka (e-mail)"].compile(), ctx)
    assert czech.text.startswith("Dobrý den,\n")
    assert f"- **Pro koho:** {client['name']}\n- **Firma:** {client['company']}\n" in czech.text
    assert f"- **Doprava:** zdarma až k vám domů ({client['city']})\n" in czech.text
    assert "<strong>Sleva:</strong>" in czech.html  # Markdown made HTML
    assert "odhlaste se jedním kliknutím</a>" in czech.html

    english = tpl.render_preview(made["Spring offer (e-mail, English)"].compile(), ctx)
    assert english.subject == f"{ctx['first_name']}, your spring discount is here"
    assert english.text.startswith(f"Hello {ctx['first_name']},\n")
    assert f"- **Company:** {client['company']}\n" in english.text
    assert f"- **Delivery:** free, right to your door in {client['city']}\n" in english.text

    without = tpl.sample_client(sampled, sampled.scalar("SELECT id FROM clients ORDER BY id"))
    without = tpl.context_for({**without, "company": None, "city": None})
    czech = tpl.render_preview(made["Jarní nabídka (e-mail)"].compile(), without)
    assert f"- **Pro koho:** {without['name']}\n- **Sleva:**" in czech.text
    assert "- **Doprava:** zdarma až k vám domů\n- **Platnost:**" in czech.text
    assert czech.html.count("<li>") == 4


def test_the_czech_sms_pair_shows_what_diacritics_cost(sampled: Store) -> None:
    starter.add_starter_templates(sampled)
    made = _by_name(sampled)
    ucs2 = made["Jarní nabídka (SMS s diakritikou)"]
    gsm7 = made["Jarní nabídka (SMS bez diakritiky)"]
    assert gsm7.body == to_gsm7(ucs2.body)  # the same text, as the wizard's switch makes it
    client = tpl.context_for(tpl.sample_client(sampled))
    with_marks = sms_info(tpl.render_preview(ucs2.compile(), client).text)
    without = sms_info(tpl.render_preview(gsm7.compile(), client).text)
    assert (with_marks.encoding, without.encoding) == (UCS2, GSM7)
    assert with_marks.chars == without.chars
    assert with_marks.segments > 1 and without.segments == 1
    assert with_marks.segments > without.segments

    # The English SMS: GSM-7 and one segment for a name without diacritics.
    english = made["Spring offer (SMS, English)"].compile()
    text = tpl.render_preview(english, {"first_name": "Martin"}).text
    assert is_gsm7(text) and sms_info(text).segments == 1
