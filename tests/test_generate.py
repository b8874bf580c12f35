import json

import pytest

from comms import outbox
from comms import templates as tpl
from comms.errors import CommsError, InvalidTransition, TemplateError
from comms.messages import chunks, editor, generate, selection, testsend


def add_client(store, **values):
    """Insert one client by plain SQL (as an import would have stored it)."""
    values.setdefault("attributes", "{}")
    cols = ", ".join(values)
    marks = ", ".join("?" * len(values))
    return store.write(
        lambda cur: cur.execute(
            f"INSERT INTO clients ({cols}) VALUES ({marks}) RETURNING id", list(values.values())
        ).fetchone()[0]
    )


def email_client(store, name, email, **extra):
    return add_client(store, name=name, email=email, email_valid="@" in email, **extra)


def sms_client(store, name, phone, kind="mobile", **extra):
    return add_client(store, name=name, phone=phone, phone_kind=kind, **extra)


def messages(store, batch_id):
    return store.rows("SELECT * FROM messages WHERE batch_id = ? ORDER BY id", [batch_id])


def test_every_email_reason(store):
    ok = email_client(store, "Ok", "ok@example.com", city="Brno")
    bad = email_client(store, "Bad", "not-an-address", city="Brno")
    none = add_client(store, name="Nobody", city="Brno")
    no_consent = email_client(store, "Nc", "nc@example.com", city="Brno", consent_email=False)
    opted = email_client(store, "Out", "Out@Example.com", city="Brno")
    dup = email_client(store, "Dup", "OK@example.com", city="Brno")
    no_city = email_client(store, "Nocity", "nocity@example.com")
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO suppressions (address, channel, reason) VALUES"
            " ('out@example.com', 'email', 'unsubscribed'), ('ok@example.com', 'sms', 'x')"
        )
    )
    ids = [ok, bad, none, no_consent, opted, dup, no_city]
    result = generate.generate_messages(
        store,
        selection={"client_ids": ids},
        channel="email",
        subject="Hi {{ name }}",
        body="Hello {{ name }} in {{ city }}",
    )
    assert (result.total, result.valid, result.invalid) == (7, 1, 6)
    by_client = {m["client_id"]: m for m in messages(store, result.batch_id)}
    assert by_client[ok]["status"] == "draft" and by_client[ok]["reason"] is None
    assert by_client[bad]["reason"] == "invalid e-mail"
    assert "@" in by_client[bad]["error"]  # email-validator's explanation is kept
    assert by_client[none]["reason"] == "no e-mail"
    assert by_client[no_consent]["reason"] == "no consent"
    assert by_client[opted]["reason"] == "opted out"
    assert by_client[dup]["reason"] == "duplicate"
    assert by_client[no_city]["reason"] == "missing field: city"
    assert result.reasons == {
        "invalid e-mail": 1,
        "no e-mail": 1,
        "no consent": 1,
        "opted out": 1,
        "duplicate": 1,
        "missing field: city": 1,
    }
    # Invalid messages are still rendered so that fixing the address is enough.
    assert by_client[bad]["subject"] == "Hi Bad"
    assert "<p>Hello Ok in Brno</p>" == by_client[ok]["body_html"]
    batch = store.rows("SELECT * FROM batches WHERE id = ?", [result.batch_id])[0]
    assert (batch["total"], batch["valid"], batch["invalid"]) == (7, 1, 6)
    log = store.rows("SELECT * FROM action_log WHERE action = 'generate'")
    assert len(log) == 1 and json.loads(log[0]["detail"])["invalid"] == 6


def test_an_opted_out_client_is_opted_out_everywhere(store):
    """An opt-out also withdraws consent: the reason named is `opted out`, in bulk and by hand."""
    from comms.clients import profile
    from comms.messages import compose

    cid = email_client(store, "Out", "out@example.com")
    profile.opt_out(store, cid, "email", "asked by phone")
    result = generate.generate_messages(
        store, selection={"client_ids": [cid]}, channel="email", subject="S", body="B"
    )
    (msg,) = messages(store, result.batch_id)
    assert (msg["status"], msg["reason"]) == ("invalid", "opted out")
    with pytest.raises(CommsError, match="opted out of e-mail"):
        compose.compose(store, client_id=cid, channel="email", subject="S", body="B")
    edited = editor.edit_message(store, msg["id"], body="Hello")
    assert (edited["status"], edited["reason"]) == ("invalid", "opted out")


