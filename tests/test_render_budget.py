"""Render budgets: a template that would hang or exhaust the process is refused.

At save (`comms templates add`, create / update) and at preview it is one
sentence and nothing is saved; at generation each recipient whose render blows
the budget gets a named reason and the batch stays usable.

Every runaway template runs in a subprocess limited to 2 GB of address space
(RLIMIT_AS) under a generous guard timeout, so a regression fails the test
instead of taking the machine down; there is no timing assertion beyond that guard.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from comms import templates as tpl
from comms.errors import ConfigError, TemplateError
from comms.store import open_store
from comms.templates import batch, budget

ROOT = Path(__file__).resolve().parent.parent
GUARD_SECONDS = 300  # only so that a regression fails; a runaway used to run for hours
MEMORY_LIMIT = 2 << 30

SLOW = "template too slow"
LARGE = "template too large"
SLOW_SENTENCE = (
    "This template takes longer than 0.5 s to fill in for one client (a loop that runs too long?)"
)
LARGE_SENTENCE = (
    "This template makes more than 1 MB of text for one client (a value repeated too many times?)"
)
NUMBER_SENTENCE = (
    "This template computes a number too large to fill in for one client (more than 30,103 digits)"
)

# The cases of the issue, each with the reason and the sentence it gets.
RUNAWAY = {
    "nested loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        LARGE,
        LARGE_SENTENCE,
    ),
    "nested loops that output nothing": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        SLOW,
        SLOW_SENTENCE,
    ),
    "a power tower": ("{{ ((9**9999)**9999)**9999 }}", LARGE, NUMBER_SENTENCE),
    "'A' * 10**7": ("{{ 'A' * 10**7 }}", LARGE, LARGE_SENTENCE),
    "'a' * 10**9": ("{{ 'a'*10**9 }}", LARGE, LARGE_SENTENCE),
    "center(10**9)": ("{{ 'a'|center(10**9) }}", LARGE, LARGE_SENTENCE),
    "str.center(10**9)": ("{{ 'a'.center(10**9) }}", LARGE, LARGE_SENTENCE),
    "'%1000000000s'": ("{{ '%1000000000s' % 'a' }}", LARGE, LARGE_SENTENCE),
    "'{:>1000000000}'": ("{{ '{:>1000000000}'.format('a') }}", LARGE, LARGE_SENTENCE),
}

_LIMIT = (
    "import resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
    "sys.path.insert(0, {root!r})\n"
).format(root=str(ROOT))


def limited(code: str, *args: str) -> subprocess.CompletedProcess:
    """Python `code` in a fresh process limited to 2 GB, under the guard timeout."""
    return subprocess.run(
        [sys.executable, "-c", _LIMIT + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        cwd=ROOT,
    )


def comms(*args: str) -> subprocess.CompletedProcess:
    """The `comms` command in a fresh process limited to 2 GB."""
    return limited(
        "import runpy; sys.argv = ['comms', *sys.argv[1:]];"
        " runpy.run_module('comms', run_name='__main__', alter_sys=True)",
        *args,
    )


def add_clients(db_path: Path, rows: list[tuple[str, str, dict]]) -> None:
    store = open_store(db_path)
    store.write(
        lambda cur: cur.executemany(
            "INSERT INTO clients (name, email, email_valid, phone, phone_kind, attributes)"
            " VALUES (?, ?, true, ?, 'mobile', ?)",
            [
                (name, email, f"+420601{i:06d}", json.dumps(attrs))
                for i, (name, email, attrs) in enumerate(rows)
            ],
        )
    )
    store.close()


def legacy_template(db_path: Path, name: str, body: str) -> None:
    """A template saved by a version without budgets: only SQL can store one now."""
    store = open_store(db_path)
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO templates (name, channel, subject, body, body_format)"
            " VALUES (?, 'sms', NULL, ?, 'text')",
            [name, body],
        )
    )
    store.close()


def rows(db_path: Path, sql: str, params: list | None = None) -> list[dict]:
    store = open_store(db_path)
    try:
        return store.rows(sql, params or [])
    finally:
        store.close()


# -- save and preview -----------------------------------------------------------------
@pytest.mark.parametrize("case", RUNAWAY)
def test_templates_add_refuses_a_runaway_template_in_one_sentence(case, db_path, tmp_path):
    source, _, sentence = RUNAWAY[case]
    body = tmp_path / "body.txt"
    body.write_text(source, encoding="utf-8")
    done = comms("templates", "add", "--name", "T", "--channel", "sms", "--body-file", str(body))
    assert done.returncode == 1
    assert done.stderr == f"comms: {sentence}; nothing was saved.\n"
    assert rows(db_path, "SELECT * FROM templates") == []
    assert rows(db_path, "SELECT * FROM action_log WHERE action LIKE 'template%'") == []


@pytest.mark.parametrize("case", RUNAWAY)
def test_edit_and_preview_refuse_a_runaway_template(case, db_path):
    source, _, sentence = RUNAWAY[case]
    done = limited(
        """
        import json
        from comms import templates as tpl
        from comms.errors import TemplateError
        from comms.store import open_store
        store = open_store(sys.argv[1])
        tid = tpl.create_template(store, name="Good", channel="sms", body="Hi {{ name }}")
        out = {}
        try:
            tpl.update_template(store, tid, body=sys.argv[2])
        except TemplateError as exc:
            out["edit"] = str(exc)
        try:
            tpl.create_template(store, name="New", channel="email", subject="S", body=sys.argv[2])
        except TemplateError as exc:
            out["create"] = str(exc)
        compiled = tpl.compile_template("sms", None, sys.argv[2])
        try:
            tpl.render_preview(compiled, {"name": "Jana"})
        except TemplateError as exc:
            out["preview"] = str(exc)
        out["body"] = tpl.get_template(store, tid).body
        out["templates"] = len(tpl.list_templates(store))
        print(json.dumps(out))
        """,
        str(db_path),
        source,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {
        "edit": f"{sentence}; nothing was saved.",
        "create": f"{sentence}; nothing was saved.",
        "preview": f"{sentence}.",
        "body": "Hi {{ name }}",
        "templates": 1,
    }


# -- generation ---------------------------------------------------------------------
@pytest.mark.parametrize("case", RUNAWAY)
def test_generation_gives_the_runaway_recipients_a_reason_and_the_others_drafts(case, db_path):
    source, reason, sentence = RUNAWAY[case]
    add_clients(
        db_path,
        [
            ("Jana", "jana@example.com", {"vip": "yes"}),
            ("Petr", "petr@example.com", {}),
            ("Eva", "eva@example.com", {"vip": "yes"}),
            ("Ivo", "ivo@example.com", {}),
        ],
    )
    # It runs away only for VIPs, so it is saved (its trial render skips the loop).
    body = db_path.parent / "body.txt"
    body.write_text("Hi {{ name }}{% if vip is defined %}" + source + "{% endif %}", "utf-8")
    added = comms("templates", "add", "--name", "T", "--channel", "sms", "--body-file", str(body))
    assert added.returncode == 0, added.stderr
    done = comms("generate", "--template", "T", "--all", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["total"], result["valid"], result["reasons"]) == (4, 2, {reason: 2})
    messages = rows(
        db_path,
        "SELECT to_name, status, reason, error, body_text FROM messages"
        " WHERE batch_id = ? ORDER BY id",
        [result["batch_id"]],
    )
    assert messages == [
        {"to_name": "Jana", "status": "invalid", "reason": reason, "error": sentence,
         "body_text": None},
        {"to_name": "Petr", "status": "draft", "reason": None, "error": None,
         "body_text": "Hi Petr"},
        {"to_name": "Eva", "status": "invalid", "reason": reason, "error": sentence,
         "body_text": None},
        {"to_name": "Ivo", "status": "draft", "reason": None, "error": None,
         "body_text": "Hi Ivo"},
    ]  # fmt: skip


def test_A_times_10_to_the_7_over_200_clients_is_a_usable_batch(db_path):
    """The issue's case: 8.6 GB and an ArrowMemoryError before; a batch of reasons now."""
    add_clients(db_path, [(f"C{i}", f"c{i}@example.com", {}) for i in range(200)])
    legacy_template(db_path, "Big", "{{ 'A' * 10**7 }}")
    done = comms("generate", "--template", "Big", "--all")
    assert done.returncode == 0, done.stderr
    assert "Batch 1: 200 messages, 0 ready, 200 invalid." in done.stdout
    assert f"200  {LARGE}" in done.stdout
    (batch_row,) = rows(db_path, "SELECT total, valid, invalid FROM batches")
    assert batch_row == {"total": 200, "valid": 0, "invalid": 200}
    assert rows(db_path, "SELECT DISTINCT reason, error FROM messages") == [
        {"reason": LARGE, "error": LARGE_SENTENCE}
    ]


