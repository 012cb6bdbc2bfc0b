"""`darklaunch users ...` and `darklaunch tokens ...`: the same services the settings page calls."""

from __future__ import annotations

import sys

import click
from flask import current_app

from server import db
from server.access import TokenKind
from server.audit.service import Actor
from server.auth import service
from server.errors import DomainError


def fail(exc: DomainError) -> None:
    """Print a service error with its field messages and exit 1."""
    fields = exc.details.get("fields", {}) if exc.details else {}
    detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
    raise click.ClickException(f"{exc.message} {detail}".strip())


@click.group()
def users() -> None:
    """Manage team members."""


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "developer", "editor", "viewer", "team"]),
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(email: str, role: str, password_stdin: bool) -> None:
    """Create a team member; the password comes from standard input."""
    if not password_stdin:
        raise click.UsageError("Pass --password-stdin and send the password on standard input.")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = service.create_user(db.session(), Actor.cli(), email, role, password)
    except DomainError as exc:
        fail(exc)
    else:
        click.echo(f"Created {user.email} ({user.role}).")


@users.command("list")
def list_users() -> None:
    """List team members."""
    for user in service.list_users(db.session()):
        state = "disabled" if user.disabled_at else "active"
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}")


def _user_id(email: str) -> int:
    from sqlalchemy import select

    from server.auth.models import User

    found = db.session().scalar(select(User.id).where(User.email == email.strip().lower()))
    if found is None:
        raise click.ClickException(f"No user {email}.")
    return int(found)


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "developer", "editor", "viewer", "team"]))
def set_role(email: str, role: str) -> None:
    """Change a team member's role; their open sessions have the new one at once."""
    from server.auth import accounts

    try:
        user = accounts.set_user_role(db.session(), Actor.cli(), _user_id(email), role)
    except DomainError as exc:
        fail(exc)
    else:
        click.echo(f"{user.email} is now {user.role}.")


@users.command("reset-link")
@click.argument("email")
def reset_link(email: str) -> None:
    """Print a one-time password reset link (24 hours, works once) for a team member."""
    from server.auth import accounts

    try:
        issued = accounts.issue_reset(
            db.session(), Actor.cli(), _user_id(email), sso_only=current_app.config["OIDC_ONLY"]
        )
    except DomainError as exc:
        fail(exc)
    else:
        base = current_app.config["BASE_URL"] or "http://127.0.0.1:8000"
        click.echo(f"{base}/reset/{issued.secret}")


@users.command("reset-totp")
@click.argument("email")
def reset_totp(email: str) -> None:
    """Forget a user's TOTP secret (a lost phone): they enrol again at their next sign-in."""
    from server.auth import accounts

    accounts.forget_totp(db.session(), Actor.cli(), _user_id(email))
    click.echo(f"{email}: TOTP forgotten; a new one is set up at the next sign-in.")


@click.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.option("--kind", required=True, type=click.Choice([k.value for k in TokenKind]))
@click.option("--env", "environment", default=None, help="Environment (client and frontend).")
@click.option("--name", required=True)
def create_token(kind: str, environment: str | None, name: str) -> None:
    """Issue a token and print it alone on the last line (it is not shown again)."""
    try:
        issued = service.create_token(
            db.session(), Actor.cli(), kind, name, environment, current_app.config["ENVIRONMENTS"]
        )
    except DomainError as exc:
        fail(exc)
    else:
        click.echo(
            f"Created {kind} token {name!r}"
            + (f" for {environment}" if environment else "")
            + ". Store it now: it is shown only once.",
            err=True,
        )
        click.echo(issued.secret)


@tokens.command("list")
def list_tokens() -> None:
    """List tokens (never their secrets)."""
    for t in service.list_tokens(db.session()):
        state = "revoked" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.name}\t{t.kind}\t{t.environment or '-'}\t{t.prefix}…\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke a token by id."""
    try:
        token = service.revoke_token(db.session(), Actor.cli(), token_id)
    except DomainError as exc:
        fail(exc)
    else:
        click.echo(f"Revoked {token.name}.")
