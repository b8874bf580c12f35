import json

import pytest

from comms import templates as tpl
from comms.errors import NotFound, TemplateError
from comms.templates import RenderFailed, client_context, compile_template, variables


def test_fields_render_in_subject_text_and_html():
    c = compile_template(
        "email",
        "Hello {{ first_name }}",
        "# Hi {{ name }}\n\nSee you in **{{ city }}**.\n\n- [shop](https://x.test/?c={{ city }})",
    )
    r = c.render({"first_name": "Jana", "name": "Jana Nová", "city": "Brno"})
    assert r.subject == "Hello Jana"
    assert "# Hi Jana Nová" in r.text and "**Brno**" in r.text
    assert "<h1>Hi Jana Nová</h1>" in r.html
    assert "<strong>Brno</strong>" in r.html
    assert 'href="https://x.test/?c=Brno"' in r.html


def test_html_is_autoescaped_and_values_cannot_add_markdown():
    c = compile_template("email", "S {{ name }}", "Dear {{ name }},\n\n{{ note }}")
    r = c.render({"name": "<script>alert(1)</script> & *bold*", "note": "# not a heading"})
    assert "<script>" not in r.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; *bold*" in r.html
    assert "<em>" not in r.html and "<h1>" not in r.html
    # The text part is the template rendered as is; the subject has no line breaks.
    assert "Dear <script>alert(1)</script> & *bold*," in r.text
    assert c.render({"name": "a\r\nBcc: x@y", "note": "n"}).subject == "S a Bcc: x@y"


def test_raw_html_template_escapes_values_and_keeps_a_text_part():
    c = compile_template("email", "S", "<p>Hi <b>{{ name }}</b></p><p>Bye</p>", body_format="html")
    r = c.render({"name": "<i>x</i>"})
    assert r.html == "<p>Hi <b>&lt;i&gt;x&lt;/i&gt;</b></p><p>Bye</p>"
    assert r.text == "Hi <i>x</i>\n\nBye"


def test_html_to_text_and_body_parts_of_an_edited_body():
    """One HTML -> text rule (the MIME text part uses it too) and one edited body -> HTML rule."""
    markup = "<h1>Hi</h1><p>A&amp;B<br>next</p><script>x()</script><ul><li>one</li></ul>"
    assert tpl.html_to_text(markup) == "Hi\n\nA&B\nnext\n\none"
    assert tpl.body_parts("email", None, "Dear <b>you</b>, *thanks*") == (
        "Dear <b>you</b>, *thanks*",
        "<p>Dear &lt;b&gt;you&lt;/b&gt;, <em>thanks</em></p>",
    )
    assert tpl.body_parts("email", "html", "<p>Hi</p><p>Bye</p>") == (
        "Hi\n\nBye",
        "<p>Hi</p><p>Bye</p>",
    )
    assert tpl.body_parts("email", "text", "a < b")[1] == (
        '<div style="white-space: pre-wrap">a &lt; b</div>'
    )
    assert tpl.body_parts("sms", None, "Hi <3") == ("Hi <3", None)


def test_plain_text_email_and_sms():
    r = compile_template("email", "S", "a < b {{ x }}", body_format="text").render({"x": 1})
    assert r.text == "a < b 1" and "a &lt; b 1" in r.html
    r = compile_template("sms", None, "Hi {{ name }} <3").render({"name": "Jo"})
    assert (r.subject, r.text, r.html) == (None, "Hi Jo <3", None)


def test_missing_field_is_a_reason_naming_the_field():
    c = compile_template("sms", None, "Hi {{ name }} from {{ city }}")
    with pytest.raises(RenderFailed) as exc:
        c.render({"name": "Jo"})
    assert exc.value.reason == "missing field: city"
    # default() and `is defined` make a field optional.
    ok = compile_template(
        "sms", None, "{{ city | default('home') }}{% if vip is defined %}!{% endif %}"
    )
    assert ok.render({}).text == "home"


def test_missing_attribute_key_is_a_missing_field():
    c = compile_template("sms", None, "{{ tags[5] }}")
    with pytest.raises(RenderFailed) as exc:
        c.render({"tags": ["a"]})
    assert exc.value.reason.startswith(("missing field", "render error"))


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x|attr('__class__') }}",
        "{{ x['__class__'] }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ lipsum.__globals__['os'] }}",
    ],
)
def test_sandbox_escapes_refused_at_save_time(source):
    with pytest.raises(TemplateError, match="Python internals"):
        compile_template("sms", None, source)


