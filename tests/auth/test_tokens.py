"""API tokens: issued once, stored as hashes, scoped by kind and environment, revocable at once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from server import db
from server.audit.models import Event
from server.auth.models import ApiToken
from tests.conftest import post_form

SECRET_RE = re.compile(r'id="new-token-value"[^>]*value="([^"]+)"')


def stored_rows(app: Flask) -> str:
    """Every column of every token row, as one string."""
    with app.app_context():
        rows = db.session().execute(text("SELECT * FROM api_tokens")).all()
    return repr([tuple(row) for row in rows])


def events(app: Flask, action: str) -> list[Event]:
    with app.app_context():
        return list(db.session().scalars(select(Event).where(Event.action == action)))


def test_admin_creates_a_token_on_the_settings_page_and_sees_it_once(
    app: Flask, admin_client: FlaskClient, admin: Any
) -> None:
    response = post_form(
        admin_client,
        "/settings/tokens",
        {"token-name": "checkout", "token-kind": "client", "token-environment": "production"},
    )
    assert response.status_code == 303
    shown = admin_client.get(response.headers["Location"])
    assert shown.headers["Cache-Control"] == "no-store"
    match = SECRET_RE.search(shown.get_data(as_text=True))
    assert match, "the new token is shown"
    secret = match.group(1)
    assert secret.startswith("dl_client_")
    # Shown once: the next visit lists the token by its prefix only.
    page = admin_client.get("/settings").get_data(as_text=True)
    assert "checkout" in page
    assert secret not in page
    assert secret[: len("client") + 8] + "…" in page  # the prefix
    # The token works for the SDK side and nothing else.
    with app.app_context():
        token = db.session().scalar(select(ApiToken).where(ApiToken.name == "checkout"))
        assert token is not None
        assert token.environment == "production"
        assert token.created_by == admin.email
    (created,) = events(app, "token.created")
    assert created.actor == admin.email and created.environment == "production"


def test_reloading_the_page_that_shows_a_new_token_creates_no_second_one(
    app: Flask, admin_client: FlaskClient
) -> None:
    form = {"token-name": "ci-main", "token-kind": "ci"}
    created = post_form(admin_client, "/settings/tokens", form)
    assert created.status_code == 303  # post/redirect/get: a reload repeats only the GET
    location = created.headers["Location"]
    first = admin_client.get(location).get_data(as_text=True)
    assert SECRET_RE.search(first)
    again = admin_client.get(location).get_data(as_text=True)  # the reload
    assert SECRET_RE.search(again) is None
    assert "ci-main" in again
    with app.app_context():
        names = list(db.session().scalars(select(ApiToken.name)))
    assert names == ["ci-main"]
    assert len(events(app, "token.created")) == 1


def test_a_second_active_token_with_the_same_name_is_refused(
    app: Flask, admin_client: FlaskClient, api: Callable[..., Any]
) -> None:
    form = {"token-name": "ci-main", "token-kind": "ci"}
    assert post_form(admin_client, "/settings/tokens", form).status_code == 303
    # Surrounding spaces are trimmed, so they do not make a name new.
    again = post_form(admin_client, "/settings/tokens", {**form, "token-name": " ci-main "})
    assert again.status_code == 409
    html = again.get_data(as_text=True)
    assert "A token named ci-main exists already" in html
    assert SECRET_RE.search(html) is None
    refused = api("post", "/api/admin/tokens", json={"name": "ci-main", "kind": "admin"})
    assert refused.status_code == 409
    assert "ci-main exists already" in refused.get_json()["error"]["message"]
    assert [e.target for e in events(app, "token.created")].count("ci-main") == 1
    # Once revoked, the name is free again (a rotated token keeps its name).
    with app.app_context():
        token_id = db.session().scalar(select(ApiToken.id).where(ApiToken.name == "ci-main"))
    post_form(admin_client, f"/settings/tokens/{token_id}/revoke")
    assert post_form(admin_client, "/settings/tokens", form).status_code == 303


def test_tokens_are_stored_only_as_sha256_hashes(
    app: Flask, make_token: Callable[..., str]
) -> None:
    secrets = [make_token("admin"), make_token("client", "development")]
    rows = stored_rows(app)
    for secret in secrets:
        assert secret not in rows
        assert secret[10:] not in rows  # not even the random part
        assert hashlib.sha256(secret.encode()).hexdigest() in rows


@pytest.mark.parametrize("scheme", ["", "Bearer ", "bearer ", "BEARER  "])
def test_both_authorization_forms_are_accepted(
    client: FlaskClient, admin_token: str, scheme: str
) -> None:
    response = client.get("/api/admin/tokens", headers={"Authorization": scheme + admin_token})
    assert response.status_code == 200


def test_revoked_token_is_refused_immediately_by_the_same_process(
    app: Flask, admin_client: FlaskClient, make_token: Callable[..., str]
) -> None:
    secret = make_token("admin", name="doomed")
    headers = {"Authorization": f"Bearer {secret}"}
    api_client = app.test_client()
    assert api_client.get("/api/admin/users", headers=headers).status_code == 200
    with app.app_context():
        token_id = db.session().scalar(select(ApiToken.id).where(ApiToken.name == "doomed"))
    response = post_form(admin_client, f"/settings/tokens/{token_id}/revoke")
    assert response.status_code == 302
    assert "Token doomed is revoked." in admin_client.get("/settings").get_data(as_text=True)
    refused = api_client.get("/api/admin/users", headers=headers)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["message"] == "The API token is unknown or revoked."
    (revoked,) = events(app, "token.revoked")
    assert revoked.target == "doomed" and revoked.after == {"revoked": True, "id": token_id}


def test_revoking_an_unknown_token_on_the_page_is_404(admin_client: FlaskClient) -> None:
    assert post_form(admin_client, "/settings/tokens/4242/revoke").status_code == 404


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"token-kind": "client", "token-environment": ""}, "A client token needs an environment"),
        ({"token-kind": "frontend", "token-environment": ""}, "A frontend token needs"),
        ({"token-kind": "admin", "token-environment": "production"}, "not bound to an environment"),
        ({"token-kind": "client", "token-environment": "staging"}, "Not a valid choice"),
        ({"token-kind": "root", "token-environment": ""}, "Not a valid choice"),
    ],
)
def test_token_form_explains_what_is_wrong(
    app: Flask, admin_client: FlaskClient, form: dict[str, str], message: str
) -> None:
    response = post_form(admin_client, "/settings/tokens", {"token-name": "svc", **form})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert "token-name" in response.get_data(as_text=True)
    assert events(app, "token.created") == []


def test_token_names_must_be_readable(admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client, "/settings/tokens", {"token-name": "<script>", "token-kind": "admin"}
    )
    assert response.status_code == 400
    assert "Name must be 1-100 characters" in response.get_data(as_text=True)


def test_token_api_creates_lists_and_revokes(
    app: Flask, api: Callable[..., Any], client: FlaskClient
) -> None:
    created = api(
        "post",
        "/api/admin/tokens",
        json={"name": "web app", "kind": "frontend", "environment": "development"},
    )
    assert created.status_code == 201
    body = created.get_json()
    secret = body.pop("secret")
    assert secret.startswith("dl_frontend_")
    assert body["kind"] == "frontend" and body["environment"] == "development"
    assert body["revoked_at"] is None and body["created_by"].startswith("token:")
    assert secret.startswith(body["prefix"])

    listed = api("get", "/api/admin/tokens").get_json()["tokens"]
    assert body in listed
    assert all("secret" not in t for t in listed)
    assert secret not in api("get", "/api/admin/tokens").get_data(as_text=True)

    revoked = api("delete", f"/api/admin/tokens/{body['id']}")
    assert revoked.status_code == 200
    assert revoked.get_json()["revoked_at"] is not None
    again = api("delete", f"/api/admin/tokens/{body['id']}")
    assert again.status_code == 200  # revoking twice is harmless and writes no second event
    assert len(events(app, "token.revoked")) == 1
    listed = api("get", "/api/admin/tokens").get_json()["tokens"]
    assert listed[-1]["id"] == body["id"]  # revoked tokens sort last


def test_token_api_needs_an_environment_for_sdk_tokens(api: Callable[..., Any]) -> None:
    response = api("post", "/api/admin/tokens", json={"name": "svc", "kind": "client"})
    assert response.status_code == 400
    assert "environment" in response.get_json()["error"]["details"]["fields"]


def test_cli_creates_lists_and_revokes_tokens(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient
) -> None:
    result = runner.invoke(
        args=["tokens", "create", "--kind", "client", "--env", "production", "--name", "api"]
    )
    assert result.exit_code == 0, result.output
    secret = result.output.splitlines()[-1]
    assert re.fullmatch(r"dl_client_[A-Za-z0-9_-]{40,}", secret)
    assert secret not in stored_rows(app)

    listed = runner.invoke(args=["tokens", "list"])
    assert listed.exit_code == 0
    (line,) = listed.output.splitlines()
    token_id, name, kind, env, prefix, state = line.split("\t")
    assert (name, kind, env, state) == ("api", "client", "production", "active")
    assert secret.startswith(prefix.rstrip("…")) and secret not in listed.output

    admin_secret = runner.invoke(args=["tokens", "create", "--kind", "admin", "--name", "ci"])
    admin_token = admin_secret.output.splitlines()[-1]
    headers = {"Authorization": admin_token}
    assert client.get("/api/admin/tokens", headers=headers).status_code == 200

    revoked = runner.invoke(args=["tokens", "revoke", token_id])
    assert revoked.exit_code == 0 and "Revoked api." in revoked.output
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output
    assert events(app, "token.revoked")[0].actor == "cli"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "client", "--name", "x"], "A client token needs an environment"),
        (["--kind", "admin", "--env", "production", "--name", "x"], "not bound to an environment"),
        (["--kind", "client", "--env", "nowhere", "--name", "x"], "one of development, production"),
        (["--kind", "wizard", "--name", "x"], "'wizard' is not one of"),
    ],
)
def test_cli_token_errors_are_clear(runner: FlaskCliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(args=["tokens", "create", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_revoking_an_unknown_token_fails(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["tokens", "revoke", "999"])
    assert result.exit_code == 1
    assert "No such token." in result.output


def test_cli_creates_a_ci_token_that_records_deploys_only(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient
) -> None:
    created = runner.invoke(args=["tokens", "create", "--kind", "ci", "--name", "pipeline"])
    assert created.exit_code == 0, created.output
    secret = created.output.splitlines()[-1]
    assert re.fullmatch(r"dl_ci_[A-Za-z0-9_-]{40,}", secret)
    listed = runner.invoke(args=["tokens", "list"]).output
    assert "\tpipeline\tci\t-\t" in listed
    headers = {"Authorization": secret}
    body = {"environment": "production", "version": "v9", "sha": "b" * 40}
    assert client.post("/api/deploys", json=body, headers=headers).status_code == 201
    assert client.get("/api/admin/tokens", headers=headers).status_code == 403
    assert client.get("/api/admin/events", headers=headers).status_code == 403
    # A ci token is not bound to an environment: deploys name theirs.
    bound = runner.invoke(
        args=["tokens", "create", "--kind", "ci", "--env", "production", "--name", "x"]
    )
    assert bound.exit_code != 0 and "not bound to an environment" in bound.output


def test_token_api_creates_ci_tokens(api: Callable[..., Any]) -> None:
    response = api("post", "/api/admin/tokens", json={"name": "pipeline", "kind": "ci"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["kind"] == "ci" and response.get_json()["environment"] is None


def test_upgrading_renames_older_duplicate_token_names(empty_database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from alembic import command

    config = db.alembic_config(empty_database_url)
    command.upgrade(config, "0009_write_path")
    engine = db.make_engine(empty_database_url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [  # (id, name, revoked): two active "ci", a revoked "ci", and a "ci-2" in the way
        (1, "ci", False),
        (2, "ci", True),
        (3, "ci-2", False),
        (4, "ci", False),
        (5, "x" * 100, False),
        (6, "x" * 100, False),
    ]
    try:
        with engine.begin() as conn:
            for token_id, name, revoked in rows:
                conn.execute(
                    text(
                        "INSERT INTO api_tokens (id, name, kind, environment, token_hash, prefix,"
                        " created_by, created_at, revoked_at, version) VALUES (:id, :name,"
                        " 'ci', NULL, :hash, 'dl_ci_x', 't', :at, :revoked, 1)"
                    ),
                    {
                        "id": token_id,
                        "name": name,
                        "hash": f"{token_id:064d}",
                        "at": start + timedelta(minutes=token_id),
                        "revoked": start if revoked else None,
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            names = dict(conn.execute(text("SELECT id, name FROM api_tokens")).all())
    finally:
        engine.dispose()
    assert names == {1: "ci", 2: "ci", 3: "ci-2", 4: "ci-3", 5: "x" * 100, 6: "x" * 98 + "-2"}
