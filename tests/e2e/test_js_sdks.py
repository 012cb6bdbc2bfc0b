"""Browser SDKs in Chromium, served from another origin (CORS), each seeing an admin-API toggle.

`unleash-proxy-client` against the frontend API (GET and POST) and the OpenFeature web SDK with
the OFREP web provider. The bundles are built from tests/js with esbuild (tests/common/node.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.common.node import bundle, static_site, toggle
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

pytestmark = pytest.mark.e2e

PAGE = '<!doctype html><meta charset="utf-8"><title>{name}</title><script src="{name}.js"></script>'


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with static_site(tmp_path) as origin:
        yield tmp_path, origin


def open_sdk_page(page: Any, site: tuple[Path, str], name: str, **query: str) -> list[str]:
    """Bundle tests/js/browser/NAME.mjs, serve it on the other origin, open it; returns the
    URLs of the requests the page made."""
    folder, origin = site
    bundle(name, folder)
    (folder / f"{name}.html").write_text(PAGE.format(name=name))
    requests_seen: list[str] = []
    page.on("request", lambda r: requests_seen.append(f"{r.method} {r.url}"))
    page.goto(f"{origin}/{name}.html?{urlencode(query)}")
    return requests_seen


def wait_for_value(page: Any, expected: dict[str, Any], timeout: float = 15_000) -> None:
    page.wait_for_function(
        """expected => {
            const s = window.sdkState;
            if (s.errors.length) throw new Error(s.errors.join('\\n'));
            return JSON.stringify(s.value) === JSON.stringify(expected);
        }""",
        arg=expected,
        timeout=timeout,
    )


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
def test_unleash_proxy_client_in_chromium_sees_a_toggle(
    page: Any,
    site: tuple[Path, str],
    app: Any,
    live_server: LiveServer,
    make_token: Callable[..., str],
    admin_token: str,
    post: bool,
) -> None:
    Flags(app).create(
        "new-checkout", variants=[{"name": "blue", "weightType": "variable", "weight": 1000}]
    )
    token = make_token("frontend", "production")
    seen = open_sdk_page(
        page,
        site,
        "unleash-proxy-client",
        url=live_server.url,
        token=token,
        flag="new-checkout",
        post="1" if post else "0",
    )
    wait_for_value(page, {"enabled": True, "variant": "blue"})
    toggle(live_server.url, admin_token, "new-checkout", False)
    wait_for_value(page, {"enabled": False, "variant": "disabled"})
    toggle(live_server.url, admin_token, "new-checkout", True)
    wait_for_value(page, {"enabled": True, "variant": "blue"})
    method = "POST" if post else "GET"
    assert any(s.startswith(f"{method} {live_server.url}/api/frontend") for s in seen), seen


def test_unleash_proxy_client_from_an_origin_not_allowed_is_blocked(
    page: Any,
    site: tuple[Path, str],
    app: Any,
    live_server: LiveServer,
    make_token: Callable[..., str],
) -> None:
    Flags(app).create("new-checkout")
    app.config["FRONTEND_ORIGINS"] = ("https://shop.example.com",)
    open_sdk_page(
        page,
        site,
        "unleash-proxy-client",
        url=live_server.url,
        token=make_token("frontend", "production"),
        flag="new-checkout",
    )
    page.wait_for_function("window.sdkState.errors.length > 0")
    assert page.evaluate("window.sdkState.ready") is False


def test_ofrep_web_provider_in_chromium_sees_a_toggle(
    page: Any,
    site: tuple[Path, str],
    app: Any,
    live_server: LiveServer,
    make_token: Callable[..., str],
    admin_token: str,
) -> None:
    Flags(app).create("new-checkout")
    token = make_token("frontend", "production")
    open_sdk_page(
        page, site, "ofrep-web-provider", url=live_server.url, token=token, flag="new-checkout"
    )
    page.wait_for_function("window.sdkState.value !== null")
    first = page.evaluate("window.sdkState.value")
    assert first["enabled"] is True, first
    toggle(live_server.url, admin_token, "new-checkout", False)
    page.wait_for_function("window.sdkState.value && window.sdkState.value.enabled === false")
    toggle(live_server.url, admin_token, "new-checkout", True)
    page.wait_for_function("window.sdkState.value && window.sdkState.value.enabled === true")
    assert page.evaluate("window.sdkState.errors") == []
