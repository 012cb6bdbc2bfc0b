"""The JSON API for a team member's sessions (admin token), beside the sessions page.

The same services as Settings → Sessions (server.auth.sessions): ending a session marks its row
ended (this worker refuses it at once, every other within DARKLAUNCH_REFRESH_MS), and each end is
audited as `session.ended` with the token as actor. Role changes are `PATCH /api/admin/users/ID`
(server.auth.api). No secret is ever listed: a session is named by its random id.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import api_doc
from server.auth import sessions
from server.auth.models import SessionKind, SignInMethod, User
from server.errors import NotFound
from server.web import actor

bp = Blueprint("auth_sessions_api", __name__, url_prefix="/api/admin")


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The session's random id (not its secret)")
    user_id: int
    kind: SessionKind = Field(
        description="`admin`: Darklaunch's own sign-in; `gate`: the site's team sign-in"
    )
    method: SignInMethod = Field(description="How it was started: password, oidc or totp")
    created_at: datetime
    last_seen_at: datetime = Field(description="Coarse: noted at most every 5 minutes")
    expires_at: datetime
    revoked_at: datetime | None = Field(description="When it was ended; null while live")
    user_agent: str
    address: str


class SessionsOut(BaseModel):
    sessions: list[SessionOut] = Field(description="Live sessions, most recently seen first")


class EndedOut(BaseModel):
    ended: int = Field(description="How many live sessions this request ended")


def _user(user_id: int) -> User:
    user = db.session().get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _json(model: BaseModel) -> tuple[Response, int]:
    return jsonify(model.model_dump(mode="json")), 200


@bp.get("/users/<int:user_id>/sessions")
@requires(Permission.USERS_ADMIN)
@api_doc("List a team member's live sessions", responses={200: SessionsOut}, tag="users")
def list_user_sessions(user_id: int) -> tuple[Response, int]:
    """A team member's live sessions (Darklaunch's and the gate's), most recently seen first."""
    user = _user(user_id)
    rows = sessions.list_sessions(db.session(), user.id)
    return _json(SessionsOut(sessions=[SessionOut.model_validate(r) for r in rows]))


@bp.delete("/users/<int:user_id>/sessions/<session_id>")
@requires(Permission.USERS_ADMIN)
@api_doc("End one session of a team member", responses={200: SessionOut}, tag="users")
def end_user_session(user_id: int, session_id: str) -> tuple[Response, int]:
    """End one session: its browser is signed out. Ending an ended session is harmless."""
    _user(user_id)
    row = sessions.end_session(db.session(), actor(), session_id[:64], user_id=user_id)
    return _json(SessionOut.model_validate(row))


@bp.delete("/users/<int:user_id>/sessions")
@requires(Permission.USERS_ADMIN)
@api_doc("End every session of a team member", responses={200: EndedOut}, tag="users")
def end_user_sessions(user_id: int) -> tuple[Response, int]:
    """Sign a team member out everywhere (they may sign in again: disable them to stop that)."""
    user = _user(user_id)
    ended = sessions.end_sessions(db.session(), user, actor=actor())
    return _json(EndedOut(ended=ended))
