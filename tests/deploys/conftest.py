"""Factories for deploy tests: record deploys with exact times straight through the service."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.service import Actor
from server.deploys import service
from server.deploys.schemas import DeployIn

# A Monday, so weekly buckets in tests start on round dates.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

Commit = datetime | tuple[datetime, str]


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def deploy_body(
    version: str,
    *,
    env: str = "production",
    status: str = "succeeded",
    started: datetime = T0,
    minutes: float = 10,
    commits: Sequence[Commit] = (),
    tests: dict[str, Any] | None = None,
    coverage: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A POST /api/deploys body (as Python values) with `commits` given by their times."""
    body: dict[str, Any] = {
        "environment": env,
        "version": version,
        "sha": sha_of(f"{env}-{version}"),
        "status": status,
        "started_at": started,
        "commits": [
            {
                "sha": sha_of(f"{env}-{version}-{i}"),
                "author_name": c[1] if isinstance(c, tuple) else "Ada Osei",
                "author_email": "ada@example.com",
                "committed_at": c[0] if isinstance(c, tuple) else c,
                "subject": f"Change {i} of {version}",
            }
            for i, c in enumerate(commits)
        ],
        **extra,
    }
    if status != "started":
        body["finished_at"] = started + timedelta(minutes=minutes)
    if tests is not None:
        body["tests"] = tests
    if coverage is not None:
        body["coverage"] = coverage
    return body


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as JSON text values (datetimes as ISO 8601)."""
    return DeployIn.model_validate(body).model_dump(mode="json", exclude_unset=True)


@pytest.fixture
def record(app: Flask) -> Callable[..., int]:
    """record("v1", env=..., status=..., started=..., commits=[datetime, ...]) -> deploy id."""

    def factory(version: str, **kwargs: Any) -> int:
        body = deploy_body(version, **kwargs)
        now = body.get("finished_at") or body["started_at"]
        with app.app_context(), db.new_session() as session:
            deploy, _ = service.record_deploy(
                session,
                Actor("ci"),
                DeployIn.model_validate(body),
                app.config["ENVIRONMENTS"],
                now=now,
            )
            return deploy.id

    return factory


# ---- a real project on a CI runner: git history, pytest's JUnit XML, coverage.py output -----

CALC = """\
def grade(score):
    if score >= 90:
        return "A"
    if score >= 50:
        return "pass"
    return "fail"


def unused():
    return 1
"""

TEST_CALC = """\
import pytest

from calc import grade


def test_top_grade():
    assert grade(95) == "A"


def test_pass_grade():
    assert grade(60) == "pass"


def test_a_wrong_expectation():
    assert grade(50) == "A"


@pytest.fixture
def broken():
    raise RuntimeError("fixture failed")


def test_with_broken_fixture(broken):
    pass


@pytest.mark.skip(reason="not written yet")
def test_failing_grade():
    assert grade(10) == "fail"
"""

# (author, ISO time with offset, subject): the history the deploys are recorded from.
HISTORY = (
    ("Ada Osei", "2025-01-06T09:00:00+00:00", "Add grading"),
    ("Bruno Lima", "2025-01-07T10:30:00+02:00", "Grade borderline scores"),
    ("Chen Wei", "2025-01-07T15:00:00+00:00", "Test the grading rules"),
)


@dataclass(frozen=True)
class Project:
    root: Path
    env: dict[str, str]
    shas: list[str]  # HISTORY's commits, oldest first

    def git(self, *args: str, extra: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()


def clean_env(home: Path) -> dict[str, str]:
    """An environment like a fresh CI runner's: no coverage or pytest settings leak in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }


@pytest.fixture(scope="session")
def ci_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A git repository with three dated commits, a JUnit file and coverage data from pytest."""
    root = tmp_path_factory.mktemp("ci-project")
    project = Project(root, clean_env(root), [])
    project.git("init", "-q", "-b", "main")
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TEST_CALC)
    for i, (author, when, subject) in enumerate(HISTORY):
        (root / "CHANGES").write_text(f"{i}: {subject}\n")
        project.git("add", "-A")
        email = author.split()[0].lower() + "@example.com"
        project.git(
            "commit",
            "-q",
            "-m",
            subject,
            extra={
                "GIT_AUTHOR_NAME": author,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": author,
                "GIT_COMMITTER_EMAIL": email,
                "GIT_AUTHOR_DATE": when,
                "GIT_COMMITTER_DATE": when,
            },
        )
        project.shas.append(project.git("rev-parse", "HEAD"))
    python = [sys.executable, "-m"]
    run = {"cwd": root, "env": project.env, "capture_output": True, "text": True}
    tests = subprocess.run(  # a failing and an erroring test: pytest exits 1, as in real CI
        [
            *python,
            "coverage",
            "run",
            "--branch",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=junit.xml",
            "test_calc.py",
        ],
        check=False,
        **run,
    )
    assert tests.returncode == 1, tests.stdout + tests.stderr
    for fmt, name in (("xml", "coverage.xml"), ("json", "coverage.json")):
        subprocess.run([*python, "coverage", fmt, "-o", name], check=True, **run)
    return project


DARKLAUNCH = str(Path(sys.executable).parent / "darklaunch")


def darklaunch(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script the way a CI job does, in the project folder."""
    return subprocess.run(
        [DARKLAUNCH, *args],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
