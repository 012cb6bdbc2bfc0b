"""Which flag-linked announcements a reader may see, decided from the production snapshot.

On the live changelog a linked announcement shows when its flag is on for that visitor, the same
answer an SDK gives for the visitor's sticky session id. Feeds, the widget and the static export
are read by anyone, so they show it only once the flag is on for everyone in production.
Anything unknown (no production environment, an archived flag) means hidden.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.flags import flags_snapshot
from server.flags.compile import CompiledEnvironment
from server.flags.evaluation import evaluate, make_context

PRODUCTION = "production"


def production() -> CompiledEnvironment | None:
    """The compiled production environment, or None where it is not configured."""
    try:
        return flags_snapshot().environment(PRODUCTION)
    except KeyError:
        return None


def on_for_visitor(
    env: CompiledEnvironment | None, flag: str, visitor: str, address: str | None = None
) -> bool:
    if env is None:
        return False
    raw = {"sessionId": visitor, "remoteAddress": address}
    return evaluate(env.engine, flag, make_context(raw, environment=PRODUCTION)).enabled


def on_for_everyone(env: CompiledEnvironment | None, flag: str) -> bool:
    """On in production with no strategy narrowing who gets it (and its dependencies met)."""
    if env is None:
        return False
    info = env.flags.get(flag)
    if info is None or not info.enabled or info.targeted:
        return False
    # An untargeted flag can still be off through a dependency on a flag that is off.
    return evaluate(env.engine, flag, make_context({}, environment=PRODUCTION)).enabled


def hidden_for_visitor(flags: Iterable[str], visitor: str, address: str | None) -> set[str]:
    env = production()
    return {f for f in flags if not on_for_visitor(env, f, visitor, address)}


def hidden_for_everyone(flags: Iterable[str]) -> set[str]:
    env = production()
    return {f for f in flags if not on_for_everyone(env, f)}