def test_a_template_slow_for_every_client_stops_after_three_in_a_row(db_path):
    """Each time-out costs the whole budget: after three in a row the rest are not tried."""
    add_clients(db_path, [(f"C{i}", f"c{i}@example.com", {}) for i in range(20)])
    legacy_template(db_path, "Slow", RUNAWAY["nested loops that output nothing"][0])
    done = comms("generate", "--template", "Slow", "--all", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["total"], result["valid"], result["reasons"]) == (20, 0, {SLOW: 20})
    errors = [r["error"] for r in rows(db_path, "SELECT error FROM messages ORDER BY id")]
    assert errors[:3] == [SLOW_SENTENCE] * 3
    assert (
        errors[3:]
        == [
            f"{SLOW_SENTENCE}: it ran out of time for 3 clients in a row, so it was not tried"
            " for the rest"
        ]
        * 17
    )


def test_the_database_is_not_held_while_renders_run(db_path):
    """A write from another thread goes through while a slow batch is still rendering (G1)."""
    add_clients(db_path, [(f"C{i}", f"c{i}@example.com", {"vip": 1}) for i in range(4)])
    done = limited(
        """
        import json, threading
        from comms.messages import generate
        from comms.store import open_store
        store = open_store(sys.argv[1])
        generate.CHUNK = 1
        events = []
        rendering = threading.Event()

        def progress(done, total):
            events.append(("progress", done))
            if done == 1:
                rendering.set()

        body = ("{{ name }}{% for a in range(100000) %}{% for b in range(100000) %}"
                "{% endfor %}{% endfor %}")
        worker = threading.Thread(target=lambda: generate.generate_messages(
            store, selection={"filter": {}}, channel="sms", body=body, progress=progress))
        worker.start()
        rendering.wait()
        store.write(lambda cur: cur.execute("INSERT INTO clients (name) VALUES ('Late')"))
        events.append(("write", None))
        worker.join()
        print(json.dumps(events))
        """,
        str(db_path),
    )
    assert done.returncode == 0, done.stderr
    events = [tuple(e) for e in json.loads(done.stdout)]
    # The write landed while clients 2-4 were still being rendered (0.5 s each).
    assert events.index(("write", None)) < events.index(("progress", 4))
    assert rows(db_path, "SELECT count(*) AS n FROM messages") == [{"n": 4}]


