"""Proof with the real clients against a live server: UnleashClient and OpenFeature over OFREP."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from server import db
from server.protocols.models import FlagHourlyMetric, FlagHourlyVariantMetric, SdkInstance
from tests.conftest import LiveServer, sign_in, start_live_server
from tests.protocols.conftest import Flags

NORDICS = {
    "name": "flexibleRollout",
    "parameters": {"rollout": "100", "stickiness": "default"},
    "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
}
BLUE = {
    "name": "blue",
    "weightType": "fix",
    "weight": 1000,
    "payload": {"type": "string", "value": "b"},
}


class Recorder:
    """Test-only WSGI middleware: remembers (method, path, status) of every request served."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        self.seen: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def recording_start(status: str, headers: Any, *args: Any) -> Any:
            with self.lock:
                self.seen.append(
                    (environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0]))
                )
            return start_response(status, headers, *args)

        return self.wsgi_app(environ, recording_start)

    def count(self, method: str, path: str, status: int) -> int:
        with self.lock:
            return Counter(self.seen)[(method, path, status)]


@pytest.fixture
def recorded(app: Flask) -> Iterator[tuple[LiveServer, Recorder]]:
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    server = start_live_server(app)
    try:
        yield server, recorder
    finally:
        server.stop()


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_unleash_client_fetches_polls_with_etag_follows_toggles_and_reports(
    app: Flask,
    recorded: tuple[LiveServer, Recorder],
    make_flags: Flags,
    client_token: str,
    tmp_path: Path,
    admin: Any,
) -> None:
    from UnleashClient import UnleashClient

    server, recorder = recorded
    make_flags.create("new-checkout", strategies=[NORDICS], variants=[BLUE])
    make_flags.create("kill-switch", type="kill-switch")
    unleash = UnleashClient(
        url=f"{server.url}/api",
        app_name="checkout-api",
        instance_id="pod-1",
        custom_headers={"Authorization": client_token},
        refresh_interval=1,
        metrics_interval=1,
        cache_directory=str(tmp_path / "unleash-cache"),
    )
    unleash.initialize_client()
    try:
        norway = {"userId": "u1", "properties": {"country": "NO"}}
        denmark = {"userId": "u1", "properties": {"country": "DK"}}
        assert unleash.is_enabled("new-checkout", norway)
        assert unleash.is_enabled("new-checkout", {"userId": "u2", "country": "SE"})
        assert not unleash.is_enabled("new-checkout", denmark)
        assert unleash.is_enabled("kill-switch", {})
        assert not unleash.is_enabled("no-such-flag", {})
        variant = unleash.get_variant("new-checkout", norway)
        assert variant == {
            "name": "blue",
            "payload": {"type": "string", "value": "b"},
            "enabled": True,
            "feature_enabled": True,
        }
        assert unleash.get_variant("new-checkout", denmark)["name"] == "disabled"

        # Unchanged polls are answered 304 with no body.
        assert wait_for(lambda: recorder.count("GET", "/api/client/features", 304) >= 2)
        assert recorder.count("GET", "/api/client/features", 200) == 1

        # A toggle made through the flags service reaches the client on its next poll.
        make_flags.toggle("new-checkout", False)
        assert wait_for(lambda: not unleash.is_enabled("new-checkout", norway))
        assert recorder.count("GET", "/api/client/features", 200) == 2

        # Registration and metrics arrive and are visible.
        assert recorder.count("POST", "/api/client/register", 202) == 1
        assert wait_for(lambda: recorder.count("POST", "/api/client/metrics", 202) >= 1)

        def counted() -> bool:
            with app.app_context():
                s = db.session()
                return bool(s.scalar(select(func.sum(FlagHourlyMetric.yes))))

        assert wait_for(counted)
    finally:
        unleash.destroy()
    with app.app_context():
        s = db.session()
        instance = s.scalars(select(SdkInstance)).one()
        assert (instance.app_name, instance.instance_id) == ("checkout-api", "pod-1")
        assert instance.sdk_version.startswith("unleash-python-sdk:")
        assert instance.connection_id
        yes, no = s.execute(
            select(func.sum(FlagHourlyMetric.yes), func.sum(FlagHourlyMetric.no)).where(
                FlagHourlyMetric.flag_name == "new-checkout"
            )
        ).one()
        assert yes >= 2 and no >= 1
        assert s.scalar(
            select(func.sum(FlagHourlyVariantMetric.count)).where(
                FlagHourlyVariantMetric.variant == "blue"
            )
        )
        usage = app.extensions["flags.usage"](s, "new-checkout")
        assert usage and usage[0][0] == "production"
        assert ("new-checkout", "production") in app.extensions["flags.last_seen"](
            s, ["new-checkout"]
        )
    page = app.test_client()
    sign_in(page, admin.email)
    html = page.get("/clients").get_data(as_text=True)
    assert "checkout-api" in html and "pod-1" in html and "new-checkout" in html


