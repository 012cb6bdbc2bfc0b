"""The Clients page: SDK applications and instances that registered, and per-flag usage."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from server import clock, db
from server.access import Permission, requires
from server.protocols import service
from server.protocols.charts import usage_charts
from server.streaming.presence import live_streams

bp = Blueprint("protocols", __name__)

INSTANCE_LIMIT = 200


@bp.get("/clients")
@requires(Permission.READ)
def clients() -> str:
    """List SDK applications, their instances, and how often each flag was evaluated."""
    session = db.session()
    app_name = (request.args.get("app") or "").strip()[:255] or None
    instances, total = service.list_instances(session, app_name, limit=INSTANCE_LIMIT)
    usage = service.usage_overview(session)
    streams = live_streams(session, clock.now(), limit=INSTANCE_LIMIT)
    if app_name:
        streams = [s for s in streams if s.app_name == app_name]
    streaming = {(s.app_name, s.instance_id, s.environment) for s in streams}
    sparklines = {
        (u.flag_name, u.environment): usage_charts(u.hourly, [u.environment])[0] for u in usage
    }
    return render_template(
        "protocols/clients.html",
        applications=service.applications(session),
        instances=instances,
        total_instances=total,
        streams=streams,
        streaming=streaming,
        app_filter=app_name,
        usage=usage,
        sparklines=sparklines,
        environments=current_app.config["ENVIRONMENTS"],
    )