def test_every_sms_reason_and_segments(store):
    ok = sms_client(store, "Ok", "+420601123456")
    unparsed = add_client(store, name="Raw", phone="601 123 457")  # no kind: parsed now
    fixed = add_client(store, name="Fixed", phone="+420221234567", phone_kind="fixed_line")
    invalid = add_client(store, name="Bad", phone="12", phone_kind="invalid")
    none = add_client(store, name="None")
    no_consent = sms_client(store, "Nc", "+420601123458", consent_sms=False)
    opted = sms_client(store, "Out", "+420601123459")
    dup = sms_client(store, "Dup", "+420601123456")
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO suppressions (address, channel) VALUES ('+420601123459', 'sms')"
        )
    )
    ids = [ok, unparsed, fixed, invalid, none, no_consent, opted, dup]
    result = generate.generate_messages(
        store,
        selection={"client_ids": ids},
        channel="sms",
        body="Dobrý den {{ name }}, " + "ř" * 60,
        gsm7=True,
    )
    by_client = {m["client_id"]: m for m in messages(store, result.batch_id)}
    assert by_client[ok]["status"] == "draft"
    assert by_client[unparsed]["status"] == "draft"
    assert by_client[unparsed]["to_address"] == "+420601123457"
    assert by_client[fixed]["reason"] == "not a mobile"
    assert by_client[invalid]["reason"] == "invalid phone"
    assert by_client[none]["reason"] == "no phone"
    assert by_client[no_consent]["reason"] == "no consent"
    assert by_client[opted]["reason"] == "opted out"
    assert by_client[dup]["reason"] == "duplicate"
    # gsm7: transliterated, so it fits one GSM-7 segment instead of two UCS-2 ones.
    assert by_client[ok]["body_text"] == "Dobry den Ok, " + "r" * 60
    assert (by_client[ok]["encoding"], by_client[ok]["segments"]) == ("GSM-7", 1)
    assert result.segments == 2 and result.to_dict()["segments"] == 2
    assert by_client[ok]["subject"] is None and by_client[ok]["body_html"] is None


def test_render_error_and_attributes(store):
    a = email_client(store, "A", "a@example.com", attributes=json.dumps({"points": 0}))
    b = email_client(store, "B", "b@example.com", attributes=json.dumps({"points": 5}))
    result = generate.generate_messages(
        store,
        selection={"client_ids": [a, b]},
        channel="email",
        subject="Points",
        body="{{ 10 // points }}",
        body_format="text",
    )
    by_client = {m["client_id"]: m for m in messages(store, result.batch_id)}
    assert by_client[a]["reason"].startswith("render error: ")
    assert by_client[b]["body_text"] == "2"


def test_template_attachments_are_linked_to_every_message(store):
    ids = [email_client(store, f"C{i}", f"c{i}@example.com") for i in range(3)]
    tid = tpl.create_template(store, name="T", channel="email", subject="S", body="B")
    aid = tpl.attach(store, tid, "price list.pdf", b"%PDF")
    result = generate.generate_messages(store, selection={"client_ids": ids}, template_id=tid)
    assert store.scalar("SELECT count(*) FROM message_attachments") == 3
    assert store.scalar("SELECT count(*) FROM batch_attachments WHERE attachment_id = ?", [aid])
    msg = editor.get_message(store, messages(store, result.batch_id)[0]["id"])
    assert [a.filename for a in msg["attachments"]] == ["price list.pdf"]
    # An explicit empty list drops the template's attachments for this send.
    other = generate.generate_messages(
        store, selection={"client_ids": ids}, template_id=tid, attachment_ids=[]
    )
    assert editor.get_message(store, messages(store, other.batch_id)[0]["id"])["attachments"] == []


def test_generation_is_atomic(store, monkeypatch):
    ids = [email_client(store, f"C{i}", f"c{i}@example.com") for i in range(5)]

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate.actionlog, "record", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate.generate_messages(
            store, selection={"client_ids": ids}, channel="email", subject="S", body="B"
        )
    assert store.scalar("SELECT count(*) FROM batches") == 0
    assert store.scalar("SELECT count(*) FROM messages") == 0


def test_bad_template_and_empty_selection_write_nothing(store):
    cid = email_client(store, "A", "a@example.com")
    with pytest.raises(TemplateError, match="line 1"):
        generate.generate_messages(
            store, selection={"client_ids": [cid]}, channel="email", subject="S", body="{{ x"
        )
    with pytest.raises(TemplateError, match="Python internals"):
        generate.generate_messages(
            store,
            selection={"client_ids": [cid]},
            channel="email",
            subject="S",
            body="{{ cycler.__init__.__globals__ }}",
        )
    with pytest.raises(CommsError, match="No clients selected"):
        generate.generate_messages(
            store, selection={"client_ids": []}, channel="email", subject="S", body="B"
        )
    assert store.scalar("SELECT count(*) FROM batches") == 0


