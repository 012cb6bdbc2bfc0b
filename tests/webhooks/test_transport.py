"""The SSRF guard: internal addresses are refused unless allowed; no redirect is followed."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from server.webhooks import transport
from server.webhooks.transport import Refused, post, resolve_target
from tests.common.webhooks import add_webhook, deliver, later
from tests.conftest import free_port
from tests.webhooks.conftest import Receiver

INTERNAL = [
    "http://127.0.0.1/hook",
    "http://localhost/hook",
    "http://127.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://10.0.0.8/",
    "http://192.168.1.1:8080/",
    "http://[fe80::1]/",
]


def resolves_to(address: str) -> Callable[..., list[tuple[Any, ...]]]:
    """A DNS answer for any name (the network's DNS is a peer these tests do not run)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Refused, match="DARKLAUNCH_WEBHOOKS_ALLOW_PRIVATE"):
        resolve_target(url, allow_private=False)
    assert resolve_target(url, allow_private=True).address is not None


def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    resolve = resolves_to("127.0.0.1")
    with pytest.raises(
        Refused, match=re.escape("hooks.example.com resolves to 127.0.0.1, a loopback")
    ):
        resolve_target("https://hooks.example.com/x", allow_private=False, resolve=resolve)


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    with pytest.raises(Refused, match=re.escape("10.1.2.3, a private address")):
        resolve_target("https://mixed.example.com/", allow_private=False, resolve=resolve)


def test_a_public_address_is_connected_to_as_checked() -> None:
    target = resolve_target(
        "https://hooks.example.com:8443/in?x=1",
        allow_private=False,
        resolve=resolves_to("93.184.215.14"),
    )
    assert (str(target.address), target.host, target.port) == (
        "93.184.215.14",
        "hooks.example.com",
        8443,
    )
    assert target.path == "/in?x=1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "Only http and https"),
        ("http:///nohost", "Only http and https"),
        ("http://example.com:99999/", "port"),
        ("http://name.invalid/", "does not resolve"),
    ],
)
def test_urls_that_cannot_be_called_are_refused(url: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        resolve_target(url, allow_private=True)


def test_a_name_resolving_to_nothing_is_refused() -> None:
    with pytest.raises(Refused, match="no address"):
        resolve_target("http://empty.example/", allow_private=True, resolve=lambda *a, **k: [])


def test_a_redirect_to_loopback_is_not_followed(receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.redirect_to = receiver.url.replace("/hook", "/internal")
    answer = post(receiver.url, b"{}", {}, allow_private=True)
    assert answer.status == 302
    assert [r.path for r in receiver.requests] == ["/hook"]  # never /internal


def test_a_closed_port_is_a_failed_send() -> None:
    with pytest.raises(transport.SendFailed):
        post(f"http://127.0.0.1:{free_port()}/", b"{}", {}, allow_private=True)


def test_a_long_answer_is_read_only_up_to_the_limit(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "SNIPPET", 3)
    answer = post(receiver.url, b"{}", {"X-Test": "1"}, allow_private=True)
    assert (answer.status, answer.snippet) == (200, "ok")
    assert receiver.requests[0].headers["X-Test"] == "1"
    assert receiver.requests[0].headers["Host"] == receiver.url.split("/")[2]


class TestWithoutTheSetting:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"WEBHOOKS_ALLOW_PRIVATE": False}

    def test_a_webhook_to_loopback_sends_nothing_and_says_why(
        self, app: Flask, api: Callable[..., Any], receiver: Receiver
    ) -> None:
        hook = add_webhook(api, receiver.url, ["flag.changed"], environment="production")
        api("post", "/api/admin/projects/default/features", json={"name": "blocked"})
        deliver(app)
        assert receiver.requests == []
        log = api("get", f"/api/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
        first = log[-1]
        assert first["status"] == "pending" and first["attempts"] == 1
        assert "127.0.0.1, a loopback address" in first["error"]
        deliver(app, later(5))  # the backoff holds the next attempt back
        assert (
            api("get", f"/api/webhooks/{hook['id']}/deliveries").get_json()["deliveries"][-1][
                "attempts"
            ]
            == 1
        )

    def test_a_receiver_that_redirects_is_a_failed_attempt(
        self, app: Flask, api: Callable[..., Any], receiver: Receiver
    ) -> None:
        app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
        hook = add_webhook(api, receiver.url, ["segment.changed"])
        receiver.statuses = [307]
        receiver.redirect_to = "http://127.0.0.1:1/elsewhere"
        response = api("post", "/api/admin/segments", json={"name": "beta", "constraints": []})
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        deliver(app)
        (entry,) = api("get", f"/api/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
        assert entry["response_status"] == 307 and "redirects are not followed" in entry["error"]
        assert [r.path for r in receiver.requests] == ["/hook"]
