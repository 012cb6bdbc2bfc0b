"""A real OpenID Connect provider for the single sign-on tests, in its own process on loopback.

It is the PyPI package `oidc-provider-mock` (an Authlib authorization server): discovery, JWKS,
signed ID tokens, the authorization page a person clicks through, userinfo and RP-initiated
logout. Clients must register (POST /oauth2/clients) and send a nonce. The package does not
check PKCE, so this launcher adds Authlib's own RFC 7636 check to its code grant, making it
refuse any token request whose code_verifier does not match the challenge (and any code issued
without one): the tests then see PKCE tampering refused by the provider itself.

Tests set each person's claims (groups, email) through the provider's API: `set_user`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import free_port


@dataclass
class Provider:
    url: str  # the issuer
    process: subprocess.Popen[bytes]

    def register(self, *redirect_uris: str) -> tuple[str, str]:
        """Register a client; its id and secret."""
        answer = requests.post(
            f"{self.url}/oauth2/clients", json={"redirect_uris": list(redirect_uris)}, timeout=10
        )
        answer.raise_for_status()
        body = answer.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, **claims: Any) -> None:
        """Set the claims the provider sends for `sub` (from its next sign-in on)."""
        answer = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text

    def authorize(self, authorize_url: str, sub: str) -> str:
        """Click "Authorize" as `sub` on the provider's page; the redirect back (code, state)."""
        answer = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_provider() -> Provider:
    port = free_port()
    env = {**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.common.oidc_provider", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok:
                return Provider(url, process)
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the OIDC provider did not start")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    """One provider process for the test session, stopped by its process id at the end."""
    provider = start_provider()
    try:
        yield provider
    finally:
        provider.stop()


# ---- the provider process ----------------------------------------------------------------------


def _serve(port: int) -> None:  # pragma: no cover - runs in the provider's own process
    import warnings

    warnings.simplefilter("ignore")
    from authlib.oauth2.rfc6749 import InvalidRequestError
    from authlib.oauth2.rfc7636 import CodeChallenge
    from oidc_provider_mock import _app
    from werkzeug.serving import make_server

    challenges: dict[str, tuple[str | None, str | None]] = {}
    save = _app.AuthorizationCodeGrant.save_authorization_code

    def save_with_challenge(self: Any, code: str, request: Any) -> None:
        challenges[code] = (
            request.payload.data.get("code_challenge"),
            request.payload.data.get("code_challenge_method"),
        )
        save(self, code, request)

    class StrictCodeChallenge(CodeChallenge):  # type: ignore[misc]
        def get_authorization_code_challenge(self, authorization_code: Any) -> str | None:
            return challenges.get(authorization_code.code, (None, None))[0]

        def get_authorization_code_challenge_method(self, authorization_code: Any) -> str | None:
            return challenges.get(authorization_code.code, (None, None))[1]

        def validate_code_verifier(self, grant: Any, result: Any) -> None:
            if not self.get_authorization_code_challenge(grant.request.authorization_code):
                raise InvalidRequestError("PKCE is required: no code_challenge was sent")
            super().validate_code_verifier(grant, result)

    class Grant(_app.AuthorizationCodeGrant):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            StrictCodeChallenge(required=True)(self)

    Grant.save_authorization_code = save_with_challenge  # type: ignore[method-assign]
    _app.AuthorizationCodeGrant = Grant  # type: ignore[misc]
    application = _app.app(require_client_registration=True, require_nonce=True)
    make_server("127.0.0.1", port, application, threaded=True).serve_forever()


if __name__ == "__main__":  # pragma: no cover
    _serve(int(sys.argv[1]))


def sso_sign_in(client: Any, provider: Provider, sub: str, *, start: str = "/login/oidc") -> Any:
    """Sign a Flask test client in through the provider's page as `sub`; the callback answer."""
    from urllib.parse import urlsplit

    begun = client.get(start)
    assert begun.status_code == 302, begun.get_data(as_text=True)[:500]
    back = urlsplit(provider.authorize(begun.headers["Location"], sub))
    return client.get(f"{back.path}?{back.query}")


def sso_config(
    provider: Provider, redirect_base: str = "http://localhost", **extra: Any
) -> dict[str, Any]:
    """App settings for single sign-on with `provider` (a freshly registered client)."""
    client_id, secret = provider.register(f"{redirect_base}/login/oidc/callback")
    return {
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": secret,
        "OIDC_NAME": "Acme ID",
        "OIDC_ROLE_MAP": (("darklaunch-admins", "admin"), ("devs", "developer")),
        **extra,
    }
