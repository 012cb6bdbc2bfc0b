"""Prometheus metrics, correct under several gunicorn workers.

With `PROMETHEUS_MULTIPROC_DIR` set (gunicorn.conf.py sets and cleans it), every worker writes
its counters to memory-mapped files in that folder and `/metrics` adds them up across workers,
whichever worker answers the scrape. Without it (tests, a single process) each app keeps its own
registry and `/metrics` adds the process collectors of prometheus_client's default registry.

Label values are bounded, so the number of series stays small:
- `endpoint` is the Flask endpoint name (`flags.detail`), never the raw path; requests that match
  no route share `unmatched`.
- `method` is one of the standard HTTP methods or `other`; `status` is the numeric status code.
- `flag` is a configured flag's name (flags are bounded by configuration); evaluations of names
  that match no flag share `unknown`.
- gate `outcome` and `reason` come from the gate's closed sets (`g.gate_decision`).
- database error `kind` is the SQLAlchemy exception class.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from server import clock, errors
from server.config import Mode
from server.scheduler import Scheduler
from server.snapshot import ListenerState, SnapshotCache, Status

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
UNKNOWN_FLAG = "unknown"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds. Flag reads answer in well under 5 ms; pages and writes in tens of milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WORKER_STATS_EVERY = 5.0  # seconds between per-worker memory/CPU updates (multiprocess mode)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class SnapshotCollector(Collector):
    """Report the answering worker's snapshot revision, age and health at scrape time."""

    def __init__(self, cache: SnapshotCache) -> None:
        self._cache = cache

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        revision, age, failing = self._families()
        snapshot = self._cache.peek()
        if snapshot is not None:
            revision.add_metric([], snapshot.revision)
        age_seconds = self._cache.age_seconds
        if age_seconds is not None:
            age.add_metric([], age_seconds)
        failing.add_metric([], 1.0 if self._cache.last_error else 0.0)
        return [revision, age, failing]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "darklaunch_snapshot_revision",
                "Database revision of the flag snapshot this worker serves.",
            ),
            GaugeMetricFamily(
                "darklaunch_snapshot_age_seconds",
                "Seconds since this worker last confirmed its snapshot is current.",
            ),
            GaugeMetricFamily(
                "darklaunch_snapshot_refresh_failing",
                "1 while this worker cannot refresh its snapshot (it serves the last good one).",
            ),
        ]


