"""SDK protocols: the Unleash client and frontend APIs, OFREP, and what SDKs report back.

Other features read usage through two hooks in `app.extensions`:
- `flags.last_seen(session, names) -> {(name, environment): datetime}`
- `flags.usage(session, name) -> [(environment, hour, yes, no)]` for the last 24 hours
and render it with the partial `templates/protocols/_flag_usage.html`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.audit.service import Actor


def init_app(app: Flask) -> None:
    # Imported here: `server.models` imports this package for its models, and must stay light.
    from server.access import Permission
    from server.cli import add_demo_seeder
    from server.protocols import client_api, frontend_api, ofrep, service, views
    from server.protocols.charts import usage_charts
    from server.protocols.hot import ClientPoll, OfrepFlag
    from server.protocols.sdk import ApiKeyHeader
    from server.web import add_nav

    for blueprint in (client_api.bp, frontend_api.bp, ofrep.bp, views.bp):
        app.register_blueprint(blueprint)
    app.extensions.setdefault("errors.by_prefix", {})["/ofrep/"] = ofrep.ofrep_error
    # The hot paths answer the busiest SDK requests before Flask (server.hot_paths).
    app.wsgi_app = OfrepFlag(app, ClientPoll(app, ApiKeyHeader(app.wsgi_app)))  # type: ignore[method-assign]
    app.extensions["flags.last_seen"] = service.last_seen
    app.extensions["flags.usage"] = service.flag_usage
    app.add_template_global(usage_charts, "flag_usage_charts")
    add_nav(app, "Clients", "protocols.clients", Permission.READ, order=20)
    add_demo_seeder(app, "protocols", seed_demo)


def seed_demo(session: Session, actor: Actor) -> None:
    """Two SDK applications that registered and a day of evaluation counts for live flags."""
    from server import clock
    from server.flags.models import Flag
    from server.protocols import service
    from server.protocols.schemas import MetricsIn, RegisterIn

    names = list(session.scalars(select(Flag.name).where(Flag.archived_at.is_(None))))
    now = clock.now()
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    live = "production" if "production" in environments else environments[-1]
    apps = [
        ("checkout-api", "checkout-api-7d9f", live, "client", "unleash-python-sdk:6.9.1"),
        ("checkout-api", "checkout-api-2b41", live, "client", "unleash-python-sdk:6.9.1"),
        ("storefront-web", "browser", live, "frontend", "unleash-client-js:3.7.0"),
        ("checkout-api", "dev-laptop", environments[0], "client", "unleash-python-sdk:6.9.1"),
    ]
    for app_name, instance, env, kind, sdk in apps:
        who = service.SdkIdentity(env, kind, sdk)
        service.record_registration(
            session,
            who,
            RegisterIn(appName=app_name, instanceId=instance, started=now, interval=60000),
        )
        for hours_ago in range(23, -1, -1):
            # A daily rhythm: busier in the afternoon, every flag a different share on.
            volume = 40 + 30 * ((now - timedelta(hours=hours_ago)).hour % 12)
            toggles = {
                name: {"yes": volume * (i % 3 + 1) // 4, "no": volume - volume * (i % 3 + 1) // 4}
                for i, name in enumerate(names)
            }
            data = MetricsIn.model_validate(
                {
                    "appName": app_name,
                    "instanceId": instance,
                    "bucket": {"start": now, "stop": now, "toggles": toggles},
                }
            )
            service.record_metrics(session, who, data, names, at=now - timedelta(hours=hours_ago))
