"""WTForms forms (Flask-WTF adds the CSRF token) for sign-in and the settings page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from server.access import Role, TokenKind


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=1000)])


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    kind = SelectField(
        "Kind",
        choices=[
            SelectChoice(k.value, "CI" if k is TokenKind.CI else k.value.title()) for k in TokenKind
        ],
    )
    environment = SelectField("Environment", validators=[Optional()])


class GateLoginForm(LoginForm):
    """Team sign-in on the site's host; no CSRF token, since that lives in Darklaunch's session
    cookie, which the site's host must never get (the view checks the origin instead)."""

    class Meta:
        csrf = False


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=1000)]
    )
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField("New password again", validators=[DataRequired(), Length(max=1000)])


class PasswordResetForm(FlaskForm):
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=1000)])
    confirm = PasswordField("New password again", validators=[DataRequired(), Length(max=1000)])


class TotpForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app", validators=[DataRequired(), Length(max=12)]
    )
