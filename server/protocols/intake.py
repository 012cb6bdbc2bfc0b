"""Bounds on what SDKs may write with a token: metrics and registrations.

A frontend token is public by nature (it ships in every browser bundle), and a client token may
leak, so neither may make the database grow without bound or keep a worker busy:

- **Known flags and variants only.** A metrics report counts flags the token's environment
  serves and variants those flags can hand out (plus `disabled`, which SDKs report when no
  variant applies); anything else is ignored, and the answer says how much in the
  `Darklaunch-Ignored` header (`flags=N, variants=N`). Nothing is logged per report: a flood
  would flood the log.
- **Counts per hour.** Each hourly count (a flag's yes or no, one variant's count) stops at
  `HOURLY_COUNT_MAX` (see `server.protocols.service`).
- **Instances.** At most `INSTANCES_MAX[kind]` SDK instances per environment and token kind are
  recorded; reports from further instances still count, but add no instance row
  (`instance=ignored` in the header).
- **Rate.** Each worker lets one token make `TOKEN_PER_MINUTE` metrics and register calls a
  minute, and one client address (IPv6 by /64) `ADDRESS_PER_MINUTE`; beyond that the answer is
  429 with Retry-After. The limits are per worker process, so with W workers a token gets at
  most W times as many (the load is spread by the kernel, so in practice close to it).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from server.access import current_principal
from server.api import parse_body
from server.errors import TooManyRequests
from server.flags.compile import CompiledEnvironment
from server.protocols import service
from server.protocols.answers import prepared
from server.protocols.schemas import MetricsIn, RegisterIn, ToggleCounts
from server.protocols.service import SdkIdentity
from server.web import client_address

TOKEN_PER_MINUTE = 6000  # the SDKs of one token, all instances together (Unleash's default)
ADDRESS_PER_MINUTE = 600  # one address: ten reports a second is far above any single host
DISABLED_VARIANT = "disabled"
IGNORED_HEADER = "Darklaunch-Ignored"

_TOKEN_LIMIT = RateLimitItemPerMinute(TOKEN_PER_MINUTE)
_ADDRESS_LIMIT = RateLimitItemPerMinute(ADDRESS_PER_MINUTE)


def address_key(address: str) -> str:
    """The rate-limit key of an address: IPv4 as is, IPv6 by its /64 (one host has them all)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Rates:
    """One app's request counts in this process (expired windows drop out on their own)."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.limiter = FixedWindowRateLimiter(self.storage)


def _rates() -> Rates:
    rates: Rates | None = current_app.extensions.get("protocols.rates")
    if rates is None:
        rates = current_app.extensions.setdefault("protocols.rates", Rates())
    return rates


def check_rate(token_id: int, address: str) -> None:
    """Count one write by this token from this address; TooManyRequests beyond either limit."""
    limiter = _rates().limiter
    for limit, key in (
        (_TOKEN_LIMIT, f"token:{token_id}"),
        (_ADDRESS_LIMIT, f"address:{address_key(address)}"),
    ):
        if not limiter.hit(limit, key):
            reset, _ = limiter.get_window_stats(limit, key)
            retry = max(1, int(reset - time.time()) + 1)
            raise TooManyRequests(
                "Too many SDK reports from this token or address; try again shortly.", retry
            )


@dataclass(frozen=True)
class Ignored:
    """What a report held that was not counted."""

    flags: int = 0
    variants: int = 0
    instance: bool = False

    def header(self) -> str | None:
        if not (self.flags or self.variants or self.instance):
            return None
        text = f"flags={self.flags}, variants={self.variants}"
        return text + (", instance=ignored" if self.instance else "")


def keep_known(data: MetricsIn, compiled: CompiledEnvironment) -> tuple[MetricsIn, Ignored]:
    """The report with only known flags and variants, and how much was left out.

    Known variants are the flag's and its strategies' variants (parsed once per document
    version), plus `disabled`; only the reported names are looked up.
    """
    found = prepared(compiled)
    toggles: dict[str, ToggleCounts] = {}
    flags = variants = 0
    for name, counts in data.bucket.toggles.items():
        if name not in compiled.flags:
            flags += 1
            continue
        plan = found.get(name)
        allowed = plan.profile.variants if plan is not None else frozenset()
        kept = {v: n for v, n in counts.variants.items() if v in allowed or v == DISABLED_VARIANT}
        variants += len(counts.variants) - len(kept)
        toggles[name] = counts.model_copy(update={"variants": kept})
    bucket = data.bucket.model_copy(update={"toggles": toggles})
    return data.model_copy(update={"bucket": bucket}), Ignored(flags, variants)


def record_metrics(session: Session, who: SdkIdentity, compiled: CompiledEnvironment) -> Ignored:
    """A metrics call, bounded: rate, known flags and variants, counts, instances."""
    check_rate(_token_id(), client_address())
    data, ignored = keep_known(parse_body(MetricsIn), compiled)
    recorded = service.record_metrics(session, who, data, compiled.flags)
    return Ignored(ignored.flags, ignored.variants, not recorded.instance)


def record_registration(session: Session, who: SdkIdentity) -> Ignored:
    """A register call, bounded: rate and instances."""
    check_rate(_token_id(), client_address())
    recorded = service.record_registration(session, who, parse_body(RegisterIn))
    return Ignored(instance=not recorded)


def answer(status: int, ignored: Ignored) -> Response:
    """The SDK's empty answer, saying in a header what was not counted."""
    response = Response(status=status)
    text = ignored.header()
    if text is not None:
        response.headers[IGNORED_HEADER] = text
    return response


def _token_id() -> int:
    principal = current_principal()
    assert principal is not None  # checked by access
    return principal.id
