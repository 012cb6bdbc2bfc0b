"""gunicorn settings for `make run` and the Procfile (override with environment variables)."""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Two processes per core; each keeps its own flag snapshot and serves with threads.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None  # Darklaunch writes its own JSON request logs
errorlog = "-"
# gunicorn 25+ opens one control socket per user ($HOME/.gunicorn/gunicorn.ctl), so two servers
# on one machine would take it from each other; nothing here uses gunicornc. Older versions
# ignore the setting.
control_socket_disable = True
