"""The JSON API for team members and API tokens (admin token), beside the settings page."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, Role, TokenKind, requires
from server.api import StrictModel, api_doc, parse_body
from server.auth import accounts, passwords, service
from server.errors import Invalid
from server.web import actor

bp = Blueprint("auth_api", __name__, url_prefix="/api/admin")


class UserIn(StrictModel):
    email: str = Field(max_length=254, description="Sign-in address; stored in lower case")
    role: Role
    password: str = Field(
        max_length=passwords.MAX_PASSWORD,
        description=(
            f"Initial password, at least {passwords.MIN_PASSWORD} characters, not a common password"
        ),
    )


class UserChange(StrictModel):
    disabled: bool | None = Field(
        None, description="True signs the user out everywhere and refuses sign-in"
    )
    role: Role | None = Field(
        None,
        description="A new role; their live sessions have it at once. You cannot lower your own.",
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None


class UsersOut(BaseModel):
    users: list[UserOut]


class TokenIn(StrictModel):
    name: str = Field(max_length=100, description="What uses the token, e.g. 'checkout-service'")
    kind: TokenKind
    environment: str | None = Field(
        None, max_length=100, description="Client and frontend tokens: required; admin and ci: none"
    )


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: TokenKind
    environment: str | None
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    secret: str = Field(description="The token itself: shown in this response only, never again")


class TokensOut(BaseModel):
    tokens: list[TokenOut]


def _json(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    return jsonify(model.model_dump(mode="json")), status


@bp.get("/users")
@requires(Permission.USERS_ADMIN)
@api_doc("List team members", responses={200: UsersOut}, tag="users")
def list_users() -> tuple[Response, int]:
    """List team members by email."""
    users = service.list_users(db.session())
    return _json(UsersOut(users=[UserOut.model_validate(u) for u in users]))


@bp.post("/users")
@requires(Permission.USERS_ADMIN)
@api_doc("Add a team member", request=UserIn, responses={201: UserOut}, tag="users")
def create_user() -> tuple[Response, int]:
    """Add a team member; 409 when the email is taken."""
    body = parse_body(UserIn)
    user = service.create_user(db.session(), actor(), body.email, body.role.value, body.password)
    return _json(UserOut.model_validate(user), 201)


@bp.patch("/users/<int:user_id>")
@requires(Permission.USERS_ADMIN)
@api_doc(
    "Change a team member's role, or disable or re-enable them",
    request=UserChange,
    responses={200: UserOut},
    tag="users",
)
def change_user(user_id: int) -> tuple[Response, int]:
    """Change a role and/or disable or re-enable a team member (all of it, or nothing)."""
    body = parse_body(UserChange)
    if body.role is None and body.disabled is None:
        raise Invalid(
            "Send `role`, `disabled` or both.", {"fields": {"role": "Nothing to change."}}
        )
    s = db.session()
    user = None
    if body.role is not None:
        user = accounts.set_user_role(s, actor(), user_id, body.role.value)
    if body.disabled is not None:
        user = service.set_user_disabled(s, actor(), user_id, disabled=body.disabled)
    assert user is not None
    return _json(UserOut.model_validate(user))


@bp.get("/tokens")
@requires(Permission.USERS_ADMIN)
@api_doc("List API tokens (never their secrets)", responses={200: TokensOut}, tag="tokens")
def list_tokens() -> tuple[Response, int]:
    """List API tokens, active first, newest first."""
    tokens = service.list_tokens(db.session())
    return _json(TokensOut(tokens=[TokenOut.model_validate(t) for t in tokens]))


@bp.post("/tokens")
@requires(Permission.USERS_ADMIN)
@api_doc("Issue an API token", request=TokenIn, responses={201: TokenCreated}, tag="tokens")
def create_token() -> tuple[Response, int]:
    """Issue an API token; the response is the only place its secret appears."""
    body = parse_body(TokenIn)
    issued = service.create_token(
        db.session(),
        actor(),
        body.kind.value,
        body.name,
        body.environment,
        current_app.config["ENVIRONMENTS"],
    )
    out = TokenCreated.model_validate(
        {**TokenOut.model_validate(issued.token).model_dump(), "secret": issued.secret}
    )
    return _json(out, 201)


@bp.delete("/tokens/<int:token_id>")
@requires(Permission.USERS_ADMIN)
@api_doc("Revoke an API token", responses={200: TokenOut}, tag="tokens")
def revoke_token(token_id: int) -> tuple[Response, int]:
    """Revoke an API token; every worker refuses it within DARKLAUNCH_REFRESH_MS."""
    token = service.revoke_token(db.session(), actor(), token_id)
    return _json(TokenOut.model_validate(token))
