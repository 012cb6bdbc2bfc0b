"""Signing in to a live server over real HTTP (requests), as a browser does, and reading back
the session rows and sign-in failures the server wrote."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from server import db
from server.auth.models import LoginFailure, UserSession

PASSWORD = "correct horse battery"  # the factories' password (tests/conftest.py)
ADMIN_COOKIE = "darklaunch_session"
GATE_COOKIE = "dl_team"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_of(browser: requests.Session, url: str) -> str:
    """The CSRF token of the form on `url`, bound to this browser's session cookie."""
    page = browser.get(url, timeout=10)
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in(base: str, email: str, password: str = PASSWORD) -> requests.Session:
    """A browser signed in to Darklaunch itself (/login)."""
    browser = requests.Session()
    token = csrf_of(browser, f"{base}/login")
    response = browser.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return browser


def gate_sign_in(base: str, email: str, password: str = PASSWORD) -> requests.Session:
    """A browser signed in through the closed page's team sign-in (/gate/login)."""
    browser = requests.Session()
    response = browser.post(
        f"{base}/gate/login",
        data={"email": email, "password": password},
        headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return browser


def replay(base: str, path: str, cookies: dict[str, str], **kwargs: Any) -> requests.Response:
    """A request from another machine that holds nothing but these cookies."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    headers.update(kwargs.pop("headers", {}))
    method = kwargs.pop("method", "GET")
    return requests.request(
        method, f"{base}{path}", headers=headers, allow_redirects=False, timeout=10, **kwargs
    )


def signed_in(response: requests.Response) -> bool:
    """Whether a team page answered as to a signed-in member (not a redirect to /login)."""
    return response.status_code == 200


def eventually(check: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll `check` until it holds; a hang detector, not a timing assertion."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def session_rows(app: Flask) -> list[UserSession]:
    with app.app_context():
        return list(db.session().scalars(select(UserSession).order_by(UserSession.created_at)))


def failures(app: Flask) -> int:
    """Failed password checks the server recorded (one per argon2 verification that failed)."""
    with app.app_context():
        return int(db.session().scalar(select(func.count(LoginFailure.id))) or 0)