def test_filter_selection(store):
    email_client(store, "Brno", "b@example.com", city="Brno")
    email_client(store, "Praha", "p@example.com", city="Praha")
    result = generate.generate_messages(
        store,
        selection={"filter": {"city": "Brno"}, "count": 1},
        channel="email",
        subject="S",
        body="Hi {{ name }}",
    )
    assert result.total == 1


def test_edit_revalidates_and_rerenders(store):
    good = email_client(store, "Good", "good@example.com")
    bad = email_client(store, "Bad", "bad@@example")
    result = generate.generate_messages(
        store,
        selection={"client_ids": [good, bad]},
        channel="email",
        subject="Hi",
        body="Hello **{{ name }}**",
    )
    rows = {m["client_id"]: m for m in messages(store, result.batch_id)}
    fixed = editor.edit_message(store, rows[bad]["id"], to_address=" Fixed@Example.com ")
    assert fixed["status"] == "draft" and fixed["to_address"] == "Fixed@example.com"
    edited = editor.edit_message(
        store, rows[good]["id"], subject="New\nsubject", body="Dear <b>you</b>, *thanks*"
    )
    assert edited["subject"] == "New subject"
    assert edited["body_html"] == "<p>Dear &lt;b&gt;you&lt;/b&gt;, <em>thanks</em></p>"
    dup = editor.edit_message(store, rows[bad]["id"], to_address="good@example.com")
    assert (dup["status"], dup["reason"]) == ("invalid", "duplicate")
    batch = store.rows("SELECT valid, invalid FROM batches WHERE id = ?", [result.batch_id])[0]
    assert batch == {"valid": 1, "invalid": 1}
    edits = store.rows("SELECT * FROM action_log WHERE action = 'edit' ORDER BY id")
    assert [json.loads(e["detail"])["changed"] for e in edits] == [
        ["address"],
        ["subject", "body"],
        ["address"],
    ]


def test_edit_sms_recounts_segments(store):
    cid = sms_client(store, "A", "+420601123456")
    result = generate.generate_messages(
        store, selection={"client_ids": [cid]}, channel="sms", body="Hi {{ name }}"
    )
    mid = messages(store, result.batch_id)[0]["id"]
    msg = editor.edit_message(store, mid, body="ř" * 71)
    assert (msg["encoding"], msg["segments"]) == ("UCS-2", 2)
    msg = editor.edit_message(store, mid, body="   ")
    assert (msg["status"], msg["reason"]) == ("invalid", "empty message")


def test_exclude_review_and_counts(store):
    ids = [email_client(store, f"C{i}", f"c{i}@example.com") for i in range(3)]
    ids.append(email_client(store, "Bad", "bad"))
    result = generate.generate_messages(
        store, selection={"client_ids": ids}, channel="email", subject="S", body="L1\nL2"
    )
    table = generate.review(store, result.batch_id)
    assert list(table.columns[:6]) == [
        "id",
        "client_id",
        "recipient",
        "address",
        "subject",
        "first_line",
    ]
    assert set(table["first_line"]) == {"L1"}
    assert len(generate.review(store, result.batch_id, status="invalid")) == 1
    assert generate.reason_counts(store, result.batch_id) == {"invalid e-mail": 1}
    first = int(table["id"].iloc[0])
    assert generate.set_excluded(store, [first], True) == 1
    assert generate.set_excluded(store, [first], True) == 0  # already excluded
    info = generate.batch_info(store, result.batch_id)
    assert info["sendable"] == 2 and info["excluded"] == 1
    assert generate.first_sendable(store, result.batch_id) == first + 1
    generate.set_excluded(store, [first], False)
    assert generate.batch_info(store, result.batch_id)["sendable"] == 3


def test_queued_messages_cannot_be_edited(store):
    cid = email_client(store, "A", "a@example.com")
    result = generate.generate_messages(
        store, selection={"client_ids": [cid]}, channel="email", subject="S", body="B"
    )
    assert outbox.queue(store, batch_id=result.batch_id) == 1
    mid = messages(store, result.batch_id)[0]["id"]
    with pytest.raises(InvalidTransition, match="only drafts"):
        editor.edit_message(store, mid, body="x")


