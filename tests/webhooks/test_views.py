"""Settings → Webhooks: add one (its secret shown once), read its delivery log, act on it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.webhooks.models import Webhook
from tests.common.webhooks import deliver_until_idle
from tests.conftest import post_form
from tests.webhooks.conftest import Receiver

SECRET_RE = re.compile(r'id="new-webhook-secret"[^>]*value="([^"]+)"')


def add(admin_client: FlaskClient, url: str, **fields: Any) -> Any:
    data = {
        "webhook-url": url,
        "webhook-events": ["flag.changed"],
        "webhook-format": "json",
        "webhook-enabled": "y",
        **fields,
    }
    return post_form(admin_client, "/settings/webhooks", data)


def test_an_admin_adds_a_webhook_in_settings_and_sees_its_secret_once(
    app: Flask, admin_client: FlaskClient
) -> None:
    settings = admin_client.get("/settings").get_data(as_text=True)
    assert 'href="/settings/webhooks"' in settings
    response = add(
        admin_client, "https://hooks.example.com/in", **{"webhook-environment": "production"}
    )
    assert response.status_code == 303
    shown = admin_client.get(response.headers["Location"])
    assert shown.headers["Cache-Control"] == "no-store"
    match = SECRET_RE.search(shown.get_data(as_text=True))
    assert match and match.group(1).startswith("whsec_")
    again = admin_client.get("/settings/webhooks").get_data(as_text=True)
    assert match.group(1) not in again and "https://hooks.example.com/in" in again
    with app.app_context():
        hook = db.session().scalar(select(Webhook))
        assert (
            hook is not None and hook.environment == "production" and hook.secret == match.group(1)
        )


def test_the_form_shows_what_is_wrong(admin_client: FlaskClient) -> None:
    response = add(admin_client, "javascript:alert(1)", **{"webhook-events": []})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Enter an http or https address" in page and "Choose at least one event" in page
    missing = post_form(admin_client, "/settings/webhooks", {"webhook-url": ""})
    assert missing.status_code == 400


def test_the_webhook_page_shows_its_log_and_redelivers_disables_and_removes(
    app: Flask, admin_client: FlaskClient, api: Callable[..., Any], receiver: Receiver
) -> None:
    add(admin_client, receiver.url)
    with app.app_context():
        hook_id = db.session().scalars(select(Webhook.id)).one()
    api("post", "/api/admin/projects/default/features", json={"name": "logged"})
    deliver_until_idle(app)
    page = admin_client.get(f"/settings/webhooks/{hook_id}").get_data(as_text=True)
    assert "delivered" in page and "HTTP 200" in page and " ms" in page
    redeliver = re.search(r'action="(/settings/webhooks/\d+/deliveries/\d+/redeliver)"', page)
    assert redeliver
    assert post_form(admin_client, redeliver.group(1)).status_code == 302
    assert deliver_until_idle(app) == 1
    off = post_form(admin_client, f"/settings/webhooks/{hook_id}/enabled")
    assert off.status_code == 302
    page = admin_client.get(f"/settings/webhooks/{hook_id}").get_data(as_text=True)
    assert 'id="disabled-reason"' in page and "Disabled by admin@example.com." in page
    assert post_form(admin_client, f"/settings/webhooks/{hook_id}/enabled").status_code == 302
    rotated = post_form(admin_client, f"/settings/webhooks/{hook_id}/secret")
    assert rotated.status_code == 303
    shown = admin_client.get(rotated.headers["Location"]).get_data(as_text=True)
    assert "New signing secret" in shown and SECRET_RE.search(shown)
    assert post_form(admin_client, f"/settings/webhooks/{hook_id}/delete").status_code == 302
    assert admin_client.get(f"/settings/webhooks/{hook_id}").status_code == 404
