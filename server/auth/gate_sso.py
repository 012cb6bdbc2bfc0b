"""Single sign-on on the protected site's own host: "Sign in with <provider>" at /gate/login.

With forward-auth (docs/gate-nginx.md) the site lives on another host than Darklaunch's pages, and
everything under /gate/ is served on that host too. The rule there (server.gate.views) is that
nothing under /gate/ touches Darklaunch's own session cookie, so the round trip to the provider
cannot keep its state, nonce and PKCE verifier in Flask's session as /login/oidc does. It keeps
them in a short-lived cookie instead:

- signed with the secret key (a changed byte is a forged cookie), stamped (it expires after
  ROUND_TRIP seconds), HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET),
  Secure where the gate's cookies are, and scoped to the callback's path, so neither the
  protected application nor any other page of the site ever receives it;
- read once: the callback always deletes it, whatever the outcome.

On the way back the `state` must equal the cookie's (constant-time comparison), the code is
exchanged with the cookie's PKCE verifier for the redirect URI it was issued for, and the ID token
is checked by Authlib (signature, issuer, audience, expiry, and the cookie's nonce). Then the same
rules as Darklaunch's own sign-in decide (server.auth.oidc.sign_in: role map, gate groups and
domains, invited-only, refusals audited), and the browser gets the gate's team cookie, exactly as
the password form at /gate/login gives it: a pass through the gate, never a Darklaunch session.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from server import db, visitor
from server.access import public
from server.auth import oidc
from server.auth import sessions as team_sessions
from server.auth.models import SessionKind, SignInMethod
from server.auth.oidc_views import FAILED, checked_claims, oidc_client, settings
from server.auth.sessions import GATE_COOKIE
from server.auth.views import _safe_next, start_session
from server.config import Mode

log = logging.getLogger(__name__)

bp = Blueprint("gate_sso", __name__)

CALLBACK = "/gate/login/oidc/callback"
ROUND_TRIP_COOKIE = "dl_gate_sso"
ROUND_TRIP = 600  # seconds a person has to sign in at the provider
SALT = "darklaunch.gate-sso"
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


def site_url() -> str | None:
    """The protected site's public address, which the redirect URI starts with.

    DARKLAUNCH_GATE_SITE_URL where set. Outside production an unset value means the request's
    own host (as the proxy passes it on); in production nothing is ever built from a Host
    header, so single sign-on on the site's host needs the setting.
    """
    config = current_app.config
    if config.get("GATE_SITE_URL"):
        return str(config["GATE_SITE_URL"])
    if config["MODE"] is Mode.PRODUCTION:
        return None
    return request.host_url.rstrip("/")


def offered() -> str | None:
    """The provider's name when /gate/login offers single sign-on on this request, else None."""
    found = settings()
    return found.name if found is not None and site_url() is not None else None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt=SALT)


def _page(template: str, message: str, status: int) -> tuple[str, int, dict[str, str]]:
    found = settings()
    name = found.name if found else "single sign-on"
    return render_template(template, message=message, provider=name), status, HEADERS


def _failed(message: str, status: int) -> Response:
    page, code, headers = _page("gate/sso_failed.html", message, status)
    response = Response(page, status=code, headers=headers, mimetype="text/html")
    _forget_round_trip(response)
    return response


def _forget_round_trip(response: Response) -> None:
    response.delete_cookie(
        ROUND_TRIP_COOKIE, path=CALLBACK, httponly=True, samesite="Lax",
        secure=visitor.secure_cookies(),
    )  # fmt: skip


