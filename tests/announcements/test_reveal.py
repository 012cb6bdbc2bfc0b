"""Where production is not a configured environment, every flag-linked entry stays hidden."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.announcements.models import Announcement
from tests.conftest import Database, make_app


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"ENVIRONMENTS": ("development", "staging")}


def test_without_a_production_environment_linked_entries_are_hidden(
    client: FlaskClient,
    make_announcement: Callable[..., Announcement],
    make_flag: Callable[..., None],
) -> None:
    make_announcement(title="Plain", status="published")
    make_announcement(title="Linked", status="published", flag="staged")
    for url in ("/changelog", "/changelog.json", "/changelog/widget.json"):
        body = client.get(url).get_data(as_text=True)
        assert "Plain" in body and "Linked" not in body


@pytest.fixture
def make_flag(app: Flask) -> Callable[..., None]:
    from server import db
    from server.audit.service import Actor
    from server.flags import service as flags
    from server.flags.schemas import FlagCreate

    def factory(name: str) -> None:
        with app.app_context():
            flags.create_flag(
                db.session(), Actor("dev"), FlagCreate(name=name), app.config["ENVIRONMENTS"]
            )

    return factory


@pytest.fixture(autouse=True)
def _staged_flag(make_flag: Callable[..., None]) -> None:
    make_flag("staged")


def test_changelog_registers_with_the_static_site_builder_when_it_is_installed(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, bool, Any]] = []
    builder = types.ModuleType("server.site.builder")

    def register_section(app: Flask, name: str, public: bool, writer: Any) -> None:
        calls.append((name, public, writer))

    builder.register_section = register_section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server.site", types.ModuleType("server.site"))
    monkeypatch.setitem(sys.modules, "server.site.builder", builder)
    application = make_app(database.fresh_url(tmp_path))
    application.extensions["db.engine"].dispose()
    from server.announcements.site import write_changelog_site

    assert calls == [("changelog", True, write_changelog_site)]
