"""Unleash's admin metadata endpoints: the one project and the configured environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.flags.admin_meta import (
    BUILT_IN_STRATEGIES,
    EnvironmentOut,
    EnvironmentsOut,
    ProjectOverviewOut,
    ProjectsOut,
    StrategyDefinitionOut,
    StrategyDefinitionsOut,
    accepted_strategy_names,
)
from tests.conftest import sign_in

FEATURES = "/api/admin/projects/default/features"
Api = Callable[..., Any]


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"ENVIRONMENTS": ("development", "staging", "production"), "GATE_ENV": "production"}


def flag(api: Api, name: str, kind: str = "release") -> None:
    response = api("post", FEATURES, json={"name": name, "type": kind})
    assert response.status_code == 200, response.get_json()


def switch_on(api: Api, name: str, environment: str) -> None:
    url = f"{FEATURES}/{name}/environments/{environment}/on"
    response = api("post", url)
    assert response.status_code == 200, response.get_json()


def test_projects_lists_the_one_default_project_with_its_live_flags(api: Api) -> None:
    flag(api, "a")
    flag(api, "b", "kill-switch")
    flag(api, "gone")
    assert api("delete", f"{FEATURES}/gone").status_code == 202

    response = api("get", "/api/admin/projects")

    assert response.status_code == 200
    body = ProjectsOut.model_validate(response.get_json()).model_dump()
    assert body == {
        "version": 1,
        "projects": [
            {
                "id": "default",
                "name": "Default",
                "description": "Default project",
                "featureCount": 2,
            }
        ],
    }


def test_project_default_has_the_environments_and_counts_by_type(api: Api) -> None:
    flag(api, "a")
    flag(api, "b")
    flag(api, "c", "kill-switch")

    response = api("get", "/api/admin/projects/default")

    assert response.status_code == 200
    body = ProjectOverviewOut.model_validate(response.get_json()).model_dump()
    assert body["version"] == 1
    assert body["name"] == "Default"
    assert body["environments"] == [
        {"environment": "development"},
        {"environment": "staging"},
        {"environment": "production"},
    ]
    assert body["featureTypeCounts"] == [
        {"type": "kill-switch", "count": 1},
        {"type": "release", "count": 2},
    ]


@pytest.mark.parametrize("project", ["other", "Default", "default "])
def test_any_other_project_is_404(api: Api, project: str) -> None:
    response = api("get", f"/api/admin/projects/{project}")
    assert response.status_code == 404
    assert set(response.get_json()) == {"error"}


def test_environments_are_the_configured_ones_in_order(api: Api) -> None:
    flag(api, "a")
    flag(api, "b")
    flag(api, "archived")
    switch_on(api, "a", "production")
    switch_on(api, "b", "production")
    switch_on(api, "a", "staging")
    switch_on(api, "archived", "production")
    assert api("delete", f"{FEATURES}/archived").status_code == 202

    response = api("get", "/api/admin/environments")

    assert response.status_code == 200
    body = EnvironmentsOut.model_validate(response.get_json()).model_dump()
    assert body["version"] == 1
    assert [
        (e["name"], e["type"], e["sortOrder"], e["enabledToggleCount"])
        for e in body["environments"]
    ] == [
        ("development", "development", 0, 0),
        ("staging", "development", 1, 1),
        ("production", "production", 2, 2),
    ]
    assert all(e["enabled"] and e["protected"] for e in body["environments"])
    # Unleash 7.5.1 answers with these fields too (recorded against a real one).
    assert set(response.get_json()["environments"][0]) == {
        "name",
        "type",
        "sortOrder",
        "enabled",
        "protected",
        "requiredApprovals",
        "projectCount",
        "apiTokenCount",
        "enabledToggleCount",
    }


def test_environments_count_the_live_tokens_bound_to_them(
    api: Api, make_token: Callable[..., str]
) -> None:
    make_token("client", "production")
    make_token("frontend", "production")
    make_token("client", "development")
    counts = {
        e["name"]: e["apiTokenCount"]
        for e in api("get", "/api/admin/environments").get_json()["environments"]
    }
    assert counts == {"development": 1, "staging": 0, "production": 2}


def test_one_environment_by_name_and_unknown_names_are_404(api: Api) -> None:
    response = api("get", "/api/admin/environments/staging")
    assert response.status_code == 200
    assert EnvironmentOut.model_validate(response.get_json()).name == "staging"
    assert response.get_json()["type"] == "development"
    assert api("get", "/api/admin/environments/production").get_json()["type"] == "production"
    for name in ("qa", "Production", "production%20", "production.json"):
        missing = api("get", f"/api/admin/environments/{name}")
        assert missing.status_code == 404, name
        assert set(missing.get_json()) == {"error"}


# ---- strategies ----------------------------------------------------------------------------


def test_strategies_lists_every_strategy_a_flag_accepts_in_unleash_order(api: Api) -> None:
    response = api("get", "/api/admin/strategies")

    assert response.status_code == 200
    body = StrategyDefinitionsOut.model_validate(response.get_json()).model_dump()
    assert body["version"] == 1
    names = [s["name"] for s in body["strategies"]]
    assert names[:2] == ["flexibleRollout", "default"]
    assert set(names) == accepted_strategy_names()
    by_name = {s["name"]: s for s in body["strategies"]}
    assert by_name["flexibleRollout"]["displayName"] == "Gradual rollout"
    assert [p["name"] for p in by_name["flexibleRollout"]["parameters"]] == [
        "rollout",
        "stickiness",
        "groupId",
    ]
    assert by_name["remoteAddress"]["parameters"][0] | {"description": ""} == {
        "name": "IPs",
        "type": "list",
        "description": "",
        "required": True,
    }
    deprecated = {s["name"] for s in body["strategies"] if s["deprecated"]}
    assert deprecated == {
        "userWithId",
        "gradualRolloutRandom",
        "gradualRolloutSessionId",
        "gradualRolloutUserId",
    }
    assert not any(s["editable"] for s in body["strategies"])


def test_every_listed_strategy_can_be_added_to_a_flag(api: Api) -> None:
    """What the list offers, a script can use: each strategy with its required parameters."""
    flag(api, "f")
    samples = {"userIds": "u1", "groupId": "g", "IPs": "10.0.0.0/8", "stickiness": "userId"}
    samples["hostNames"] = "web-1"
    for strategy in api("get", "/api/admin/strategies").get_json()["strategies"]:
        parameters = {
            p["name"]: samples[p["name"]]
            for p in strategy["parameters"]
            if p["required"] or p["type"] == "list"
        }
        response = api(
            "post",
            f"{FEATURES}/f/environments/development/strategies",
            json={"name": strategy["name"], "parameters": parameters},
        )
        assert response.status_code == 200, (strategy["name"], response.get_json())


def test_every_accepted_strategy_has_a_definition() -> None:
    # A strategy added to StrategyIn without a definition would silently vanish from the list.
    assert accepted_strategy_names() <= {s.name for s in BUILT_IN_STRATEGIES}


def test_one_strategy_by_name_and_unknown_or_unaccepted_names_are_404(api: Api) -> None:
    response = api("get", "/api/admin/strategies/default")
    assert response.status_code == 200
    assert StrategyDefinitionOut.model_validate(response.get_json()).displayName == "Standard"
    unaccepted = {s.name for s in BUILT_IN_STRATEGIES} - accepted_strategy_names()
    for name in ("custom", "Default", *sorted(unaccepted)):
        missing = api("get", f"/api/admin/strategies/{name}")
        assert missing.status_code == 404, name
        assert set(missing.get_json()) == {"error"}


def test_built_in_strategies_are_read_only(api: Api) -> None:
    # Custom ones are defined and changed there too: tests/unleash_compat/test_custom_strategies.py
    assert api("put", "/api/admin/strategies/default", json={"parameters": []}).status_code == 400
    assert api("delete", "/api/admin/strategies/default").status_code == 400


URLS = [
    "/api/admin/projects",
    "/api/admin/projects/default",
    "/api/admin/environments",
    "/api/admin/environments/production",
    "/api/admin/strategies",
    "/api/admin/strategies/flexibleRollout",
]


@pytest.mark.parametrize("url", URLS)
def test_strangers_and_sdk_tokens_are_refused(
    client: FlaskClient, make_token: Callable[..., str], url: str
) -> None:
    assert client.get(url).status_code == 401
    client_token = make_token("client", "production")
    assert client.get(url, headers={"Authorization": client_token}).status_code == 403
    frontend_token = make_token("frontend", "production")
    assert client.get(url, headers={"Authorization": frontend_token}).status_code == 403


@pytest.mark.parametrize("url", URLS)
def test_signed_in_readers_may_read(
    client: FlaskClient, make_user: Callable[..., Any], url: str
) -> None:
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    assert client.get(url).status_code == 200


def test_the_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in (
        "/api/admin/projects",
        "/api/admin/projects/{project}",
        "/api/admin/environments",
        "/api/admin/environments/{name}",
        "/api/admin/strategies",
        "/api/admin/strategies/{name}",
    ):
        assert "get" in paths[path], path
