"""Calls and readers shared by the flags and segments admin API tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from server import db
from server.audit.models import Event
from server.flags.schemas import FeatureOut, StrategyOut

FEATURES = "/api/admin/projects/default/features"
Api = Callable[..., Any]


def feature(api: Api, name: str, **body: Any) -> dict[str, Any]:
    response = api("post", FEATURES, json={"name": name, **body})
    assert response.status_code == 200, response.get_json()
    return FeatureOut.model_validate(response.get_json()).model_dump(mode="json")


def env_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in doc["environments"] if e["name"] == name)


def add_strategy(api: Api, flag: str, env: str, **body: Any) -> dict[str, Any]:
    response = api("post", f"{FEATURES}/{flag}/environments/{env}/strategies", json=body)
    assert response.status_code == 200, response.get_json()
    return StrategyOut.model_validate(response.get_json()).model_dump(mode="json")


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


def events(app: Flask, action: str) -> list[Event]:
    with app.app_context():
        return list(db.session().query(Event).filter_by(action=action).order_by(Event.id))
