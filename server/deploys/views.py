"""The deploys API (`/api/deploys`) and the team's pages: history, one deploy, metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from server import clock, db
from server.access import Permission, requires
from server.api import api_doc, parse_body, validate
from server.deploys import reports, service
from server.deploys.links import DeployLinks, LiveLinks
from server.deploys.metrics import DEFINITIONS
from server.deploys.models import Deploy, DeployCommit, DeployStatus
from server.deploys.schemas import (
    CommitOut,
    CoverageOut,
    DeployIn,
    DeployOut,
    DeployPage,
    DeployPatch,
    DeploysQuery,
    SuiteOut,
)
from server.errors import Invalid
from server.pagination import page_number
from server.web import actor

bp = Blueprint("deploys", __name__)
PAGE_SIZE = 50


def deploy_out(deploy: Deploy, commits: Sequence[DeployCommit]) -> dict[str, Any]:
    """The API's view of a deploy, checked against DeployOut so the schema never lies."""
    tests = None
    if deploy.tests_passed is not None:
        tests = SuiteOut(
            passed=deploy.tests_passed,
            failed=deploy.tests_failed or 0,
            errors=deploy.tests_errors or 0,
            skipped=deploy.tests_skipped or 0,
            total=deploy.tests_total or 0,
            duration_seconds=deploy.tests_duration,
        )
    coverage = None
    if deploy.coverage_line is not None:
        coverage = CoverageOut(
            line_percent=deploy.coverage_line, branch_percent=deploy.coverage_branch
        )
    out = DeployOut(
        id=deploy.id,
        environment=deploy.environment,
        version=deploy.version,
        sha=deploy.sha,
        base_sha=deploy.base_sha,
        status=DeployStatus(deploy.status).value,
        started_at=deploy.started_at,
        finished_at=deploy.finished_at,
        duration_seconds=deploy.duration_seconds,
        url=deploy.url,
        tests=tests,
        coverage=coverage,
        commit_count=deploy.commit_count,
        authors=service.authors_of(commits),
        commits=[
            CommitOut(
                sha=c.sha,
                author_name=c.author_name,
                author_email=c.author_email,
                committed_at=c.committed_at,
                subject=c.subject,
            )
            for c in commits
        ],
        recorded_by=deploy.recorded_by,
        created_at=deploy.created_at,
        updated_at=deploy.updated_at,
    )
    return out.model_dump(mode="json")


def _one(session: Session, deploy: Deploy) -> dict[str, Any]:
    return deploy_out(deploy, service.commits_by_deploy(session, [deploy.id])[deploy.id])


def _environment(name: str | None) -> str | None:
    environments = current_app.config["ENVIRONMENTS"]
    if name and name not in environments:
        raise Invalid(
            f"There is no environment named {name!r}.",
            {"fields": {"env": f"Use one of: {', '.join(environments)}."}},
        )
    return name or None


@bp.route("/api/deploys", methods=["POST"])
@requires(Permission.DELIVERY_RECORD)
@api_doc(
    "Record a deploy; the same environment and version again updates it",
    request=DeployIn,
    responses={200: DeployOut, 201: DeployOut},
    tag="deploys",
)
def api_record() -> tuple[Response, int]:
    """Record a deploy from CI (201), or update the same version's record (200)."""
    data = parse_body(DeployIn)
    session = db.session()
    deploy, created = service.record_deploy(
        session, actor(), data, current_app.config["ENVIRONMENTS"]
    )
    return jsonify(_one(session, deploy)), 201 if created else 200


@bp.route("/api/deploys")
# A ci token reads the list too: `deploy record` looks up the previous deploy's commit there.
@requires(Permission.READ, Permission.DELIVERY_RECORD)
@api_doc(
    "List deploys newest first, with tests, coverage and commits",
    query=DeploysQuery,
    responses={200: DeployPage},
    tag="deploys",
)
def api_list() -> Response:
    """List deploys as JSON, newest first, one page at a time."""
    q = validate(DeploysQuery, request.args.to_dict())
    session = db.session()
    f = service.DeployFilter(_environment(q.env), q.status)
    rows, total = service.list_deploys(session, f, page=q.page, per_page=q.per_page)
    commits = service.commits_by_deploy(session, [d.id for d in rows])
    page = DeployPage.model_validate(
        {
            "deploys": [deploy_out(d, commits[d.id]) for d in rows],
            "total": total,
            "page": q.page,
            "per_page": q.per_page,
        }
    )
    return jsonify(page.model_dump(mode="json"))


