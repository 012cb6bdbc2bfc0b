"""Real JavaScript SDKs in Node against a live server, each seeing a toggle made by the admin API.

The SDKs come from tests/js (npm, exact versions); tests/common/node.py runs them.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.common.node import run_node, toggle
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

BLUE = {"name": "blue", "weightType": "variable", "weight": 1000}


def test_node_unleash_client_polls_and_sees_a_toggle(
    live_server: LiveServer,
    make_flags: Flags,
    make_token: Callable[..., str],
    admin_token: str,
) -> None:
    make_flags.create("new-checkout", variants=[BLUE])
    token = make_token("client", "production")
    with run_node(
        "unleash-client-polling",
        DARKLAUNCH_URL=live_server.url,
        DARKLAUNCH_TOKEN=token,
        FLAG="new-checkout",
    ) as sdk:
        sdk.wait_for(lambda m: m.get("value") == {"enabled": True, "variant": "blue"})
        toggle(live_server.url, admin_token, "new-checkout", False)
        sdk.wait_for(lambda m: m.get("value") == {"enabled": False, "variant": "disabled"})
        toggle(live_server.url, admin_token, "new-checkout", True)
        sdk.wait_for(lambda m: m.get("value") == {"enabled": True, "variant": "blue"})


def test_node_unleash_client_with_a_wrong_token_is_refused(
    live_server: LiveServer, make_flags: Flags
) -> None:
    make_flags.create("new-checkout")
    with run_node(
        "unleash-client-polling",
        DARKLAUNCH_URL=live_server.url,
        DARKLAUNCH_TOKEN="dl_client_bogus",
        FLAG="new-checkout",
    ) as sdk:
        error = sdk.wait_for(lambda m: m.get("event") in ("error", "ready"), errors=True)
        assert error["event"] == "error" and "401" in error["message"]


def test_node_ofrep_provider_sees_a_toggle(
    live_server: LiveServer,
    make_flags: Flags,
    make_token: Callable[..., str],
    admin_token: str,
) -> None:
    make_flags.create("new-checkout")
    token = make_token("client", "production")
    on = {"enabled": True, "reason": "TARGETING_MATCH", "error": None}
    with run_node(
        "ofrep-server", DARKLAUNCH_URL=live_server.url, DARKLAUNCH_TOKEN=token, FLAG="new-checkout"
    ) as sdk:
        first = sdk.wait_for(lambda m: m.get("event") == "value")
        assert first["value"]["enabled"] is True, first
        toggle(live_server.url, admin_token, "new-checkout", False)
        off = sdk.wait_for(lambda m: m.get("value", on)["enabled"] is False)
        assert off["value"]["error"] is None, off
        toggle(live_server.url, admin_token, "new-checkout", True)
        sdk.wait_for(lambda m: m.get("value", {}).get("enabled") is True)


def test_unleash_proxy_with_the_proxy_client_sees_a_toggle(
    live_server: LiveServer,
    make_flags: Flags,
    make_token: Callable[..., str],
    admin_token: str,
) -> None:
    make_flags.create("new-checkout", variants=[BLUE])
    token = make_token("client", "production")
    with run_node(
        "unleash-proxy", DARKLAUNCH_URL=live_server.url, DARKLAUNCH_TOKEN=token, FLAG="new-checkout"
    ) as sdk:
        # The proxy answers 503 until its own unleash-client has read the flags; the proxy client
        # retries, so an early error is not the test's business.
        sdk.wait_for(lambda m: m.get("value") == {"enabled": True, "variant": "blue"}, errors=True)
        toggle(live_server.url, admin_token, "new-checkout", False)
        sdk.wait_for(lambda m: m.get("value") == {"enabled": False, "variant": "disabled"})
        toggle(live_server.url, admin_token, "new-checkout", True)
        sdk.wait_for(lambda m: m.get("value") == {"enabled": True, "variant": "blue"})
