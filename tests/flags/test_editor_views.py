"""The editors behind the flag page: strategies, variants, dependencies, copying environments."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.common.flags_ui import (
    actions,
    add_strategy,
    enable,
    env_of,
    flag_of,
    make_flag,
    make_segment,
    post,
    text,
)

NEW = "/flags/checkout/environments/development/strategies/new"


def rollout_form(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "flexibleRollout",
        "rollout": "50",
        "stickiness": "userId",
        "group_id": "",
        "title": "",
        "save": "1",
    }
    data.update(extra)
    return data


def constraint(i: int, name: str, operator: str, values: str, **flags: str) -> dict[str, str]:
    row = {
        f"constraints-{i}-context_name": name,
        f"constraints-{i}-operator": operator,
        f"constraints-{i}-values": values,
    }
    row.update({f"constraints-{i}-{k}": v for k, v in flags.items()})
    return row


def error_of(html: str, field_id: str) -> str:
    """The error text shown under one field."""
    match = re.search(rf'id="{re.escape(field_id)}-error">([^<]*)<', html)
    assert match, f"no error shown for {field_id}"
    return match.group(1)


@pytest.fixture
def flag(app: Flask) -> str:
    make_flag(app, "checkout")
    return "checkout"


# ---- strategies --------------------------------------------------------------------------------


def test_strategy_editor_offers_the_five_strategies_and_every_operator(
    flag: str, admin_client: FlaskClient
) -> None:
    html = text(admin_client.get(NEW))
    radios = re.findall(r'type="radio" value="([^"]+)"', html)
    assert radios == [
        "default",
        "flexibleRollout",
        "userWithId",
        "remoteAddress",
        "applicationHostname",
    ]
    assert "there this strategy never matches" in html
    template = html.split('data-row-template="constraints"')[1].split("</template>")[0]
    operators = re.findall(r'<option[^>]* value="([A-Z_]+)"', template)
    assert len(operators) == 19 and "IN_CIDR" in operators and "SEMVER_GTE" in operators
    assert 'name="version" type="hidden" value="1"' in html


def test_add_a_fifty_percent_rollout_with_a_constraint(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    beta = make_segment(app, "beta", constraints=[])
    version = env_of(app, flag, "development")["version"]
    data = rollout_form(version=str(version), segments=[str(beta)])
    data |= constraint(0, "country", "IN", "NO, SE", case_insensitive="y")
    data |= constraint(1, "", "IN", "")  # an empty row is ignored
    data |= constraint(2, "appVersion", "SEMVER_GTE", "2.1.0", inverted="y")
    response = post(admin_client, NEW, data)
    assert response.status_code == 302, text(response)
    assert response.headers["Location"] == "/flags/checkout#env-development"
    (strategy,) = env_of(app, flag, "development")["strategies"]
    assert strategy["name"] == "flexibleRollout"
    assert strategy["parameters"] == {"rollout": "50", "stickiness": "userId", "groupId": ""}
    assert strategy["segments"] == [beta]
    assert strategy["constraints"] == [
        {
            "contextName": "country",
            "operator": "IN",
            "values": ["NO", "SE"],
            "inverted": False,
            "caseInsensitive": True,
        },
        {
            "contextName": "appVersion",
            "operator": "SEMVER_GTE",
            "values": [],
            "value": "2.1.0",
            "inverted": True,
            "caseInsensitive": False,
        },
    ]
    page = text(admin_client.get("/flags/checkout"))
    assert "Added the strategy in development." in page
    assert "On for 50% of users by userId where country is one of NO, SE (any case)" in page
    assert actions(app, flag)[-1] == "flag.strategy.added"


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"rollout": "150"}, "rollout", "Rollout must be a whole percentage from 0 to 100."),
        ({"rollout": "half"}, "rollout", "Rollout must be a whole percentage from 0 to 100."),
        ({"stickiness": "custom", "stickiness_field": ""}, "stickiness_field", "Name the context"),
        (
            {"stickiness": "custom", "stickiness_field": "bad field!"},
            "stickiness_field",
            "Stickiness must be default, userId, sessionId, random or a context field name.",
        ),
        ({"name": "userWithId", "user_ids": " , "}, "user_ids", "at least one user id"),
        (
            {"name": "remoteAddress", "ips": "10.0.0.0/8, 300.1.1.1"},
            "ips",
            "'300.1.1.1' is not an IP address or CIDR range.",
        ),
        ({"title": "t" * 201}, "title", "200"),
    ],
)
def test_strategy_problems_are_explained_next_to_the_field(
    app: Flask,
    flag: str,
    admin_client: FlaskClient,
    extra: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = post(admin_client, NEW, rollout_form(**extra))
    assert response.status_code == 400
    assert message in error_of(text(response), field)
    assert env_of(app, flag, "development")["strategies"] == []


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (("country", "IN", ""), "values", "Enter at least one value"),
        (("", "IN", "NO"), "context_name", "Name the context field"),
        (("age", "NUM_GT", "old"), "values", "NUM_GT needs a number, not 'old'."),
        (("age", "NUM_GT", "1\n2"), "values", "NUM_GT compares with one value: enter just one."),
        (("plan", "NOT_IN", " , "), "values", "Enter at least one value"),
        (("when", "DATE_AFTER", "soon"), "values", "needs a date and time like"),
        (("v", "SEMVER_EQ", "1.2"), "values", "needs a semantic version like 1.2.3"),
        (("path", "REGEX", "(unclosed"), "values", "The regular expression does not compile"),
        (("ip", "IN_CIDR", "10.0.0.0/8, nope"), "values", "'nope' is not an IP address"),
        (("bad name!", "IN", "x"), "context_name", "A context field is letters, digits"),
    ],
)
def test_constraint_problems_are_explained_on_their_row(
    app: Flask,
    flag: str,
    admin_client: FlaskClient,
    row: tuple[str, str, str],
    field: str,
    message: str,
) -> None:
    data = rollout_form() | constraint(0, "plan", "IN", "pro") | constraint(1, *row)
    response = post(admin_client, NEW, data)
    assert response.status_code == 400
    html = text(response)
    assert message in error_of(html, f"constraints-1-{field}")
    assert "constraints-0-values-error" not in html  # the good row stays clean
    assert "pro</textarea>" in html  # and keeps what was typed


def test_every_problem_is_shown_at_once(flag: str, admin_client: FlaskClient) -> None:
    data = rollout_form(rollout="150") | constraint(0, "age", "NUM_GT", "old")
    html = text(post(admin_client, NEW, data))
    assert "Rollout must be a whole percentage" in error_of(html, "rollout")
    assert "NUM_GT needs a number" in error_of(html, "constraints-0-values")


def test_single_value_operator_with_an_empty_value_says_so(
    flag: str, admin_client: FlaskClient
) -> None:
    response = post(admin_client, NEW, rollout_form() | constraint(0, "age", "NUM_LT", ""))
    assert response.status_code == 400
    assert "NUM_LT compares with one value: enter it." in error_of(
        text(response), "constraints-0-values"
    )


def test_add_and_remove_constraint_rows_without_javascript(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    data = rollout_form(rollout="30") | constraint(0, "country", "IN", "NO")
    data.pop("save")
    added = post(admin_client, NEW, data | {"add_constraints": "1"})
    assert added.status_code == 200
    html = text(added)
    assert 'id="constraints-0-context_name"' in html and 'id="constraints-1-context_name"' in html
    assert 'value="30"' in html  # what was typed is kept
    assert env_of(app, flag, "development")["strategies"] == []  # nothing saved yet

    two = data | constraint(1, "plan", "IN", "pro")
    removed = post(admin_client, NEW, two | {"remove_constraints": "constraints-0"})
    html = text(removed)
    assert 'id="constraints-0-context_name"' not in html
    assert 'id="constraints-1-context_name"' in html and 'value="plan"' in html


def test_add_and_remove_variant_rows_without_javascript(
    flag: str, admin_client: FlaskClient
) -> None:
    data = rollout_form()
    data.pop("save")
    html = text(post(admin_client, NEW, data | {"add_variants": "1"}))
    assert 'id="variants-0-name"' in html
    html = text(
        post(
            admin_client,
            NEW,
            data | {"variants-0-name": "blue", "remove_variants": "variants-0"},
        )
    )
    assert 'id="variants-0-name"' not in html.split("</template>")[-1]


def test_strategy_variants_are_saved_and_checked(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    variants = {
        "variants-0-name": "blue",
        "variants-0-weight_type": "fix",
        "variants-0-weight": "12.5",
        "variants-0-stickiness": "default",
        "variants-0-payload_type": "json",
        "variants-0-payload_value": '{"colour": "#00f"}',
        "variants-1-name": "red",
        "variants-1-weight_type": "variable",
        "variants-1-stickiness": "default",
        "variants-1-payload_type": "",
        "variants-1-payload_value": "",
    }
    saved = post(admin_client, NEW, rollout_form() | variants)
    assert saved.status_code == 302, text(saved)
    (strategy,) = env_of(app, flag, "development")["strategies"]
    assert [(v["name"], v["weight"]) for v in strategy["variants"]] == [
        ("blue", 125),
        ("red", 875),
    ]
    assert strategy["variants"][0]["payload"] == {"type": "json", "value": '{"colour": "#00f"}'}

    duplicate = variants | {"variants-1-name": "blue"}
    response = post(admin_client, NEW, rollout_form() | duplicate)
    assert response.status_code == 400
    assert "Variant names must be unique." in text(response)

    bad = variants | {"variants-0-payload_value": "{not json", "variants-1-weight_type": "fix"}
    bad |= {"variants-1-weight": "abc"}
    html = text(post(admin_client, NEW, rollout_form() | bad))
    assert "A json payload must hold valid JSON." in error_of(html, "variants-0-payload_value")
    assert "Enter the fixed share as a percentage" in error_of(html, "variants-1-weight")

    nameless = text(
        post(
            admin_client,
            NEW,
            rollout_form()
            | {
                "variants-0-name": "",
                "variants-0-payload_type": "",
                "variants-0-payload_value": "x",
                "variants-0-weight": "150",
                "variants-0-weight_type": "fix",
            },
        )
    )
    assert "Name the variant." in error_of(nameless, "variants-0-name")
    assert "A fixed share is from 0 to 100%." in error_of(nameless, "variants-0-weight")
    assert "Choose the payload's type" in error_of(nameless, "variants-0-payload_type")


def test_edit_a_strategy_keeps_its_place_and_refuses_a_stale_form(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    first = add_strategy(app, flag, "development", name="userWithId", parameters={"userIds": "a"})
    add_strategy(app, flag, "development", name="default")
    url = f"/flags/checkout/environments/development/strategies/{first}"
    form = text(admin_client.get(url))
    assert re.search(r'<input checked [^>]*value="userWithId">', form)
    assert "a</textarea>" in form
    version = env_of(app, flag, "development")["version"]
    saved = post(
        admin_client,
        url,
        {"name": "userWithId", "user_ids": "a\nb\nc", "version": version, "save": "1"},
    )
    assert saved.status_code == 302
    strategies = env_of(app, flag, "development")["strategies"]
    assert strategies[0]["id"] == first
    assert strategies[0]["parameters"] == {"userIds": "a,b,c"}
    stale = post(
        admin_client,
        url,
        {"name": "userWithId", "user_ids": "z", "version": version, "save": "1"},
    )
    assert stale.status_code == 409
    assert "changed by admin@example.com" in text(stale)
    assert "z</textarea>" in text(stale)
    assert admin_client.get(url.replace(first, "no-such-id")).status_code == 404


def test_legacy_strategy_opens_as_the_equivalent_rollout(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    legacy = add_strategy(
        app,
        flag,
        "development",
        name="gradualRolloutUserId",
        parameters={"percentage": "20", "groupId": "g"},
    )
    html = text(admin_client.get(f"/flags/checkout/environments/development/strategies/{legacy}"))
    assert "older “gradualRolloutUserId”" in html
    assert 'value="20"' in html and 'value="g"' in html
    assert re.search(r'<option selected value="userId">|<option value="userId" selected', html)


def test_strategies_move_up_and_down_and_can_be_removed(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    a = add_strategy(app, flag, "development", name="userWithId", parameters={"userIds": "a"})
    b = add_strategy(app, flag, "development", name="default")
    base = "/flags/checkout/environments/development/strategies"
    version = env_of(app, flag, "development")["version"]
    moved = post(admin_client, f"{base}/{b}/move", {"direction": "up", "version": version})
    assert moved.status_code == 302
    assert [s["id"] for s in env_of(app, flag, "development")["strategies"]] == [b, a]
    assert "Moved the strategy up in development." in text(admin_client.get("/flags/checkout"))
    stale = post(admin_client, f"{base}/{a}/move", {"direction": "up", "version": version})
    assert stale.status_code == 302
    assert "changed by" in text(admin_client.get("/flags/checkout"))
    version = env_of(app, flag, "development")["version"]
    post(admin_client, f"{base}/{b}/move", {"direction": "up", "version": version})  # already first
    assert [s["id"] for s in env_of(app, flag, "development")["strategies"]] == [b, a]
    bad = post(admin_client, f"{base}/{b}/move", {"direction": "sideways"})
    assert bad.status_code == 400
    post(admin_client, f"{base}/{b}/delete", {"version": version})
    assert [s["id"] for s in env_of(app, flag, "development")["strategies"]] == [a]
    assert actions(app, flag)[-2:] == ["flag.strategy.reordered", "flag.strategy.removed"]
    gone = post(admin_client, f"{base}/{b}/delete", {})
    assert gone.status_code == 302
    assert "No strategy" in text(admin_client.get("/flags/checkout"))


def test_strategy_using_a_missing_segment_is_refused_on_the_form(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    response = post(admin_client, NEW, rollout_form(segments=["99"]))
    assert response.status_code == 400
    assert "No segment with id 99." in text(response)


def test_editors_refuse_archived_flags(app: Flask, flag: str, admin_client: FlaskClient) -> None:
    post(admin_client, "/flags/checkout/archive", {})
    assert admin_client.get(NEW).status_code == 404
    assert admin_client.get("/flags/checkout/environments/production/variants").status_code == 404


# ---- variants ----------------------------------------------------------------------------------


def test_variants_editor_saves_weights_and_refuses_bad_ones(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    url = "/flags/checkout/environments/production/variants"
    form = text(admin_client.get(url))
    assert 'id="variants-0-name"' in form  # one empty row to start with
    version = env_of(app, flag, "production")["version"]
    rows = {
        "variants-0-name": "control",
        "variants-0-weight_type": "fix",
        "variants-0-weight": "30",
        "variants-0-stickiness": "userId",
        "variants-1-name": "treatment",
        "variants-1-weight_type": "variable",
        "variants-1-stickiness": "userId",
        "variants-1-payload_type": "string",
        "variants-1-payload_value": "new",
        "variants-2-name": "",
        "version": version,
        "save": "1",
    }
    saved = post(admin_client, url, rows)
    assert saved.status_code == 302, text(saved)
    variants = env_of(app, flag, "production")["variants"]
    assert [(v["name"], v["weight"], v["weightType"]) for v in variants] == [
        ("control", 300, "fix"),
        ("treatment", 700, "variable"),
    ]
    page = text(admin_client.get("/flags/checkout"))
    assert "30%" in page and "70%" in page
    again = text(admin_client.get(url))
    assert 'value="30"' in again and 'value="control"' in again

    too_much = rows | {"variants-1-weight_type": "fix", "variants-1-weight": "80"}
    response = post(admin_client, url, too_much | {"version": version + 1})
    assert response.status_code == 400
    assert "Fixed variant weights add up to more than 1000 (100%)." in text(response)
    stale = post(admin_client, url, rows)
    assert stale.status_code == 409
    bad_row = post(admin_client, url, rows | {"variants-0-weight": "-5"})
    assert "A fixed share is from 0 to 100%." in text(bad_row)
    cleared = post(admin_client, url, {"variants-0-name": "", "version": version + 1, "save": "1"})
    assert cleared.status_code == 302
    assert env_of(app, flag, "production")["variants"] == []


def test_variants_editor_adds_rows_without_javascript(flag: str, admin_client: FlaskClient) -> None:
    url = "/flags/checkout/environments/production/variants"
    html = text(post(admin_client, url, {"variants-0-name": "a", "add_variants": "1"}))
    assert 'id="variants-1-name"' in html


# ---- dependencies ------------------------------------------------------------------------------


def test_dependencies_editor_adds_and_removes_a_parent(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    make_flag(app, "parent")
    url = "/flags/checkout/dependencies"
    form = text(admin_client.get(url))
    assert '<option value="parent">' in form  # suggested names
    version = flag_of(app, flag)["version"]
    saved = post(
        admin_client,
        url,
        {
            "dependencies-0-feature": "parent",
            "dependencies-0-enabled": "1",
            "dependencies-0-variants": "blue, red",
            "version": version,
            "save": "1",
        },
    )
    assert saved.status_code == 302, text(saved)
    assert flag_of(app, flag)["dependencies"] == [
        {"feature": "parent", "variants": ["blue", "red"]}
    ]
    assert "with variant blue or red" in text(admin_client.get("/flags/checkout"))
    missing = post(
        admin_client,
        url,
        {"dependencies-0-feature": "ghost", "version": version + 1, "save": "1"},
    )
    assert missing.status_code == 400
    assert "depends on 'ghost', which does not exist" in text(missing)
    bad = post(
        admin_client,
        url,
        {"dependencies-0-feature": "bad name", "version": version + 1, "save": "1"},
    )
    assert bad.status_code == 400
    assert "Flag names are 1-100 characters" in error_of(text(bad), "dependencies-0-feature")
    added = text(post(admin_client, url, {"add_dependencies": "1"}))
    assert 'id="dependencies-0-feature"' in added
    removed = post(admin_client, url, {"dependencies-0-feature": "", "version": version + 1})
    assert removed.status_code == 302
    assert flag_of(app, flag)["dependencies"] == []


# ---- copying -----------------------------------------------------------------------------------


def test_copy_into_production_asks_first_and_then_copies(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    add_strategy(app, flag, "development", name="flexibleRollout", parameters={"rollout": "10"})
    enable(app, flag, "production")
    version = env_of(app, flag, "production")["version"]
    data = {"source": "development", "target": "production", "version-production": version}
    ask = post(admin_client, "/flags/checkout/copy", data)
    assert ask.status_code == 200
    assert "Replace the strategies and variants of checkout in production" in text(ask)
    assert env_of(app, flag, "production")["strategies"] == []
    done = post(admin_client, "/flags/checkout/copy", data | {"confirmed": "1"})
    assert done.headers["Location"] == "/flags/checkout#env-production"
    prod = env_of(app, flag, "production")
    assert [s["parameters"]["rollout"] for s in prod["strategies"]] == ["10"]
    assert prod["enabled"] is True  # on/off is not copied
    assert actions(app, flag)[-1] == "flag.environment.copied"


def test_copy_to_development_needs_no_confirmation_and_reports_problems(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    add_strategy(app, flag, "production", name="default")
    done = post(
        admin_client, "/flags/checkout/copy", {"source": "production", "target": "development"}
    )
    assert done.status_code == 302
    assert len(env_of(app, flag, "development")["strategies"]) == 1
    same = post(
        admin_client, "/flags/checkout/copy", {"source": "development", "target": "development"}
    )
    assert same.status_code == 302
    assert "Choose two different environments." in text(admin_client.get("/flags/checkout"))


def test_a_host_names_strategy_is_added_and_the_page_says_where_it_never_matches(
    app: Flask, flag: str, admin_client: FlaskClient
) -> None:
    empty = post(admin_client, NEW, rollout_form(name="applicationHostname", host_names=" "))
    assert empty.status_code == 400
    assert "at least one host name" in error_of(text(empty), "host_names")
    data = rollout_form(name="applicationHostname", host_names="web-1\nweb-2")
    assert post(admin_client, NEW, data).status_code == 302
    (strategy,) = env_of(app, flag, "development")["strategies"]
    assert strategy["parameters"] == {"hostNames": "web-1,web-2"}
    page = text(admin_client.get("/flags/checkout"))
    assert "On for SDKs running on web-1, web-2 (never when the server evaluates" in page
    edit = text(
        admin_client.get(f"/flags/checkout/environments/development/strategies/{strategy['id']}")
    )
    assert re.search(r'name="host_names"[^>]*>\s*web-1', edit), edit[:2000]
