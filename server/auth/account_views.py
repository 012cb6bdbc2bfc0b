"""Self-service pages: change your password, your sessions, reset links, roles, TOTP sign-in."""

from __future__ import annotations

import io
import time

import segno
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, current_principal, public, requires
from server.auth import accounts, sessions
from server.auth.forms import PasswordChangeForm, PasswordResetForm, TotpForm
from server.auth.models import SignInMethod, User
from server.auth.views import begin_session, end_browser_session
from server.errors import DomainError, NotFound
from server.web import actor, form_errors

bp = Blueprint("accounts", __name__)

RESET_SLOT = "unshown_reset"  # a new reset link, until the next settings page shows it once
PENDING_SLOT = "second_factor"  # {"user": id, "at": seconds, "next": path, "secret": enrolling}
PENDING_FOR = 300  # seconds between the password and the TOTP code


def _me() -> User:
    principal = current_principal()
    user = db.session().get(User, principal.id) if principal is not None else None
    if user is None:
        raise NotFound("No such user.")
    return user


def _this_session_id() -> str | None:
    secret = session.get("sid")
    row = sessions.session_by_secret(db.session(), secret) if isinstance(secret, str) else None
    return row.id if row is not None else None


# ---- your password -----------------------------------------------------------------------------


@bp.route("/settings/password", methods=["GET", "POST"])
@requires(Permission.READ)
def change_password() -> Response | tuple[str, int]:
    """Change your own password; your other sessions end."""
    form = PasswordChangeForm()
    me = _me()
    if not me.password_hash:
        flash("You sign in with single sign-on: your password is kept by the provider.", "info")
        return redirect(url_for("accounts.list_sessions"))
    if form.validate_on_submit():
        if form.new_password.data != form.confirm.data:
            form.confirm.errors = ["The two new passwords differ."]
        else:
            try:
                ended = accounts.change_password(
                    db.session(),
                    me.id,
                    form.current_password.data or "",
                    form.new_password.data or "",
                    _this_session_id(),
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                flash(f"Your password is changed. {ended} other session(s) signed out.", "success")
                return redirect(url_for("accounts.list_sessions"), 303)
        return render_template("auth/password.html", form=form), 400
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


# ---- sessions ----------------------------------------------------------------------------------


@bp.route("/settings/sessions")
@requires(Permission.READ)
def list_sessions() -> tuple[str, int]:
    """Your live sessions; admins see everyone's."""
    principal = current_principal()
    assert principal is not None
    everyone = principal.can(Permission.USERS_ADMIN)
    s = db.session()
    rows = sessions.list_sessions(s, None if everyone else principal.id)
    emails = {u.id: u.email for u in s.scalars(select(User))} if everyone else {}
    page = render_template(
        "auth/sessions.html",
        rows=rows,
        emails=emails,
        everyone=everyone,
        current=_this_session_id(),
    )
    return page, 200


@bp.route("/settings/sessions/<session_id>/end", methods=["POST"])
@requires(Permission.READ)
def end_session(session_id: str) -> Response:
    """End one session (yours; admins: anyone's); that browser is signed out."""
    principal = current_principal()
    assert principal is not None
    own_only = None if principal.can(Permission.USERS_ADMIN) else principal.id
    sessions.end_session(db.session(), actor(), session_id, user_id=own_only)
    if session_id == _this_session_id():
        session.clear()
        return redirect(url_for("auth.login"))
    flash("That session is ended: its browser is signed out.", "success")
    return redirect(url_for("accounts.list_sessions"))


# ---- what admins do for others -----------------------------------------------------------------


@bp.route("/settings/users/<int:user_id>/role", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def set_role(user_id: int) -> Response:
    """Change a team member's role; their open sessions have the new one at once."""
    try:
        user = accounts.set_user_role(db.session(), actor(), user_id, request.form.get("role", ""))
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{user.email} is now {user.role}.", "success")
    return redirect(url_for("auth.settings"))


@bp.route("/settings/users/<int:user_id>/reset", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def issue_reset(user_id: int) -> Response:
    """Issue a one-time password reset link, shown once on the next settings page."""
    try:
        issued = accounts.issue_reset(
            db.session(), actor(), user_id, sso_only=current_app.config["OIDC_ONLY"]
        )
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("auth.settings"))
    base = current_app.config.get("BASE_URL") or request.host_url.rstrip("/")
    link = f"{base}{url_for('accounts.reset', token=issued.secret)}"
    # Post/redirect/get: a reload shows nothing new and issues nothing.
    session[RESET_SLOT] = {"email": issued.email, "link": link}
    return redirect(url_for("auth.settings", _anchor="new-reset"), 303)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str) -> Response | tuple[str, int, dict[str, str]]:
    """Choose a new password through a one-time reset link."""
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    form = PasswordResetForm()
    try:
        _, user = accounts.find_reset(db.session(), token)
    except NotFound as exc:
        return render_template("auth/reset.html", form=None, error=exc.message), 410, headers
    if form.validate_on_submit():
        if form.new_password.data != form.confirm.data:
            form.confirm.errors = ["The two passwords differ."]
        else:
            try:
                accounts.use_reset(db.session(), token, form.new_password.data or "")
            except DomainError as exc:
                form_errors(form, exc)
            else:
                session.clear()
                flash("Your password is set. Sign in with it now.", "success")
                return redirect(url_for("auth.login"))
        return render_template("auth/reset.html", form=form, email=user.email), 400, headers
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, email=user.email), status, headers


