"""Sign-in, sign-out and the settings page (users and API tokens)."""

from __future__ import annotations

from urllib.parse import urlsplit

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
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from server import db
from server.access import Permission, Role, current_principal, public, requires
from server.auth import service, sessions
from server.auth.forms import LoginForm, TokenForm, UserForm
from server.auth.models import SessionKind, SignInMethod, User
from server.errors import DomainError, TooManyRequests, wants_json
from server.web import actor, client_address, form_errors

bp = Blueprint("auth", __name__)

# The session key that holds a new token (name and secret) until the next settings page.
UNSHOWN_SLOT = "unshown"


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a fresh sign-in to another site. Browsers read "/\\x"
    # and "/<tab>/x" as "//x", so backslashes and control characters are refused too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch >= " " for ch in target)
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("auth.home")


def check_password(form: LoginForm) -> User | None:
    """Check a sign-in form against the sign-in limits (TooManyRequests past them)."""
    config = current_app.config
    return service.authenticate(
        db.session(),
        form.email.data or "",
        form.password.data or "",
        client_address(),
        config["LOGIN_FAILURES_PER_MINUTE"],
        config["LOGIN_FAILURES_PER_ACCOUNT"],
    )


def start_session(
    user: User, kind: SessionKind, method: SignInMethod = SignInMethod.PASSWORD
) -> sessions.IssuedSession:
    """Start a session row for this browser (its user agent and address are kept with it)."""
    return sessions.start_session(
        db.session(),
        user,
        kind,
        current_app.permanent_session_lifetime,
        user_agent=request.headers.get("User-Agent", ""),
        address=client_address(),
        method=method,
    )


def begin_session(user: User, method: SignInMethod) -> None:
    """Sign this browser in as `user`: a new session row, a fresh cookie session."""
    issued = start_session(user, SessionKind.ADMIN, method)
    end_browser_session()  # a session left in this browser ends; never reused
    session.clear()
    session["user_id"] = user.id
    session["sid"] = issued.secret
    if method is SignInMethod.OIDC:
        session["via"] = "oidc"
    session.permanent = True


def password_refused(email: str) -> str | None:
    """Why password sign-in is off for `email` (single sign-on only), or None."""
    config = current_app.config
    if config["OIDC_ONLY"] and email.strip().lower() != config["BREAK_GLASS_EMAIL"]:
        return f"Password sign-in is off: use “Sign in with {config['OIDC_NAME']}”."
    return None


def _login_page(form: LoginForm, **context: object) -> str:
    config = current_app.config
    return render_template(
        "auth/login.html",
        form=form,
        sso_name=config["OIDC_NAME"] if config["OIDC_ISSUER"] else None,
        sso_only=config["OIDC_ONLY"],
        next_path=request.args.get("next", ""),
        sso_signed_out=session.pop("sso_signed_out", False),
        **context,
    )


def end_browser_session() -> None:
    """End the session this browser's Darklaunch cookie carries, if any."""
    secret = session.get("sid")
    if isinstance(secret, str) and secret:
        sessions.end_session_by_secret(db.session(), secret)


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Show the sign-in form and sign a team member in."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        refused = password_refused(form.email.data or "")
        if refused is not None:  # said before any password check: no oracle either way
            return _login_page(form, error=refused), 403
        try:
            user = check_password(form)
        except TooManyRequests as exc:
            if wants_json():
                raise
            page = _login_page(form, error=exc.message)
            return page, 429, {"Retry-After": str(exc.retry_after)}
        if user is not None:
            if current_app.config["OIDC_ONLY"]:
                # The break-glass admin: a TOTP code (or enrolling one) comes next.
                from server.auth.account_views import await_second_factor

                return await_second_factor(user, _safe_next(request.args.get("next")))
            begin_session(user, SignInMethod.PASSWORD)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors = ["That email and password do not match a team member."]
        status = 401
    elif request.method == "POST":
        status = 400
    return _login_page(form), status


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Response:
    """Sign out (the session ends for good) and return to the sign-in page."""
    via_sso = session.get("via") == "oidc"
    end_browser_session()
    session.clear()
    if via_sso:
        from server.auth.oidc_views import end_session_endpoint

        if end_session_endpoint() is not None:
            # Signed out here; the provider's own session is theirs to end: offer it.
            session["sso_signed_out"] = True
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/")
@public
def home() -> Response | str:
    """Send a team member to their first page; visitors get the public site (or the gate)."""
    principal = current_principal()
    if principal is None or principal.kind != "user" or not principal.permissions:
        # Visitors, and team members with no Darklaunch role (the gate lets them through).
        from server import gate
        from server.gate.views import public_root

        return gate.guard() or public_root()
    # Land where the role's work is: an editor changes announcements, not flags.
    if (
        not principal.can(Permission.FLAGS_WRITE)
        and principal.can(Permission.ANNOUNCEMENTS_WRITE)
        and "announcements.index" in current_app.view_functions
    ):
        return redirect(url_for("announcements.index"))
    return redirect(
        url_for(current_app.extensions["nav"][0].endpoint)
        if current_app.extensions["nav"]
        else url_for("auth.settings")
    )


