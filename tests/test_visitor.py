"""The sticky, signed visitor id that anonymous visitors are evaluated with."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from server.access import public
from server.config import Mode
from server.visitor import COOKIE, visitor_id
from tests.conftest import Database, make_app


def with_probe(app: Flask) -> Flask:
    @public
    def probe() -> str:
        return visitor_id() + "," + visitor_id()  # asking twice in a request gives one id

    app.add_url_rule("/_probe", "probe", probe)
    return app


def test_visitor_keeps_one_id_across_requests(app: Flask) -> None:
    client = with_probe(app).test_client()
    first = client.get("/_probe")
    one, same = first.get_data(as_text=True).split(",")
    assert one == same and len(one) == 32
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={one}.")  # the id, then its signature
    second = client.get("/_probe")
    assert second.get_data(as_text=True).split(",")[0] == one
    assert "Set-Cookie" not in second.headers


def test_tampered_or_empty_cookie_gets_a_fresh_id(app: Flask) -> None:
    client = with_probe(app).test_client()
    client.set_cookie(COOKIE, "chosen-id.not-a-signature")
    response = client.get("/_probe")
    assert not response.get_data(as_text=True).startswith("chosen-id")
    assert "Set-Cookie" in response.headers
    client.set_cookie(COOKIE, "")
    assert "Set-Cookie" in client.get("/_probe").headers


def test_cookie_is_secure_in_production(database: Database, tmp_path: Path) -> None:
    app = with_probe(make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION))
    try:
        cookie = app.test_client().get("/_probe").headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        app.extensions["db.engine"].dispose()
        database.reset()
