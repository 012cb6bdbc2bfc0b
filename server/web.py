"""Pieces every feature's views share: the acting user, the client address, navigation, forms."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from server.access import Permission, current_principal
from server.audit.service import Actor
from server.errors import DomainError, Invalid, Unauthorized
from server.pagination import MAX_PAGE as MAX_PAGE  # re-exported: pages import them from here
from server.pagination import page_number as page_number

# Ids in URLs stay within the id columns' type (INTEGER: 32 bits on PostgreSQL), so a larger
# number is simply not found instead of an error from the database.
MAX_ID = 2**31 - 1

log = logging.getLogger(__name__)

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def actor() -> Actor:
    """The audit actor for this request."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized("Sign in first.")
    return Actor(principal.label)


def client_address() -> str:
    """The visitor's address: X-Forwarded-For is believed only from a trusted proxy.

    See `address_of`. A malformed forwarded entry is noted in `client_address_problem()`, so
    decisions that must fail closed (the gate) can refuse it.
    """
    if "client_address" in g:
        return g.client_address
    address, problem = address_of(request.environ, current_app.config["TRUSTED_PROXIES"])
    g.client_address = address
    g.client_address_problem = problem
    return address


def address_of(environ: Mapping[str, Any], trusted: Networks) -> tuple[str, str | None]:
    """The client address of a WSGI request, and why it is inexact (None when it is exact).

    Walks the X-Forwarded-For chain from the right, skipping trusted proxies, and returns the
    first untrusted hop; a trusted proxy that sends no X-Forwarded-For may name the client in
    X-Real-IP. A malformed entry stops the walk at the last good address.
    """
    remote = environ.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104 - a placeholder, not a bind
    address = remote
    problem: str | None = None
    if trusted and _in(remote, trusted):
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        real_ip = environ.get("HTTP_X_REAL_IP", "").strip()
        hops = [h.strip() for h in forwarded.split(",")]
        if not forwarded.strip() and real_ip:
            hops = [real_ip]
        for hop in reversed([h for h in hops if h]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                log.warning("ignoring malformed X-Forwarded-For entry %r", hop[:64])
                problem = "malformed forwarded address"
                break
            address = hop
            if not _in(hop, trusted):
                break
    return address, problem


def client_address_problem() -> str | None:
    """Why the forwarded client address could not be read exactly (None when it could)."""
    client_address()
    return g.get("client_address_problem")


def from_trusted_proxy() -> bool:
    """True when the request comes straight from a proxy in DARKLAUNCH_TRUSTED_PROXIES."""
    return peer_is_trusted(request.environ, current_app.config["TRUSTED_PROXIES"])


def peer_is_trusted(environ: Mapping[str, Any], trusted: Networks) -> bool:
    """True when a WSGI request comes straight from one of the `trusted` proxies."""
    return bool(trusted) and _in(environ.get("REMOTE_ADDR") or "", trusted)


def vary_on(response: Response, header: str) -> None:
    """Add `header` to the response's Vary, once (cheaper than `response.vary`, which parses
    the header into a set and renders it again on every change)."""
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = header
    elif header.lower() not in {part.strip().lower() for part in current.split(",")}:
        response.headers["Vary"] = f"{current}, {header}"


def asset_url(filename: str) -> str:
    """The URL of a static file. Pages under /gate/ may be served on the public site's host
    through its proxy, where /static/ belongs to the site: they load from /gate/assets/."""
    if (
        has_request_context()
        and request.path.startswith("/gate/")
        and "gate.asset" in current_app.view_functions
    ):
        return url_for("gate.asset", filename=filename)
    return url_for("static", filename=filename)


def _in(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def form_errors(form: FlaskForm, exc: DomainError) -> None:
    """Show a service's error on the form: per field where it names one, else on the form."""
    fields = exc.details.get("fields", {}) if exc.details else {}
    placed = False
    for name, message in fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*list(field.errors), message]
            placed = True
    if not placed:
        form.form_errors.append(exc.message)


class BoundedIntConverter(IntegerConverter):
    """`<int:id>` that never hands a number the database cannot hold to a view (→ 404)."""

    # Longer numbers never match, so routing answers 404 for every method (a number that
    # matches the pattern but fails the range check would make werkzeug answer 405).
    regex = rf"\d{{1,{len(str(MAX_ID)) - 1}}}"

    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


def reject_unstorable_text() -> None:
    """Refuse NUL characters in the path, query string and form fields: no database stores them."""
    environ = request.environ
    form = bool(environ.get("CONTENT_TYPE")) and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )
    raw_query = environ.get("QUERY_STRING", "")
    # A NUL reaches the parsed query only as `%00` or a raw NUL, so most requests (SDK polls,
    # forward-auth) are settled without parsing anything.
    pairs: list[tuple[str, str]] = []
    if "%00" in raw_query or "\x00" in raw_query:
        pairs += request.args.items(multi=True)
    if form:
        pairs += request.form.items(multi=True)
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in pairs):
        raise Invalid("Text in the request may not contain NUL characters.")


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: Permission
    order: int


def add_nav(app: Flask, label: str, endpoint: str, permission: Permission, order: int) -> None:
    """Show a page in the navigation (only features with real pages call this)."""
    items: list[NavItem] = app.extensions.setdefault("nav", [])
    items.append(NavItem(label, endpoint, permission, order))
    items.sort(key=lambda item: item.order)


def init_app(app: Flask) -> None:
    # Replaced before any feature adds a rule, so every `<int:...>` in the app is bounded.
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(reject_unstorable_text)
    app.extensions.setdefault("nav", [])
    app.jinja_env.globals["asset_url"] = asset_url

    @app.context_processor
    def _shell() -> dict[str, object]:
        principal = current_principal()
        nav = [
            item
            for item in current_app.extensions["nav"]
            if principal is not None and principal.kind == "user" and principal.can(item.permission)
        ]
        return {"principal": principal, "nav_items": nav, "Permission": Permission}