def test_sandbox_refuses_at_render_time_what_static_check_cannot_see():
    c = compile_template("sms", None, "{{ x|attr(n) }}")
    with pytest.raises(RenderFailed) as exc:
        c.render({"x": "", "n": "__class__"})
    assert "sandbox" in exc.value.reason
    with pytest.raises(TemplateError, match="sandbox"):
        tpl.render_preview(c, {"x": "", "n": "__class__"})


def test_immutable_sandbox_and_power_limit():
    c = compile_template("sms", None, "{% set _ = tags.append('x') %}{{ tags }}")
    with pytest.raises(RenderFailed, match="unsafe|sandbox"):
        c.render({"tags": ["a"]})
    with pytest.raises(RenderFailed, match="too large"):
        compile_template("sms", None, "{{ 10 ** 100000000 }}").render({})


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateError, match=r"body: syntax error on line 3: "):
        compile_template("sms", None, "a\nb\n{{ name }")
    with pytest.raises(TemplateError, match=r"subject: syntax error on line 1"):
        compile_template("email", "{% if %}", "body")


def test_variables():
    assert variables("{{ name }} {% for t in tags %}{{ t }}{% endfor %} {{ range(3) }}") == {
        "name",
        "tags",
    }


def test_client_context_has_core_fields_and_attributes():
    row = {
        "name": "Jana Nová",
        "first_name": None,
        "last_name": "Nová",
        "email": "jana@example.com",
        "phone": "",
        "city": "Brno",
        "company": None,
        "lists": ["VIP", "Newsletter"],
        "tags": ["a"],
    }
    ctx = client_context(row, {"Datum narození": "1990-01-01", "points": 12, "name": "X"})
    assert ctx["name"] == "Jana Nová"  # a core field wins over an attribute
    assert ctx["first_name"] == "Jana"  # derived from the name when missing
    assert ctx["list"] == "VIP, Newsletter" and ctx["tags"] == ["a"]
    assert ctx["Datum narození"] == "1990-01-01" and ctx["datum_narozeni"] == "1990-01-01"
    assert ctx["points"] == 12
    assert "phone" not in ctx and "company" not in ctx  # blank -> missing field
    assert client_context({"name": "Ing. Mgr. Petr Malý"})["first_name"] == "Petr"
    assert "first_name" not in client_context({"name": "Dr."})


def test_crud_duplicate_delete_and_action_log(store):
    tid = tpl.create_template(
        store, name="Welcome", channel="email", subject="Hi {{ name }}", body="Hello {{ name }}"
    )
    with pytest.raises(TemplateError, match="already exists"):
        tpl.create_template(store, name="welcome", channel="sms", body="x")
    with pytest.raises(TemplateError, match="syntax error on line 1"):
        tpl.update_template(store, tid, body="{{ oops")
    assert tpl.get_template(store, tid).body == "Hello {{ name }}"  # unchanged
    tpl.update_template(store, tid, body="Hello {{ first_name }}")
    assert tpl.get_template(store, tid).body == "Hello {{ first_name }}"
    aid = tpl.attach(store, tid, "terms.pdf", b"%PDF-1.4 terms")
    assert tpl.attach(store, tid, "terms.pdf", b"%PDF-1.4 terms") == aid  # stored once
    assert store.scalar("SELECT count(*) FROM attachments") == 1
    copy = tpl.duplicate_template(store, tid)
    t2 = tpl.get_template(store, copy)
    assert t2.name == "Welcome (copy)" and [a.id for a in t2.attachments] == [aid]
    assert t2.attachments[0].content_type == "application/pdf"
    tpl.detach(store, copy, aid)
    assert tpl.get_template(store, copy).attachments == []
    tpl.delete_template(store, tid)
    with pytest.raises(NotFound):
        tpl.get_template(store, tid)
    assert [t["name"] for t in tpl.list_templates(store)] == ["Welcome (copy)"]
    actions = [r["action"] for r in store.rows("SELECT action FROM action_log ORDER BY id")]
    assert actions == [
        "template create",
        "template edit",
        "template attach",
        "template attach",
        "template duplicate",
        "template detach",
        "template delete",
    ]
    detail = json.loads(
        store.scalar("SELECT detail FROM action_log WHERE action = 'template edit'")
    )
    assert detail["changed"] == ["body"]


def test_sms_templates_refuse_attachments_and_sandbox_escapes_are_not_saved(store):
    tid = tpl.create_template(store, name="S", channel="sms", body="Hi {{ name }}")
    with pytest.raises(TemplateError, match="SMS templates cannot carry attachments"):
        tpl.attach(store, tid, "a.txt", b"x")
    with pytest.raises(TemplateError, match="Python internals"):
        tpl.create_template(store, name="Evil", channel="sms", body="{{ ''.__class__ }}")
    assert store.scalar("SELECT count(*) FROM templates") == 1


