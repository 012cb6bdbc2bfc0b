"""Darklaunch: a closed production gate, feature flags and deploy reports in one Flask service."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

from server.config import INSTANCE, ROOT, Mode, parse


class Darklaunch(Flask):
    """Flask, committing each request's unit of work after its view, with async checks cached.

    Flask asks `inspect.iscoroutinefunction` of every hook on every request (a dozen per
    request here); the answer never changes, so it is remembered per function.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = self._sync[func] = super().ensure_sync(func)
            return sync

    def dispatch_request(self) -> Any:
        """Run the view, then commit its unit of work before the response is sent.

        A failure to commit (a stale version, a refused rule, the database gone) reaches the
        error handlers like an error raised by the view itself.
        """
        rv = super().dispatch_request()
        from server.unit_of_work import complete_request

        complete_request()
        return rv


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; no migrations, no network, no module-level app.

    `test_config` replaces parsed settings by app.config key; tests may also pass
    `INSTANCE_PATH` to keep files such as the demo credentials out of the checkout.
    """
    values = parse(os.environ, test_config)
    app = Darklaunch(
        __name__,
        instance_path=str(values.pop("INSTANCE_PATH", None) or INSTANCE),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(values)
    production = app.config["MODE"] is Mode.PRODUCTION
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_NAME="darklaunch_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.getLogger("server").setLevel(app.config["LOG_LEVEL"])

    from server import (
        access,
        announcements,
        api,
        audit,
        auth,
        db,
        deploys,
        errors,
        flags,
        gate,
        incidents,
        ops,
        protocols,
        scheduler,
        security,
        sessions,
        site,
        snapshot,
        streaming,
        visitor,
        web,
        webhooks,
    )
    from server.cli import register_cli

    db.init_app(app)
    sessions.init_app(app)
    snapshot.init_app(app)
    scheduler.init_app(app)
    errors.init_app(app)
    ops.init_app(app)
    web.init_app(app)
    access.init_app(app)
    security.init_app(app)
    api.init_app(app)
    auth.init_app(app)
    audit.init_app(app)
    flags.init_app(app)
    protocols.init_app(app)
    streaming.init_app(app)
    gate.init_app(app)
    site.init_app(app)
    deploys.init_app(app)
    incidents.init_app(app)
    announcements.init_app(app)
    visitor.init_app(app)
    webhooks.init_app(app)
    register_cli(app)
    return app
