"""Action log queries: filters, paging, newest first, readable details, CSV export."""

import csv
import io
from datetime import date, datetime

from comms import actionlog
from comms.actionlog.queries import (
    LogFilter,
    count_log,
    detail_rows,
    export_log_csv,
    filter_options,
    get_entry,
    query_log,
    summarize_detail,
)


def seed(store):
    """Two clients, one batch with two messages, and log entries over three days."""

    def fill(cur):
        cur.execute(
            "INSERT INTO clients (id, name, email) VALUES "
            "(1, 'Jana Nováková', 'jana@example.com'), (2, '=Evil', 'evil@example.com')"
        )
        cur.execute("INSERT INTO batches (id, channel) VALUES (7, 'email')")
        cur.execute(
            "INSERT INTO messages (id, client_id, channel, source, batch_id, status) VALUES "
            "(10, 1, 'email', 'bulk', 7, 'sent'), (11, 2, 'email', 'bulk', 7, 'failed')"
        )
        actionlog.record(cur, "import", detail={"rows": 2, "file": "list.csv"}, user="alice")
        actionlog.record(cur, "generate", batch_id=7, detail={"messages": 2}, user="bob")
        # per-message outcomes that carry only message_id: found by batch and client anyway
        actionlog.record_many(
            cur,
            [
                {"action": "send", "message_id": 10, "detail": {"provider_id": "<a@x>"}},
                {
                    "action": "send",
                    "message_id": 11,
                    "outcome": "failed",
                    "detail": {"error": "=550 no such user"},
                },
            ],
        )
        cur.execute("UPDATE action_log SET ts = TIMESTAMP '2026-03-01 10:00' WHERE action='import'")
        cur.execute(
            "UPDATE action_log SET ts = TIMESTAMP '2026-03-02 09:00' WHERE action='generate'"
        )
        cur.execute("UPDATE action_log SET ts = TIMESTAMP '2026-03-03 23:59' WHERE action='send'")

    store.write(fill)


def test_newest_first_and_paging(store):
    seed(store)
    df = query_log(store, LogFilter())
    assert list(df["action"]) == ["send", "send", "generate", "import"]
    assert list(df["id"])[:2] == sorted(df["id"][:2], reverse=True)
    page2 = query_log(store, LogFilter(), limit=2, offset=2)
    assert list(page2["action"]) == ["generate", "import"]
    assert count_log(store, LogFilter()) == 4


def test_filters_by_action_user_outcome_and_dates(store):
    seed(store)
    assert count_log(store, LogFilter(actions=["send"])) == 2
    assert count_log(store, LogFilter(users=["alice", "bob"])) == 2
    assert list(query_log(store, LogFilter(outcomes=["failed"]))["message_id"]) == [11]
    # date_to is inclusive: the 23:59 entries on 3 March are in
    assert count_log(store, LogFilter(date_from=date(2026, 3, 2), date_to=date(2026, 3, 3))) == 3
    assert count_log(store, LogFilter(date_to=date(2026, 3, 1))) == 1
    assert count_log(store, LogFilter(date_from=date(2026, 3, 4))) == 0


def test_batch_and_client_filters_reach_per_message_entries(store):
    seed(store)
    by_batch = query_log(store, LogFilter(batch_id=7))
    assert sorted(by_batch["action"]) == ["generate", "send", "send"]
    by_client = query_log(store, LogFilter(client_id=1))
    assert list(by_client["message_id"]) == [10]
    assert list(by_client["client_name"]) == ["Jana Nováková"]
    assert count_log(store, LogFilter(client="nováková")) == 1
    assert count_log(store, LogFilter(text="550")) == 1


def test_details_are_readable(store):
    seed(store)
    failed = query_log(store, LogFilter(outcomes=["failed"])).iloc[0]
    assert failed["summary"] == "error: =550 no such user"
    entry = get_entry(store, int(failed["id"]))
    assert entry["detail"] == {"error": "=550 no such user"}
    assert entry["client_id"] == 2
    assert summarize_detail('{"ids": [1, 2, 3], "to": "a"}') == "ids: 3 items; to: a"
    assert summarize_detail(None) == ""
    # empty values say nothing, so they are left out of the one-line summary
    assert summarize_detail('{"due": 5, "message_ids": null, "note": "", "ids": []}') == "due: 5"
    assert get_entry(store, 999) is None


