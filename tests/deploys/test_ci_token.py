"""`darklaunch deploy record` with a ci token: CI records deploys without holding an admin token."""

from __future__ import annotations

from collections.abc import Callable

import requests

from tests.conftest import LiveServer
from tests.deploys.conftest import Project, darklaunch


def test_deploy_record_works_with_a_ci_token_and_the_token_does_nothing_else(
    live_server: LiveServer, ci_project: Project, make_token: Callable[..., str]
) -> None:
    token = make_token("ci")
    assert token.startswith("dl_ci_")
    base = ["deploy", "record", "--server", live_server.url, "--token", token]
    first, _, third = ci_project.shas
    done = darklaunch(ci_project, *base, "--env", "production", "--version", "v1", "--sha", first)
    assert done.returncode == 0, done.stdout + done.stderr
    # The next deploy finds the previous one through the deploy list, which a ci token reads.
    nxt = darklaunch(ci_project, *base, "--env", "production", "--version", "v2", "--sha", third)
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert f"  previous deploy to production: v1 at {first[:12]}" in nxt.stdout
    headers = {"Authorization": token}
    for path in ("/api/deploys/1", "/api/admin/tokens", "/api/admin/projects/default/features"):
        refused = requests.get(f"{live_server.url}{path}", headers=headers, timeout=10)
        assert refused.status_code == 403, path
    flag = requests.post(
        f"{live_server.url}/api/admin/projects/default/features",
        json={"name": "sneaky"},
        headers=headers,
        timeout=10,
    )
    assert flag.status_code == 403
