"""Where production is not a configured environment, every flag-linked entry stays hidden."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.announcements.models import Announcement


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


def test_changelog_is_a_public_section_of_the_static_site(app: Flask) -> None:
    from server.announcements.site import write_changelog_site

    section = app.extensions["site.sections"]["changelog"]
    assert (section.public, section.writer, section.index) == (
        True,
        write_changelog_site,
        "changelog/index.html",
    )
