"""The Clients page in a browser: reachable from the navigation, readable on a phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from server import clock, db
from server.protocols import service
from server.protocols.schemas import MetricsIn, RegisterIn
from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in
from tests.protocols.conftest import Flags

pytestmark = pytest.mark.e2e


@pytest.fixture
def reported(app: Flask) -> None:
    Flags(app).create("new-checkout")
    Flags(app).create("search-v2", env="development")
    now = clock.now()
    with app.app_context():
        s = db.session()
        for app_name, instance, env in (
            ("checkout-api", "checkout-api-7d9f4c5b8-x2kqp", "production"),
            ("storefront-web", "browser", "development"),
        ):
            who = service.SdkIdentity(env, "client", "unleash-python-sdk:6.9.1")
            service.record_registration(
                s, who, RegisterIn(appName=app_name, instanceId=instance, started=now)
            )
            for hours_ago in range(12):
                data = MetricsIn.model_validate(
                    {
                        "appName": app_name,
                        "instanceId": instance,
                        "bucket": {
                            "start": now,
                            "stop": now,
                            "toggles": {
                                "new-checkout": {"yes": 10 + hours_ago, "no": 5},
                                "search-v2": {"yes": hours_ago, "no": 12 - hours_ago},
                            },
                        },
                    }
                )
                service.record_metrics(
                    s,
                    who,
                    data,
                    ["new-checkout", "search-v2"],
                    at=now - timedelta(hours=hours_ago),
                )


def test_clients_page_shows_applications_and_usage(
    page: Any, live_server: LiveServer, admin: Any, reported: None, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.get_by_role("link", name="Clients").click()
    assert page.get_by_role("heading", name="Clients", exact=True).is_visible()
    assert page.get_by_role("link", name="checkout-api").is_visible()
    usage = page.get_by_role("img", name="production: 186 on and 60 off in the last 24 hours")
    assert usage.count() == 1
    shot(page, "clients")
    page.get_by_role("link", name="checkout-api").click()
    assert page.get_by_role("heading", name="Instances of checkout-api").is_visible()


def test_clients_page_is_readable_on_a_phone(
    page: Any, live_server: LiveServer, admin: Any, reported: None, shot: Shots
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/clients")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page scrolls sideways at 375 px ({width} px wide)"
    shot(page, "clients-375")