def _token_form(blank: bool = False) -> TokenForm:
    # blank: an empty form even on a POST (after a token was created from the request's data)
    form = TokenForm(prefix="token", formdata=None) if blank else TokenForm(prefix="token")
    form.environment.choices = [SelectChoice("", "(none: admin tokens)")] + [
        SelectChoice(env) for env in current_app.config["ENVIRONMENTS"]
    ]
    return form


def _settings_page(
    status: int = 200,
    *,
    user_form: UserForm | None = None,
    token_form: TokenForm | None = None,
    new_token: dict[str, str] | None = None,
    new_reset: dict[str, str] | None = None,
) -> tuple[str, int]:
    """Render the settings page; admins see users, tokens and both forms."""
    s = db.session()
    principal = current_principal()
    can_admin = principal is not None and principal.can(Permission.USERS_ADMIN)
    page = render_template(
        "auth/settings.html",
        users=service.list_users(s) if can_admin else [],
        tokens=service.list_tokens(s) if can_admin else [],
        user_form=user_form or UserForm(prefix="user", formdata=None),
        token_form=token_form or _token_form(blank=True),
        can_admin=can_admin,
        new_token=new_token,
        new_reset=new_reset,
        roles=[r.value for r in Role],
    )
    return page, status


@bp.route("/settings")
@requires(Permission.READ)
def settings() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """List users and API tokens; admins also get the forms to add them."""
    new_token = session.pop(UNSHOWN_SLOT, None)
    new_reset = session.pop("unshown_reset", None)
    if not isinstance(new_token, dict) and not isinstance(new_reset, dict):
        return _settings_page()
    page, status = _settings_page(
        new_token=new_token if isinstance(new_token, dict) else None,
        new_reset=new_reset if isinstance(new_reset, dict) else None,
    )
    # The only page that ever holds the secret: kept out of every cache and the back button.
    return page, status, {"Cache-Control": "no-store"}


@bp.route("/settings/users", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def create_user() -> Response | tuple[str, int]:
    """Add a team member."""
    form = UserForm(prefix="user")
    if form.validate_on_submit():
        try:
            user = service.create_user(
                db.session(),
                actor(),
                form.email.data or "",
                form.role.data or "",
                form.password.data or "",
            )
        except DomainError as exc:
            form_errors(form, exc)
        else:
            flash(f"{user.email} can now sign in as {user.role}.", "success")
            return redirect(url_for("auth.settings"))
    return _settings_page(400, user_form=form)


@bp.route("/settings/users/<int:user_id>/disable", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def disable_user(user_id: int) -> Response | tuple[str, int]:
    """Disable a team member (after a confirmation), or enable again with enable=1."""
    enable = request.form.get("enable") == "1"
    if not enable and request.form.get("confirmed") != "yes":
        # Disabling ends the person's sessions at once: ask first, on a page of its own, so
        # the question works without JavaScript and names who is affected.
        target = db.session().get(User, user_id)
        # An unknown user or oneself is refused below, without a question first.
        if target is not None and target.email != actor().label:
            return render_template("auth/confirm_disable.html", user=target), 200
    try:
        user = service.set_user_disabled(db.session(), actor(), user_id, disabled=not enable)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{user.email} is {'enabled' if enable else 'disabled'}.", "success")
    return redirect(url_for("auth.settings"))


@bp.route("/settings/tokens", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def create_token() -> Response | tuple[str, int]:
    """Issue an API token and show it once."""
    form = _token_form()
    if form.validate_on_submit():
        try:
            issued = service.create_token(
                db.session(),
                actor(),
                form.kind.data or "",
                form.name.data or "",
                form.environment.data or None,
                current_app.config["ENVIRONMENTS"],
            )
        except DomainError as exc:
            form_errors(form, exc)
            return _settings_page(exc.status, token_form=form)
        # Post/redirect/get: the secret waits in this browser's session for exactly one
        # showing, so reloading the page that shows it creates nothing and shows it no more.
        session[UNSHOWN_SLOT] = {"name": issued.token.name, "secret": issued.secret}
        return redirect(url_for("auth.settings", _anchor="new-token"), 303)
    return _settings_page(400, token_form=form)


@bp.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@requires(Permission.USERS_ADMIN)
def revoke_token(token_id: int) -> Response:
    """Revoke an API token."""
    token = service.revoke_token(db.session(), actor(), token_id)
    flash(f"Token {token.name} is revoked.", "success")
    return redirect(url_for("auth.settings"))
