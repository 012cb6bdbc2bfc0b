"""The sticky, signed visitor id that anonymous visitors are evaluated with (gate and changelog)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from server import db
from server.access import public
from server.announcements import service
from server.announcements.schemas import AnnouncementIn
from server.audit.service import Actor
from server.config import Mode
from server.flags import service as flags
from server.flags.schemas import FlagCreate, StrategyIn
from server.gate import settings as gate
from server.visitor import COOKIE, ID_RE, visitor_id
from tests.conftest import Database, make_app


def with_probe(app: Flask) -> Flask:
    @public
    def probe() -> str:
        return visitor_id() + "," + visitor_id()  # asking twice in a request gives one id

    app.add_url_rule("/-/probe", "probe", probe)  # under /-/: the gate lets it through
    return app


def test_visitor_keeps_one_id_across_requests(app: Flask) -> None:
    client = with_probe(app).test_client()
    first = client.get("/-/probe")
    one, same = first.get_data(as_text=True).split(",")
    assert one == same and ID_RE.match(one)
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={one}.")  # the id, then its signature
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    second = client.get("/-/probe")
    assert second.get_data(as_text=True).split(",")[0] == one
    assert "Set-Cookie" not in second.headers


def test_tampered_or_empty_cookie_gets_a_fresh_id(app: Flask) -> None:
    client = with_probe(app).test_client()
    client.set_cookie(COOKIE, "chosen-id-0000000000.not-a-signature")
    response = client.get("/-/probe")
    assert not response.get_data(as_text=True).startswith("chosen-id")
    assert "Set-Cookie" in response.headers
    client.set_cookie(COOKIE, "")
    assert "Set-Cookie" in client.get("/-/probe").headers


def test_cookie_is_secure_in_production(database: Database, tmp_path: Path) -> None:
    app = with_probe(make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION))
    try:
        cookie = app.test_client().get("/-/probe").headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        app.extensions["db.engine"].dispose()
        database.reset()


def test_gate_and_changelog_give_a_visitor_one_id(app: Flask) -> None:
    """A soft-launched gate issues the id; the changelog evaluates its flags with the same one."""
    envs = tuple(app.config["ENVIRONMENTS"])
    with app.app_context():
        s = db.session()
        gate.open_gate(s, Actor("admin"), envs, app.config["GATE_ENV"])
        gate.set_audience(
            s,
            Actor("admin"),
            envs,
            app.config["GATE_ENV"],
            gate.AudienceChoice(everyone=False, networks=["127.0.0.0/8"]),
        )
        flags.create_flag(s, Actor("dev"), FlagCreate(name="half"), envs)
        rollout = StrategyIn(
            name="flexibleRollout", parameters={"rollout": "50", "stickiness": "sessionId"}
        )
        flags.add_strategy(s, Actor("dev"), "half", "production", rollout)
        flags.set_enabled(s, Actor("dev"), "half", "production", True)
        service.create_announcement(
            s,
            Actor("pm"),
            AnnouncementIn.model_validate({"title": "Half", "status": "published", "flag": "half"}),
        )
    client = with_probe(app).test_client()
    first = client.get("/changelog")
    assert first.status_code == 200
    cookies = first.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith(f"{COOKIE}=")  # issued once, by the gate
    issued = client.get_cookie(COOKIE)
    assert issued is not None
    assert client.get("/-/probe").get_data(as_text=True).split(",")[0] == issued.value.split(".")[0]
    for _ in range(2):
        again = client.get("/changelog")
        assert again.status_code == 200 and "Set-Cookie" not in again.headers