class SchedulerCollector(Collector):
    """Report how late the answering worker's scheduler is with time-based changes."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        family.add_metric([], self._scheduler.lag_seconds())
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "darklaunch_scheduler_lag_seconds",
            "Seconds the oldest due time-based change (a scheduled announcement) has waited.",
        )


class WebhookBacklogCollector(Collector):
    """Report each webhook's oldest undelivered event's age, read from the outbox at scrape
    time (the same for whichever worker answers; `webhook` is the webhook's id, bounded by
    configuration)."""

    def __init__(self, backlog: Callable[[], Mapping[int, datetime]]) -> None:
        self._backlog = backlog

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        try:
            oldest = self._backlog()
        except SQLAlchemyError:  # the database is away: readiness says so; scrape the rest
            logging.getLogger(__name__).warning("webhook backlog unreadable", exc_info=True)
            return [family]
        now = clock.now()
        for webhook_id, at in sorted(oldest.items()):
            family.add_metric([str(webhook_id)], max(0.0, (now - at).total_seconds()))
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "darklaunch_webhook_oldest_undelivered_seconds",
            "Seconds since the oldest event a webhook has not received yet happened.",
            labels=["webhook"],
        )


def _backlog_reader(app: Flask) -> Callable[[], Mapping[int, datetime]]:
    ref = weakref.ref(app)

    def read() -> Mapping[int, datetime]:
        from server import db
        from server.webhooks.service import backlog

        bound = ref()
        if bound is None:
            return {}
        with bound.app_context(), db.new_session() as session:
            return backlog(session)

    return read


class Metrics:
    """One app's metrics; in multiprocess mode the values live in the shared folder."""

    def __init__(
        self, cache: SnapshotCache, scheduler: Scheduler, multiprocess_path: str | None
    ) -> None:
        self.multiprocess_path = multiprocess_path
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "darklaunch_http_requests",
            "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "darklaunch_http_request_duration_seconds",
            "Time from routing a request to its response, by endpoint and status.",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.evaluations = Counter(
            "darklaunch_flag_evaluations",
            "Flag evaluations answered to applications, by flag and result.",
            ["flag", "result"],
            registry=reg,
        )
        self.gate_decisions = Counter(
            "darklaunch_gate_decisions",
            "Gate decisions, by outcome and reason.",
            ["outcome", "reason"],
            registry=reg,
        )
        self.database_errors = Counter(
            "darklaunch_database_errors",
            "Requests that failed because of a database error, by error class.",
            ["kind"],
            registry=reg,
        )
        # labels() takes a lock and builds keys: each label combination is resolved once.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._gate_children: dict[tuple[object, object], Any] = {}
        self._evaluation_children: dict[tuple[str, bool], Any] = {}
        self.snapshot_collector = SnapshotCollector(cache)
        reg.register(self.snapshot_collector)
        self.scheduler_collector = SchedulerCollector(scheduler)
        reg.register(self.scheduler_collector)
        self.webhook_collector: WebhookBacklogCollector | None = None  # see watch_webhooks
        # Set by each worker's snapshot updater as things happen, so in multiprocess mode every
        # live worker has its own series (a `pid` label), whichever worker answers the scrape.
        updater_registry = None if multiprocess_path else reg
        self.snapshot_lag = Gauge(
            "darklaunch_snapshot_revision_lag",
            "Revisions between the newest this worker knows of and the one it serves.",
            registry=updater_registry,
            multiprocess_mode="liveall",
        )
        self.snapshot_updater = Gauge(
            "darklaunch_snapshot_updater_running",
            "1 while this worker's background snapshot updater runs, 0 if it stopped or died.",
            registry=updater_registry,
            multiprocess_mode="liveall",
        )
        self.snapshot_listener = Gauge(
            "darklaunch_snapshot_listener",
            "1 for the state this worker's change listener is in (off on SQLite: polling only).",
            ["state"],
            registry=updater_registry,
            multiprocess_mode="liveall",
        )
        self._listener_children = {
            state: self.snapshot_listener.labels(state.value) for state in ListenerState
        }
        cache.observe(self.observe_snapshot)
        self._process = ProcessCollector(registry=None)
        self._worker_due = 0.0
        self.worker_memory: Gauge | None = None
        self.worker_cpu: Gauge | None = None
        if multiprocess_path:
            # The default process collector would describe only the worker answering the
            # scrape; these carry a `pid` label per live worker instead.
            self.worker_memory = Gauge(
                "darklaunch_worker_resident_memory_bytes",
                "Resident memory of each live worker process.",
                registry=None,
                multiprocess_mode="liveall",
            )
            self.worker_cpu = Gauge(
                "darklaunch_worker_cpu_seconds",
                "CPU time (user and system) used by each live worker process.",
                registry=None,
                multiprocess_mode="liveall",
            )
            self.update_worker_stats(force=True)

    def watch_webhooks(self, app: Flask) -> None:
        """Report the age of each webhook's oldest undelivered event, read from app's database."""
        self.webhook_collector = WebhookBacklogCollector(_backlog_reader(app))
        self.registry.register(self.webhook_collector)

    def observe_snapshot(self, status: Status) -> None:
        """Record the snapshot updater's state (called from the updater's threads)."""
        self.snapshot_lag.set(status.revision_lag)
        self.snapshot_updater.set(1.0 if status.updater_running else 0.0)
        for state, child in self._listener_children.items():
            child.set(1.0 if state is status.listener else 0.0)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # The cache is keyed by the label, not the raw method: a client inventing methods
        # (`FOO1`, `FOO2`, ...) must not grow it.
        label = method if method in METHODS else OTHER_METHOD
        key = (endpoint, label, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (
                self.requests.labels(endpoint, label, code),
                self.latency.labels(endpoint, code),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if self.worker_memory is not None:
            self.update_worker_stats()

    def count_gate_decision(self, outcome: object, reason: object) -> None:
        key = (outcome, reason)
        child = self._gate_children.get(key)
        if child is None:
            child = self._gate_children[key] = self.gate_decisions.labels(str(outcome), str(reason))
        child.inc()

    def count_evaluation(self, flag: str, enabled: bool) -> None:
        key = (flag, enabled)
        child = self._evaluation_children.get(key)
        if child is None:
            result = "true" if enabled else "false"
            child = self._evaluation_children[key] = self.evaluations.labels(flag, result)
        child.inc()

    def update_worker_stats(self, force: bool = False) -> None:
        """Refresh this worker's memory and CPU gauges (at most every few seconds)."""
        now = time.monotonic()
        if not force and now < self._worker_due:
            return
        self._worker_due = now + WORKER_STATS_EVERY
        for family in self._process.collect():
            for sample in family.samples:
                if sample.name == "process_resident_memory_bytes" and self.worker_memory:
                    self.worker_memory.set(sample.value)
                elif sample.name == "process_cpu_seconds_total" and self.worker_cpu:
                    self.worker_cpu.set(sample.value)

    def render(self) -> bytes:
        """The text exposition of every metric (all workers' in multiprocess mode)."""
        if self.multiprocess_path:
            self.update_worker_stats(force=True)
            scrape = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(scrape, path=self.multiprocess_path)
            scrape.register(self.snapshot_collector)
            scrape.register(self.scheduler_collector)
            if self.webhook_collector is not None:
                scrape.register(self.webhook_collector)
            return generate_latest(scrape)
        return generate_latest(self.registry) + generate_latest(REGISTRY)


def _metrics() -> Metrics:
    return current_app.extensions["ops.metrics"]


def count_evaluation(flag: str, enabled: bool, *, known: bool = True) -> None:
    """Count one flag evaluation; pass known=False when no flag has that name."""
    _metrics().count_evaluation(flag if known else UNKNOWN_FLAG, enabled)


def count_evaluations(results: Iterable[tuple[str, bool]]) -> None:
    """Count many evaluations of known flags at once (bulk endpoints): (flag, enabled) pairs."""
    count = _metrics().count_evaluation
    for flag, enabled in results:
        count(flag, enabled)


def _count_database_error(app: Flask, exc: BaseException, **_: Any) -> None:
    app.extensions["ops.metrics"].database_errors.labels(exc.__class__.__name__).inc()


def record_request(response: Response) -> Response:
    """after_request: count the request, its latency and the gate's decision, if any."""
    started = g.get("request_started")
    if started is not None:  # set by the request_started hook for every dispatched request
        metrics = _metrics()
        endpoint = request.endpoint or UNMATCHED
        metrics.observe_request(
            endpoint, request.method, response.status_code, time.perf_counter() - started
        )
        decision = g.get("gate_decision")
        if decision is not None:
            metrics.count_gate_decision(*decision)
    return response


def scrape_allowed() -> bool:
    """True when the request carries the metrics token as a bearer token; with no token
    configured, true outside production only (flag and endpoint names are not for the public)."""
    token: str = current_app.config["METRICS_TOKEN"]
    if not token:
        return current_app.config["MODE"] is not Mode.PRODUCTION
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_response() -> Response:
    response = Response(_metrics().render(), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    # `_created` series double the output and say nothing a scraper needs.
    disable_created_metrics()
    metrics = Metrics(app.extensions["snapshot"], app.extensions["scheduler"], multiprocess_dir())
    metrics.watch_webhooks(app)
    app.extensions["ops.metrics"] = metrics
    errors.database_error.connect(_count_database_error, app)
    app.after_request(record_request)