def test_save_as_template_and_test_message(store):
    cid = email_client(store, "A", "a@example.com")
    tid = tpl.save_as_template(
        store, name="From wizard", channel="email", subject="S {{ name }}", body="B"
    )
    tpl.save_as_template(
        store, name="From wizard", channel="email", subject="S2", body="B2", template_id=tid
    )
    assert tpl.get_template(store, tid).subject == "S2"
    result = generate.generate_messages(store, selection={"client_ids": [cid]}, template_id=tid)
    mid = generate.first_sendable(store, result.batch_id)
    with pytest.raises(CommsError, match="Test address"):
        testsend.copy_as_test_message(store, mid, "nope")
    test_id = testsend.copy_as_test_message(store, mid, "tester@example.com")
    msg = editor.get_message(store, test_id)
    assert (msg["source"], msg["status"], msg["subject"]) == ("test", "draft", "[TEST] S2")


def test_chunks_keep_duplicates_and_counts_across_chunks(store, monkeypatch):
    monkeypatch.setattr(generate, "CHUNK", 2)
    ids = [email_client(store, f"C{i}", f"c{i % 3}@example.com") for i in range(5)]
    seen = []
    result = generate.generate_messages(
        store,
        selection={"client_ids": ids},
        channel="email",
        subject="S",
        body="B",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.valid, result.reasons) == (3, {"duplicate": 2})
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
    statuses = [m["status"] for m in messages(store, result.batch_id)]
    assert statuses == ["draft", "draft", "draft", "invalid", "invalid"]


def test_failure_in_a_later_chunk_leaves_nothing(store, monkeypatch):
    monkeypatch.setattr(generate, "CHUNK", 2)
    ids = [email_client(store, f"C{i}", f"c{i}@example.com") for i in range(5)]
    real_arrow = chunks.to_arrow
    calls = []

    def failing_arrow(columns, schema):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("out of memory in chunk 2")
        return real_arrow(columns, schema)

    monkeypatch.setattr(chunks, "to_arrow", failing_arrow)
    with pytest.raises(MemoryError):
        generate.generate_messages(
            store, selection={"client_ids": ids}, channel="email", subject="S", body="B"
        )
    assert store.scalar("SELECT count(*) FROM batches") == 0
    assert store.scalar("SELECT count(*) FROM messages") == 0
    assert store.scalar("SELECT count(*) FROM action_log WHERE action = 'generate'") == 0


def test_lists_tags_and_attributes_reach_the_template(store):
    cid = email_client(
        store,
        "Jana",
        "jana@example.com",
        lists=["VIP", "News"],
        tags=["a", "b"],
        attributes=json.dumps({"Datum narození": "1990-01-01"}),
    )
    result = generate.generate_messages(
        store,
        selection={"client_ids": [cid]},
        channel="sms",
        body="{{ list }}|{{ tags | join('+') }}|{{ datum_narozeni }}",
    )
    (msg,) = messages(store, result.batch_id)
    assert msg["body_text"] == "VIP, News|a+b|1990-01-01"


def test_missing_field_message_keeps_a_placeholder_to_fix_by_hand(store):
    cid = email_client(store, "Eva", "eva@example.com")  # no city
    result = generate.generate_messages(
        store,
        selection={"client_ids": [cid]},
        channel="email",
        subject="Hi {{ name }}",
        body="Dear {{ name }}, our shop in {{ city }} has news.",
    )
    (msg,) = messages(store, result.batch_id)
    assert (msg["status"], msg["reason"]) == ("invalid", "missing field: city")
    assert msg["subject"] == "Hi Eva"
    assert msg["body_text"] == "Dear Eva, our shop in {{ city }} has news."
    assert "our shop in {{ city }} has news." in msg["body_html"]
    # Saving with the placeholder still there keeps it invalid, naming the field.
    still = editor.edit_message(store, msg["id"], subject="Hi Eva!")
    assert (still["status"], still["reason"]) == ("invalid", "missing field: city")
    fixed = editor.edit_message(store, msg["id"], body="Dear Eva, our shop in Brno has news.")
    assert (fixed["status"], fixed["reason"]) == ("draft", None)
    assert fixed["body_html"] == "<p>Dear Eva, our shop in Brno has news.</p>"


def test_missing_field_counts(store):
    a = email_client(store, "Jana", "a@example.com", city="Brno", attributes='{"Body věrnosti": 5}')
    b = add_client(store, first_name="", name="", email="b@example.com", attributes="{}")
    counts = selection.missing_field_counts(
        store, {"client_ids": [a, b]}, ["city", "first_name", "body_vernosti", "nothing", "tags"]
    )
    assert counts == {"city": 1, "first_name": 1, "body_vernosti": 1, "nothing": 2, "tags": 2}


