"""`GET /api/client/delta`: Unleash's delta polling, answered on `web` like a features poll.

The ETag is the revision (`"42"`). A poll without one, or with one this server cannot bring up
to date (the change log no longer covers it, or it names a revision this database never made),
gets a hydration; one at the current revision gets 304; otherwise the answer carries exactly the
flags and segments of the token's environment that changed since, read from the change log and
taken, as compiled, from the snapshot.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from server import db, snapshot
from server.access import Permission, requires
from server.api import api_doc
from server.flags.compile import PROJECT
from server.protocols.sdk import not_modified, token_environment
from server.streaming import events
from server.streaming.schemas import ClientDeltaOut

log = logging.getLogger(__name__)

bp = Blueprint("client_delta", __name__)


def revision_etag(revision: int) -> str:
    return f'"{revision}"'


def known_revision(header: str | None) -> int | None:
    """The revision an If-None-Match names (`"42"`, `W/"42"`), or None for anything else."""
    value = (header or "").strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() and len(value) < 19 else None


@bp.get("/api/client/delta")
@requires(Permission.SDK_CLIENT)
@api_doc(
    "Unleash client API, delta polling: what changed since the revision in If-None-Match",
    responses={200: ClientDeltaOut, 304: None},
    tag="sdk",
)
def client_delta() -> Response:
    """Hydration, or the changes since the ETag's revision (304 when there are none)."""
    compiled = token_environment()
    revision = snapshot.current().revision
    etag = revision_etag(revision)
    projects = request.args.getlist("project")
    visible = not projects or PROJECT in projects
    known = known_revision(request.headers.get("If-None-Match"))
    if known == revision:
        return not_modified(etag)
    body: bytes | None = None
    if visible and known is not None and known < revision:
        try:
            changed = events.catch_up(db.session(), known, compiled.name)
        except SQLAlchemyError as exc:  # the snapshot still knows the whole state
            log.warning("delta poll could not read the change log: %s", exc)
            changed = None
        if changed is not None:
            found = events.delta(None, compiled, revision, changed.flags, changed.segments)
            body = events.document(found)
    if body is None:
        body = events.hydration(compiled if visible else None, revision)
    return Response(body, content_type="application/json", headers={"ETag": etag})
