"""Sign-in limits against a live server: parallel guesses, IPv6 rotation, many addresses.

The review sent 40 wrong passwords at once and got 16 password checks with a limit of 10 (the
count was read before the failures were written), and rotated IPv6 addresses to start afresh.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from server import clock
from server.auth.service import address_bucket
from server.config import parse_networks
from tests.common.live_auth import PASSWORD, csrf_of, failures
from tests.conftest import LiveServer

PER_ADDRESS = 10  # the defaults
PER_ACCOUNT = 20


@pytest.fixture
def app_config() -> dict[str, Any]:
    # The live server's peer (127.0.0.1) is a trusted proxy, so tests can name client addresses.
    return {"TRUSTED_PROXIES": parse_networks("127.0.0.1")}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """Hold the server's clock 20 s into a minute (limits count per clock minute)."""
    now = clock.now()
    moment = [now.replace(second=20, microsecond=0)]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    yield moment


class Attempts:
    """Sign-in posts from a browser that loaded the form once (the CSRF token is reusable)."""

    def __init__(self, base: str) -> None:
        self.base = base
        browser = requests.Session()
        self.token = csrf_of(browser, f"{base}/login")
        self.cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())

    def post(self, email: str, password: str, address: str = "") -> int:
        headers = {"Cookie": self.cookie}
        if address:
            headers["X-Forwarded-For"] = address
        response = requests.post(
            f"{self.base}/login",
            data={"email": email, "password": password, "csrf_token": self.token},
            headers=headers,
            allow_redirects=False,
            timeout=30,
        )
        return response.status_code

    def parallel(self, email: str, addresses: list[str]) -> Counter[int]:
        start = threading.Barrier(len(addresses))

        def attempt(address: str) -> int:
            start.wait(timeout=30)
            return self.post(email, "wrong password!", address)

        with ThreadPoolExecutor(len(addresses)) as pool:
            return Counter(pool.map(attempt, addresses))


def test_forty_parallel_wrong_passwords_get_exactly_the_limit_of_checks(
    app: Any, live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    statuses = Attempts(live_server.url).parallel(admin.email, ["198.51.100.7"] * 40)
    assert statuses == Counter({401: PER_ADDRESS, 429: 40 - PER_ADDRESS})
    assert failures(app) == PER_ADDRESS  # one failed argon2 check per 401, none per 429


def test_forty_parallel_guesses_from_forty_addresses_get_the_account_limit(
    app: Any, live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    addresses = [f"203.0.113.{i}" for i in range(1, 41)]
    statuses = Attempts(live_server.url).parallel(admin.email, addresses)
    assert statuses == Counter({401: PER_ACCOUNT, 429: 40 - PER_ACCOUNT})
    assert failures(app) == PER_ACCOUNT


def test_rotating_addresses_inside_one_ipv6_64_is_limited(
    live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    attempts = Attempts(live_server.url)
    statuses = [
        attempts.post(admin.email, "wrong password!", f"2001:db8:5:6:{i:x}:{i:x}::{i:x}")
        for i in range(1, PER_ADDRESS + 4)
    ]
    assert statuses == [401] * PER_ADDRESS + [429] * 3
    # The right password from that /64 waits too; another /64 is not held back.
    assert attempts.post(admin.email, PASSWORD, "2001:db8:5:6::beef") == 429
    assert attempts.post(admin.email, PASSWORD, "2001:db8:5:7::1") == 302


def test_the_account_limit_holds_across_addresses_and_spares_other_accounts(
    live_server: LiveServer, admin: Any, make_user: Any, frozen: list[datetime]
) -> None:
    attempts = Attempts(live_server.url)
    statuses = [attempts.post(admin.email, "wrong password!", f"192.0.2.{i}") for i in range(1, 24)]
    assert statuses == [401] * PER_ACCOUNT + [429] * 3
    assert attempts.post(admin.email, PASSWORD, "192.0.2.200") == 429
    other = make_user("viewer")
    assert attempts.post(other.email, PASSWORD, "192.0.2.201") == 302


def test_the_right_password_works_once_the_minute_is_over(
    live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    attempts = Attempts(live_server.url)
    for _ in range(PER_ADDRESS):
        assert attempts.post(admin.email, "wrong password!", "198.51.100.9") == 401
    assert attempts.post(admin.email, PASSWORD, "198.51.100.9") == 429
    frozen[0] += timedelta(seconds=60)
    assert attempts.post(admin.email, PASSWORD, "198.51.100.9") == 302


def test_a_new_clock_minute_does_not_start_the_count_afresh(
    live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    attempts = Attempts(live_server.url)
    frozen[0] = frozen[0].replace(second=55)
    for _ in range(PER_ADDRESS):
        assert attempts.post(admin.email, "wrong password!", "198.51.100.11") == 401
    frozen[0] += timedelta(seconds=10)  # five seconds into the next minute
    assert attempts.post(admin.email, PASSWORD, "198.51.100.11") == 429
    frozen[0] += timedelta(seconds=60)  # a minute after the failures: free again
    assert attempts.post(admin.email, PASSWORD, "198.51.100.11") == 302


def test_successful_sign_ins_do_not_use_the_allowance_up(
    live_server: LiveServer, admin: Any, frozen: list[datetime]
) -> None:
    attempts = Attempts(live_server.url)
    for _ in range(PER_ADDRESS + 5):
        assert attempts.post(admin.email, PASSWORD, "198.51.100.10") == 302
    assert attempts.post(admin.email, "wrong password!", "198.51.100.10") == 401


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not an address", "not an address"),
    ],
)
def test_addresses_are_counted_by_ipv4_address_or_ipv6_64(address: str, bucket: str) -> None:
    assert address_bucket(address) == bucket
