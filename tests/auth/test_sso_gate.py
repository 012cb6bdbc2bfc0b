"""The same identity at the gate: a provider group or email domain passes the closed gate as
team, without any Darklaunch role."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.auth.models import User
from tests.common.oidc_provider import Provider, oidc_provider, sso_config, sso_sign_in

__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def app_config(oidc_provider: Provider) -> dict[str, Any]:
    return sso_config(
        oidc_provider, OIDC_GATE_GROUPS=("everyone",), OIDC_GATE_DOMAINS=("acme.test",)
    )


def _role(app: Flask, email: str) -> str | None:
    with app.app_context(), db.new_session() as s:
        user = s.scalar(select(User).where(User.email == email))
        return user.role if user else None


def test_a_gate_group_member_passes_the_closed_gate_without_a_role(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    assert client.get("/").status_code == 503  # closed to strangers
    oidc_provider.set_user(
        "gg-1", email="intern@elsewhere.test", email_verified=True, groups=["everyone"]
    )
    answer = sso_sign_in(client, oidc_provider, "gg-1")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert _role(app, "intern@elsewhere.test") == "team"
    site = client.get("/", follow_redirects=True)
    assert site.status_code == 200  # through the closed gate: the product updates
    assert "Coming soon" not in site.get_data(as_text=True)
    assert client.get("/gate/auth", headers={"X-Original-URI": "/pricing"}).status_code == 204
    # ... and no Darklaunch page at all.
    assert client.get("/flags").status_code == 403
    assert client.get("/settings").status_code == 403


def test_a_verified_email_in_a_gate_domain_passes_the_closed_gate(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_user("gd-1", email="sales@acme.test", email_verified=True, groups=[])
    assert sso_sign_in(client, oidc_provider, "gd-1").status_code == 302
    assert _role(app, "sales@acme.test") == "team"
    assert client.get("/", follow_redirects=True).status_code == 200


def test_an_unverified_email_in_a_gate_domain_is_refused(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_user("gd-2", email="fake@acme.test", email_verified=False, groups=[])
    assert sso_sign_in(client, oidc_provider, "gd-2").status_code == 403
    assert _role(app, "fake@acme.test") is None
    assert client.get("/").status_code == 503


def test_a_mapped_group_wins_over_the_gate_group(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_user(
        "gg-2", email="dev@acme.test", email_verified=True, groups=["everyone", "devs"]
    )
    assert sso_sign_in(client, oidc_provider, "gg-2").status_code == 302
    assert _role(app, "dev@acme.test") == "developer"
    assert client.get("/flags").status_code == 200
