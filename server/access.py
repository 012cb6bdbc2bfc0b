"""Who is calling, and what each endpoint allows: deny by default.

Every view is marked `@public` or `@requires(Permission.X)`. The `before_request` hook refuses
everything else, so a forgotten decorator fails closed. Callers are a signed-in user (session
cookie, forms carry CSRF tokens) or an API token (`Authorization: <token>` or `Bearer <token>`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from server.errors import Forbidden, Unauthorized, error_response, wants_json

F = TypeVar("F", bound=Callable[..., Any])


class Permission(enum.StrEnum):
    READ = "read"  # team pages: flags, deploys, audit, in read-only form
    FLAGS_WRITE = "flags.write"
    DEPLOYS_WRITE = "deploys.write"
    # What CI reports about delivery: deploys (`POST`/`PATCH /api/deploys`) and incidents
    # (`POST /api/incidents`). The one permission of a ci token.
    DELIVERY_RECORD = "delivery.record"
    ANNOUNCEMENTS_WRITE = "announcements.write"
    GATE_ADMIN = "gate.admin"
    USERS_ADMIN = "users.admin"
    SDK_CLIENT = "sdk.client"  # Unleash client API (server-side SDKs)
    SDK_FRONTEND = "sdk.frontend"  # Unleash frontend API
    SDK_EVALUATE = "sdk.evaluate"  # OFREP: client or frontend tokens
    METRICS_READ = "metrics.read"


class Role(enum.StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    EDITOR = "editor"
    VIEWER = "viewer"
    TEAM = "team"  # no Darklaunch pages: passes the closed gate (an OIDC gate group or domain)


class TokenKind(enum.StrEnum):
    CLIENT = "client"
    FRONTEND = "frontend"
    ADMIN = "admin"
    CI = "ci"  # records deploys and incidents from a CI pipeline, and nothing else

    @property
    def needs_environment(self) -> bool:
        return self in (TokenKind.CLIENT, TokenKind.FRONTEND)


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.READ,
            Permission.FLAGS_WRITE,
            Permission.DEPLOYS_WRITE,
            Permission.DELIVERY_RECORD,
            Permission.ANNOUNCEMENTS_WRITE,
            Permission.GATE_ADMIN,
            Permission.USERS_ADMIN,
            Permission.METRICS_READ,
        }
    ),
    Role.DEVELOPER: frozenset(
        {
            Permission.READ,
            Permission.FLAGS_WRITE,
            Permission.DEPLOYS_WRITE,
            Permission.DELIVERY_RECORD,
            Permission.METRICS_READ,
        }
    ),
    Role.EDITOR: frozenset({Permission.READ, Permission.ANNOUNCEMENTS_WRITE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.TEAM: frozenset(),
}

TOKEN_PERMISSIONS: dict[TokenKind, frozenset[Permission]] = {
    # An admin token is the API face of an admin user.
    TokenKind.ADMIN: ROLE_PERMISSIONS[Role.ADMIN],
    TokenKind.CLIENT: frozenset({Permission.SDK_CLIENT, Permission.SDK_EVALUATE}),
    TokenKind.FRONTEND: frozenset({Permission.SDK_FRONTEND, Permission.SDK_EVALUATE}),
    TokenKind.CI: frozenset({Permission.DELIVERY_RECORD}),
}


@dataclass(frozen=True)
class Principal:
    """The caller of this request."""

    kind: str  # "user" | "token"
    id: int
    label: str  # shown in the audit log: an email or "token:NAME"
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    role: Role | None = None
    token_kind: TokenKind | None = None
    environment: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


ACCESS_ATTR = "_darklaunch_access"
NOT_A_WRITE_ATTR = "_darklaunch_not_a_write"
PUBLIC = "public"


def public(view: F) -> F:
    """Mark a view as open to anyone."""
    setattr(view, ACCESS_ATTR, PUBLIC)
    return view


# A view's access rule: PUBLIC, one permission, or several of which any one will do.
AccessRule = str | Permission | tuple[Permission, ...]


def requires(permission: Permission, *alternatives: Permission) -> Callable[[F], F]:
    """Mark a view as needing `permission` (or any of `alternatives`) from the signed-in user
    or the API token."""
    rule: AccessRule = (permission, *alternatives) if alternatives else permission

    def mark(view: F) -> F:
        setattr(view, ACCESS_ATTR, rule)
        return view

    return mark


def allows(rule: AccessRule | None, permissions: frozenset[Permission]) -> bool:
    """True when a caller holding `permissions` passes a view's access rule."""
    if rule == PUBLIC:
        return True
    if isinstance(rule, tuple):
        return any(p in permissions for p in rule)
    return rule is not None and Permission(rule) in permissions


