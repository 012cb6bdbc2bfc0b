"""Custom strategy types: Unleash's `/api/admin/strategies` writes, flags that use them, and the
real Python `UnleashClient` evaluating one with its own registered implementation.

Written cases (the client specification has no custom-strategy vectors), from Unleash's
documentation of custom activation strategies: the SDK calls the implementation registered under
the strategy's name with the parameters configured on the flag and the context; the flag is on
when it answers true (and the constraints match). Server-side evaluation has no implementation,
so the frontend API, OFREP and the evaluate box count it as not matching.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from server import db
from server.audit.models import Event
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

STRATEGIES = "/api/admin/strategies"
FEATURES = "/api/admin/projects/default/features"
TENANT = {
    "name": "tenant",
    "description": "On for the tenants listed",
    "parameters": [
        {"name": "tenants", "type": "list", "description": "Tenant ids", "required": True},
        {"name": "beta", "type": "boolean"},
    ],
}


class TenantStrategy:
    """The application's implementation, registered with the SDK under the type's name."""

    def apply(self, parameters: dict[str, Any], context: dict[str, Any]) -> bool:
        tenant = (context.get("properties") or {}).get("tenant") or context.get("tenant")
        return tenant in [t.strip() for t in parameters.get("tenants", "").split(",")]


def test_custom_strategies_are_defined_listed_changed_deprecated_and_deleted(
    app: Flask, api: Callable[..., Any]
) -> None:
    created = api("post", STRATEGIES, json=TENANT)
    assert created.status_code == 201, created.get_json()
    assert created.get_json() == {
        "title": None,
        "name": "tenant",
        "displayName": None,
        "description": "On for the tenants listed",
        "editable": True,
        "deprecated": False,
        "parameters": [
            {"name": "tenants", "type": "list", "description": "Tenant ids", "required": True},
            {"name": "beta", "type": "boolean", "description": "", "required": False},
        ],
    }
    listed = api("get", STRATEGIES).get_json()["strategies"]
    assert listed[0]["name"] == "flexibleRollout" and listed[-1]["name"] == "tenant"
    assert [s["editable"] for s in listed].count(True) == 1
    assert api("get", f"{STRATEGIES}/tenant").get_json()["name"] == "tenant"

    changed = api(
        "put",
        f"{STRATEGIES}/tenant",
        json={"description": "Tenants", "title": "Tenants", "parameters": TENANT["parameters"][:1]},
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["displayName"] == "Tenants"
    assert [p["name"] for p in changed.get_json()["parameters"]] == ["tenants"]

    assert api("post", f"{STRATEGIES}/tenant/deprecate").status_code == 200
    assert api("get", f"{STRATEGIES}/tenant").get_json()["deprecated"] is True
    assert api("post", f"{STRATEGIES}/tenant/reactivate").status_code == 200
    assert api("get", f"{STRATEGIES}/tenant").get_json()["deprecated"] is False

    assert api("delete", f"{STRATEGIES}/tenant").status_code == 200
    assert api("get", f"{STRATEGIES}/tenant").status_code == 404
    with app.app_context():
        actions = [e.action for e in db.session().scalars(select(Event).order_by(Event.id))]
    assert [a for a in actions if a.startswith("strategy.")] == [
        "strategy.created",
        "strategy.updated",
        "strategy.deprecated",
        "strategy.reactivated",
        "strategy.deleted",
    ]


def test_bad_definitions_built_ins_and_unknown_names_are_refused(api: Callable[..., Any]) -> None:
    assert api("post", STRATEGIES, json=TENANT).status_code == 201
    for body, status in [
        (TENANT, 409),  # defined twice
        ({"name": "default", "parameters": []}, 400),  # a built-in
        ({"name": "flexibleRollout", "parameters": []}, 400),
        ({"name": "has space", "parameters": []}, 400),
        ({"name": "", "parameters": []}, 400),
        ({"name": "x", "parameters": [{"name": "a"}, {"name": "a"}]}, 400),
        ({"name": "x", "parameters": [{"name": "a", "type": "date"}]}, 400),
        ({"name": "x", "parameters": [{"name": " "}]}, 400),
        ({"name": "x", "parameters": [], "extra": 1}, 400),
    ]:
        response = api("post", STRATEGIES, json=body)
        assert response.status_code == status, (body, response.get_json())
        assert set(response.get_json()) >= {"error"}
    for method, url in [
        ("put", f"{STRATEGIES}/default"),
        ("post", f"{STRATEGIES}/default/deprecate"),
        ("delete", f"{STRATEGIES}/flexibleRollout"),
    ]:
        response = api(method, url, json={"parameters": []})
        assert response.status_code == 400, (method, url)
    assert api("put", f"{STRATEGIES}/tenant", json={"name": "other"}).status_code == 400
    for method, url in [
        ("get", f"{STRATEGIES}/nope"),
        ("put", f"{STRATEGIES}/nope"),
        ("post", f"{STRATEGIES}/nope/deprecate"),
        ("post", f"{STRATEGIES}/nope/reactivate"),
        ("delete", f"{STRATEGIES}/nope"),
    ]:
        assert api(method, url, json={"parameters": []}).status_code == 404, (method, url)


def test_flags_use_only_defined_strategies_and_a_used_type_cannot_be_deleted(
    app: Flask, api: Callable[..., Any]
) -> None:
    make_flags = Flags(app)
    make_flags.create("f")
    url = f"{FEATURES}/f/environments/production/strategies"
    unknown = api("post", url, json={"name": "tenant", "parameters": {"tenants": "a"}})
    assert unknown.status_code == 400
    assert "No strategy named 'tenant'" in unknown.get_json()["error"]["message"]
    assert api("post", STRATEGIES, json=TENANT).status_code == 201
    added = api("post", url, json={"name": "tenant", "parameters": {"tenants": "a,b", "n": 3}})
    assert added.status_code == 200, added.get_json()
    assert added.get_json()["parameters"] == {"tenants": "a,b", "n": "3"}
    # Replacing it with an unknown type is refused too, and nothing changes.
    strategy_id = added.get_json()["id"]
    replaced = api("put", f"{url}/{strategy_id}", json={"name": "tenantz", "parameters": {}})
    assert replaced.status_code == 400
    in_use = api("delete", f"{STRATEGIES}/tenant")
    assert in_use.status_code == 409
    assert "f (production)" in in_use.get_json()["error"]["message"]
    # Deprecated: flags keep it and it stays usable from the API, as in Unleash.
    assert api("post", f"{STRATEGIES}/tenant/deprecate").status_code == 200
    again = api("post", url, json={"name": "tenant", "parameters": {"tenants": "c"}})
    assert again.status_code == 200


def test_the_real_unleash_client_evaluates_a_custom_strategy_and_the_server_never_matches(
    app: Flask,
    live_server: LiveServer,
    api: Callable[..., Any],
    make_token: Callable[..., str],
    client: Any,
    tmp_path: Path,
) -> None:
    from UnleashClient import UnleashClient

    assert api("post", STRATEGIES, json=TENANT).status_code == 201
    make_flags = Flags(app)
    make_flags.create(
        "tenant-beta",
        strategies=[
            {
                "name": "tenant",
                "parameters": {"tenants": "acme, globex"},
                "constraints": [{"contextName": "appName", "operator": "IN", "values": ["shop"]}],
            }
        ],
    )
    make_flags.create(
        "tenant-or-user",
        strategies=[
            {"name": "tenant", "parameters": {"tenants": "acme"}},
            {"name": "userWithId", "parameters": {"userIds": "u9"}},
        ],
    )
    served = client.get(
        "/api/client/features", headers={"Authorization": make_token("client", "production")}
    ).get_json()
    beta = next(f for f in served["features"] if f["name"] == "tenant-beta")
    assert beta["strategies"][0]["name"] == "tenant"
    assert beta["strategies"][0]["parameters"] == {"tenants": "acme, globex"}

    unleash = UnleashClient(
        url=f"{live_server.url}/api",
        app_name="shop",
        instance_id="pod-1",
        custom_headers={"Authorization": make_token("client", "production")},
        refresh_interval=1,
        disable_metrics=True,
        cache_directory=str(tmp_path / "unleash-cache"),
        custom_strategies={"tenant": TenantStrategy()},
    )
    unleash.initialize_client()
    try:
        assert unleash.is_enabled("tenant-beta", {"properties": {"tenant": "globex"}})
        assert not unleash.is_enabled("tenant-beta", {"properties": {"tenant": "initech"}})
        assert unleash.is_enabled("tenant-or-user", {"properties": {"tenant": "acme"}})
        assert unleash.is_enabled("tenant-or-user", {"userId": "u9"})
        assert not unleash.is_enabled("tenant-or-user", {"userId": "u1"})
    finally:
        unleash.destroy()

    # Without the implementation registered, the SDK counts it as not matching.
    bare = UnleashClient(
        url=f"{live_server.url}/api",
        app_name="shop",
        instance_id="pod-2",
        custom_headers={"Authorization": make_token("client", "production")},
        disable_metrics=True,
        cache_directory=str(tmp_path / "bare-cache"),
    )
    bare.initialize_client()
    try:
        assert not bare.is_enabled("tenant-beta", {"properties": {"tenant": "globex"}})
    finally:
        bare.destroy()

    # The server has no implementation: the frontend API and OFREP never match it.
    frontend = make_token("frontend", "production")
    listed = client.get(
        "/api/frontend?tenant=acme&userId=u9", headers={"Authorization": frontend}
    ).get_json()
    assert {t["name"] for t in listed["toggles"]} == {"tenant-or-user"}  # by its userWithId
    listed = client.get("/api/frontend?tenant=acme", headers={"Authorization": frontend})
    assert listed.get_json()["toggles"] == []
    answer = client.post(
        "/ofrep/v1/evaluate/flags/tenant-beta",
        json={"context": {"targetingKey": "u1", "tenant": "acme", "appName": "shop"}},
        headers={"Authorization": f"Bearer {make_token('client', 'production')}"},
    ).get_json()
    assert answer["value"] is False
