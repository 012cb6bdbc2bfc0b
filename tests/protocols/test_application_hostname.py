"""The `applicationHostname` strategy: written cases (the specification has none).

From Unleash's documentation of the built-in strategies: "Hosts" (`applicationHostname`,
parameter `hostNames`, a comma-separated list) turns the flag on for SDK instances whose host
name is in the list; each SDK checks its own machine's host name. Server-side evaluation has no
such host, so Darklaunch's frontend API and OFREP (like Unleash's) count it as not matching.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.common.node import run_node
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

FEATURES = "/api/admin/projects/default/features"


def hosts(names: str) -> dict[str, Any]:
    return {"name": "applicationHostname", "parameters": {"hostNames": names}}


def test_sdks_match_their_own_host_and_the_server_never_does(
    live_server: LiveServer,
    make_flags: Flags,
    make_token: Callable[..., str],
    client: Any,
) -> None:
    make_flags.create("this-machine", strategies=[hosts("build-07, CI-Runner-1")])
    make_flags.create("other-machines", strategies=[hosts("build-07,build-08")])
    make_flags.create(
        "this-machine-or-everyone-else",
        strategies=[hosts("build-07"), {"name": "default"}],
    )
    token = make_token("client", "production")
    # Node's unleash-client takes the host name from HOSTNAME (else the OS), case-insensitively.
    with run_node(
        "evaluate",
        DARKLAUNCH_URL=live_server.url,
        DARKLAUNCH_TOKEN=token,
        FLAGS="this-machine,other-machines,this-machine-or-everyone-else",
        HOSTNAME="ci-runner-1",
    ) as sdk:
        answers = sdk.wait_for(lambda m: m.get("event") == "answers")["answers"]
    assert answers == {
        "this-machine": True,
        "other-machines": False,
        "this-machine-or-everyone-else": True,
    }

    frontend = make_token("frontend", "production")
    listed = client.get("/api/frontend", headers={"Authorization": frontend}).get_json()
    names = {t["name"] for t in listed["toggles"]}
    assert names == {"this-machine-or-everyone-else"}
    answer = client.post(
        "/ofrep/v1/evaluate/flags/this-machine",
        json={"context": {"targetingKey": "u1"}},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()
    assert answer["value"] is False


def test_host_names_are_required_and_listed_as_a_strategy_type(
    api: Callable[..., Any], make_flags: Flags
) -> None:
    make_flags.create("f", enabled=False)
    url = f"{FEATURES}/f/environments/production/strategies"
    assert api("post", url, json=hosts(" , ")).status_code == 400
    added = api("post", url, json=hosts("a, b"))
    assert added.get_json()["parameters"] == {"hostNames": "a,b"}
    listed = api("get", "/api/admin/strategies").get_json()["strategies"]
    assert "applicationHostname" in [s["name"] for s in listed]