# -- the render worker ---------------------------------------------------------------
def _sample_rows(n: int) -> tuple[list[str], list[tuple]]:
    names = ["name", "city", "attributes"]
    rows = [
        (
            f"Client {i}",
            None if i % 7 == 0 else "Brno",
            json.dumps({"vip": 1} if i % 5 == 0 else {}),
        )
        for i in range(n)
    ]
    return names, rows


BODY = "Hi {{ name }} from {{ city }}{% if vip is defined %}{{ 'A' * 10**7 }}{% endif %}"


def test_a_worker_process_renders_as_this_process_does():
    """Missing fields (with drafts) and budget refusals come back from the worker (P3)."""
    compiled = tpl.compile_template("sms", None, BODY)
    names, client_rows = _sample_rows(40)
    here = dict(batch.render_rows(compiled, names, client_rows, 4, workers=0))
    there = dict(batch.render_rows(compiled, names, client_rows, 4, workers=1))
    assert there == here
    flat = [r for start in sorted(here) for r in here[start]]
    assert flat[1] == (None, "Hi Client 1 from Brno", None, None, None)
    assert flat[5] == (None, None, None, LARGE, LARGE_SENTENCE)
    assert flat[7][1:4] == ("Hi Client 7 from {{ city }}", None, "missing field: city")


