"""Small factories and page readers shared by the flags and segments web UI tests."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.flags import service
from server.flags.schemas import FlagCreate, SegmentIn, StrategyIn
from server.segments import service as segments
from tests.conftest import csrf_token

ENVS = ("development", "production")
ALICE = Actor("alice@example.com")
JSON = {"Accept": "application/json"}

ROW_NAME_RE = re.compile(r'<a class="flag-name" href="/flags/([^"]+)">')


def make_flag(app: Flask, name: str, **fields: Any) -> None:
    with app.app_context():
        service.create_flag(db.session(), ALICE, FlagCreate(name=name, **fields), ENVS)


def add_strategy(app: Flask, flag: str, environment: str, **strategy: Any) -> str:
    with app.app_context():
        created = service.add_strategy(
            db.session(), ALICE, flag, environment, StrategyIn(**strategy)
        )
        return created.id


def enable(app: Flask, name: str, environment: str, on: bool = True) -> None:
    with app.app_context():
        service.set_enabled(db.session(), ALICE, name, environment, on)


def make_segment(app: Flask, name: str, **fields: Any) -> int:
    with app.app_context():
        created = segments.create_segment(db.session(), ALICE, SegmentIn(name=name, **fields))
        return created.id


def env_of(app: Flask, name: str, environment: str) -> Any:
    """A flag's environment as stored now (enabled, version, strategies, variants)."""
    with app.app_context():
        flag = service.get_flag(db.session(), name)
        env = service.flag_environment(flag, environment)
        return {
            "enabled": env.enabled,
            "version": env.version,
            "strategies": [service.strategy_state(s) for s in env.strategies],
            "variants": list(env.variants),
        }


def flag_of(app: Flask, name: str) -> dict[str, Any]:
    with app.app_context():
        return service.flag_state(service.get_flag(db.session(), name))


def actions(app: Flask, name: str) -> list[str]:
    """The audit actions recorded for a flag, oldest first."""
    with app.app_context():
        rows = db.session().query(Event).filter_by(target_type="flag", target=name)
        return [e.action for e in rows.order_by(Event.id)]


def row_names(html: str) -> list[str]:
    """Flag names in the order the flags table shows them."""
    return ROW_NAME_RE.findall(html)


def post(client: FlaskClient, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """POST a form with this session's CSRF token (lists become repeated fields)."""
    payload = dict(data)
    payload.setdefault("csrf_token", csrf_token(client))
    return client.post(url, data=payload, **kwargs)


def text(response: Any) -> str:
    """The response body with HTML entities decoded, so messages read as written."""
    return html.unescape(str(response.get_data(as_text=True)))
