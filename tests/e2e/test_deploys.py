"""A team member reads the deploy history, one deploy's report and the delivery metrics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from server import clock
from tests.conftest import LiveServer
from tests.deploys.conftest import record
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e
__all__ = ["record"]  # the factory fixture, shared with the deploys tests


@pytest.fixture
def history(record: Callable[..., int]) -> dict[str, int]:
    """Two production deploys a week apart and a failed development deploy."""
    now = clock.now().replace(microsecond=0)
    # Seven days apart, so the two always fall in different weeks of the deploys-per-week chart
    # (two days apart, as it was, put both in one week from Wednesday to Friday).
    v1_start = now - timedelta(days=9)
    v2_start = now - timedelta(days=2)
    return {
        "v1": record(
            "v1.0.0",
            started=v1_start,
            commits=[(v1_start - timedelta(hours=1), "Ada Osei")],
            tests={"passed": 120, "failed": 0, "errors": 0, "skipped": 0},
            coverage={"line_percent": 78.5, "branch_percent": 66.0},
        ),
        "v2": record(
            "v1.1.0",
            started=v2_start,
            commits=[
                (v2_start - timedelta(hours=3), "Bruno Lima"),
                (v2_start - timedelta(hours=5), "Chen Wei"),
            ],
            tests={"passed": 124, "failed": 1, "errors": 0, "skipped": 1},
            coverage={"line_percent": 83.5, "branch_percent": 70.0},
            url="https://ci.example.com/runs/42",
        ),
        "d1": record("d1", env="development", status="failed", started=now - timedelta(days=1)),
    }


def test_deploy_pages_show_the_recorded_figures(
    page: Any, live_server: LiveServer, admin: Any, history: dict[str, int], shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deploys").click()
    assert page.get_by_role("heading", name="Deploys").is_visible()
    rows = page.locator("#deploys tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).inner_text().split("\t")[1].strip() == "d1"
    v2 = page.locator(f'tr[data-deploy-id="{history["v2"]}"]')
    assert "124/126" in v2.inner_text() and "1 failing" in v2.inner_text()
    assert "Bruno Lima, Chen Wei" in v2.inner_text()
    assert v2.locator(".meets-target").inner_text() == "83.5%"
    v1 = page.locator(f'tr[data-deploy-id="{history["v1"]}"]')
    assert v1.locator(".below-target").inner_text() == "78.5%"
    shot(page, "history")

    page.get_by_role("navigation", name="Environment").get_by_role(
        "link", name="production"
    ).click()
    assert page.locator("#deploys tbody tr").count() == 2
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_text("No deploys recorded to production with this status yet.").is_visible()
    page.goto(f"{live_server.url}/deploys?env=production")

    page.get_by_role("link", name="v1.1.0").click()
    assert page.get_by_role("heading", name="v1.1.0 to production").is_visible()
    assert page.locator("#tests-total").inner_text() == "126"
    figures = page.locator("#figures").inner_text()
    assert "+6 since previous" in figures
    assert page.locator("#coverage-line").inner_text() == "83.5%"
    assert "+5.0 pts since previous" in figures
    assert page.locator("#tests-failing").inner_text() == "1"
    commits = page.locator("#commits tbody tr")
    assert commits.count() == 2
    assert "Bruno Lima" in commits.nth(0).inner_text() and "3.2 h" in commits.nth(0).inner_text()
    assert page.get_by_role("link", name="CI run ↗").get_attribute("href") == (
        "https://ci.example.com/runs/42"
    )
    shot(page, "detail")

    page.get_by_role("link", name="← Deploys to production").click()
    page.get_by_role("link", name="Delivery metrics").click()
    assert page.get_by_role("heading", name="Delivery metrics").is_visible()
    frequency = page.locator("#key-frequency").inner_text()
    assert "0.07 per day" in frequency and "2 successful deploys in 30 days" in frequency
    lead = page.locator("#key-lead-time").inner_text()  # 1h10, 3h10 and 5h10 of the 3 commits
    assert "3.2 h median" in lead and "90th percentile 4.8 h · 3 commits" in lead
    assert "0.0%" in page.locator("#key-failure-rate").inner_text()
    assert "0 of 0 failures recovered" in page.locator("#key-recovery").inner_text()
    for title in (
        "Deploys per week",
        "Lead time for changes",
        "Coverage of deploys",
        "Test count of deploys",
    ):
        assert page.get_by_role("img", name=f"{title} to production").is_visible()
    assert page.locator("svg.chart-svg > desc").count() == 4
    assert page.locator("#chart-production-deploys-per-week rect.bar-ok").count() == 2
    shot(page, "metrics")

    page.get_by_role("link", name="development").first.click()
    assert "100.0%" in page.locator("#key-failure-rate").inner_text()
    shot(page, "metrics-development")


def test_deploy_pages_read_well_on_a_phone_in_dark_mode(
    page: Any, live_server: LiveServer, admin: Any, history: dict[str, int], shot: Shots
) -> None:
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 375, "height": 740})
    browser_sign_in(page, live_server, admin.email)
    for url, label in (
        ("/deploys", "history-375-dark"),
        (f"/deploys/{history['v2']}", "detail-375-dark"),
        ("/deploys/metrics", "metrics-375-dark"),
    ):
        page.goto(f"{live_server.url}{url}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{url} scrolls sideways at 375 px ({width} px wide)"
        shot(page, label)
