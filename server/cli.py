"""The `darklaunch` command: Flask's CLI with Darklaunch's commands on top."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import db
from server.audit.actions import AuditAction
from server.audit.models import Event
from server.audit.service import Actor, record_event
from server.unit_of_work import complete

DemoSeeder = Callable[[Session, Actor], None]


def add_demo_seeder(app: Flask, name: str, seeder: DemoSeeder) -> None:
    """Let a feature add its own demo data; each seeder runs once per database."""
    app.extensions.setdefault("demo_seeders", []).append((name, seeder))


@click.group()
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    db.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database is at {', '.join(sorted(db.current_migrations(db.engine())))}.")


@db_group.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from alembic import command

    import server.models  # noqa: F401 - completes the metadata

    command.check(db.alembic_config(current_app.config["DATABASE_URL"]))
    click.echo("Models and migrations agree.")


def _demo_admin_file() -> str:
    return os.path.join(current_app.instance_path, "demo-admin.txt")


def _demo_admin(session: Session) -> tuple[str, str]:
    """Create the demo admin once with a generated password; return its credentials."""
    from server.auth import service
    from server.auth.models import User

    email = "admin@darklaunch.test"
    path = _demo_admin_file()
    if session.scalar(select(User.id).where(User.email == email)) is None:
        password = secrets.token_urlsafe(12)
        os.makedirs(current_app.instance_path, exist_ok=True)
        # Written before the user exists, so a failure never leaves an admin nobody can use;
        # readable by this account only from the moment it exists.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{email}\n{password}\n")
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # also when the file was already there
        service.create_user(session, Actor("demo"), email, "admin", password)
    try:
        with open(path, encoding="utf-8") as fh:
            stored_email, password = fh.read().split("\n")[:2]
    except (OSError, ValueError):
        return (
            email,
            f"(unknown: {path} is missing; create another admin with `darklaunch users create`)",
        )
    return stored_email, password


@click.command("demo")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def demo(url: str) -> None:
    """Seed demo data once per feature and print how to sign in."""
    session = db.session()
    email, password = _demo_admin(session)
    where = _demo_admin_file()
    seeders: list[tuple[str, DemoSeeder]] = current_app.extensions.get("demo_seeders", [])
    for name, seeder in seeders:
        done = session.scalar(
            select(Event.id).where(Event.action == AuditAction.DEMO_SEEDED, Event.target == name)
        )
        if done is not None:
            continue
        click.echo(f"Seeding demo data: {name}")
        seeder(session, Actor("demo"))
        record_event(session, Actor("demo"), AuditAction.DEMO_SEEDED, "demo", name)
        complete(session)  # each feature's demo data is its own unit of work
    click.echo("")
    click.echo(f"Darklaunch demo: {url}/login")
    click.echo(f"  email:    {email}")
    click.echo(f"  password: {password}   (stored in {where})")


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_group, "db")
    app.cli.add_command(demo)


def main() -> None:
    """Entry point of the `darklaunch` console script."""
    from server import create_app
    from server.config import ConfigError

    cli = FlaskGroup(
        create_app=create_app,
        add_default_commands=True,
        load_dotenv=False,
        add_version_option=False,
        name="darklaunch",
        help="Darklaunch server and tools.",
    )
    # Client commands run on CI runners against a remote server: they need no database or
    # SECRET_KEY, so they are found without loading this machine's app configuration.
    from server.deploys.cli import deploy

    cli.add_command(deploy)
    try:
        cli.main(prog_name="darklaunch")
    except ConfigError as exc:  # a bad setting: say which, without a traceback
        click.echo(f"darklaunch: {exc}", err=True)
        raise SystemExit(2) from None
