"""The editor form (Flask-WTF adds the CSRF token); the rules themselves live in the service."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from pydantic import ValidationError
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
from server.announcements.schemas import AnnouncementIn, timezones

# What the editor says for each field the schema refuses, instead of pydantic's own wording
# ("String should have at least 1 character", "Value error, ..."), which is for API callers.
LABELS = {
    "title": "The title",
    "summary": "The summary",
    "body": "The text",
    "image_url": "The image address",
    "image_alt": "The image description",
    "flag": "The flag name",
    "timezone": "The time zone",
}
BY_FIELD = {
    "title": "Give the announcement a title.",
    "timezone": "Pick a time zone from the list, such as UTC or Europe/Oslo.",
    "image_url": "Use an absolute https:// address of an image, or leave it empty.",
    "category": "Pick New, Improved or Fixed.",
    "publish_at": "Enter a date and time, such as 2030-05-01 09:00.",
}


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
    # A text box with a list to pick from: typing filters ~400 zones without any script.
    timezone = StringField(
        "Time zone",
        render_kw={"list": "timezone-choices", "autocomplete": "off", "spellcheck": "false"},
    )
    version = HiddenField()

    def set_choices(self, flags: list[str]) -> None:
        self.flag.choices = [SelectChoice("", "(none)")] + [SelectChoice(name) for name in flags]

    def humanise(self) -> None:
        """Replace WTForms' stock messages ("Not a valid choice.") with what to do instead."""
        stock = {
            "flag": "Pick a flag from the list; this one no longer exists or is archived.",
            "category": BY_FIELD["category"],
            "publish_at": BY_FIELD["publish_at"],
        }
        for name, message in stock.items():
            field = getattr(self, name)
            if field.errors:
                field.errors = [message]

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
            "timezone": (self.timezone.data or "").strip() or "UTC",
        }

    def publish_moment(self) -> datetime | None:
        """The chosen local date and time in the chosen zone (aware), or None."""
        local = self.publish_at.data
        if local is None:
            return None
        return local.replace(tzinfo=zone((self.timezone.data or "").strip() or "UTC"))


def _human(name: str, error: Any) -> str:
    """One field's error in words a product manager reads, naming the limit where there is one."""
    if error["type"] == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        length = len(error.get("input") or "")
        label = LABELS.get(name, "This field")
        return f"{label} is too long: at most {limit} characters (it has {length})."
    return BY_FIELD.get(name, "Check this field.")


def editor_errors(data: dict[str, Any]) -> dict[str, str]:
    """Human messages per field for what the editor would send, or {} when it is valid."""
    try:
        AnnouncementIn.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "title"
            errors.setdefault(name, _human(name, error))
        return errors
    return {}


def plain(message: str) -> str:
    """A service message without pydantic's "Value error, " prefix, starting with a capital."""
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def zone(name: str) -> tzinfo:
    """The zone called `name`; UTC for UTC or a name this machine does not know."""
    if name == "UTC" or name not in timezones():
        return UTC
    return ZoneInfo(name)


class SettingsForm(FlaskForm):
    public = BooleanField("Public even while the gate is closed")
    title = StringField("Changelog title")
