"""`darklaunch deploy record`: run on a CI runner, it gathers the facts and posts them.

This command is a client of a Darklaunch server: it needs no database and no SECRET_KEY, so it
is added to the `darklaunch` command itself rather than loaded with the app's configuration.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
import requests
from pydantic import ValidationError

from server.deploys import collect, display
from server.deploys.schemas import MAX_COMMITS, DeployIn

STATUSES = ("started", "succeeded", "failed", "rolled_back")
TIMEOUT = 30


def _step(message: str) -> None:
    click.echo(f"  {message}")


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        text = str(error["message"])
        fields = (error.get("details") or {}).get("fields") or {}
    except (ValueError, KeyError, TypeError):
        return (response.text.strip().splitlines() or [response.reason or "no reason given"])[0][
            :200
        ]
    if fields:
        text += " " + "; ".join(f"{k}: {v}" for k, v in fields.items())
    return text


class Server:
    """The few calls the command makes, each failing with one clear line."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"Authorization": token, "Accept": "application/json"})

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.http.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
            raise click.ClickException(f"cannot reach {self.url}: {reason}") from None
        if response.status_code >= 400:
            raise click.ClickException(
                f"{self.url} refused {method} {path} ({response.status_code}): "
                + _error_text(response)
            )
        return response

    def previous_sha(self, environment: str, version: str) -> tuple[str, str] | None:
        """(version, sha) of the newest successful deploy of another version, if any."""
        listed = self.call(
            "GET",
            "/api/deploys",
            params={"env": environment, "status": "succeeded", "per_page": 20},
        ).json()
        for deploy in listed.get("deploys", []):
            if deploy.get("version") != version and deploy.get("sha"):
                return str(deploy["version"]), str(deploy["sha"])
        return None


def _parse_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-05-01T12:00:00Z") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give the time with its UTC offset, e.g. Z or +02:00")
    return moment


@click.group("deploy")
def deploy() -> None:
    """Record deploys on a Darklaunch server (run from CI)."""


@deploy.command("record")
@click.option(
    "--server",
    envvar="DARKLAUNCH_SERVER",
    required=True,
    help="Darklaunch address (or env DARKLAUNCH_SERVER).",
)
@click.option(
    "--token",
    envvar="DARKLAUNCH_TOKEN",
    required=True,
    help="A ci API token (or env DARKLAUNCH_TOKEN).",
)
@click.option("--env", "environment", required=True, help="Environment deployed to.")
@click.option("--version", "version", required=True, help="Version label; unique per environment.")
@click.option(
    "--sha", default="HEAD", show_default=True, help="Deployed commit (a sha or revision)."
)
@click.option("--status", type=click.Choice(STATUSES), default="succeeded", show_default=True)
@click.option(
    "--junit",
    "junit",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=True),
    help="JUnit XML report; repeat for several.",
)
@click.option(
    "--coverage",
    "coverage_path",
    type=click.Path(path_type=Path),
    help=".coverage data file, coverage.xml or coverage.json.",
)
@click.option("--url", help="Link to the CI run or release.")
@click.option(
    "--started-at",
    callback=_parse_time,
    help="When the deploy began (ISO 8601 with offset); default: when first recorded.",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=".",
    show_default=True,
    help="Git repository to read commits from.",
)
def record(
    server: str,
    token: str,
    environment: str,
    version: str,
    sha: str,
    status: str,
    junit: tuple[Path, ...],
    coverage_path: Path | None,
    url: str | None,
    started_at: datetime | None,
    repo: Path,
) -> None:
    """Record a deploy: commits since the environment's last deploy, tests and coverage."""
    api = Server(server, token)
    click.echo(f"Recording {version} to {environment} on {api.url}")
    try:
        body = _gather(
            api,
            environment,
            version,
            sha,
            status,
            list(junit),
            coverage_path,
            url,
            started_at,
            repo,
        )
    except collect.CollectError as exc:
        raise click.ClickException(str(exc)) from None
    response = api.call("POST", "/api/deploys", json=body)
    saved = response.json()
    verb = "recorded" if response.status_code == 201 else "updated"
    _step(f"{verb} deploy #{saved['id']}: {saved['status'].replace('_', ' ')}")
    click.echo(f"{api.url}/deploys/{saved['id']}")


def _gather(
    api: Server,
    environment: str,
    version: str,
    revision: str,
    status: str,
    junit: list[Path],
    coverage_path: Path | None,
    url: str | None,
    started_at: datetime | None,
    repo: Path,
) -> dict[str, Any]:
    head = collect.resolve_commit(repo, revision)
    _step(f"commit {head[:12]} ({revision})")
    previous = api.previous_sha(environment, version)
    base = None
    if previous is None:
        _step(f"no earlier successful deploy to {environment}: recording this commit only")
    else:
        base = previous[1]
        _step(f"previous deploy to {environment}: {previous[0]} at {base[:12]}")
        if not collect.has_commit(repo, base):
            raise collect.CollectError(
                f"git: the previous deploy's commit {base[:12]} is not in this clone; "
                "fetch the full history (actions/checkout fetch-depth: 0, GitLab GIT_DEPTH: 0)"
            )
    commits = collect.commits_between(repo, base, head)
    if len(commits) > MAX_COMMITS:
        _step(f"{len(commits)} commits; sending the newest {MAX_COMMITS}")
        commits = commits[:MAX_COMMITS]
    authors = ", ".join(sorted({c.author_name for c in commits})) or "nobody"
    _step(f"{len(commits)} commit{'' if len(commits) == 1 else 's'} by {authors}")
    body: dict[str, Any] = {
        "environment": environment,
        "version": version,
        "sha": head,
        "base_sha": base,
        "status": status,
        "commits": [
            {
                "sha": c.sha,
                "author_name": c.author_name,
                "author_email": c.author_email,
                "committed_at": c.committed_at.isoformat(),
                "subject": c.subject,
            }
            for c in commits
        ],
    }
    if junit:
        counts = collect.read_junit_files(junit)
        _step(
            f"tests ({', '.join(str(p) for p in junit)}): {counts.passed} passed, "
            f"{counts.failed} failed, {counts.errors} errors, {counts.skipped} skipped"
            + (f" in {display.duration(counts.duration)}" if counts.duration is not None else "")
        )
        body["tests"] = {
            "passed": counts.passed,
            "failed": counts.failed,
            "errors": counts.errors,
            "skipped": counts.skipped,
            "duration_seconds": counts.duration,
        }
    if coverage_path is not None:
        figures = collect.read_coverage(coverage_path)
        _step(
            f"coverage ({coverage_path}, {figures.kind}): {display.percent(figures.line)} lines"
            + ("" if figures.branch is None else f", {display.percent(figures.branch)} branches")
        )
        body["coverage"] = {"line_percent": figures.line, "branch_percent": figures.branch}
    if url:
        body["url"] = url
    if started_at is not None:
        body["started_at"] = started_at.isoformat()
    try:
        DeployIn.model_validate(body)  # the server's own rules, checked before sending
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise collect.CollectError(f"{where}: {first['msg']}") from None
    return body