def test_attachment_size_limit(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_ATTACHMENT_MB", "1")
    tid = tpl.create_template(store, name="E", channel="email", subject="s", body="b")
    with pytest.raises(Exception, match="limit per message is 1.0 MB"):
        tpl.attach(store, tid, "big.bin", b"x" * (1024 * 1024 + 1))
    assert store.scalar("SELECT count(*) FROM attachments") == 0


def test_sample_client_and_preview(store):
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO clients (name, city, attributes) VALUES ('Jana', 'Brno', ?)",
            [json.dumps({"points": 7})],
        )
    )
    row = tpl.sample_client(store)
    ctx = tpl.context_for(row)
    r = tpl.render_preview(compile_template("sms", None, "{{ name }} {{ points }}"), ctx)
    assert r.text == "Jana 7"


@pytest.mark.parametrize(
    ("fmt", "subject", "body"),
    [
        (
            "markdown",
            "Hi {{ name }}",
            "\n{% if vip is defined %}\nVIP\n{% endif %}\n  {{ name }}  \n",
        ),
        ("markdown", "{% set x = 1 %}S{{ x }}", "# {{ name }}\n\n* {{ city }}\n"),
        ("html", "S", "<p>{{ name }}</p>\n{% for t in tags %}<i>{{ t }}</i>{% endfor %}"),
        ("text", "S {{ name }}", "  {{ name }}\n{% if city %}\n{{ city }}{% endif %}\n"),
    ],
)
def test_one_render_per_recipient_matches_separate_renders(fmt, subject, body):
    c = compile_template("email", subject, body, fmt)
    assert c._combined is not None
    ctx = {"name": "<Jo & *Co*>", "city": "Brno", "tags": ["a", "<b>"]}
    assert c.render(ctx) == c._render_separately(ctx)


def test_gsm7_template_transliterates_text_and_values_alike():
    source = "Dobrý den {{ name }}, „{{ city|upper }}“ {% if vip is defined %}VIP{% endif %} – ř"
    ctx = {"name": "Jiří Čech", "city": "Plzeň"}
    from comms.rules.sms import to_gsm7

    plain = compile_template("sms", None, source).render(ctx).text
    fast = compile_template("sms", None, source, gsm7=True).render(ctx).text
    assert fast == to_gsm7(plain) == 'Dobry den Jiri Cech, "PLZEN"  - r'
    with pytest.raises(RenderFailed, match="city"):
        compile_template("sms", None, "{{ city }}", gsm7=True).render({})
    draft = compile_template("sms", None, "Ahoj {{ city }} ř", gsm7=True).render_draft({})
    assert draft.text == "Ahoj {{ city }} r"


def test_conditional_paragraph_leaves_no_stray_breaks_or_empty_paragraphs():
    c = compile_template(
        "email",
        "S",
        "Hello {{ name }},\n\n{% if vip is defined %}\nAs a **VIP** you get more.\n"
        "{% endif %}\n\nBye",
    )
    assert c.render({"name": "A", "vip": 1}).html == (
        "<p>Hello A,</p>\n<p>As a <strong>VIP</strong> you get more.\n</p>\n<p>Bye</p>"
    )
    assert c.render({"name": "A"}).html == "<p>Hello A,</p>\n<p>Bye</p>"


def test_a_missing_field_says_what_to_do():
    """The preview names the field and the fix, not Jinja's "'points' is undefined"."""
    c = compile_template("email", "Hi", "You have {{ points }} points.")
    with pytest.raises(TemplateError) as err:
        tpl.render_preview(c, {"name": "Jana"})
    assert str(err.value) == (
        "missing field: points — this client has no value for “points”; fill it in, or make "
        "it optional in the template with {{ points | default('') }}"
    )


def test_a_name_set_in_the_subject_stays_in_the_subject():
    """The parts share one render; a {% set %} in one of them must not reach the others."""
    c = compile_template("email", "{% set name = 'Team' %}Hi {{ name }}", "Dear {{ name }}")
    r = c.render({"name": "Jana"})
    assert (r.subject, r.text, r.html) == ("Hi Team", "Dear Jana", "<p>Dear Jana</p>")


