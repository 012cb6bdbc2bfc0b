"""The webhook form on the settings page (Flask-WTF adds the CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from server.webhooks.models import WebhookEvent, WebhookFormat
from server.webhooks.service import MAX_URL

EVENT_LABELS = {
    WebhookEvent.FLAG_CHANGED: "A flag changed (per environment)",
    WebhookEvent.SEGMENT_CHANGED: "A segment changed",
    WebhookEvent.GATE_CHANGED: "The gate changed (opened, closed, its audience)",
    WebhookEvent.PREVIEW_PASS_CREATED: "A preview pass was created",
    WebhookEvent.PREVIEW_PASS_REVOKED: "A preview pass was revoked",
    WebhookEvent.DEPLOY_RECORDED: "A deploy was recorded",
    WebhookEvent.ANNOUNCEMENT_PUBLISHED: "An announcement was published",
    WebhookEvent.ANNOUNCEMENT_CHANGED: "An announcement changed",
    WebhookEvent.INCIDENT_OPENED: "An incident was opened (or reopened)",
    WebhookEvent.INCIDENT_RESOLVED: "An incident was resolved",
}


class WebhookForm(FlaskForm):
    url = StringField("URL", validators=[DataRequired(), Length(max=MAX_URL)])
    events = SelectMultipleField(
        "Events",
        choices=[SelectChoice(e.value, EVENT_LABELS[e]) for e in WebhookEvent],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,  # the service says which events exist, for API and form alike
    )
    environment = SelectField("Environment", validators=[Optional()])
    format = SelectField(
        "Format",
        choices=[
            SelectChoice(WebhookFormat.JSON.value, "JSON (Darklaunch's document)"),
            SelectChoice(WebhookFormat.SLACK.value, "Slack incoming webhook"),
            SelectChoice(WebhookFormat.TEAMS.value, "Microsoft Teams (Workflows webhook)"),
        ],
    )
    enabled = BooleanField("Enabled", default=True)
