"""The documented nginx configuration in front of web (gunicorn) and the stream process.

The block is the one in docs/deployment.md (`tests/common/proxies.py` reads it), so the tested
and the documented routing cannot drift: `/api/client/streaming` reaches `darklaunch stream`
unbuffered (an event arrives while the stream stays open), everything else reaches web.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests
from flask import Flask
from UnleashClient import UnleashClient

from tests.common.proxies import fenced_block, run_nginx, substitute
from tests.conftest import free_port
from tests.ops.helpers import ServerProcess
from tests.streaming.conftest import Reader, eventually, make_flag, toggle
from tests.streaming.processes import StreamProcess


def test_nginx_routes_streams_unbuffered_to_the_stream_process(
    app: Flask,
    make_token: Callable[..., str],
    client_token: str,
    tmp_path: Path,
    read_stream: Callable[..., Reader],
    streaming_sdk: Callable[..., UnleashClient],
) -> None:
    url = app.config["DATABASE_URL"]
    admin = make_token("admin")
    web = ServerProcess(url, tmp_path).start()
    stream = StreamProcess(url, tmp_path, free_port())
    port = free_port()
    config = substitute(
        fenced_block("deployment.md", "nginx"),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{web.port};",
            "server 127.0.0.1:8001;": f"server 127.0.0.1:{stream.port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        stream.start()
        with run_nginx(config, tmp_path / "nginx", f"{base}/-/live"):
            session = requests.Session()
            session.headers["Authorization"] = admin

            def api(method: str, path: str, **kwargs: object) -> requests.Response:
                return session.request(method, base + path, **kwargs)  # type: ignore[arg-type]

            make_flag(api, "proxied")
            reader = read_stream(base, client_token)
            first = reader.wait(1)[0]
            assert first.event == "unleash-connected"
            assert reader.response.headers["Content-Type"] == "text/event-stream"
            # The stream process served it (web has no such route), and counts it.
            assert stream.metric("darklaunch_streams_open") == 1
            toggle(api, "proxied", False)
            # With buffering on, nginx would hold this small event until its buffer filled or
            # the stream ended: it arrives while the stream stays open, so it was not held.
            update = reader.wait(2, timeout=30)[1]
            assert update.event == "unleash-updated"
            assert not reader.ended.is_set()

            # A real SDK through the proxy: register and metrics go to web, the stream to B.
            sdk = streaming_sdk(base, client_token)
            toggle(api, "proxied", True)
            assert eventually(lambda: sdk.is_enabled("proxied"), 20)
            # Delta polling is an ordinary request on web.
            delta = requests.get(
                f"{base}/api/client/delta", headers={"Authorization": client_token}, timeout=5
            )
            assert delta.status_code == 200
            assert delta.json()["events"][0]["type"] == "hydration"
            # OFREP's event stream reaches the stream process too (web has no such route: 404).
            refused = requests.get(f"{base}/ofrep/v1/event-stream?channel=forged", timeout=5)
            assert refused.status_code == 401
    finally:
        stream.stop()
        web.stop()
