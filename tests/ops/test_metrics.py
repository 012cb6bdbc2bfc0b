"""`/metrics`: Prometheus text that parses back and counts what happened."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from server import db
from server.access import public
from server.audit.service import Actor
from server.config import Mode
from server.flags import service as flags
from server.flags.schemas import FlagCreate
from server.ops.metrics import METHODS, OTHER_METHOD, count_evaluation, count_evaluations
from server.unit_of_work import complete
from tests.conftest import Database, make_app


def scrape(client: FlaskClient, **kwargs: Any) -> dict[str, list[Any]]:
    """Samples by name, each as (labels, value)."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


@pytest.fixture
def extra_routes(app: Flask) -> Iterator[None]:
    """Views standing in for features that report to the metrics (gate, SDK endpoints)."""

    @public
    def gate_closed() -> tuple[str, int]:
        g.gate_decision = ("closed", "site_closed")
        return "closed", 503

    @public
    def evaluate() -> str:
        count_evaluation("checkout", True)
        count_evaluation("no-such-flag", False, known=False)
        count_evaluations([("checkout", False), ("search", True)])
        return "ok"

    @public
    def database_down() -> str:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    app.add_url_rule("/api/test/gate", view_func=gate_closed)
    app.add_url_rule("/api/test/evaluate", view_func=evaluate)
    app.add_url_rule("/api/test/db", view_func=database_down)
    yield


def test_requests_are_counted_by_endpoint_method_and_status(client: FlaskClient) -> None:
    for _ in range(3):
        client.get("/-/health")
    client.post("/-/health")
    client.get("/no/such/page/42")
    samples = scrape(client)
    assert (
        value(samples, "darklaunch_http_requests_total", endpoint="ops.health", status="200") == 3
    )
    # requests no route answers (404, and 405 for a method the route lacks) share one label
    unmatched = sorted(
        (labels["method"], labels["status"])
        for labels, _ in samples["darklaunch_http_requests_total"]
        if labels["endpoint"] == "unmatched"
    )
    assert unmatched == [("GET", "404"), ("POST", "405")]
    # never the raw path
    assert all("/no/such" not in str(labels) for labels, _ in samples[next(iter(samples))])


def test_latency_histogram_counts_each_request(client: FlaskClient) -> None:
    for _ in range(4):
        client.get("/-/health")
    samples = scrape(client)
    count = value(samples, "darklaunch_http_request_duration_seconds_count", endpoint="ops.health")
    assert count == 4
    infinite = value(
        samples, "darklaunch_http_request_duration_seconds_bucket", endpoint="ops.health", le="+Inf"
    )
    assert infinite == 4
    assert value(samples, "darklaunch_http_request_duration_seconds_sum", endpoint="ops.health") > 0


def test_unusual_methods_share_one_label(client: FlaskClient) -> None:
    # PROPFIND: not a route method (405), and not a method label of its own
    client.open("/-/health", method="PROPFIND")
    samples = scrape(client)
    assert value(samples, "darklaunch_http_requests_total", endpoint="unmatched", method="other")


def test_flag_evaluations_are_counted_by_flag_and_result(
    client: FlaskClient, extra_routes: None
) -> None:
    client.get("/api/test/evaluate")
    client.get("/api/test/evaluate")
    samples = scrape(client)
    name = "darklaunch_flag_evaluations_total"
    assert value(samples, name, flag="checkout", result="true") == 2
    assert value(samples, name, flag="checkout", result="false") == 2
    assert value(samples, name, flag="search", result="true") == 2
    assert value(samples, name, flag="unknown", result="false") == 2
    assert not any(labels["flag"] == "no-such-flag" for labels, _ in samples[name])


def test_gate_decisions_are_counted_by_outcome_and_reason(
    client: FlaskClient, extra_routes: None
) -> None:
    client.get("/api/test/gate")
    client.get("/-/health")  # no decision: not counted
    samples = scrape(client)
    assert samples["darklaunch_gate_decisions_total"] == [
        ({"outcome": "closed", "reason": "site_closed"}, 1.0)
    ]


