"""Feature flags: model, rules, compiled per-environment snapshot, web UI and admin API."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from server.flags.compile import READS, FlagsSnapshot, build_flags_snapshot, update_flags_snapshot


def init_app(app: Flask) -> None:
    from server import segments, unleash_compat
    from server.flags import admin_meta, api, cli
    from server.flags.views import init_ui

    app.register_blueprint(api.bp)
    segments.init_app(app)  # after the flags API: /api/openapi.json keeps its order
    app.register_blueprint(admin_meta.bp)
    unleash_compat.init_app(app)
    app.cli.add_command(cli.flags_group)
    cli.register_demo(app)
    init_ui(app)
    environments: tuple[str, ...] = app.config["ENVIRONMENTS"]

    def build(session: Session) -> FlagsSnapshot:
        return build_flags_snapshot(session, environments)

    def update(session: Session, previous: FlagsSnapshot, changes: Any) -> FlagsSnapshot:
        return update_flags_snapshot(session, previous, changes, environments)

    app.extensions["snapshot"].register(
        "flags", build, update=update, reads=READS, same=FlagsSnapshot.same_as
    )


def flags_snapshot() -> FlagsSnapshot:
    """The current compiled flags of every environment (no query when fresh)."""
    from server import snapshot

    return snapshot.current()["flags"]