def test_filter_options_and_round_trip(store):
    seed(store)
    opts = filter_options(store)
    assert opts["actions"] == ["generate", "import", "send"]
    assert "alice" in opts["users"] and "bob" in opts["users"]
    assert opts["outcomes"] == ["failed", "ok"]
    f = LogFilter(actions=["send"], date_from=date(2026, 3, 1), batch_id=7)
    assert LogFilter.from_dict(f.to_dict()) == f


def test_csv_export_is_filtered_and_formula_safe(store):
    seed(store)
    data = export_log_csv(store, LogFilter(batch_id=7))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["action"] for r in rows] == ["send", "send", "generate"]
    evil = next(r for r in rows if r["message_id"] == "11")
    assert evil["client_name"] == "'=Evil"
    assert evil["outcome"] == "failed"
    assert "550 no such user" in evil["detail"]
    assert rows[0]["ts"].startswith("2026-03-03 23:59")
    assert datetime.fromisoformat(rows[-1]["ts"]) == datetime(2026, 3, 2, 9, 0)


def test_entry_message_ids_and_messages_now(store):
    from comms.actionlog.queries import entry_message_ids, messages_now

    seed(store)
    entry = {"message_id": 10, "detail": {"message_ids": [10, 11, "x"]}}
    assert entry_message_ids(entry) == [10, 11]
    assert entry_message_ids({"message_id": None, "detail": {}}) == []
    now = messages_now(store, [11, 10])
    assert list(now["id"]) == [10, 11]
    assert list(now["status"]) == ["sent", "failed"]
    assert list(now["client_name"]) == ["Jana Nováková", "=Evil"]


def test_export_in_chunks_writes_one_header_and_every_row(store, monkeypatch):
    import comms.actionlog.queries as q

    monkeypatch.setattr(q, "CHUNK_VECTORS", 1)  # 2,048 rows per chunk
    store.write(
        lambda cur: cur.execute(
            'INSERT INTO action_log ("user", action, detail)'
            " SELECT 'u', 'edit', json_object('n', i) FROM range(5000) t(i)"
        )
    )
    data = export_log_csv(store, LogFilter())
    assert data.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 5000
    assert rows[0]["detail"] == '{"n":4999}' and rows[-1]["detail"] == '{"n":0}'
    empty = export_log_csv(store, LogFilter(actions=["nothing"]))
    assert empty.decode("utf-8-sig").splitlines() == [",".join(q.EXPORT_COLUMNS)]


def test_detail_rows_are_readable():
    """Nested reasons flattened, long id lists cut, empty values and nulls left out."""
    rows = detail_rows(
        {
            "channel": "email",
            "reasons": {"missing field: points": 131, "no consent": 46},
            "segments": None,
            "attachments": [],
            "gsm7": False,
            "message_ids": list(range(1, 26)),
        },
        max_items=3,
    )
    assert rows == [
        {"Field": "channel", "Value": "email"},
        {"Field": "reasons › missing field: points", "Value": "131"},
        {"Field": "reasons › no consent", "Value": "46"},
        {"Field": "gsm7", "Value": "no"},
        {"Field": "message ids", "Value": "1, 2, 3 … and 22 more"},
    ]


def test_csv_export_headers_in_the_viewers_language_cells_as_stored(store):
    seed(store)
    headers = {"ts": "Kdy", "action": "Akce", "client_name": "Klient"}
    data = export_log_csv(store, LogFilter(batch_id=7), headers)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0])[:3] == ["id", "Kdy", "user"]
    assert [r["Akce"] for r in rows] == ["send", "send", "generate"]  # codes, not translated
    assert (
        export_log_csv(store, LogFilter(batch_id=999), headers)
        .decode("utf-8-sig")
        .startswith("id,Kdy,user,Akce")
    )
