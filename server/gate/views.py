"""The gate over HTTP: the check on public pages, forward-auth, preview links, the gate page.

Public pieces live under /gate/ so a reverse proxy can route that one prefix to Darklaunch:
`/gate/auth` (forward-auth), `/gate/closed` (the closed page), `/gate/preview/<token>` and
`/gate/preview/exit`, `/gate/login` (team sign-in on the site's own host) and `/gate/assets/`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from server import clock, db, snapshot, visitor
from server.access import (
    PUBLIC,
    Permission,
    access_of,
    current_principal,
    not_a_write,
    public,
    requires,
)
from server.auth import gate_sso
from server.auth import sessions as team_sessions
from server.auth.forms import GateLoginForm
from server.auth.models import SessionKind
from server.auth.sessions import GATE_COOKIE, gate_principal
from server.auth.views import _safe_next, check_password, start_session
from server.errors import DomainError, TooManyRequests, error_response, wants_json
from server.gate import FLAG, history, passes, settings
from server.gate.decision import Decision, Reason, Visit, decide
from server.gate.forms import AudienceForm, PassForm
from server.gate.paths import is_exempt, is_site_page
from server.gate.state import GateState, read_state
from server.web import (
    actor,
    client_address,
    client_address_problem,
    form_errors,
    from_trusted_proxy,
    vary_on,
)

log = logging.getLogger(__name__)

bp = Blueprint("gate", __name__)

VISITOR_COOKIE = visitor.COOKIE
PREVIEW_COOKIE = "dl_preview"
# The session key that holds a new preview link until the next gate page.
UNSHOWN_PREVIEW_SLOT = "unshown_preview"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Ordinary answers; the others (errors, bad cookies or addresses) are logged as warnings.
_QUIET = (Reason.EXEMPT, Reason.TEAM, Reason.PREVIEW, Reason.OPEN, Reason.CLOSED, Reason.NO_FLAG)


# ---- reading a request -------------------------------------------------------------------------


def _team_member() -> bool:
    principal = current_principal()
    if principal is None and session.get("user_id") is not None:
        # Forward-auth sees the visitor's own Authorization header (meant for the application),
        # so the team session is resolved here whatever that header holds.
        principal = current_app.extensions["access.session_resolver"](session)
    if principal is None:  # the site host's team cookie (a pass through the gate only)
        principal = gate_principal(request.cookies.get(GATE_COOKIE))
    return principal is not None and principal.kind == "user"


def visit_from_request(path: str | None = None, *, forwarded: bool = False) -> Visit:
    """What the gate needs from the current request (cookies, team session, client address)."""
    return visit_of(
        request._get_current_object(),  # type: ignore[attr-defined]
        path if path is not None else request.path,
        team=_team_member(),
        address=(client_address(), client_address_problem()),
        trusted_peer=from_trusted_proxy(),
        forwarded=forwarded,
    )


def visit_of(
    req: Request,
    path: str,
    *,
    team: bool,
    address: tuple[str, str | None],
    trusted_peer: bool,
    forwarded: bool,
) -> Visit:
    """A Visit from a request: its gate cookies, and the user id a trusted proxy asserts."""
    # Identity comes only from the header an operator named, and only from a trusted proxy:
    # proxies such as Caddy pass a client's own X-Forwarded-User through unless told not to.
    header = current_app.config["GATE_USER_HEADER"]
    user = req.headers.get(header, "").strip() if header and trusted_peer else ""
    return Visit(
        path=path,
        team=team,
        preview_cookie=req.cookies.get(PREVIEW_COOKIE) or None,
        visitor_cookie=req.cookies.get(VISITOR_COOKIE) or None,
        address=address[0],
        address_problem=address[1],
        user_id=user[:200] or None,
        forwarded=forwarded,
    )


def quiet(decision: Decision) -> bool:
    """An ordinary decision; the others (errors, bad cookies or addresses) are logged."""
    return decision.reason in _QUIET


def decide_request(path: str | None = None, *, forwarded: bool = False) -> Decision:
    """Decide this request once (the result is kept on `g` for cookies, metrics and the badge)."""
    try:
        decision = decide(visit_from_request(path, forwarded=forwarded))
    except Exception as exc:  # reading the request itself failed: closed
        decision = Decision(False, Reason.ERROR, f"{exc.__class__.__name__} reading the request")
    if not quiet(decision):
        where = request.path
        if forwarded:  # the proxied request, as the proxy names it
            where = request.headers.get("X-Forwarded-Host", "") + (path or "/")[:300]
        log.warning("gate closed for %s: %s (%s)", where, decision.reason.value, decision.detail)
    g.gate_result = decision
    g.gate_decision = (decision.outcome, decision.reason.value)
    return decision


def guard() -> Response | None:
    """Gate the current request: None to let it through, else the closed page to return.

    Public site pages are gated before their view runs; a view may call this too (the first
    decision of the request is reused, so it costs nothing the second time).
    """
    decision = g.get("gate_result") or decide_request()
    return None if decision.passed else closed_response()


def closed_response(next_path: str | None = None) -> Response:
    """The closed page: 503, Retry-After, noindex, never cached."""
    config = current_app.config
    response: Response
    if wants_json():
        response = jsonify(
            {"error": {"code": "gate_closed", "message": "This site is not open yet."}}
        )
    else:
        target = _safe_next(next_path or request.full_path.rstrip("?"))
        response = Response(
            render_template(
                "gate/closed.html",
                title=config["GATE_TITLE"],
                message=config["GATE_MESSAGE"],
                sign_in=url_for("gate.login", next=target),
            ),
            mimetype="text/html",
        )
    response.status_code = 503
    response.headers["Retry-After"] = str(config["GATE_RETRY_AFTER"])
    _private(response)
    return response


def _private(response: Response) -> None:
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Cache-Control"] = "no-store"


def check_site_page() -> Response | None:
    """before_request: gate public site pages (after the access check has run)."""
    path = request.path
    if is_exempt(path) or not is_site_page(path):
        return None  # settled by the path alone: SDK, API and probe requests stop here
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or access_of(view) != PUBLIC:
        return None
    if any(opened(path) for opened in current_app.extensions.get("gate.open_paths", ())):
        return None  # a feature made these pages public on their own (the changelog can be)
    return guard()


def apply_cookies(response: Response) -> Response:
    """after_request: store a new visitor id, drop a dead preview cookie, keep caches private."""
    decision: Decision | None = g.get("gate_result")
    if decision is None:
        return response
    secure = visitor.secure_cookies()
    cookies = 0
    if decision.visitor_cookie:
        visitor.set_cookie(response, decision.visitor_cookie)
        cookies += 1
    # Forward-auth hands the proxy one Set-Cookie to copy onto the visitor's response.
    if decision.clear_preview and not (g.get("gate_one_cookie") and cookies):
        response.delete_cookie(PREVIEW_COOKIE, httponly=True, samesite="Lax", secure=secure)
    if decision.reason in (Reason.TEAM, Reason.PREVIEW):
        response.headers.setdefault("Cache-Control", "private, no-store")
    vary_on(response, "Cookie")
    return response


def gate_context() -> dict[str, object]:
    decision: Decision | None = g.get("gate_result")
    return {"gate_preview": decision is not None and decision.passed and decision.preview}


# ---- public pages under /gate/ -----------------------------------------------------------------


@bp.route("/gate/auth", methods=ALL_METHODS, provide_automatic_options=False)
@public
@not_a_write
def forward_auth() -> Response:
    """Forward-auth for any app behind a proxy: 204 lets the visitor through, 401 does not."""
    g.gate_one_cookie = True
    return forward_auth_response(decide_request(original_uri(request.headers), forwarded=True))


def original_uri(headers: Headers) -> str:
    """The proxied request's URI, raw, from the one header DARKLAUNCH_GATE_URI_HEADER names.

    Only that header: a proxy overwrites the header it sets, but passes the client's others
    through (Caddy and Traefik copy any X-Original-URI). decision.decide judges the raw value.
    """
    return headers.get(current_app.config["GATE_URI_HEADER"]) or "/"


def forward_auth_response(decision: Decision) -> Response:
    """204 lets the visitor through, 401 does not; the reason is named for the proxy's logs."""
    response = Response(status=204 if decision.passed else 401)
    response.headers["X-Darklaunch-Gate"] = decision.reason.value
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/gate/closed")
@public
def closed() -> Response:
    """The closed page on its own (a proxy's `error_page 401` points here)."""
    return closed_response(request.headers.get(current_app.config["GATE_URI_HEADER"]))


