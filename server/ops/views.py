"""`/-/health`, `/-/ready` and `/metrics`: public, cheap, never cached by proxies."""

from __future__ import annotations

from contextlib import suppress

from flask import Blueprint, Response, current_app, jsonify

from server.access import public
from server.errors import Unavailable
from server.ops import metrics

bp = Blueprint("ops", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/-/health")
@public
def health() -> Response:
    """Answer 200 while the process runs (touches nothing else)."""
    return _no_store(jsonify({"status": "ok"}))


@bp.route("/-/ready")
@public
def ready() -> Response:
    """Answer 200 when this worker can serve: database, migrations and snapshot; else 503."""
    report = current_app.extensions["ops.readiness"].report()
    response = jsonify(report.as_dict())
    response.status_code = 200 if report.ready else 503
    if not report.ready:
        response.headers["Retry-After"] = "5"
    return _no_store(response)


@bp.route("/metrics")
@public
def prometheus() -> Response:
    """Serve Prometheus metrics; with DARKLAUNCH_METRICS_TOKEN set, only to its bearer."""
    if not metrics.scrape_allowed():
        response = Response(
            "Send the metrics token: Authorization: Bearer <DARKLAUNCH_METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return _no_store(response)
    # Refresh if due, so the snapshot age reports staleness, not this worker's idleness; with
    # no snapshot at all the revision is missing and refresh_failing is 1.
    with suppress(Unavailable):
        current_app.extensions["snapshot"].get()
    return metrics.metrics_response()
