"""Forms on the gate page (Flask-WTF adds the CSRF token); the service judges the values."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

EXPIRY_CHOICES = {
    "1h": "1 hour",
    "1d": "1 day",
    "7d": "7 days",
    "30d": "30 days",
    "date": "Until a date…",
}


class PassForm(FlaskForm):
    label = StringField("Label")
    expires = SelectField("Expires after", choices=EXPIRY_CHOICES, default="7d")
    expires_on = DateField("Expiry date", validators=[Optional()])
    max_uses = IntegerField("Usage limit", validators=[Optional()])


class AudienceForm(FlaskForm):
    who = RadioField(
        "Let in",
        choices={"everyone": "Everyone", "some": "Only these visitors"},
        default="everyone",
    )
    percent = IntegerField("Soft launch: share of visitors (%)", validators=[Optional()])
    networks = TextAreaField("Office networks")
    user_ids = TextAreaField("User ids")
    version = HiddenField()