@bp.route("/gate/preview/exit")
@public
def exit_preview() -> Response:
    """Leave the preview: forget the pass in this browser."""
    response = redirect("/")
    response.delete_cookie(
        PREVIEW_COOKIE, httponly=True, samesite="Lax", secure=visitor.secure_cookies()
    )
    _private(response)
    return response


@bp.route("/gate/preview/<token>")
@public
def claim(token: str) -> Response | tuple[str, int, dict[str, str]]:
    """Open a preview link: count the claim, keep the pass in a cookie, go to the site."""
    headers = {
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
        "Referrer-Policy": "no-referrer",  # the link itself is the secret
    }
    if request.method == "HEAD":
        # Link checkers and chat previews probe with HEAD: a probe is not a claim.
        return "", 200, headers
    try:
        preview = passes.claim_pass(db.session(), token)
    except passes.PassRefused as exc:
        page = render_template("gate/pass_refused.html", kind=exc.kind, message=exc.message)
        return page, exc.status, headers
    now = clock.now()
    response = redirect(_safe_next(request.args.get("next")))
    response.set_cookie(
        PREVIEW_COOKIE,
        passes.sign_preview(preview.id, str(current_app.secret_key)),
        max_age=max(1, int((preview.expires_at - now).total_seconds())),
        expires=preview.expires_at,
        httponly=True,
        samesite="Lax",
        secure=visitor.secure_cookies(),
    )
    response.headers.update(headers)
    # The pass was created on some worker; make sure this one has it before the next request.
    snapshot.cache().invalidate()
    return response


