"""Unleash compatibility beyond the SDK protocols: the `features-batch` import/export endpoints
and `darklaunch import --from-unleash`, so a team can move an Unleash instance in one command."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from server.unleash_compat import api, context_api, strategies_api, strategy_views, tags

    app.register_blueprint(api.bp)
    app.register_blueprint(tags.bp)
    app.register_blueprint(strategies_api.bp)
    app.register_blueprint(context_api.bp)
    strategy_views.init_ui(app)