# ---- the break-glass admin's second factor -----------------------------------------------------


def await_second_factor(user: User, next_path: str) -> Response:
    """After a right password in OIDC-only mode: a TOTP code (or enrolling one) comes next."""
    end_browser_session()  # whoever was signed in here before is signed out for good
    session.clear()
    pending: dict[str, object] = {"user": user.id, "at": int(time.time()), "next": next_path}
    if not user.totp_secret:
        pending["secret"] = accounts.new_totp_secret()  # kept once a code from it checks out
    session[PENDING_SLOT] = pending
    return redirect(url_for("accounts.second_factor"), 303)


def _qr_svg(uri: str) -> Markup:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2, title="TOTP QR code")
    return Markup(out.getvalue().decode())  # noqa: S704 - segno's own SVG, no user input in markup


@bp.route("/login/totp", methods=["GET", "POST"])
@public
def second_factor() -> Response | tuple[str, int, dict[str, str]]:
    """Enter the TOTP code (the first time: scan the QR code first)."""
    pending = session.get(PENDING_SLOT)
    headers = {"Cache-Control": "no-store"}
    if not isinstance(pending, dict) or time.time() - int(pending.get("at", 0)) > PENDING_FOR:
        session.pop(PENDING_SLOT, None)
        flash("Sign in again: the code must follow the password within 5 minutes.", "error")
        return redirect(url_for("auth.login"))
    user = db.session().get(User, pending.get("user"))
    if user is None or user.disabled_at is not None:
        session.clear()
        return redirect(url_for("auth.login"))
    enrolling = pending.get("secret") if not user.totp_secret else None
    form = TotpForm()
    status = 200
    if form.validate_on_submit():
        try:
            if isinstance(enrolling, str):
                accounts.enrol_totp(db.session(), user.id, enrolling, form.code.data or "")
            else:
                accounts.verify_totp(db.session(), user.id, form.code.data or "")
        except DomainError as exc:
            form.code.errors = [exc.message]
            status = 401
        else:
            target = pending.get("next")
            begin_session(user, SignInMethod.TOTP)
            return redirect(target if isinstance(target, str) else "/")
    elif request.method == "POST":
        status = 400
    qr = uri = None
    if isinstance(enrolling, str):
        uri = accounts.totp_uri(enrolling, user.email)
        qr = _qr_svg(uri)
    page = render_template(
        "auth/totp.html", form=form, enrolling=enrolling, qr=qr, secret=enrolling, email=user.email
    )
    return page, status, headers