@pytest.mark.parametrize(
    "fields",
    [
        {"name", "city"},
        {"first_name"},
        {"list", "tags", "email", "phone"},
        {"points", "datum_narozeni", "city", "company", "last_name"},
        {"Body", "lists"},
    ],
)
def test_row_contexts_are_client_context_for_the_fields_a_template_reads(fields):
    from comms.templates.context import LIST_SEP, RowContexts, row_columns, row_context

    names = [c.split(" AS ")[-1].removeprefix("c.") for c in row_columns(None)]
    rows = [
        ("Ing. Jana Nová", None, "Nová", "j@x.cz", "+420601123456", "Brno", "Růže",
         f"VIP{LIST_SEP}News", f"a{LIST_SEP} ", '{"points": 5, "Datum narození": "1990"}'),
        ("", "Petr", None, None, None, " ", None, "", "", "{}"),
        ("Eva", None, None, None, None, None, None, None, None, '{"city": "Plzeň", "Body": 0}'),
        ("Ivo", "", "", "", "", "", "", "", "", '{"points": null, "company": " "}'),
        ("Jo", None, None, None, None, "Praha", None, None, None, "not json"),
    ]  # fmt: skip
    only = frozenset(fields)
    contexts = RowContexts(names, only)
    for values in rows:
        full = row_context(dict(zip(names, values, strict=True)), only)
        fast = contexts(values)
        assert {k: fast.get(k) for k in only} == {k: full.get(k) for k in only}
        assert set(fast) <= set(full)


def test_the_render_worker_starts_without_the_database():
    """A render worker imports comms.templates alone: no DuckDB, no pandas (~0.2 s to start)."""
    import subprocess
    import sys

    code = (
        "import sys, comms.templates.batch; print(sorted({'duckdb', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SIMPLE_TEMPLATES = [
    ("email", "markdown", "Hi {{ first_name }}", "Dear **{{ name }}**,\n\n- {{ city }}\n"),
    (
        "email",
        "markdown",
        "{% if vip %}VIP {% endif %}{{ name }}",
        "Hello {{ name }},\n\n{% if city == 'Brno' %}\nBrno!\n{% elif city in ['Praha', 'Plzeň'] %}"
        "\nWest\n{% else %}\nElsewhere {{ city }}\n{% endif %}\n\n{% if points > 10 and not vip %}"
        "\n{{ points }} points\n{% endif %}\n{% if note is defined %}{{ note }}{% endif %}Bye",
    ),
    (
        "email",
        "html",
        "S {{ name }}",
        "<p>{{ name }}</p>{% if vip is undefined %}<i>no</i>{% endif %}",
    ),
    ("email", "text", "S", "  {{ name }}\n{% if city %}\n{{ city }}{% endif %}\n"),
    ("sms", "text", None, "Dobrý den {{ name }}, {% if points >= 5 %}{{ points }} bodů{% endif %}"),
]
SIMPLE_CONTEXTS = [
    {"first_name": "Jana", "name": "Jana <b>&</b> *Co*", "city": "Brno", "points": 20, "vip": 0},
    {"first_name": "Jo", "name": "Jo", "city": "Plzeň", "points": 3, "vip": 1, "note": "<n>"},
    {"first_name": "Al", "name": "Al", "city": "Ostrava", "points": 11.5, "vip": "", "note": ""},
    {"name": "Eva", "city": "Praha", "points": "x", "vip": None},
    {"name": "Ivo"},
    {"first_name": "Ann\nBcc: x", "name": " ", "city": "", "points": 0, "vip": [1]},
]


@pytest.mark.parametrize(("channel", "fmt", "subject", "body"), SIMPLE_TEMPLATES)
@pytest.mark.parametrize("gsm7", [False, True])
def test_simple_templates_render_exactly_as_jinja_does(channel, fmt, subject, body, gsm7):
    """comms.templates.simple's renderer (S1, S2) against Jinja's for the same template."""
    fast = compile_template(channel, subject, body, fmt, gsm7=gsm7)
    jinja = compile_template(channel, subject, body, fmt, gsm7=gsm7)
    jinja._simple = None
    assert fast._simple is not None

    def outcome(compiled, ctx):
        try:
            return compiled.render_parts(ctx)
        except RenderFailed as exc:
            return (exc.reason, exc.detail)

    for ctx in SIMPLE_CONTEXTS:
        assert outcome(fast, ctx) == outcome(jinja, ctx), ctx


@pytest.mark.parametrize(
    "body",
    [
        "{{ name|upper }}",
        "{% for t in tags %}{{ t }}{% endfor %}",
        "{% set x = 1 %}{{ x }}",
        "{{ name ~ city }}",
        "{{ 'x' }}",
        "{% if name.startswith('J') %}J{% endif %}",
        "{{ range }}",
        "{% if loop %}x{% endif %}",
        "{% if points is divisibleby 3 %}x{% endif %}",
    ],
)
def test_other_templates_are_left_to_jinja(body):
    assert compile_template("sms", None, body)._simple is None