@bp.route("/gate/login/oidc")
@public
def start() -> Response:
    """Send the browser to the provider; the round trip's secrets wait in a callback cookie."""
    found = settings()
    base = site_url()
    if found is None or base is None:
        return _failed("Single sign-on is not set up for this site.", 404)
    redirect_uri = f"{base}{CALLBACK}"
    try:
        # Authlib makes the state, the nonce and the PKCE verifier (S256 challenge).
        issued: dict[str, Any] = oidc_client().create_authorization_url(redirect_uri)
    except FAILED as exc:
        log.warning("gate single sign-on: cannot reach the provider (%s)", exc.__class__.__name__)
        return _failed("The sign-in provider cannot be reached right now. Try again later.", 502)
    kept = {
        "state": issued["state"],
        "nonce": issued["nonce"],
        "verifier": issued["code_verifier"],
        "redirect_uri": redirect_uri,
        "next": _safe_next(request.args.get("next")),
    }
    response = redirect(issued["url"])
    response.set_cookie(
        ROUND_TRIP_COOKIE,
        _serializer().dumps(kept),
        max_age=ROUND_TRIP,
        path=CALLBACK,
        httponly=True,
        samesite="Lax",
        secure=visitor.secure_cookies(),
    )
    response.headers.update(HEADERS)
    return response


def _round_trip() -> dict[str, str] | None:
    """What start() kept for this browser, if the cookie is there, intact and fresh."""
    raw = request.cookies.get(ROUND_TRIP_COOKIE)
    if not raw:
        return None
    try:
        kept = _serializer().loads(raw, max_age=ROUND_TRIP)
    except BadData:
        return None
    keys = ("state", "nonce", "verifier", "redirect_uri", "next")
    if not isinstance(kept, dict) or not all(isinstance(kept.get(k), str) for k in keys):
        return None
    return {k: kept[k] for k in keys}


@bp.route(CALLBACK)
@public
def callback() -> Response:
    """Check what the provider sent against this browser's cookie, then give the team cookie."""
    found = settings()
    if found is None:
        return _failed("Single sign-on is not set up for this site.", 404)
    if request.args.get("error"):
        return _failed("The sign-in provider did not sign you in.", 401)
    kept = _round_trip()
    state = request.args.get("state", "")
    code = request.args.get("code", "")
    if kept is None or not code or not hmac.compare_digest(state.encode(), kept["state"].encode()):
        # No round trip started in this browser, an expired or forged cookie, another state:
        # a forged, replayed or cross-browser callback. Logged by kind, never with the values.
        log.warning("gate single sign-on refused: %s", "state" if kept else "no round trip")
        return _failed("Sign-in could not be completed. Start again from the sign-in page.", 400)
    client = oidc_client()
    try:
        token = client.fetch_access_token(
            redirect_uri=kept["redirect_uri"], code=code, code_verifier=kept["verifier"]
        )
        claims = client.parse_id_token(token, nonce=kept["nonce"]) if "id_token" in token else None
    except FAILED as exc:
        log.warning("gate single sign-on refused: %s", exc.__class__.__name__)
        return _failed("Sign-in could not be completed. Start again from the sign-in page.", 400)
    if claims is None:
        log.warning("gate single sign-on refused: the provider sent no ID token")
        return _failed("Sign-in could not be completed. Start again from the sign-in page.", 400)
    try:
        user = oidc.sign_in(db.session(), found, checked_claims(found, token, claims))
    except oidc.SignInRefused as exc:
        page, status, headers = _page("gate/sso_refused.html", exc.message, 403)
        response = Response(page, status=status, headers=headers, mimetype="text/html")
        _forget_round_trip(response)
        return response
    ended = team_sessions.gate_secret(request.cookies.get(GATE_COOKIE))
    if ended:
        team_sessions.end_session_by_secret(db.session(), ended)
    issued = start_session(user, SessionKind.GATE, SignInMethod.OIDC)
    response = redirect(kept["next"])
    response.set_cookie(
        GATE_COOKIE,
        team_sessions.sign_gate_cookie(user.id, issued.secret, str(current_app.secret_key)),
        max_age=int(current_app.permanent_session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=visitor.secure_cookies(),
    )
    _forget_round_trip(response)
    response.headers.update(HEADERS)
    return response
