"""The deploy reports in the static export: history pages, one page per deploy, metrics.

Rows are streamed in keyset chunks and each page is written as soon as it is full, so the
export of 10,000 deploys costs ten times that of 1,000.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy.orm import Session

from server.deploys import reports, service
from server.deploys.links import StaticLinks
from server.deploys.models import Deploy
from server.deploys.views import PAGE_SIZE, detail_context, history_context, metrics_context
from server.site.builder import SiteContext


def _history(session: Session, ctx: SiteContext, links: StaticLinks, env: str | None) -> None:
    f = service.DeployFilter(env)
    total = service.count_deploys(session, f)
    page, rows = 1, []

    def flush(chunk: list[Deploy], number: int) -> None:
        ctx.render(
            f"{links.folder}/{links.history(env, number)}",
            "deploys/history.html",
            **history_context(session, links, env, None, number, chunk, total),
        )

    for deploy in service.iter_deploys(session, f):
        rows.append(deploy)
        if len(rows) == PAGE_SIZE:
            flush(rows, page)
            page, rows = page + 1, []
    if rows or page == 1:
        flush(rows, page)


def write_deploy_reports(session: Session, out_dir: Path, ctx: SiteContext) -> None:
    """Write deploys/: history (all and per environment), every deploy, metrics."""
    links = StaticLinks()
    environments = current_app.config["ENVIRONMENTS"]
    for env in [None, *environments]:
        _history(session, ctx, links, env)
    ctx.echo(f"  history of {len(environments)} environments written")
    total = service.count_deploys(session, service.DeployFilter())
    with ctx.progress("deploy pages", total) as bar:
        for detail in service.iter_deploy_details(session):
            ctx.render(
                f"{links.folder}/{links.deploy(detail.deploy.id)}",
                "deploys/detail.html",
                **detail_context(links, detail),
            )
            bar.update(1)
    for env in environments:
        for days in reports.WINDOWS:
            ctx.render(
                f"{links.folder}/{links.metrics(env, days)}",
                "deploys/metrics.html",
                **metrics_context(session, links, env, days),
            )
    ctx.echo(f"  metrics for {len(environments)} environments and {len(reports.WINDOWS)} windows")
