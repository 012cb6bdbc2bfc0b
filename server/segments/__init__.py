"""Segments: named, reusable constraint lists that strategies share (admin API and pages).

The models stay in `server.flags.models`: strategies reference segments through a foreign key,
and the flags snapshot compiles them with the flags.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Add the segments admin API and pages."""
    from server.segments import api, views

    app.register_blueprint(api.bp)
    views.init_ui(app)
