"""Sending one webhook request, guarded against server-side request forgery (SSRF).

A webhook URL is typed by an admin but resolved by this server, inside its network: without a
guard it could reach the cloud metadata service (169.254.169.254), the database or any internal
page. So the host is resolved once, every address it resolves to is checked, and the request
connects to the checked address itself (the URL's host stays in the Host header and in TLS
verification), so a second DNS answer cannot swap in another address. No redirect is followed:
a 3xx answer counts as a failed attempt. Each attempt has a timeout and reads at most
RESPONSE_LIMIT bytes of the answer.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

TIMEOUT = 10.0  # seconds to connect, and again to read the answer
RESPONSE_LIMIT = 64 * 1024  # bytes of an answer read; the log keeps SNIPPET of them
SNIPPET = 500
CA_BUNDLE = certifi.where()  # the authorities https receivers' certificates are checked against

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class Refused(Exception):
    """The URL may not be called (a forbidden address, a bad scheme, a name that resolves
    to nothing); nothing was sent."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, for the Host header and TLS
    port: int
    path: str  # with its query
    address: Address  # the checked address the connection goes to


@dataclass(frozen=True)
class Answer:
    status: int
    latency_ms: int
    snippet: str


def forbidden_reason(address: Address) -> str | None:
    """Why this address must not be called without the allow-private setting (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_reason(address.ipv4_mapped)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved:
        return "a reserved address"
    return None


def resolve_target(
    url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo
) -> Target:
    """Check `url` and pick the address to connect to; Refused when it may not be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("Only http and https URLs with a host can be called.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("The URL's port is not a number from 0 to 65535.") from None
    host = parts.hostname
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve: {exc}.") from None
    addresses: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused(f"{host} resolves to no address.")
    if not allow_private:
        # Every answer is checked, not only the one used: a name that mixes a public address
        # with an internal one is refused as a whole.
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise Refused(
                    f"{host} resolves to {address}, {reason}; webhooks do not call those "
                    "unless DARKLAUNCH_WEBHOOKS_ALLOW_PRIVATE is true."
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=TIMEOUT, read=TIMEOUT)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(target.address),
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_BUNDLE,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(
        str(target.address), target.port, timeout=timeout, retries=False
    )


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    resolve: Resolver = socket.getaddrinfo,
) -> Answer:
    """POST `body` to `url` once; Refused before sending, OSError-like failures as Answer-less
    exceptions (`SendFailed`)."""
    target = resolve_target(url, allow_private=allow_private, resolve=resolve)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    started = time.perf_counter()
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            data = response.read(RESPONSE_LIMIT)
        finally:
            response.release_conn()
            response.close()
    except Urllib3Error as exc:
        raise SendFailed(f"The request failed: {exc}.") from None
    finally:
        pool.close()
    latency = round((time.perf_counter() - started) * 1000)
    snippet = data[:SNIPPET].decode("utf-8", "replace")
    return Answer(response.status, latency, snippet)


class SendFailed(Exception):
    """The request did not get an answer (refused connection, timeout, TLS failure)."""
