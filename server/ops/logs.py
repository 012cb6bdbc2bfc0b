"""JSON logs on standard error: one object per line, each carrying the request id.

Kept free of the app's other modules: gunicorn's master imports the formatter and handler from
here (gunicorn.conf.py) so its own lines share the shape.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context
from flask.logging import default_handler

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def current_request_id() -> str | None:
    """The id of the request being handled on this thread, or None outside requests."""
    if not has_request_context():
        return None
    return g.get("request_id")


# One encoder for every line: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, request id, extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1  # the whole second `_stamp` was rendered for
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds; the date and time part is rendered once a second."""
        second = int(created)
        if second != self._second:
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        entry: dict[str, Any] = {
            "time": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            # An access line brings its own id (see server.ops.access_log); others look it up.
            "request_id": fields.get("request_id") or current_request_id(),
        }
        for key, value in fields.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(entry)


class StderrHandler(logging.Handler):
    """Write each record to the current `sys.stderr` (test runners replace it between tests)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    """Send every logger's records through one JSON handler on the root logger.

    Idempotent: gunicorn may have installed the same handler already (gunicorn.conf.py), and
    tests build many apps in one process.
    """
    # The JSON lines carry none of the caller's file, line, thread or process, so the logging
    # module need not look them up for every record (the switches the logging HOWTO's
    # "Optimization" section names).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # alembic announces each of its plugins at INFO whenever a process imports it.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))


def init_app(app: Flask) -> None:
    configure_logging(app.config["LOG_LEVEL"])
    # Flask adds its own plain-text handler to app.logger only when nothing handles the level;
    # remove it in case app.logger was touched before the root handler existed.
    app.logger.removeHandler(default_handler)
