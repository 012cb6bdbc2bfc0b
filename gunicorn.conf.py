"""gunicorn settings for `make run` and the Procfile (override with environment variables)."""

import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

# Metrics from several workers are added up through files in one folder. It must be known
# before any worker imports prometheus_client, so it is settled here, in the master, first.
# An operator-chosen folder is kept (only its metric files are cleared at start); a folder
# made here is removed when gunicorn exits.
_METRICS_DIR_CREATED = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _METRICS_DIR_CREATED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="darklaunch-metrics-")

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Two processes per core; each keeps its own flag snapshot and serves with threads.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# What these can and cannot do against slow clients is in docs/deployment.md ("gunicorn
# settings"): none of them frees a gthread thread from a client that sent its first byte and
# then trickles, so production runs behind a buffering proxy (nginx or Caddy, same page).
# A worker whose main loop stops checking in for this long is replaced; gthread's main loop keeps
# checking in while its threads wait on clients, so this catches stuck workers, not slow clients.
timeout = 30
graceful_timeout = 20
# Idle kept-alive connections close after 5 s (the documented proxies close theirs after 4 s, so
# they never reuse a connection gunicorn is closing); gunicorn 27 hands a connection that sends
# nothing at all back from its thread after 5 s, and closes it this long after that.
keepalive = 5
# Bounds on one request's head, so a client cannot make a worker hold megabytes of headers.
# Longest request line (a longer one gets 414; Darklaunch's paths and queries are far shorter).
limit_request_line = 4094
# Header fields per request (a longer list gets 431); browsers send ~20 and proxies add a few.
limit_request_fields = 50
# Longest header line, cookies included; nginx's default limit is 8 KiB too.
limit_request_field_size = 8190
# Open connections per worker; beyond this a worker stops accepting until some close.
worker_connections = 1000
accesslog = None  # Darklaunch writes its own JSON access lines, one per request


class QuietAccessLogger(Logger):
    """gunicorn's logger without gunicorn's access lines.

    gunicorn turns its access log on whenever a logging config is given (logconfig_dict below),
    and then builds every request's access fields only for the line to be dropped: its logger
    has no handler. Darklaunch writes one JSON access line per request itself.
    """

    def access(self, resp, req, environ, request_time):
        return None


logger_class = QuietAccessLogger
errorlog = "-"
# gunicorn 25+ opens one control socket per user ($HOME/.gunicorn/gunicorn.ctl), so two servers
# on one machine would take it from each other; nothing here uses gunicornc. Older versions
# ignore the setting.
control_socket_disable = True

# gunicorn's own messages (worker starts, timeouts) in the same JSON shape as the app's, once:
# the gunicorn loggers do not propagate to the root logger, which carries the app's lines.
_LEVEL = os.environ.get("DARKLAUNCH_LOG_LEVEL", "INFO").strip().upper() or "INFO"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "server.ops.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "server.ops.logs.StderrHandler", "formatter": "json"}},
    "root": {"level": _LEVEL, "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": _LEVEL, "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        # alembic announces each of its plugins at INFO when a worker imports it
        "alembic.runtime.plugins": {"level": "WARNING"},
    },
}


def on_starting(server):
    """Start from empty metric files: counts of a previous run must not add up with ours."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def post_worker_init(worker):
    """Start the worker's snapshot updater as it boots, so its first build runs before requests.

    Requests never build snapshots; without this the first request would wait for the first
    build (the updater also starts lazily on first use, e.g. under the development server).
    """
    from server import scheduler, snapshot
    from server.webhooks.delivery import start_deliverers

    snapshot.start_updaters()
    scheduler.start_schedulers()  # time-based changes (scheduled announcements go live)
    start_deliverers()  # the webhook outbox (docs/webhooks.md)


def worker_exit(server, worker):
    """Write the access lines still queued before the worker's process ends (a clean stop)."""
    from server.ops import access_log

    access_log.flush()


def child_exit(server, worker):
    """Drop a dead worker's live gauges (its counters keep counting toward the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _METRICS_DIR_CREATED:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
