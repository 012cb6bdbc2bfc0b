"""The `darklaunch` command: migrations, the demo seed, and the console script itself."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import db
from server.audit.models import Event
from server.audit.service import Actor, record_event
from server.auth.models import User
from server.cli import add_demo_seeder
from server.config import ROOT
from tests.conftest import make_app, sign_in


def test_db_upgrade_migrates_an_empty_database_and_check_agrees(
    empty_database_url: str, tmp_path: Path
) -> None:
    app = make_app(empty_database_url, INSTANCE_PATH=str(tmp_path))
    runner = app.test_cli_runner()
    try:
        upgraded = runner.invoke(args=["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        head = next(iter(db.migration_heads()))
        assert upgraded.output.strip() == f"Database is at {head}."
        checked = runner.invoke(args=["db", "check"])
        assert checked.exit_code == 0, checked.output
        assert "Models and migrations agree." in checked.output
        again = runner.invoke(args=["db", "upgrade"])  # running it twice changes nothing
        assert again.exit_code == 0 and head in again.output
    finally:
        app.extensions["db.engine"].dispose()


def demo_credentials(output: str) -> tuple[str, str]:
    lines = {
        key.strip(): value.split()[0]
        for key, _, value in (line.partition(":") for line in output.splitlines())
        if key.strip() in ("email", "password")
    }
    return lines["email"], lines["password"]


def test_demo_creates_an_admin_once_with_a_generated_password(
    app: Flask, runner: FlaskCliRunner
) -> None:
    seeded: list[str] = []

    def seed_sample(session: Session, actor: Actor) -> None:
        seeded.append(actor.label)
        record_event(session, actor, "sample.created", "sample", "one")

    add_demo_seeder(app, "sample", seed_sample)
    first = runner.invoke(args=["demo", "--url", "http://127.0.0.1:8123"])
    assert first.exit_code == 0, first.output
    assert "Darklaunch demo: http://127.0.0.1:8123/login" in first.output
    assert "Seeding demo data: sample" in first.output
    email, password = demo_credentials(first.output)
    assert email == "admin@darklaunch.test"
    assert len(password) >= 16

    stored = Path(app.instance_path) / "demo-admin.txt"
    assert stored.read_text().split("\n")[:2] == [email, password]
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert str(stored) in first.output

    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert demo_credentials(second.output) == (email, password)
    assert "Seeding" not in second.output
    assert seeded == ["demo"]
    with app.app_context():
        s = db.session()
        assert s.scalar(select(func.count(User.id)).where(User.email == email)) == 1
        seeded_once = select(func.count(Event.id)).where(Event.action == "demo.seeded")
        assert s.scalar(seeded_once) == len(app.extensions["demo_seeders"])

    client = app.test_client()
    sign_in(client, email, password)
    assert client.get("/settings").status_code == 200


def test_demo_says_so_when_the_stored_password_is_gone(app: Flask, runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["demo"]).exit_code == 0
    (Path(app.instance_path) / "demo-admin.txt").unlink()
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0
    assert "is missing; create another admin with `darklaunch users create`" in again.output


def run_console_script(args: list[str], env: dict[str, str], stdin: str = "") -> Any:
    script = Path(sys.executable).parent / "darklaunch"
    return subprocess.run(
        [str(script), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_console_script_migrates_and_manages_users_and_tokens(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DARKLAUNCH_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }
    upgraded = run_console_script(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    created = run_console_script(
        ["users", "create", "ops@example.com", "--role", "admin", "--password-stdin"],
        env,
        stdin="a long enough password\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created ops@example.com (admin)."
    token = run_console_script(["tokens", "create", "--kind", "admin", "--name", "ci"], env)
    assert token.returncode == 0, token.stderr
    assert token.stdout.splitlines()[-1].startswith("dl_admin_")
    assert "shown only once" in token.stderr
