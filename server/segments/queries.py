"""Read-only queries behind the segments page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.flags.models import Flag, FlagEnvironment, Strategy


def segment_usage(session: Session) -> dict[int, list[tuple[str, str]]]:
    """For each segment id: the (flag, environment) pairs whose strategies use it."""
    rows = session.execute(
        select(Flag.name, FlagEnvironment.environment, Strategy.segments)
        .join(FlagEnvironment, FlagEnvironment.flag_id == Flag.id)
        .join(Strategy, Strategy.flag_environment_id == FlagEnvironment.id)
        .where(Flag.archived_at.is_(None))
    )
    usage: dict[int, set[tuple[str, str]]] = {}
    for name, environment, segments in rows:
        for segment_id in segments or []:
            usage.setdefault(segment_id, set()).add((name, environment))
    return {segment_id: sorted(pairs) for segment_id, pairs in usage.items()}
