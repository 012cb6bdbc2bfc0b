"""For tests of the hot paths (server.hot_paths): count what reaches the Flask layer below."""

from __future__ import annotations

from typing import Any

from flask import Flask

from server.hot_paths import HotPath


class Counting:
    """The WSGI app below a hot path, counting the requests that reach it."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.wsgi_app(environ, start_response)


def count_below(app: Flask, kind: type[HotPath]) -> Counting:
    """Count the requests that pass the `kind` hot path of `app` (other layers sit around it)."""
    layer: Any = app.wsgi_app
    while not isinstance(layer, kind):
        layer = layer.wsgi_app
    counting = Counting(layer.wsgi_app)
    layer.wsgi_app = counting
    return counting