# ---- team sign-in on the site's host -----------------------------------------------------------
#
# The rule: everything under /gate/ may be served on the protected site's host, where the
# protected app sees every cookie. So /gate/login never sets Darklaunch's own session cookie (nor
# writes to Flask's session at all): it sets the narrow team cookie, backed by a gate session that
# passes the gate and opens nothing else. The gate's admin pages need Darklaunch's own session,
# which the site's host never receives, so there they answer as to any stranger (sign in first).


def _same_origin() -> bool:
    """Whether a form post comes from this site's own pages (the CSRF check for the forms
    below, which keep no CSRF token because that would need Darklaunch's session cookie)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # neither header: not a browser new enough to be led into a cross-site post
    hosts = {request.host}
    if from_trusted_proxy() and request.headers.get("X-Forwarded-Host"):
        hosts.add(request.headers["X-Forwarded-Host"].split(",")[0].strip())
    return urlsplit(origin).netloc in hosts


def _set_team_cookie(response: Response, value: str, max_age: int) -> None:
    """Set the narrow team cookie (an empty value and no age clear it)."""
    response.set_cookie(
        GATE_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=visitor.secure_cookies(),
    )


@bp.route("/gate/login", methods=["GET", "POST"])
@public
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Team sign-in on the site's host: a pass through the gate, never a Darklaunch session."""
    target = _safe_next(request.args.get("next"))
    form = GateLoginForm()
    status = 200
    error = None
    if request.method == "POST":
        status = 400
        if not _same_origin():
            error = "The form was sent from another site. Reload and try again."
        elif current_app.config["OIDC_ONLY"]:
            # Single sign-on only (docs/accounts.md): no password opens the gate here, not even
            # the break-glass admin's, whose second factor is asked on Darklaunch's own /login.
            error = "Password sign-in is off." + (
                " Use the single sign-on button above." if gate_sso.offered() else ""
            )
            status = 403
        elif form.validate():
            try:
                user = check_password(form)
            except TooManyRequests as exc:
                page = render_template("gate/login.html", form=form, error=exc.message)
                return page, 429, {"Retry-After": str(exc.retry_after)}
            if user is not None:
                ended = team_sessions.gate_secret(request.cookies.get(GATE_COOKIE))
                if ended:
                    team_sessions.end_session_by_secret(db.session(), ended)
                issued = start_session(user, SessionKind.GATE)
                response = redirect(target)
                _set_team_cookie(
                    response,
                    team_sessions.sign_gate_cookie(
                        user.id, issued.secret, str(current_app.secret_key)
                    ),
                    int(current_app.permanent_session_lifetime.total_seconds()),
                )
                _private(response)
                return response
            form.password.errors = ["That email and password do not match a team member."]
            status = 401
    page = render_template(
        "gate/login.html",
        form=form,
        error=error,
        next_path=target,
        sso_name=gate_sso.offered(),
        passwords_off=current_app.config["OIDC_ONLY"],
    )
    return page, status, {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


@bp.route("/gate/logout", methods=["POST"])
@public
def logout() -> Response:
    """Sign out on the site's host: the team cookie's session ends, and the cookie goes."""
    if not _same_origin():
        return error_response(400, "csrf", "The form was sent from another site.")
    secret = team_sessions.gate_secret(request.cookies.get(GATE_COOKIE))
    if secret:
        team_sessions.end_session_by_secret(db.session(), secret)
    response = redirect("/")
    _set_team_cookie(response, "", 0)
    _private(response)
    return response


@bp.route("/gate/assets/<path:filename>")
@public
def asset(filename: str) -> Response:
    """Static files for pages under /gate/, which a proxy serves on the site's own host."""
    return send_from_directory(str(current_app.static_folder), filename)


def public_root() -> Response | str:
    """What `/` shows a visitor who got past the gate: the changelog, else a landing page."""
    if "changelog.index" in current_app.view_functions:
        return redirect(url_for("changelog.index"))
    return render_template("gate/landing.html")


# ---- the gate page (team) ----------------------------------------------------------------------


def _environments() -> tuple[str, ...]:
    return tuple(current_app.config["ENVIRONMENTS"])


def _gate_env() -> str:
    return str(current_app.config["GATE_ENV"])


def base_url() -> str:
    return str(current_app.config["BASE_URL"] or request.host_url)


def _audience_form(state: GateState) -> AudienceForm:
    a = state.audience
    form = AudienceForm(prefix="who", formdata=None)
    form.who.data = "everyone" if a.everyone else "some"
    form.percent.data = a.percent
    form.networks.data = "\n".join(a.networks)
    form.user_ids.data = "\n".join(a.user_ids)
    form.version.data = str(state.version or "")
    return form


def _render(
    status: int = 200,
    *,
    pass_form: PassForm | None = None,
    audience_form: AudienceForm | None = None,
    new_pass: dict[str, str] | None = None,
) -> tuple[str, int]:
    s = db.session()
    environment = _gate_env()
    state = read_state(s, environment)
    principal = current_principal()
    now = clock.now()
    pass_rows = [(p, passes.pass_state(p, now)) for p in passes.list_passes(s)]
    events = [(e, history.describe_event(e, environment)) for e in history.history(s)]
    opened = replace(state, open=True)
    return render_template(
        "gate/index.html",
        state=state,
        open_sentence=opened.sentence,
        passes=pass_rows,
        events=events,
        pass_form=pass_form or PassForm(prefix="pass", formdata=None),
        audience_form=audience_form or _audience_form(state),
        can_admin=principal is not None and principal.can(Permission.GATE_ADMIN),
        new_pass=new_pass,
        flag=FLAG,
    ), status


@bp.route("/gate")
@requires(Permission.READ)
def index() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Show the gate: its state in a sentence, who may pass, preview passes and history."""
    new_pass = session.pop(UNSHOWN_PREVIEW_SLOT, None)
    if not isinstance(new_pass, dict):
        return _render()
    page, status = _render(new_pass=new_pass)
    # The only page that ever holds the link: kept out of every cache and the back button.
    return page, status, {"Cache-Control": "no-store"}


def _confirm(action: str) -> tuple[str, int] | None:
    if request.form.get("confirmed") == "yes":
        return None
    s = db.session()
    state = read_state(s, _gate_env())
    after = replace(state, open=action == "open")
    return render_template("gate/confirm.html", action=action, state=state, after=after), 200


@bp.route("/gate/open", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def open_gate() -> Response | tuple[str, int]:
    """Open the gate (after a confirmation)."""
    page = _confirm("open")
    if page is not None:
        return page
    state = settings.open_gate(db.session(), actor(), _environments(), _gate_env())
    flash(f"The gate is open. {state.sentence}", "success")
    return redirect(url_for("gate.index"))


@bp.route("/gate/close", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def close_gate() -> Response | tuple[str, int]:
    """Close the gate (after a confirmation)."""
    page = _confirm("close")
    if page is not None:
        return page
    state = settings.close_gate(db.session(), actor(), _environments(), _gate_env())
    flash(f"The gate is closed. {state.sentence}", "success")
    return redirect(url_for("gate.index"))


@bp.route("/gate/audience", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def set_audience() -> Response | tuple[str, int]:
    """Change who may pass while the gate is open."""
    form = AudienceForm(prefix="who")
    if form.validate_on_submit():
        version = form.version.data or ""
        choice = settings.AudienceChoice(
            everyone=form.who.data == "everyone",
            percent=form.percent.data,
            networks=settings.split_list(form.networks.data),
            user_ids=settings.split_list(form.user_ids.data),
        )
        try:
            state = settings.set_audience(
                db.session(),
                actor(),
                _environments(),
                _gate_env(),
                choice,
                int(version) if version.isdigit() else None,
            )
        except DomainError as exc:
            form_errors(form, exc)
        else:
            flash(
                f"Who may pass is saved. When open: {replace(state, open=True).sentence}", "success"
            )
            return redirect(url_for("gate.index"))
    return _render(400, audience_form=form)


@bp.route("/gate/passes", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def create_pass() -> Response | tuple[str, int]:
    """Create a preview pass and show its link once."""
    form = PassForm(prefix="pass")
    if form.validate_on_submit():
        expires = form.expires.data or ""
        if expires == "date":
            expires = form.expires_on.data.isoformat() if form.expires_on.data else ""
        try:
            issued = passes.create_pass(
                db.session(), actor(), form.label.data or "", expires, form.max_uses.data
            )
        except DomainError as exc:
            if "expires" in (exc.details.get("fields") or {}) and form.expires.data == "date":
                exc.details["fields"]["expires_on"] = exc.details["fields"].pop("expires")
            form_errors(form, exc)
        else:
            # Post/redirect/get: the link waits in this browser's session for one showing, so
            # reloading the page that shows it creates no second pass and shows it no more.
            link = passes.preview_link(base_url(), issued.secret)
            session[UNSHOWN_PREVIEW_SLOT] = {"label": issued.preview_pass.label, "link": link}
            return redirect(url_for("gate.index", _anchor="new-pass"), 303)
    return _render(400, pass_form=form)


@bp.route("/gate/passes/<int:pass_id>/revoke", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def revoke_pass(pass_id: int) -> Response:
    """Revoke a preview pass."""
    p = passes.revoke_pass(db.session(), actor(), pass_id)
    flash(f"Preview pass “{p.label}” is revoked.", "success")
    return redirect(url_for("gate.index"))
