"""The strategies settings page and custom strategies in the flag's strategy editor."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.common.flags_ui import env_of, make_flag, post, text

NEW_TYPE = "/strategies/new"
NEW = "/flags/checkout/environments/development/strategies/new"


def type_form(**extra: Any) -> dict[str, Any]:
    data = {
        "name": "tenant",
        "title": "Tenants",
        "description": "On for the tenants listed",
        "parameters-0-name": "tenants",
        "parameters-0-type": "list",
        "parameters-0-required": "y",
        "parameters-0-description": "Tenant ids",
        "parameters-1-name": "",
        "parameters-1-type": "string",
    }
    data.update(extra)
    return data


def test_a_custom_strategy_is_defined_edited_deprecated_and_deleted_from_the_page(
    app: Flask, admin_client: FlaskClient
) -> None:
    page = text(admin_client.get("/strategies"))
    assert "None yet" in page and "flexibleRollout" in page
    form = text(admin_client.get(NEW_TYPE))
    assert len(re.findall(r'name="parameters-\d+-name"', form)) == 3
    bad = post(admin_client, NEW_TYPE, type_form(name="has space"))
    assert bad.status_code == 400 and "should match pattern" in text(bad)
    built_in = post(admin_client, NEW_TYPE, type_form(name="default"))
    assert built_in.status_code == 400 and "built-in strategy" in text(built_in)
    twice = type_form(**{"parameters-1-name": "tenants"})
    assert post(admin_client, NEW_TYPE, twice).status_code == 400
    assert post(admin_client, NEW_TYPE, type_form()).status_code == 302
    assert post(admin_client, NEW_TYPE, type_form()).status_code == 409  # defined already
    listed = text(admin_client.get("/strategies"))
    assert "tenant" in listed and "list, required" in listed

    edit = text(admin_client.get("/strategies/tenant"))
    assert re.search(r'name="parameters-0-name"[^>]*value="tenants"', edit)
    changed = type_form(**{"parameters-1-name": "plan", "name": "renamed"})
    assert post(admin_client, "/strategies/tenant", changed).status_code == 302
    got = admin_client.get("/api/admin/strategies/tenant")
    assert [p["name"] for p in got.get_json()["parameters"]] == ["tenants", "plan"]
    assert admin_client.get("/api/admin/strategies/renamed").status_code == 404

    assert post(admin_client, "/strategies/tenant/deprecate", {}).status_code == 302
    assert "deprecated" in text(admin_client.get("/strategies"))
    assert post(admin_client, "/strategies/tenant/reactivate", {}).status_code == 302
    assert admin_client.get("/api/admin/strategies/tenant").get_json()["deprecated"] is False
    assert post(admin_client, "/strategies/tenant/delete", {}).status_code == 302
    assert admin_client.get("/strategies/tenant").status_code == 404


def test_the_flag_editor_offers_custom_strategies_and_says_the_server_never_matches(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    assert post(admin_client, NEW_TYPE, type_form()).status_code == 302
    html = text(admin_client.get(NEW))
    radios = re.findall(r'type="radio" value="([^"]+)"', html)
    assert radios[-1] == "tenant"
    assert "Parameters: tenants (required)" in html
    assert 'data-params="tenant"' in html

    form = {"name": "tenant", "custom_parameters": "tenants = acme, globex\nbeta=", "save": "1"}
    bad = post(admin_client, NEW, {**form, "custom_parameters": "no equals sign"})
    assert bad.status_code == 400 and "name=value" in text(bad)
    assert post(admin_client, NEW, form).status_code == 302
    (strategy,) = env_of(app, "checkout", "development")["strategies"]
    assert strategy["name"] == "tenant"
    assert strategy["parameters"] == {"tenants": "acme, globex", "beta": ""}
    page = text(admin_client.get("/flags/checkout"))
    assert "never when the server evaluates" in page
    edit_url = f"/flags/checkout/environments/development/strategies/{strategy['id']}"
    edit = text(admin_client.get(edit_url))
    shown = re.search(r'name="custom_parameters"[^>]*>([^<]*)<', edit)
    assert shown and sorted(shown.group(1).split()) == ["beta=", "globex", "tenants=acme,"]
    assert "Unleash's older" not in edit  # not mistaken for a legacy strategy

    # Deprecated: no longer offered for a new strategy, still shown where it is used.
    assert post(admin_client, "/strategies/tenant/deprecate", {}).status_code == 302
    assert "tenant" not in re.findall(r'type="radio" value="([^"]+)"', text(admin_client.get(NEW)))
    radios = re.findall(r'type="radio" value="([^"]+)"', text(admin_client.get(edit_url)))
    assert "tenant" in radios
    refused = post(admin_client, NEW, form)
    assert refused.status_code == 400  # not a choice the editor offers any more
    # In use: the page offers no delete, and a forged delete is refused with the reason.
    assert "/strategies/tenant/delete" not in text(admin_client.get("/strategies"))
    post(admin_client, "/strategies/tenant/delete", {})
    assert "is used by checkout (development)" in text(admin_client.get("/strategies"))
