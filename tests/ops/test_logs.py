"""JSON logs: one object per line, a request id on each, one access line per request."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.access import public
from server.config import ConfigError, parse
from server.ops.logs import JsonFormatter
from tests.common.logs import captured


def lines(captured: str) -> list[dict[str, Any]]:
    """Every stderr line, parsed: a line that is not JSON fails the test."""
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def access_lines(captured: str) -> list[dict[str, Any]]:
    return [entry for entry in lines(captured) if entry["logger"] == "darklaunch.access"]


def test_each_request_writes_one_json_access_line(
    client: FlaskClient, admin_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    captured(capsys)
    response = client.get(
        "/api/openapi.json?token=should-not-be-logged",
        headers={"Authorization": admin_token, "X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 200
    (entry,) = access_lines(captured(capsys).err)
    assert entry["level"] == "INFO"
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/openapi.json"  # never the query string
    assert entry["status"] == 200
    assert entry["endpoint"] == "api.openapi"
    assert entry["remote_addr"] == "127.0.0.1"  # X-Forwarded-For from an untrusted peer: ignored
    assert isinstance(entry["duration_ms"], float)
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert entry["time"].endswith("+00:00")


def test_access_line_names_the_signed_in_principal(
    admin_client: FlaskClient, admin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    captured(capsys)
    admin_client.get("/audit")
    (entry,) = access_lines(captured(capsys).err)
    assert entry["principal"] == admin.email
    assert entry["endpoint"].startswith("audit.")


def test_every_line_of_a_request_carries_its_id(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @public
    def noisy() -> str:
        logging.getLogger("server.example").warning("something to say", extra={"flag": "x"})
        return "ok"

    app.add_url_rule("/api/test/noisy", view_func=noisy)
    captured(capsys)
    client.get("/api/test/noisy", headers={"X-Request-ID": "req-42"})
    entries = lines(captured(capsys).err)
    assert [e["logger"] for e in entries] == ["server.example", "darklaunch.access"]
    assert {e["request_id"] for e in entries} == {"req-42"}
    assert entries[0]["level"] == "WARNING"
    assert entries[0]["message"] == "something to say"
    assert entries[0]["flag"] == "x"


def test_a_sane_request_id_is_kept_and_returned(client: FlaskClient) -> None:
    for sane in ("abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:1.2_3", "x" * 128):
        response = client.get("/-/health", headers={"X-Request-ID": sane})
        assert response.headers["X-Request-ID"] == sane


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "has space", "tab\there", 'quo"te', "<script>", "-leading-dash", "ünïcode", ""],
)
def test_a_strange_request_id_is_replaced_with_a_fresh_one(client: FlaskClient, bad: str) -> None:
    response = client.get("/-/health", headers={"X-Request-ID": bad})
    returned = response.headers["X-Request-ID"]
    assert returned != bad
    assert len(returned) == 32 and int(returned, 16) >= 0


def test_requests_without_an_id_get_distinct_ones(client: FlaskClient) -> None:
    ids = {client.get("/-/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_errors_and_redirects_carry_the_request_id_too(client: FlaskClient) -> None:
    for path in ("/no/such/page", "/audit", "/api/admin/nothing"):
        response = client.get(path, headers={"X-Request-ID": "err-1"})
        assert response.headers["X-Request-ID"] == "err-1", path


def test_secret_path_arguments_are_not_logged(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @public
    def preview(token: str) -> str:
        return "ok"

    app.add_url_rule("/api/test/preview/<token>", view_func=preview)
    captured(capsys)
    client.get("/api/test/preview/dl_pass_verysecret")
    err = captured(capsys).err
    assert "verysecret" not in err
    (entry,) = access_lines(err)
    assert entry["path"] == "/api/test/preview/[redacted]"


def test_exceptions_are_logged_as_one_json_line(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @public
    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/test/broken", view_func=broken)
    captured(capsys)
    assert client.get("/api/test/broken").status_code == 500
    error = next(e for e in lines(captured(capsys).err) if e["level"] == "ERROR")
    assert "RuntimeError: boom" in error["exception"]
    assert error["request_id"]


def test_log_level_setting_filters_lines(
    capsys: pytest.CaptureFixture[str], database: Any, tmp_path: Any
) -> None:
    from tests.conftest import make_app

    application = make_app(database.fresh_url(tmp_path), LOG_LEVEL="WARNING")
    try:
        captured(capsys)
        application.test_client().get("/-/health")
        assert access_lines(captured(capsys).err) == []
    finally:
        application.extensions["db.engine"].dispose()
        logging.getLogger().setLevel(logging.INFO)


def test_log_level_must_be_a_known_level() -> None:
    env = {"DARKLAUNCH_ENV": "test"}
    assert parse({**env, "DARKLAUNCH_LOG_LEVEL": "debug"})["LOG_LEVEL"] == "DEBUG"
    with pytest.raises(ConfigError, match="DARKLAUNCH_LOG_LEVEL='LOUD' is not valid"):
        parse({**env, "DARKLAUNCH_LOG_LEVEL": "LOUD"})


def test_formatter_outside_requests_has_no_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.stack_info = "stack here"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello world"
    assert entry["request_id"] is None
    assert entry["stack"] == "stack here"
