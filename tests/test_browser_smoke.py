import pytest

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
