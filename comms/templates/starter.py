"""The example templates a fresh install starts with, so a new user can walk the wizard at once.

Five templates, one spring offer told five ways: an e-mail and two SMS in Czech
and an e-mail and an SMS in English. The two Czech SMS are the same text, once
with diacritics and once without, so the SMS counter shows what diacritics
cost: with them the whole message travels as UCS-2 (70 characters a segment,
here 3 segments), without them as GSM-7 (160 a segment, here 1). The text
without diacritics is the one with them through comms.rules.sms.to_gsm7, the
same replacement the wizard's "replace diacritics" switch makes.

They use only the fields every client has (`name`, `first_name`) and guard the
ones a client may lack (`company`, `city`) with `{% if ... is defined %}` on
lines of their own (a tag ending a line takes its line break with it), so no
recipient of the sample list gets "missing field". The e-mails are Markdown and end with the
recipient's own `{{ unsubscribe_url }}` (comms.templates.context).

The Czech texts do not greet by name: Czech addresses a person in the vocative
("Dobrý den, Jano"), which a field holding "Jana" cannot give; the name is
shown where the nominative is right ("Pro koho: Jana Nováková").

These are data, not interface: they are stored as written and never translated
(a stored template is in the language its author wrote it in).

`add_starter_templates(store)` adds them only to a database without templates,
in one transaction, each through storage.create_template (validated and
action-logged like any other).
"""

from __future__ import annotations

from typing import TypedDict

import duckdb

from comms.rules.sms import to_gsm7
from comms.store import Store
from comms.templates.storage import create_template


class Starter(TypedDict):
    name: str
    channel: str
    subject: str | None
    body: str


_EMAIL_CS = """\
Dobrý den,

jaro je tu a s ním i naše **jarní nabídka**: do konce měsíce máte u nás \
slevu **15 % na celý nákup**.

Vaše výhoda v kostce:

- **Pro koho:** {{ name }}
{% if company is defined %}
- **Firma:** {{ company }}
{% endif %}
- **Sleva:** 15 % na celý sortiment, na e-shopu i v našich prodejnách
{% if city is defined %}
- **Doprava:** zdarma až k vám domů ({{ city }})
{% else %}
- **Doprava:** zdarma až k vám domů
{% endif %}
- **Platnost:** do konce měsíce

Stačí při nákupu zadat kód **JARO15**.

Máte dotaz? Odpovězte na tento e-mail, rádi vám poradíme.

S pozdravem
Tým zákaznické péče

---

Tento e-mail dostáváte, protože jste naším zákazníkem. Pokud od nás e-maily \
dostávat nechcete, [odhlaste se jedním kliknutím]({{ unsubscribe_url }}).
"""

_EMAIL_EN = """\
Hello {{ first_name }},

Spring is here, and so is our **spring offer**: until the end of the month \
you get **15% off everything** you buy.

Your offer at a glance:

- **For:** {{ name }}
{% if company is defined %}
- **Company:** {{ company }}
{% endif %}
- **Discount:** 15% on our whole range, online and in our shops
{% if city is defined %}
- **Delivery:** free, right to your door in {{ city }}
{% else %}
- **Delivery:** free, right to your door
{% endif %}
- **Valid:** until the end of the month

Just enter the code **SPRING15** at checkout.

Any questions? Reply to this e-mail and we will be glad to help.

Kind regards,
Your customer care team

---

You are getting this e-mail because you are our customer. If you would rather \
not hear from us, [unsubscribe with one click]({{ unsubscribe_url }}).
"""

# No field: a name or a city with diacritics would make the GSM-7 variant UCS-2 again
# (for those, the wizard's "replace diacritics" switch), and Czech needs the vocative.
_SMS_CS = (
    "Jarní nabídka je tu! Sleva 15 % na celý nákup platí do konce měsíce na e-shopu "
    "i ve všech našich prodejnách, stačí zadat kód JARO15. Odhlášení: odpovězte STOP"
)

_SMS_EN = (
    "Hi {{ first_name }}, our spring offer is on: 15% off everything until the end of "
    "the month, online and in store. Code SPRING15. Reply STOP to opt out."
)

STARTERS: tuple[Starter, ...] = (
    {
        "name": "Jarní nabídka (e-mail)",
        "channel": "email",
        "subject": "Jarní nabídka: sleva 15 % na celý nákup",
        "body": _EMAIL_CS,
    },
    {
        "name": "Jarní nabídka (SMS s diakritikou)",
        "channel": "sms",
        "subject": None,
        "body": _SMS_CS,
    },
    {
        "name": "Jarní nabídka (SMS bez diakritiky)",
        "channel": "sms",
        "subject": None,
        "body": to_gsm7(_SMS_CS),
    },
    {
        "name": "Spring offer (e-mail, English)",
        "channel": "email",
        "subject": "{{ first_name }}, your spring discount is here",
        "body": _EMAIL_EN,
    },
    {
        "name": "Spring offer (SMS, English)",
        "channel": "sms",
        "subject": None,
        "body": _SMS_EN,
    },
)


def add_starter_templates(store: Store) -> int:
    """Add the example templates when the database has none; how many were added (0 or 5).

    One transaction: the check and the inserts are one write, so two `comms init` at
    once add them once, and a template that failed its checks would add none.
    """

    def tx(cur: duckdb.DuckDBPyConnection) -> int:
        if cur.execute("SELECT count(*) FROM templates").fetchone()[0]:
            return 0
        for starter in STARTERS:
            # Joins this transaction (Store.transaction nests on the same thread).
            create_template(store, body_format="markdown", **starter)
        return len(STARTERS)

    return store.write(tx)
