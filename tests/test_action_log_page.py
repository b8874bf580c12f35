"""The action log page under AppTest, on a real DuckDB file."""

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from comms import actionlog
from comms.actionlog.queries import LogFilter, export_log_csv
from tests.grid import select_rows, table_of

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "action_log.py")


def seed(store):
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
        actionlog.record(cur, "import", detail={"rows": 2}, user="alice")
        actionlog.record(cur, "generate", batch_id=7, detail={"messages": 2}, user="bob")
        actionlog.record(
            cur, "send", batch_id=7, message_id=10, client_id=1, detail={"provider_id": "<a@x>"}
        )
        actionlog.record(
            cur,
            "send failed",
            outcome="failed",
            batch_id=7,
            message_id=11,
            client_id=2,
            detail={"reason": "rejected by server", "error": "=550 no such user"},
            user="bob",
        )
        cur.execute("UPDATE action_log SET ts = TIMESTAMP '2026-03-01 10:00' WHERE id = 1")
        cur.execute("UPDATE action_log SET ts = TIMESTAMP '2026-03-02 10:00' WHERE id = 2")
        cur.execute("UPDATE action_log SET ts = TIMESTAMP '2026-03-03 10:00' WHERE id > 2")

    store.write(fill)


@pytest.fixture
def app(store):
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    return at.run()


def table(at):
    return table_of(at, "log_table").value


def test_shows_every_entry_newest_first_with_readable_details(app):
    assert not app.exception
    df = table(app)
    assert list(df["action"]) == ["send failed", "send", "generate", "import"]
    assert df.iloc[0]["summary"] == "reason: rejected by server; error: =550 no such user"
    assert df.iloc[0]["client_name"] == "=Evil"
    assert "**4** matching entries" in app.markdown[0].value
    # cells of entries about no batch / message / client are blank, not "None"
    assert table_of(app, "log_table").proto.placeholder == ""


def test_filters_narrow_the_table(app):
    app.multiselect(key="log_actions").set_value(["send", "send failed"]).run()
    assert sorted(table(app)["action"]) == ["send", "send failed"]
    app.multiselect(key="log_outcomes").set_value(["failed"]).run()
    assert list(table(app)["message_id"]) == [11]
    app.multiselect(key="log_actions").set_value([]).run()
    app.multiselect(key="log_outcomes").set_value([]).run()
    app.multiselect(key="log_users").set_value(["alice"]).run()
    assert list(table(app)["action"]) == ["import"]
    app.multiselect(key="log_users").set_value([]).run()
    app.date_input(key="log_dates").set_value((date(2026, 3, 2), date(2026, 3, 2))).run()
    assert list(table(app)["action"]) == ["generate"]
    app.date_input(key="log_dates").set_value(()).run()
    app.number_input(key="log_batch").set_value(7).run()
    assert len(table(app)) == 3
    app.text_input(key="log_client").set_value("nováková").run()
    assert list(table(app)["action"]) == ["send"]
    app.text_input(key="log_client").set_value("2").run()
    assert list(table(app)["action"]) == ["send failed"]
    app.text_input(key="log_client").set_value("nobody").run()
    assert any("No entries match" in i.value for i in app.info)