def test_results_never_depend_on_the_worker(monkeypatch):
    """A worker that cannot start, or dies, leaves its chunks to this process (P1)."""
    compiled = tpl.compile_template("sms", None, BODY)
    names, client_rows = _sample_rows(30)
    expected = dict(batch.render_rows(compiled, names, client_rows, 3, workers=0))
    for code in ("raise SystemExit(3)", "import pickle, sys; pickle.load(sys.stdin.buffer)"):
        monkeypatch.setattr(batch, "WORKER_CODE", code)
        assert dict(batch.render_rows(compiled, names, client_rows, 3, workers=2)) == expected


# -- the budget itself ------------------------------------------------------------------
def test_a_pure_loop_is_stopped_and_nothing_lands_afterwards(monkeypatch):
    monkeypatch.setattr(budget, "_limits", budget.Limits(0.2, 1024 * 1024))

    def spin() -> None:
        while True:
            pass

    with pytest.raises(budget.RenderTooSlow):
        budget.run(spin)
    assert budget.run(sum, range(10)) == 45
    # The watchdog's exception never arrives outside a render (B4).
    total = 0
    for i in range(2_000_000):
        total += i
    assert total == 1999999000000


def test_the_budget_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("COMMS_RENDER_MAX_KB", "1")
    compiled = tpl.compile_template("sms", None, "{{ 'x' * 2000 }}")
    with pytest.raises(tpl.RenderFailed) as exc:
        compiled.render({})
    assert (exc.value.reason, exc.value.detail) == (
        LARGE,
        "This template makes more than 1 KB of text for one client (a value repeated too many"
        " times?)",
    )
    assert tpl.compile_template("sms", None, "{{ 'x' * 1000 }}").render({}).text == "x" * 1000
    monkeypatch.setenv("COMMS_RENDER_SECONDS", "0.25")
    tpl.compile_template("sms", None, "x")
    assert budget.too_slow_sentence().startswith("This template takes longer than 0.25 s")
    monkeypatch.setenv("COMMS_RENDER_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"^COMMS_RENDER_SECONDS must be a number of seconds"):
        tpl.compile_template("sms", None, "x")
    monkeypatch.setenv("COMMS_RENDER_SECONDS", "0.5")
    monkeypatch.setenv("COMMS_RENDER_MAX_KB", "0")
    with pytest.raises(ConfigError, match=r"^COMMS_RENDER_MAX_KB must be a whole number"):
        tpl.compile_template("sms", None, "x")


def test_bounded_filters_and_methods_still_work():
    source = (
        "{{ 'ab'|center(6) }}|{{ 'x'.ljust(3, '.') }}|{{ 'a-b'|replace('-', '+') }}|"
        "{{ ['a', 'b']|join(', ') }}|{{ '%05.1f'|format(2.25) }}|{{ '{:>4}'.format(7) }}|"
        "{{ [1, 2, 3]|batch(2)|list }}|{{ 'a\\tb'.expandtabs(2) }}|{{ '%-3s!' % 'x' }}|"
        "{{ 2 ** 10 }}|{{ 'ab' * 2 }}|{{ [0] * 3 }}|{{ 'a' ~ 'b' }}|{{ 1 + 2 }}"
    )
    text = tpl.compile_template("sms", None, source).render({}).text
    assert text == (
        "  ab  |x..|a+b|a, b|002.2|   7|[[1, 2], [3]]|a b|x  !|1024|abab|[0, 0, 0]|ab|3"
    )


def test_a_template_over_its_budget_whatever_the_client_cannot_be_saved(store):
    with pytest.raises(TemplateError, match=r"more than 1 MB of text.*; nothing was saved\.$"):
        tpl.create_template(
            store, name="T", channel="sms", body="{% set s = 'a' * 600000 %}{{ s ~ s }}"
        )
    assert tpl.list_templates(store) == []
    # One that runs away only for some clients is saved: each of them gets a reason.
    tpl.create_template(
        store,
        name="T",
        channel="sms",
        body="{% if vip is defined %}{% set s = 'a' * 600000 %}{{ s ~ s }}{% endif %}",
    )
    assert [t["name"] for t in tpl.list_templates(store)] == ["T"]


def test_renders_in_another_thread_have_their_own_budget():
    compiled = tpl.compile_template("sms", None, "{{ name }}")
    out = []
    thread = threading.Thread(target=lambda: out.append(compiled.render({"name": "Jo"}).text))
    thread.start()
    thread.join()
    assert out == ["Jo"]