def test_the_real_gate_reports_its_decisions(client: FlaskClient) -> None:
    assert client.get("/").status_code == 503  # a fresh install keeps the site closed
    client.get("/-/health")  # exempt probes are decided too, and pass
    samples = scrape(client)
    assert value(samples, "darklaunch_gate_decisions_total", outcome="block") == 1
    reasons = {labels["reason"] for labels, _ in samples["darklaunch_gate_decisions_total"]}
    assert reasons <= {"exempt", "closed", "no_flag"}


def test_database_errors_are_counted_and_answered_503(
    client: FlaskClient, extra_routes: None
) -> None:
    response = client.get("/api/test/db")
    assert response.status_code == 503
    samples = scrape(client)
    assert value(samples, "darklaunch_database_errors_total", kind="OperationalError") == 1
    assert (
        value(samples, "darklaunch_http_requests_total", endpoint="database_down", status="503")
        == 1
    )


def test_snapshot_revision_and_age_are_reported(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        flags.create_flag(db.session(), Actor("t"), FlagCreate(name="x"), ("production",))
        complete(db.session())
        revision = db.read_revision(db.session())
    samples = scrape(client)
    assert samples["darklaunch_snapshot_revision"] == [({}, float(revision))]
    assert 0 <= samples["darklaunch_snapshot_age_seconds"][0][1] < 3600
    assert samples["darklaunch_snapshot_refresh_failing"] == [({}, 0.0)]


def test_process_cpu_and_memory_are_reported(client: FlaskClient) -> None:
    samples = scrape(client)
    assert samples["process_resident_memory_bytes"][0][1] > 0
    assert "process_cpu_seconds_total" in samples


class TestToken:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"METRICS_TOKEN": "s3cret-scrape-token"}

    def test_metrics_demand_the_token_when_one_is_set(self, client: FlaskClient) -> None:
        missing = client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bare = client.get("/metrics", headers={"Authorization": "s3cret-scrape-token"})
        assert bare.status_code == 401
        samples = scrape(client, headers={"Authorization": "Bearer s3cret-scrape-token"})
        assert "darklaunch_http_requests_total" in samples

    def test_probes_stay_open_when_metrics_need_a_token(self, client: FlaskClient) -> None:
        assert client.get("/-/health").status_code == 200
        ready = client.get("/-/ready")
        assert ready.status_code == 200, ready.get_json()


def test_metrics_are_open_without_a_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200  # outside production


def test_production_closes_metrics_without_a_token(database: Database, tmp_path: Path) -> None:
    # Flag and endpoint names are not for the public: production without a token refuses all.
    app = make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/-/health").status_code == 200  # the probes stay open


def test_production_serves_metrics_to_the_tokens_bearer(database: Database, tmp_path: Path) -> None:
    app = make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION, METRICS_TOKEN="scrape-me")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_invented_methods_keep_the_label_cache_and_series_bounded(
    app: Flask, client: FlaskClient
) -> None:
    rng = random.Random(14)
    methods = {"".join(rng.choices(string.ascii_uppercase, k=12)) for _ in range(1000)}
    for method in methods:
        client.open("/-/health", method=method)
    samples = scrape(client)
    labels = {found["method"] for found, _ in samples["darklaunch_http_requests_total"]}
    assert labels <= METHODS | {OTHER_METHOD} and OTHER_METHOD in labels
    assert value(samples, "darklaunch_http_requests_total", method="other") >= len(methods)
    # The per-label cache holds label combinations, not the methods clients invented.
    cache = app.extensions["ops.metrics"]._request_children
    assert len(cache) < 20
    assert not {key[1] for key in cache} & methods


def test_multiprocess_mode_reports_each_worker_and_reads_the_shared_folder(
    app: Flask, tmp_path: Any
) -> None:
    from server.ops.metrics import Metrics

    folder = tmp_path / "metrics"  # a folder of its own: every *.db file in it is read
    folder.mkdir()
    metrics = Metrics(app.extensions["snapshot"], app.extensions["scheduler"], str(folder))
    assert metrics.worker_memory is not None and metrics.worker_cpu is not None
    assert metrics.worker_memory._value.get() > 0  # set at start, before any request
    metrics.observe_request("ops.health", "GET", 200, 0.001)
    families = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert "darklaunch_snapshot_refresh_failing" in families