def test_export_uses_the_filters_and_is_formula_safe(app, store):
    app.multiselect(key="log_outcomes").set_value(["failed"]).run()
    f = LogFilter.from_dict(app.session_state["comms_log_filter"])
    assert f.outcomes == ["failed"]
    assert app.get("download_button")[0].proto.label == "Export 1 to CSV"
    rows = list(csv.DictReader(io.StringIO(export_log_csv(store, f).decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["client_name"] == "'=Evil"
    assert '"error": "=550 no such user"' in rows[0]["detail"]


def test_selecting_a_row_shows_details_and_client_actions(app):
    select_rows(app, "log_table", [0])
    assert not app.exception
    assert any("Entry #4: send failed" in s.value for s in app.subheader)
    assert app.json[0].value  # the detail JSON, shown whole (in an expander)
    fields = app.dataframe[1].value  # the detail as readable Field / Value rows
    assert {"Field": "reason", "Value": "rejected by server"} in fields.to_dict("records")
    now = app.dataframe[2].value
    assert list(now["id"]) == [11] and list(now["status"]) == ["failed"]
    open_client = app.button(key="log_open_client")
    assert not open_client.disabled  # the entry is about a client
    app.button(key="log_only_batch").click().run()
    assert app.number_input(key="log_batch").value == 7


def test_paging(store):
    def many(cur):
        actionlog.record_many(cur, [{"action": "edit", "detail": {"n": i}} for i in range(120)])

    store.write(many)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert len(table(at)) == 50
    assert table(at).iloc[0]["summary"] == "n: 119"
    at.number_input(key="log_page").set_value(3).run()
    assert len(table(at)) == 20
    assert table(at).iloc[-1]["summary"] == "n: 0"
    # changing a filter goes back to page 1
    at.multiselect(key="log_actions").set_value(["edit"]).run()
    assert at.number_input(key="log_page").value == 1


def test_empty_log(store):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("Nothing has been recorded yet" in i.value for i in at.info)


def test_a_bulk_entry_lists_its_messages_as_they_are_now(store):
    seed(store)
    from comms import outbox

    store.write(
        lambda cur: cur.execute(
            "INSERT INTO messages (id, client_id, channel, source, batch_id, status) VALUES "
            "(20, 1, 'email', 'bulk', 7, 'draft'), (21, 2, 'email', 'bulk', 7, 'draft')"
        )
    )
    outbox.queue(store, message_ids=[20, 21])
    outbox.cancel(store, message_ids=[21])
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    at.multiselect(key="log_actions").set_value(["queue"]).run()
    select_rows(at, "log_table", [0])
    now = at.dataframe[2].value  # after the entry's Field / Value table
    assert list(now["id"]) == [20, 21]
    assert list(now["status"]) == ["queued", "cancelled"]
    assert list(now["client_name"]) == ["Jana Nováková", "=Evil"]


@pytest.mark.browser
def test_export_downloads_the_filtered_log_in_a_real_browser(run_app, page, tmp_path):
    url = run_app(seed=seed, env={"COMMS_DISPATCHER": "off"})
    # A fresh server's very first request by URL meets Streamlit's legacy pages/ mode
    # ("Page not found" for /log): open the app first, as a person would.
    page.goto(url)
    page.get_by_text("Demo mode: nothing leaves this machine").wait_for()
    page.goto(url + "/action_log")
    page.get_by_text("matching entries").first.wait_for()
    page.get_by_placeholder("e.g. 550").fill("550")
    page.get_by_placeholder("e.g. 550").press("Enter")
    page.get_by_role("button", name="Export 1 to CSV").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export 1 to CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    # the header row in the viewer's language, the cells the stored codes
    assert list(rows[0])[:4] == ["Entry", "When", "Who", "Action"]
    assert [r["Action"] for r in rows] == ["send failed"]
    assert rows[0]["Client"] == "'=Evil"


@pytest.fixture
def navigation_only(monkeypatch):
    """Keep st.navigation mode across AppTest runs of app.py (see tests/test_auth.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def test_open_client_detail_from_an_entry(store, navigation_only):
    seed(store)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.switch_page("pages/action_log.py").run()
    select_rows(at, "log_table", [1])
    at.button(key="log_open_client").click().run()
    assert not at.exception
    assert at.session_state["comms_client_id"] == 1
    assert "Jana Nováková" in [h.value for h in at.get("header") + at.get("title")] + [
        s.value for s in at.subheader
    ]


def test_outbox_links_to_the_batch_log(store, navigation_only):
    seed(store)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.switch_page("pages/outbox.py").run()
    at.button(key="log_7").click().run()
    assert not at.exception
    assert at.number_input(key="log_batch").value == 7
    assert len(table_of(at, "log_table").value) == 3


def test_links_with_query_params_prefill_the_filters_each_time(store):
    seed(store)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["batch"] = "7"
    at.run()
    assert at.number_input(key="log_batch").value == 7
    assert "batch" not in at.query_params
    at.number_input(key="log_batch").set_value(None).run()
    assert len(table(at)) == 4
    at.query_params["client"] = "1"
    at.run()
    assert at.text_input(key="log_client").value == "1"
    assert list(table(at)["action"]) == ["send"]


def seed_run(store, n_sent=2, n_failed=1, run="run0001"):
    """One send run as the dispatcher records it: a 'send run end' line naming the run,
    and each message's outcome in message_attempts under the run's id."""

    def fill(cur):
        cur.execute("INSERT INTO clients (id, name) VALUES (5, 'Olga')")
        cur.execute("INSERT INTO batches (id, channel) VALUES (8, 'email')")
        total = n_sent + n_failed
        cur.execute(
            "INSERT INTO messages (id, client_id, channel, source, batch_id, status, to_address)"
            " SELECT 100 + i, 5, 'email', 'bulk', 8, CASE WHEN i < ? THEN 'sent' ELSE 'failed'"
            " END, 'o' || i || '@example.com' FROM range(?) t(i)",
            [n_sent, total],
        )
        cur.execute(
            "INSERT INTO message_attempts (message_id, attempt, outcome, detail, run_id)"
            " SELECT 100 + i, 1, CASE WHEN i < ? THEN 'sent' ELSE 'permanent' END,"
            " CASE WHEN i < ? THEN '<m' || i || '@x>' ELSE '550 no such user' END, ?"
            " FROM range(?) t(i)",
            [n_sent, n_sent, run, total],
        )
        actionlog.record(
            cur,
            "send run end",
            batch_id=8,
            outcome="failed" if n_failed else "ok",
            detail={"run": run, "sent": n_sent, "failed": n_failed},
        )

    store.write(fill)


def outcome_table(at):
    return next(d.value for d in at.dataframe if "attempt" in d.value.columns)


def open_entry(at, action):
    rows = table(at)
    row = rows.index[rows["action"] == action][0]
    return select_rows(at, "log_table", [int(row)])


def test_a_send_run_is_one_line_with_its_per_message_outcomes(store):
    seed_run(store)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert table(at)["action"].tolist() == ["send run end"]  # one line, not one per message
    open_entry(at, "send run end")
    assert not at.exception
    heading = next(m.value for m in at.markdown if "Per-message outcomes" in m.value)
    assert heading == ("**Per-message outcomes (3)**: sent **2** · refused by the server **1**")
    outcomes = outcome_table(at)
    assert outcomes["message_id"].tolist() == [100, 101, 102]
    assert outcomes["outcome"].tolist() == ["sent", "sent", "refused by the server"]
    assert outcomes["detail"].tolist()[2] == "550 no such user"
    assert outcomes["status"].tolist() == ["sent", "sent", "failed"]
    assert outcomes["client_name"].tolist() == ["Olga"] * 3
    key = next(w.key for w in at.multiselect if w.key.startswith("log_outcome_filter_"))
    at.multiselect(key=key).set_value(["permanent"]).run()
    assert outcome_table(at)["message_id"].tolist() == [102]


def test_a_long_run_pages_its_outcomes(store):
    seed_run(store, n_sent=1200, n_failed=0)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    open_entry(at, "send run end")
    assert len(outcome_table(at)) == 500
    assert any("1–500 of 1,200 messages" in c.value for c in at.caption)
    at.pagination[0].select(3)
    at.run()
    assert len(outcome_table(at)) == 200


def test_an_older_per_message_send_entry_opens_its_outcome(app, store):
    store.write(
        lambda cur: cur.execute(
            "INSERT INTO message_attempts (message_id, attempt, ts, outcome, detail)"
            " SELECT 10, 1, ts, 'sent', '<a@x>' FROM action_log WHERE action = 'send'"
        )
    )
    app.run()
    open_entry(app, "send")
    outcomes = outcome_table(app)
    assert outcomes["message_id"].tolist() == [10]
    assert outcomes["detail"].tolist() == ["<a@x>"]