@pytest.fixture
def openfeature_client(
    live_server: LiveServer, make_flags: Flags, frontend_token: str
) -> Iterator[Any]:
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider

    make_flags.create("new-checkout", strategies=[NORDICS])
    make_flags.create("dark", enabled=False)

    def fixed(name: str, kind: str, value: str) -> dict[str, Any]:
        return {
            "name": name,
            "weightType": "fix",
            "weight": 1000,
            "payload": {"type": kind, "value": value},
        }

    make_flags.create("greeting", variants=[fixed("friendly", "string", "Hello there")])
    make_flags.create("max-items", variants=[fixed("ten", "number", "10")])
    make_flags.create("ratio", variants=[fixed("three", "number", "3.0")])
    make_flags.create(
        "limits", variants=[fixed("cfg", "json", '{"items": 10, "tiers": ["a", "b"]}')]
    )
    provider = OFREPProvider(
        live_server.url, headers_factory=lambda: {"Authorization": f"Bearer {frontend_token}"}
    )
    api.set_provider(provider)
    try:
        yield api.get_client()
    finally:
        api.clear_providers()
        provider.session.close()  # lets the live server stop without waiting on keep-alive


def test_openfeature_ofrep_provider_reads_typed_flags(openfeature_client: Any) -> None:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason

    of = openfeature_client
    norway = EvaluationContext("user-1", {"country": "NO", "plan": "pro"})
    details = of.get_boolean_details("new-checkout", False, norway)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert details.flag_metadata == {"project": "default", "type": "release"}
    denmark = of.get_boolean_details(
        "new-checkout", True, EvaluationContext("u", {"country": "DK"})
    )
    assert (denmark.value, denmark.reason) == (False, Reason.DEFAULT)
    assert of.get_string_value("greeting", "hi") == "Hello there"
    assert of.get_integer_value("max-items", 1) == 10
    ratio = of.get_float_details("ratio", 1.5)
    assert ratio.value == 3.0 and ratio.error_code is None
    assert of.get_object_value("limits", {}) == {"items": 10, "tiers": ["a", "b"]}


def test_openfeature_ofrep_provider_handles_missing_disabled_and_mistyped(
    openfeature_client: Any,
) -> None:
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import Reason

    of = openfeature_client
    missing = of.get_boolean_details("no-such-flag", True)
    assert missing.value is True
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND
    assert "no-such-flag" in (missing.error_message or "")
    dark = of.get_boolean_details("dark", True)
    assert (dark.value, dark.reason, dark.variant) == (False, Reason.DISABLED, "off")
    mistyped = of.get_boolean_details("greeting", False)
    assert mistyped.value is False and mistyped.error_code == ErrorCode.TYPE_MISMATCH


def test_openfeature_with_wrong_tokens_falls_back_to_defaults(
    live_server: LiveServer, make_flags: Flags, make_token: Callable[..., str]
) -> None:
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.exception import ErrorCode

    make_flags.create("on")
    admin_token = make_token("admin")
    try:
        for header, message in (
            ("Bearer dl_client_unknown", "unauthorized"),
            (f"Bearer {admin_token}", "forbidden"),
        ):
            provider = OFREPProvider(
                live_server.url, headers_factory=lambda h=header: {"Authorization": h}
            )
            api.set_provider(provider)
            details = api.get_client().get_boolean_details("on", False)
            provider.session.close()
            assert details.value is False
            assert details.error_code == ErrorCode.GENERAL
            assert details.error_message == message
    finally:
        api.clear_providers()
