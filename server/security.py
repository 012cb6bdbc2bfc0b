"""Security headers on every response."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from werkzeug.wrappers import Response

from server.config import Mode

# No inline scripts or styles anywhere: every script and stylesheet is a file under /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def security_headers(mode: Mode) -> tuple[tuple[str, str], ...]:
    """The headers every response gets unless its view set them; HSTS only in production."""
    return (*_HEADERS, _HSTS) if mode is Mode.PRODUCTION else _HEADERS


def missing_defaults(
    headers: Iterable[tuple[str, str]], defaults: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """The default headers that `headers` lack (a view's own value wins)."""
    present = {name.lower() for name, _value in headers}
    return [(name, value) for name, value in defaults if name.lower() not in present]


def add_defaults(response: Response, defaults: tuple[tuple[str, str], ...]) -> Response:
    """Add each default header the response does not have yet."""
    response.headers.extend(missing_defaults(response.headers, defaults))
    return response


def init_app(app: Flask) -> None:
    defaults = app.extensions["security.headers"] = security_headers(app.config["MODE"])

    def add_security_headers(response: Response) -> Response:
        return add_defaults(response, defaults)

    app.after_request(add_security_headers)
