"""Sign in with an OpenID Connect provider, and sign out of it (RP-initiated logout).

Authlib runs the protocol: it reads the provider's discovery document, sends the browser to the
authorization endpoint with a fresh `state`, `nonce` and PKCE challenge (S256) kept in this
browser's session, and on the way back checks the state, exchanges the code with the PKCE
verifier and checks the ID token (signature from the provider's keys, issuer, audience,
expiry, nonce). Any failure ends in a page that says sign-in failed, never in a session.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, redirect, render_template, request, session
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from server import db
from server.access import public
from server.auth import oidc
from server.auth.models import SignInMethod, User
from server.auth.views import _safe_next, begin_session

log = logging.getLogger(__name__)
# What a failed exchange raises: Authlib's errors (state, the provider's answers), joserfc's (an
# ID token's signature, issuer, audience, expiry or nonce), the network's, a malformed answer.
FAILED = (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError)

bp = Blueprint("oidc", __name__)

NEXT_SLOT = "oidc_next"
TIMEOUT = 10  # seconds for each call to the provider


def settings() -> oidc.OidcSettings | None:
    found: oidc.OidcSettings | None = current_app.extensions.get("auth.oidc_settings")
    return found


def oidc_client() -> Any:
    """Authlib's client for the configured provider (discovery, token exchange, ID token)."""
    return current_app.extensions["auth.oidc"].create_client("oidc")


_client = oidc_client


def checked_claims(
    found: oidc.OidcSettings, token: dict[str, Any], claims: dict[str, Any]
) -> dict[str, Any]:
    """The checked ID-token claims, with the role claim from userinfo when the token lacks it.

    Userinfo is believed only for the same subject as the ID token's.
    """
    claims = dict(claims)
    if found.role_claim not in claims:
        try:
            extra = oidc_client().userinfo(token=token)
        except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
            log.warning("single sign-on: userinfo failed (%s)", exc.__class__.__name__)
        else:
            if extra.get("sub") == claims.get("sub"):
                claims.setdefault(found.role_claim, extra.get(found.role_claim))
    return claims


def _external(path: str) -> str:
    # Built from DARKLAUNCH_BASE_URL where set, never trusting a Host header in production.
    base = current_app.config.get("BASE_URL") or request.host_url.rstrip("/")
    return f"{base}{path}"


def _failed(message: str, status: int) -> tuple[str, int]:
    found = settings()
    name = found.name if found else "single sign-on"
    return render_template("auth/sso_failed.html", message=message, provider=name), status


@bp.route("/login/oidc")
@public
def start() -> Response | tuple[str, int]:
    """Send the browser to the provider to sign in (state, nonce and PKCE kept here)."""
    if settings() is None:
        return _failed("Single sign-on is not set up on this server.", 404)
    session[NEXT_SLOT] = _safe_next(request.args.get("next"))
    try:
        response: Response = _client().authorize_redirect(_external("/login/oidc/callback"))
    except FAILED as exc:
        log.warning("single sign-on: cannot reach the provider (%s)", exc.__class__.__name__)
        return _failed("The sign-in provider cannot be reached right now. Try again later.", 502)
    return response


@bp.route("/login/oidc/callback")
@public
def callback() -> Response | tuple[str, int]:
    """Finish signing in: check what the provider sent and start a session."""
    found = settings()
    if found is None:
        return _failed("Single sign-on is not set up on this server.", 404)
    if request.args.get("error"):
        # The person said no at the provider, or the provider refused the request.
        return _failed("The sign-in provider did not sign you in.", 401)
    try:
        token = _client().authorize_access_token()
    except FAILED as exc:
        # A forged or replayed state, a nonce or PKCE verifier that does not match, a bad ID
        # token: all the same to the person, all logged by kind (never with the values).
        log.warning("single sign-on refused: %s", exc.__class__.__name__)
        return _failed("Sign-in could not be completed. Start again from the sign-in page.", 400)
    claims = token.get("userinfo")
    if not isinstance(claims, dict) or "id_token" not in token:
        log.warning("single sign-on refused: the provider sent no ID token")
        return _failed("Sign-in could not be completed. Start again from the sign-in page.", 400)
    try:
        user = oidc.sign_in(db.session(), found, checked_claims(found, token, dict(claims)))
    except oidc.SignInRefused as exc:
        page = render_template("auth/sso_refused.html", message=exc.message, provider=found.name)
        return page, 403
    target = session.pop(NEXT_SLOT, None)
    begin_session(user, SignInMethod.OIDC)
    return redirect(_after_sign_in(user, target))


def _after_sign_in(user: User, target: object) -> str:
    if user.role == "team":
        return "/"  # no Darklaunch pages: the site, through the gate
    return target if isinstance(target, str) else "/"


@bp.route("/logout/oidc")
@public
def provider_logout() -> Response | tuple[str, int]:
    """Send the browser to the provider's end-session endpoint (RP-initiated logout)."""
    found = settings()
    if found is None:
        return _failed("Single sign-on is not set up on this server.", 404)
    endpoint = end_session_endpoint()
    if endpoint is None:
        return _failed(f"{found.name} does not offer signing out from here.", 404)
    query = urlencode(
        {"client_id": found.client_id, "post_logout_redirect_uri": _external("/login")}
    )
    return redirect(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}")


def end_session_endpoint() -> str | None:
    """The provider's end_session_endpoint from its discovery document, if it has one."""
    if settings() is None:
        return None
    try:
        metadata = _client().load_server_metadata()
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        log.warning("single sign-on: discovery failed (%s)", exc.__class__.__name__)
        return None
    endpoint = metadata.get("end_session_endpoint")
    return endpoint if isinstance(endpoint, str) and endpoint.startswith("http") else None


def init_app(app: Flask) -> None:
    found = oidc.OidcSettings.from_config(app.config)
    app.extensions["auth.oidc_settings"] = found
    app.register_blueprint(bp)
    from server.auth import gate_sso  # imports this module: registered here, after it

    app.register_blueprint(gate_sso.bp)
    if found is None:
        return
    registry = OAuth(app)
    registry.register(
        "oidc",
        client_id=found.client_id,
        client_secret=found.client_secret or None,
        server_metadata_url=f"{found.issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": found.scopes,
            "code_challenge_method": "S256",
            "default_timeout": TIMEOUT,
        },
    )
    app.extensions["auth.oidc"] = registry
