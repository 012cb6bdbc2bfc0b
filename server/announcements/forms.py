"""The editor form (Flask-WTF adds the CSRF token); the rules themselves live in the service."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import Optional

from server.announcements.models import Category
from server.announcements.schemas import timezones


class AnnouncementForm(FlaskForm):
    title = StringField("Title")
    summary = TextAreaField("Summary")
    category = SelectField("Category", choices=[SelectChoice(c.value, c.label) for c in Category])
    body = TextAreaField("Body (Markdown)")
    image_url = URLField("Image address (https)")
    image_alt = StringField("Image description (alt text)")
    flag = SelectField("Linked flag")
    publish_at = DateTimeLocalField(
        "Publish at", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()]
    )
    timezone = SelectField("Time zone")
    version = HiddenField()

    def set_choices(self, flags: list[str]) -> None:
        self.flag.choices = [SelectChoice("", "(none)")] + [SelectChoice(name) for name in flags]
        self.timezone.choices = [SelectChoice(z) for z in timezones()]

    def fields(self) -> dict[str, Any]:
        """The announcement fields as the service takes them."""
        return {
            "title": (self.title.data or "").strip(),
            "summary": (self.summary.data or "").strip(),
            "category": self.category.data,
            "body": self.body.data or "",
            "image_url": (self.image_url.data or "").strip() or None,
            "image_alt": (self.image_alt.data or "").strip(),
            "flag": self.flag.data or None,
            "timezone": self.timezone.data or "UTC",
        }

    def publish_moment(self) -> datetime | None:
        """The chosen local date and time in the chosen zone (aware), or None."""
        local = self.publish_at.data
        if local is None:
            return None
        return local.replace(tzinfo=zone(self.timezone.data or "UTC"))


def zone(name: str) -> tzinfo:
    """The zone called `name`; UTC for UTC or a name this machine does not know."""
    if name == "UTC" or name not in timezones():
        return UTC
    return ZoneInfo(name)


class SettingsForm(FlaskForm):
    public = BooleanField("Public even while the gate is closed")
    title = StringField("Changelog title")