def not_a_write(view: F) -> F:
    """Mark a view whose HTTP method says nothing about Darklaunch's own state, so a signed-in
    caller needs no CSRF token for it: forward-auth answers with the proxied request's method."""
    setattr(view, NOT_A_WRITE_ATTR, True)
    return view


def access_of(view: Callable[..., Any]) -> AccessRule | None:
    return getattr(view, ACCESS_ATTR, None)


# Resolvers are registered by the auth feature, so this module stays free of storage code.
TokenResolver = Callable[[str], Principal | None]
SessionResolver = Callable[[Any], Principal | None]

csrf = CSRFProtect()


def bearer_token() -> str | None:
    """The token in the request's Authorization header: bare or after `Bearer `."""
    return token_in(request.headers.get("Authorization", ""))


def token_in(authorization: str) -> str | None:
    """The token in an Authorization header value: bare or after `Bearer `."""
    header = authorization.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return header


def current_principal() -> Principal | None:
    return g.get("principal")


def _resolve_principal() -> Principal | None:
    token = bearer_token()
    if token is not None:
        resolver: TokenResolver = current_app.extensions["access.token_resolver"]
        principal = resolver(token)
        g.via_token = True
        return principal
    if session.get("user_id") is not None:
        session_resolver: SessionResolver = current_app.extensions["access.session_resolver"]
        return session_resolver(session)
    return None


def _deny(principal: Principal | None, sent_token: bool) -> Response:
    if principal is None:
        if sent_token:
            raise Unauthorized("The API token is unknown or revoked.")
        if wants_json():
            raise Unauthorized("Sign in or send an API token in the Authorization header.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    raise Forbidden("Your role or token does not allow this.")


def check_access() -> Response | None:
    """Refuse the request unless its endpoint is public or the caller has the permission."""
    view = current_app.view_functions.get(request.endpoint or "")
    rule = access_of(view) if view else None
    if view is None:
        return None  # 404/405 are raised by routing and rendered by the error handler
    if rule is None:
        raise Forbidden("This endpoint declares no access rule, so it is closed.")
    g.principal = None
    g.via_token = False
    if rule == PUBLIC:
        # A public page still knows who is signed in (e.g. the gate lets the team through).
        if request.headers.get("Authorization") is None and session.get("user_id") is not None:
            g.principal = _resolve_principal()
            if not getattr(view, NOT_A_WRITE_ATTR, False):
                _protect_session_write(g.principal)  # e.g. signing out needs the form's token
        return None
    principal = _resolve_principal()
    g.principal = principal
    if principal is None or not allows(rule, principal.permissions):
        return _deny(principal, bool(g.via_token))
    _protect_session_write(principal)
    return None


def _protect_session_write(principal: Principal | None) -> None:
    """Session-authenticated writes need the form's CSRF token (tokens are never sent by
    browsers on their own, so token-authenticated requests need none)."""
    if (
        principal is not None
        and principal.kind == "user"
        and request.method not in ("GET", "HEAD", "OPTIONS")
    ):
        csrf.protect()


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked in check_access instead
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.before_request(check_access)
    if "static" in app.view_functions:
        serve_static = app.view_functions["static"]

        @public
        def static(filename: str) -> Response:
            return serve_static(filename=filename)  # type: ignore[return-value]

        app.view_functions["static"] = static

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Response:
        return error_response(
            400, "csrf", "The form expired or was sent from another site. Reload and try again."
        )
