"""Where deploy pages point: the live server's URLs, or files of the static export.

The same templates serve both; they ask `links` for every address and extend `links.layout`.
"""

from __future__ import annotations

from typing import Protocol

from flask import url_for


class DeployLinks(Protocol):
    layout: str
    live: bool

    def asset(self, path: str) -> str: ...
    def history(self, environment: str | None = None, page: int = 1) -> str: ...
    def deploy(self, deploy_id: int) -> str: ...
    def metrics(self, environment: str, days: int) -> str: ...


class LiveLinks:
    """URLs of the running server; history links keep the status filter."""

    layout = "base.html"
    live = True

    def __init__(self, status: str | None = None) -> None:
        self.status = status

    def asset(self, path: str) -> str:
        return url_for("static", filename=path)

    def history(self, environment: str | None = None, page: int = 1) -> str:
        return url_for(
            "deploys.history",
            env=environment or None,
            status=self.status or None,
            page=page if page > 1 else None,
        )

    def deploy(self, deploy_id: int) -> str:
        return url_for("deploys.detail", deploy_id=deploy_id)

    def metrics(self, environment: str, days: int) -> str:
        return url_for("deploys.metrics", env=environment, window=days)


class StaticLinks:
    """Relative file names inside the export's `deploys/` folder (all pages are siblings)."""

    layout = "site/base.html"
    live = False
    folder = "deploys"

    def asset(self, path: str) -> str:
        return f"../static/{path}"

    def history(self, environment: str | None = None, page: int = 1) -> str:
        if environment is None:
            return "index.html" if page == 1 else f"all-{page}.html"
        return f"env-{environment}.html" if page == 1 else f"env-{environment}-{page}.html"

    def deploy(self, deploy_id: int) -> str:
        return f"deploy-{deploy_id}.html"

    def metrics(self, environment: str, days: int) -> str:
        return f"metrics-{environment}-{days}.html"