def test_review_first_line_of_markdown_without_marks(store):
    """The review table reads like the e-mail: no ** or leading # from the Markdown source."""
    cid = email_client(store, "Jana", "jana@example.com")
    result = generate.generate_messages(
        store,
        selection={"client_ids": [cid]},
        channel="email",
        subject="S",
        body="## Dear **{{ name }}**, __hi__\n\nMore",
        body_format="markdown",
    )
    assert list(generate.review(store, result.batch_id)["first_line"]) == ["Dear Jana, hi"]
    text = generate.generate_messages(
        store,
        selection={"client_ids": [cid]},
        channel="email",
        subject="S",
        body="**as typed**",
        body_format="text",
    )
    assert list(generate.review(store, text.batch_id)["first_line"]) == ["**as typed**"]


def test_review_search_and_limit(store):
    ids = [email_client(store, n, f"{n.lower()}@example.com") for n in ("Jana", "Petr", "Eva")]
    result = generate.generate_messages(
        store, selection={"client_ids": ids}, channel="email", subject="S", body="B"
    )
    assert list(generate.review(store, result.batch_id, search="PETR")["recipient"]) == ["Petr"]
    assert list(generate.review(store, result.batch_id, search="eva@")["recipient"]) == ["Eva"]
    assert len(generate.review(store, result.batch_id, limit=2)) == 2
    assert generate.review_count(store, result.batch_id) == 3
    assert generate.review_count(store, result.batch_id, "invalid") == 0


def test_outbox_create_inserts_in_creation_statuses_and_moves_only_draft_invalid(store):
    """comms.outbox.create: the one inserter of messages and the editor's one status move."""
    from comms import outbox
    from comms.outbox import create

    def insert(rows, **common):
        return store.write(lambda cur: create.insert_messages(cur, rows, **common))

    with pytest.raises(ValueError, match="status must be one of draft, invalid"):
        insert([{"body_text": "x", "status": "sent"}], channel="sms", source="cli")
    with pytest.raises(ValueError, match="source"):
        insert([{"body_text": "x"}], channel="sms", source="elsewhere", status="draft")
    aid = tpl.attachments.add_attachment(store, "a.pdf", b"%PDF")
    ids = insert(
        [{"to_address": "a@example.com"}, {"to_address": "b@example.com"}],
        channel="email",
        source="cli",
        status="draft",
        attachment_ids=[aid],
    )
    assert len(ids) == 2 and ids == sorted(ids)
    rows = store.rows("SELECT status, created_by FROM messages ORDER BY id")
    assert [r["status"] for r in rows] == ["draft", "draft"] and rows[0]["created_by"]
    assert store.scalar("SELECT count(*) FROM message_attachments WHERE attachment_id = ?", [aid])
    store.write(lambda cur: create.set_validity(cur, ids, "invalid", "no e-mail"))
    assert {r["reason"] for r in store.rows("SELECT reason FROM messages")} == {"no e-mail"}
    store.write(lambda cur: create.set_validity(cur, ids, "draft"))
    assert outbox.queue(store, message_ids=[ids[0]]) == 1
    with pytest.raises(InvalidTransition, match=r"\(queued\)"):
        store.write(lambda cur: create.set_validity(cur, ids, "invalid", "no e-mail"))
    with pytest.raises(ValueError, match="draft or invalid"):
        store.write(lambda cur: create.set_validity(cur, [ids[1]], "queued"))
    assert store.rows("SELECT status, reason FROM messages ORDER BY id") == [
        {"status": "queued", "reason": None},
        {"status": "draft", "reason": None},
    ]


def test_a_batch_rendered_with_a_worker_process_is_the_same_batch(store, monkeypatch):
    """comms.templates.batch's worker takes chunks beside this process: the messages are the same."""
    from comms.templates import batch

    monkeypatch.setattr(generate, "CHUNK", 3)
    for i in range(20):
        email_client(
            store,
            f"C{i}",
            f"c{i % 17}@example.com" if i % 9 else "not an address",
            city=None if i % 7 == 0 else "Brno",
            attributes=json.dumps({"points": i}),
        )
    body = "Hi {{ name }} from {{ city }}: {{ points }} points"
    columns = "client_id, to_address, subject, body_text, body_html, status, reason, error"

    def batch_rows(workers):
        monkeypatch.setattr(batch, "workers_for", lambda n, reserved=0: workers)
        result = generate.generate_messages(
            store, selection={"filter": {}}, channel="email", subject="S {{ name }}", body=body
        )
        return result.to_dict() | {"batch_id": None}, store.rows(
            f"SELECT {columns} FROM messages WHERE batch_id = ? ORDER BY id", [result.batch_id]
        )

    here, there = batch_rows(0), batch_rows(1)
    assert there == here
    assert here[0]["reasons"] == {"invalid e-mail": 3, "missing field: city": 2, "duplicate": 1}
