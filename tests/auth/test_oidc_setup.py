"""Single sign-on settings: checked at start-up, and pages that say so when it is not set up or
the provider cannot be reached."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from server import config
from server.config import ConfigError
from tests.conftest import free_port, make_app


def _parse(**env: str) -> dict[str, Any]:
    return config.parse({"DARKLAUNCH_ENV": "test", **env})


def test_the_role_map_is_parsed_in_order() -> None:
    values = _parse(
        DARKLAUNCH_OIDC_ISSUER="https://id.example.com/realms/acme",
        DARKLAUNCH_OIDC_CLIENT_ID="darklaunch",
        DARKLAUNCH_OIDC_ROLE_MAP="darklaunch-admins:admin, Dev Team:developer,/a:b:viewer",
        DARKLAUNCH_OIDC_GATE_DOMAINS="@Acme.com,acme.co.uk",
    )
    assert values["OIDC_ROLE_MAP"] == (
        ("darklaunch-admins", "admin"),
        ("Dev Team", "developer"),
        ("/a:b", "viewer"),
    )
    assert values["OIDC_GATE_DOMAINS"] == ("acme.com", "acme.co.uk")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DARKLAUNCH_OIDC_ROLE_MAP": "devs:root"}, "DARKLAUNCH_OIDC_ROLE_MAP"),
        ({"DARKLAUNCH_OIDC_ROLE_MAP": "devs"}, "DARKLAUNCH_OIDC_ROLE_MAP"),
        ({"DARKLAUNCH_OIDC_ROLE_MAP": ":admin"}, "DARKLAUNCH_OIDC_ROLE_MAP"),
        ({"DARKLAUNCH_OIDC_GATE_DOMAINS": "localhost"}, "DARKLAUNCH_OIDC_GATE_DOMAINS"),
        ({"DARKLAUNCH_OIDC_ISSUER": "id.example.com"}, "DARKLAUNCH_OIDC_ISSUER"),
        ({"DARKLAUNCH_OIDC_ISSUER": "https://id.example.com"}, "DARKLAUNCH_OIDC_CLIENT_ID"),
        ({"DARKLAUNCH_OIDC_ONLY": "true"}, "DARKLAUNCH_OIDC_ISSUER"),
        ({"DARKLAUNCH_BREAK_GLASS_EMAIL": "not-an-email"}, "DARKLAUNCH_BREAK_GLASS_EMAIL"),
    ],
)
def test_bad_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(**env)


def test_the_client_secret_is_never_repeated_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(
            DARKLAUNCH_OIDC_ISSUER="https://id.example.com",
            DARKLAUNCH_OIDC_CLIENT_SECRET="s3cr3t-value",
        )
    assert "s3cr3t-value" not in str(caught.value)


def test_without_a_provider_the_sso_pages_say_so(client: FlaskClient) -> None:
    assert "Sign in with" not in client.get("/login").get_data(as_text=True)
    for path in ("/login/oidc", "/login/oidc/callback?code=x&state=y", "/logout/oidc"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "not set up" in answer.get_data(as_text=True)


def test_an_unreachable_provider_is_a_clear_page(database: Any, tmp_path: Any) -> None:
    app = make_app(
        database.fresh_url(tmp_path),
        OIDC_ISSUER=f"http://127.0.0.1:{free_port()}",
        OIDC_CLIENT_ID="darklaunch",
        OIDC_CLIENT_SECRET="x",
    )
    try:
        client = app.test_client()
        answer = client.get("/login/oidc")
        assert answer.status_code == 502
        assert "cannot be reached" in answer.get_data(as_text=True)
        assert client.get("/logout/oidc").status_code == 404  # no discovery, no end-session
        assert client.get("/login/oidc/callback?error=access_denied").status_code == 401
        assert client.get("/login/oidc/callback?code=x&state=y").status_code == 400
    finally:
        app.extensions["db.engine"].dispose()
        database.reset()
