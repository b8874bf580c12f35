import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_app_serves_home_in_real_browser(run_app, page):
    url = run_app(
        seed=lambda st: st.write(
            lambda cur: cur.execute("INSERT INTO clients (name) VALUES ('Jana')")
        )
    )
    page.goto(url)
    page.get_by_text("Client communication desk").wait_for()
    first_metric = page.get_by_test_id("stMetric").first
    first_metric.wait_for()
    assert "Clients" in first_metric.inner_text()
    assert page.get_by_test_id("stMetricValue").first.inner_text().strip() == "1"


def test_bookmarked_page_opens_on_a_fresh_server(run_app, page):
    """The first request of a new server process goes straight to the bookmarked page."""
    url = run_app()
    page.goto(url + "/action_log")
    # A positive signal that the page itself ran to its end: its own last words.
    expect(page.get_by_text("Nothing has been recorded yet.")).to_be_visible()
    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_role("heading", name="Action log")).to_be_visible()
