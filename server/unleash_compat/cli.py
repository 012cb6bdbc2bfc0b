"""`darklaunch import --from-unleash`: Unleash's per-environment exports (or a live pull) in.

    darklaunch import --from-unleash production.json development.json --segments segments.json
    darklaunch import --from-unleash --url https://unleash.example.com --token "$UNLEASH_TOKEN"

Files are `POST /api/admin/features-batch/export` answers, one per environment (the environment
is read from the file; a file without flags is named after it: `production.json`). The segment
list is `GET /api/admin/segments`. A live pull asks the Unleash server for both, for every
environment that is also configured here, with the custom strategy definitions
(`GET /api/admin/strategies`), and takes each environment's strategy order from the flags
themselves (the export does not carry it). From files, a custom strategy without a definition here
is created from its use (with a note).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import requests
from flask import current_app

from server import db
from server.audit.service import Actor
from server.errors import DomainError, Invalid
from server.unleash_compat import batch

TIMEOUT = 30


def _read_json(path: str) -> Any:
    if path == "-":
        return json.loads(sys.stdin.read())
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise Invalid(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise Invalid(f"{path} is not JSON: {exc}") from None


def source_from_files(paths: list[str], segments: str | None) -> batch.UnleashSource:
    exports: dict[str, dict[str, Any]] = {}
    for path in paths:
        doc = _read_json(path)
        try:
            environment = batch.export_environment(doc, Path(path).stem)
        except Invalid as exc:
            raise Invalid(f"{path}: {exc.message}") from None
        if environment in exports:
            raise Invalid(f"{path}: a second export of {environment!r}; give one per environment.")
        exports[environment] = doc
    segment_list = None
    if segments is not None:
        data = _read_json(segments)
        segment_list = data.get("segments") if isinstance(data, dict) else data
        if not isinstance(segment_list, list):
            raise Invalid(f"{segments}: expected GET /api/admin/segments (`{{segments: [...]}}`).")
    return batch.UnleashSource(exports, segment_list, origin=", ".join(paths))


class _Unleash:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"Authorization": token, "Accept": "application/json"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.http.request(method, self.url + path, json=body, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Invalid(f"Unleash at {self.url} did not answer: {exc}") from None
        if response.status_code in (401, 403):
            raise Invalid(f"Unleash refused the token ({response.status_code} on {path}).")
        if not response.ok:
            raise Invalid(f"Unleash answered {response.status_code} to {method} {path}.")
        return response.json()


def _ordered(unleash: _Unleash, doc: dict[str, Any], environment: str) -> None:
    """Sort the export's strategies by each flag's own strategy order in ENVIRONMENT."""
    order: dict[str, int] = {}
    for feature in doc.get("features") or []:
        name = requests.utils.quote(str(feature["name"]), safe="")
        project = requests.utils.quote(str(feature.get("project") or "default"), safe="")
        full = unleash.call("GET", f"/api/admin/projects/{project}/features/{name}")
        for env in full.get("environments") or []:
            if env.get("name") == environment:
                for i, strategy in enumerate(env.get("strategies") or []):
                    order[str(strategy.get("id"))] = int(strategy.get("sortOrder", i))
    doc["featureStrategies"] = sorted(
        doc.get("featureStrategies") or [], key=lambda s: order.get(str(s.get("id")), 0)
    )


def source_from_server(url: str, token: str, environments: tuple[str, ...]) -> batch.UnleashSource:
    unleash = _Unleash(url, token)
    theirs = [e["name"] for e in unleash.call("GET", "/api/admin/environments")["environments"]]
    exports = {}
    for environment in [e for e in theirs if e in environments]:
        doc = unleash.call(
            "POST",
            "/api/admin/features-batch/export",
            {"environment": environment, "features": []},
        )
        _ordered(unleash, doc, environment)
        exports[environment] = doc
    if not exports:
        raise Invalid(
            f"Unleash has the environments {', '.join(theirs)}; none is configured here "
            f"({', '.join(environments)})."
        )
    segments = unleash.call("GET", "/api/admin/segments").get("segments") or []
    strategies = unleash.call("GET", "/api/admin/strategies").get("strategies") or []
    return batch.UnleashSource(exports, segments, strategies, origin=url)


def import_from_unleash(
    paths: list[str], segments: str | None, url: str | None, token: str | None, dry_run: bool
) -> None:
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    try:
        if url:
            if paths or segments:
                raise Invalid("Give export files or --url, not both.")
            if not token:
                raise Invalid("--url needs an Unleash admin token (--token or UNLEASH_TOKEN).")
            source = source_from_server(url, token, environments)
        else:
            if not paths:
                raise Invalid("Give the Unleash export files (one per environment) or --url.")
            source = source_from_files(paths, segments)
        report = batch.import_unleash(
            db.session(), Actor.cli(), source, environments, dry_run=dry_run
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    for line in report.lines:
        click.echo(line)
    for problem in report.problems:
        click.echo(f"left out   {problem}")
    for note in report.notes:
        click.echo(f"note       {note}")
    click.echo(report.summary(dry_run))