@bp.route("/api/deploys/<int:deploy_id>")
@requires(Permission.READ)
@api_doc("Show one deploy", responses={200: DeployOut}, tag="deploys")
def api_get(deploy_id: int) -> Response:
    """Show one deploy as JSON."""
    session = db.session()
    return jsonify(_one(session, service.get_deploy(session, deploy_id)))


@bp.route("/api/deploys/<int:deploy_id>", methods=["PATCH"])
@requires(Permission.DELIVERY_RECORD)
@api_doc("Change a deploy", request=DeployPatch, responses={200: DeployOut}, tag="deploys")
def api_patch(deploy_id: int) -> Response:
    """Change a recorded deploy's status, times, figures, commits or link."""
    data = parse_body(DeployPatch)
    session = db.session()
    deploy = service.update_deploy(session, actor(), deploy_id, data)
    return jsonify(_one(session, deploy))


# ---- pages ---------------------------------------------------------------------------------


def history_context(
    session: Session,
    links: DeployLinks,
    environment: str | None,
    status: str | None,
    page: int,
    rows: Sequence[Deploy],
    total: int,
) -> dict[str, Any]:
    """What deploys/history.html needs, live or in the static export."""
    return {
        "links": links,
        "environment": environment,
        "status": status,
        "statuses": [s.value for s in DeployStatus],
        "environments": current_app.config["ENVIRONMENTS"],
        "default_environment": default_environment(),
        "rows": rows,
        "authors": service.authors_by_deploy(session, [d.id for d in rows]),
        "total": total,
        "page": page,
        "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "coverage_target": current_app.config["COVERAGE_TARGET"],
    }


@bp.route("/deploys")
@requires(Permission.READ)
def history() -> str:
    """List deploys newest first, filtered by environment and status."""
    environment = _environment(request.args.get("env"))
    status = request.args.get("status") or None
    if status is not None and status not in DeployStatus.__members__.values():
        raise Invalid(f"There is no deploy status named {status!r}.")
    page = page_number()
    session = db.session()
    rows, total = service.list_deploys(
        session, service.DeployFilter(environment, status), page=page, per_page=PAGE_SIZE
    )
    return render_template(
        "deploys/history.html",
        **history_context(session, LiveLinks(status), environment, status, page, rows, total),
    )


def detail_context(links: DeployLinks, detail: service.DeployDetail) -> dict[str, Any]:
    return {
        "links": links,
        "d": detail,
        "deploy": detail.deploy,
        "coverage_target": current_app.config["COVERAGE_TARGET"],
    }


@bp.route("/deploys/<int:deploy_id>")
@requires(Permission.READ)
def detail(deploy_id: int) -> str:
    """Show one deploy: commits, tests, coverage and the flags changed since the last one."""
    found = service.deploy_detail(db.session(), deploy_id)
    return render_template("deploys/detail.html", **detail_context(LiveLinks(), found))


def default_environment() -> str:
    environments: Sequence[str] = current_app.config["ENVIRONMENTS"]
    return "production" if "production" in environments else environments[-1]


def metrics_context(
    session: Session, links: DeployLinks, environment: str, days: int
) -> dict[str, Any]:
    """What deploys/metrics.html needs for one environment and window."""
    now = clock.now()
    target = current_app.config["COVERAGE_TARGET"]
    summaries = [
        reports.environment_report(session, env, days, now=now)
        for env in current_app.config["ENVIRONMENTS"]
    ]
    report = next(r for r in summaries if r.environment == environment)
    return {
        "links": links,
        "environment": environment,
        "environments": current_app.config["ENVIRONMENTS"],
        "days": days,
        "windows": reports.WINDOWS,
        "report": report,
        "summaries": summaries,
        "charts": reports.report_charts(report, target),
        "definitions": DEFINITIONS,
        "coverage_target": target,
    }


@bp.route("/deploys/metrics")
@requires(Permission.READ)
def metrics() -> str:
    """Show the four DORA keys and weekly trends for one environment and window."""
    environment = _environment(request.args.get("env")) or default_environment()
    raw = request.args.get("window", "30")
    if raw not in {str(w) for w in reports.WINDOWS}:
        raise Invalid(
            "Choose a window of 30, 90 or 365 days.",
            {"fields": {"window": "Use 30, 90 or 365."}},
        )
    return render_template(
        "deploys/metrics.html",
        **metrics_context(db.session(), LiveLinks(), environment, int(raw)),
    )
