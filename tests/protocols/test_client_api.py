"""The Unleash client API: the features document, ETag/304, gzip, register and metrics."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server import db
from server.audit.service import Actor
from server.auth import service as auth
from server.db import read_revision
from server.flags import flags_snapshot
from server.protocols.models import (
    FlagHourlyMetric,
    FlagHourlyVariantMetric,
    FlagLastSeen,
    SdkInstance,
)
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

NORDICS = {
    "name": "flexibleRollout",
    "parameters": {"rollout": "100", "stickiness": "default"},
    "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
}


def get_features(client: FlaskClient, token: str, **headers: str) -> Any:
    return client.get("/api/client/features", headers={"Authorization": token, **headers})


def bucket(toggles: dict[str, Any], app_name: str = "shop", instance: str = "i-1") -> Any:
    return {
        "appName": app_name,
        "instanceId": instance,
        "bucket": {
            "start": "2026-11-26T12:48:05.083732710Z",
            "stop": "2026-11-26T12:49:05.097333350Z",
            "toggles": toggles,
        },
    }


def test_features_document_is_the_compiled_bytes_of_the_tokens_environment(
    app: Flask, client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("new-checkout", strategies=[NORDICS], impressionData=True)
    make_flags.create("dev-only", env="development")
    response = get_features(client, client_token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with app.app_context():
        compiled = flags_snapshot().environment("production")
        assert response.data == compiled.document
        assert response.headers["ETag"] == compiled.etag
    doc = response.get_json()
    assert doc["version"] == 2
    assert doc["query"]["environment"] == "production"
    by_name = {f["name"]: f for f in doc["features"]}
    feature = by_name["new-checkout"]
    assert feature["enabled"] is True and feature["impressionData"] is True
    assert feature["project"] == "default" and feature["stale"] is False
    assert feature["strategies"][0]["parameters"] == {
        "rollout": "100",
        "stickiness": "default",
        "groupId": "new-checkout",
    }
    assert by_name["dev-only"]["enabled"] is False  # on only in development
    assert "segments" in doc


def test_unchanged_document_answers_304_without_a_body(
    client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("f")
    etag = get_features(client, client_token).headers["ETag"]
    for header in (etag, f'"nope", {etag}', "*", f"W/{etag}"):
        response = get_features(client, client_token, **{"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.data == b""
        assert response.headers["ETag"] == etag
        assert "Content-Type" not in response.headers
    assert get_features(client, client_token, **{"If-None-Match": '"other"'}).status_code == 200


def test_etag_changes_when_a_flag_is_toggled(
    client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("f")
    first = get_features(client, client_token).headers["ETag"]
    make_flags.toggle("f", False)
    second = get_features(client, client_token, **{"If-None-Match": first})
    assert second.status_code == 200
    assert second.headers["ETag"] != first
    assert second.get_json()["features"][0]["enabled"] is False
    make_flags.toggle("f", False, env="development")  # no change at all: same document
    assert (
        get_features(client, client_token, **{"If-None-Match": second.headers["ETag"]}).status_code
        == 304
    )


def test_gzip_copy_is_served_to_clients_that_accept_it(
    app: Flask, client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("f")
    plain = get_features(client, client_token)
    zipped = get_features(client, client_token, **{"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert "Content-Encoding" not in plain.headers
    with app.app_context():
        assert zipped.data == flags_snapshot().environment("production").document_gzip
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # another representation
    # Either validator proves the client holds the current content.
    for etag in (plain.headers["ETag"], zipped.headers["ETag"]):
        again = get_features(
            client, client_token, **{"If-None-Match": etag, "Accept-Encoding": "gzip"}
        )
        assert again.status_code == 304
        assert again.headers["ETag"] == zipped.headers["ETag"]
    refused = get_features(client, client_token, **{"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_project_default_is_served_and_other_projects_are_empty(
    client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("f")
    full = client.get(
        "/api/client/features?project=default", headers={"Authorization": client_token}
    )
    assert [f["name"] for f in full.get_json()["features"]] == ["f"]
    other = client.get(
        "/api/client/features?project=other", headers={"Authorization": client_token}
    )
    assert other.status_code == 200
    assert other.get_json()["features"] == []
    assert other.get_json()["version"] == 2
    again = client.get(
        "/api/client/features?project=other",
        headers={"Authorization": client_token, "If-None-Match": other.headers["ETag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("kind", "status"), [("admin", 403), ("frontend", 403), ("client", 200), (None, 401)]
)
def test_only_client_tokens_read_the_client_api(
    client: FlaskClient, make_token: Callable[..., str], kind: str | None, status: int
) -> None:
    headers = {}
    if kind is not None:
        headers["Authorization"] = make_token(kind, None if kind == "admin" else "production")
    response = client.get("/api/client/features", headers=headers)
    assert response.status_code == status
    if status != 200:
        assert set(response.get_json()["error"]) >= {"code", "message"}
    for path in ("/api/client/register", "/api/client/metrics"):
        posted = client.post(path, json=bucket({}), headers=headers)
        assert posted.status_code == (202 if status == 200 else status)


def test_revoked_and_unknown_tokens_get_401(
    app: Flask, client: FlaskClient, client_token: str
) -> None:
    assert get_features(client, "dl_client_nonsense").status_code == 401
    assert get_features(client, f"Bearer {client_token}").status_code == 200
    with app.app_context():
        s = db.session()
        token = s.scalars(select(auth.ApiToken).where(auth.ApiToken.kind == "client")).one()
        auth.revoke_token(s, Actor("test"), token.id)
    assert get_features(client, client_token).status_code == 401


def test_token_for_an_environment_this_server_does_not_serve_is_refused(
    database: Any, tmp_path: Any, make_token: Callable[..., str], app: Flask
) -> None:
    from tests.conftest import make_app

    token = make_token("client", "development")
    # The same database served by an install that dropped the development environment.
    narrowed = make_app(app.config["DATABASE_URL"], ENVIRONMENTS=("production",))
    try:
        response = narrowed.test_client().get(
            "/api/client/features", headers={"Authorization": token}
        )
        assert response.status_code == 403
        assert "development" in response.get_json()["error"]["message"]
    finally:
        narrowed.extensions["db.engine"].dispose()


def test_register_records_the_instance(app: Flask, client: FlaskClient, client_token: str) -> None:
    body = {
        "appName": "exp-app",
        "instanceId": "exp-1",
        "connectionId": "c0ffee",
        "platformName": "CPython",
        "platformVersion": "3.11.7",
        "yggdrasilVersion": "0.20.8",
        "specVersion": "6.1.0",
        "sdkVersion": "unleash-python-sdk:6.9.1",
        "strategies": [],
        "started": "2026-11-26T12:48:05.087109+00:00",
        "interval": 2,
    }
    response = client.post(
        "/api/client/register", json=body, headers={"Authorization": client_token}
    )
    assert response.status_code == 202
    with app.app_context():
        instance = db.session().scalars(select(SdkInstance)).one()
        assert (instance.app_name, instance.instance_id, instance.environment) == (
            "exp-app",
            "exp-1",
            "production",
        )
        assert instance.sdk_version == "unleash-python-sdk:6.9.1"
        assert instance.connection_id == "c0ffee"
        assert instance.platform == "CPython 3.11.7"
        assert instance.interval == 2
        assert instance.kind == "client"
        assert instance.started_at == datetime(2026, 11, 26, 12, 48, 5, 87109, tzinfo=UTC)
    # Registering again updates the same row.
    client.post(
        "/api/client/register",
        json={**body, "sdkVersion": "unleash-python-sdk:6.10.0"},
        headers={"Authorization": client_token},
    )
    with app.app_context():
        rows = db.session().scalars(select(SdkInstance)).all()
        assert [r.sdk_version for r in rows] == ["unleash-python-sdk:6.10.0"]


def test_metrics_add_up_per_flag_environment_and_hour(
    app: Flask, client: FlaskClient, make_flags: Flags, client_token: str, monkeypatch: Any
) -> None:
    # Variants count only when the flag can hand them out (server.protocols.intake).
    make_flags.create("new-checkout", variants=[{"name": "blue", "weight": 1000}])
    make_flags.create("other")
    from server import clock

    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 26, 12, 30, tzinfo=UTC))
    with app.app_context():
        revision = read_revision(db.session())
    headers = {"Authorization": client_token, "Unleash-Sdk": "unleash-python-sdk:6.9.1"}
    first = bucket(
        {
            "new-checkout": {"yes": 3, "no": 2, "variants": {"blue": 1, "disabled": 1}},
            "nope": {"yes": 1, "no": 1, "variants": {}},
        }
    )
    assert client.post("/api/client/metrics", json=first, headers=headers).status_code == 202
    second = bucket({"new-checkout": {"yes": 4, "no": 0, "variants": {"blue": 2}}}, instance="i-2")
    assert client.post("/api/client/metrics", json=second, headers=headers).status_code == 202
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 26, 13, 5, tzinfo=UTC))
    third = bucket({"new-checkout": {"yes": 1, "no": 1}, "other": {"yes": 0, "no": 5}})
    assert client.post("/api/client/metrics", json=third, headers=headers).status_code == 202
    with app.app_context():
        s = db.session()
        rows = s.execute(
            select(
                FlagHourlyMetric.flag_name,
                FlagHourlyMetric.environment,
                FlagHourlyMetric.hour,
                FlagHourlyMetric.yes,
                FlagHourlyMetric.no,
            ).order_by(FlagHourlyMetric.hour, FlagHourlyMetric.flag_name)
        ).all()
        noon = datetime(2026, 11, 26, 12, tzinfo=UTC)
        one = datetime(2026, 11, 26, 13, tzinfo=UTC)
        assert [tuple(r) for r in rows] == [
            ("new-checkout", "production", noon, 7, 2),
            ("new-checkout", "production", one, 1, 1),
            ("other", "production", one, 0, 5),
        ]
        variants = s.execute(
            select(FlagHourlyVariantMetric.variant, FlagHourlyVariantMetric.count).order_by(
                FlagHourlyVariantMetric.variant
            )
        ).all()
        assert [tuple(v) for v in variants] == [("blue", 3), ("disabled", 1)]
        assert s.scalar(select(func.count(FlagLastSeen.id))) == 2  # unknown "nope" not kept
        instances = s.scalars(select(SdkInstance).order_by(SdkInstance.instance_id)).all()
        assert [(i.instance_id, i.sdk_version) for i in instances] == [
            ("i-1", "unleash-python-sdk:6.9.1"),
            ("i-2", "unleash-python-sdk:6.9.1"),
        ]
        # Metrics are not flag changes: workers keep their compiled snapshot.
        assert read_revision(s) == revision
        usage = app.extensions["flags.usage"](s, "new-checkout")
        assert usage[-1] == ("production", one, 1, 1)
        seen = app.extensions["flags.last_seen"](s, ["new-checkout", "other", "absent"])
        assert seen == {
            ("new-checkout", "production"): datetime(2026, 11, 26, 13, 5, tzinfo=UTC),
            ("other", "production"): datetime(2026, 11, 26, 13, 5, tzinfo=UTC),
        }


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"null",
        b'{"appName": "x"}',
        b'{"appName": "x", "bucket": {"start": "yesterday", "stop": "2026-11-26T12:00:00Z"}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": {"f": {"yes": -1}}}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": {"f": {"yes": "3"}}}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": {"f": {"yes": 1, "variants": {"a": true}}}}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": ["f"]}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": {"": {"yes": 1}}}}',
        b'{"appName": "x", "bucket": {"start": "2026-11-26T12:00:00Z", '
        b'"stop": "2026-11-26T12:00:00Z", "toggles": {"f": {"yes": 1, "variants": {"": 1}}}}}',
    ],
)
def test_malformed_metrics_get_400_and_keep_earlier_buckets(
    app: Flask, client: FlaskClient, make_flags: Flags, client_token: str, body: bytes
) -> None:
    make_flags.create("f")
    headers = {"Authorization": client_token, "Content-Type": "application/json"}
    good = bucket({"f": {"yes": 2, "no": 1}})
    assert client.post("/api/client/metrics", json=good, headers=headers).status_code == 202
    response = client.post("/api/client/metrics", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid"
    with app.app_context():
        rows = db.session().execute(select(FlagHourlyMetric.yes, FlagHourlyMetric.no)).all()
        assert [tuple(r) for r in rows] == [(2, 1)]


def test_sparse_registration_is_recorded_with_what_it_says(
    app: Flask, client: FlaskClient, client_token: str
) -> None:
    response = client.post(
        "/api/client/register",
        json={"appName": "bare", "started": "2026-11-26T12:00:00"},
        headers={"Authorization": client_token},
    )
    assert response.status_code == 202
    with app.app_context():
        s = db.session()
        instance = s.scalars(select(SdkInstance)).one()
        assert instance.instance_id == "default" and instance.sdk_version == ""
        assert instance.started_at == datetime(2026, 11, 26, 12, tzinfo=UTC)  # naive means UTC
        from server.protocols.service import applications

        assert [(a.name, a.sdk_versions, a.instances) for a in applications(s)] == [("bare", [], 1)]


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1]", b'{"instanceId": "i"}', b'{"appName": "a", "interval": "soon"}'],
)
def test_malformed_registrations_get_400(
    client: FlaskClient, client_token: str, body: bytes
) -> None:
    response = client.post(
        "/api/client/register",
        data=body,
        headers={"Authorization": client_token, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid"


def test_concurrent_metrics_posts_all_count(
    app: Flask, live_server: LiveServer, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("busy", variants=[{"name": "a", "weight": 1000}])
    errors: list[str] = []

    def post(n: int) -> None:
        with requests.Session() as http:
            for _ in range(5):
                body = bucket({"busy": {"yes": 1, "no": 2, "variants": {"a": 1}}}, instance=f"{n}")
                r = http.post(
                    f"{live_server.url}/api/client/metrics",
                    json=body,
                    headers={"Authorization": client_token},
                    timeout=30,
                )
                if r.status_code != 202:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        s = db.session()
        yes, no = s.execute(
            select(func.sum(FlagHourlyMetric.yes), func.sum(FlagHourlyMetric.no))
        ).one()
        assert (yes, no) == (30, 60)
        assert s.scalar(select(func.sum(FlagHourlyVariantMetric.count))) == 30
        assert s.scalar(select(func.count(SdkInstance.id))) == 6


def test_features_path_opens_no_database_session(
    app: Flask, client: FlaskClient, make_flags: Flags, client_token: str, monkeypatch: Any
) -> None:
    make_flags.create("f")
    get_features(client, client_token)  # warm: the snapshot is built once
    opened: list[str] = []
    maker = app.extensions["db.sessionmaker"]
    original = maker.__call__

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append("session")
        return original(*args, **kwargs)

    monkeypatch.setattr(type(maker), "__call__", spy)
    app.extensions["snapshot"]._due = float("inf")  # the revision check itself is not the path
    for _ in range(3):
        assert get_features(client, client_token).status_code == 200
    assert opened == []
    assert json.loads(get_features(client, client_token).data)["features"]


def test_features_answer_carries_no_session_cookie(
    client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    make_flags.create("f")
    response = get_features(client, client_token)
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Accept-Encoding"


def test_openapi_documents_every_sdk_endpoint(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    paths = doc["paths"]
    assert paths["/api/client/features"]["get"]["responses"]["304"] == {"description": "Success"}
    assert "202" in paths["/api/client/metrics"]["post"]["responses"]
    assert "202" in paths["/api/client/register"]["post"]["responses"]
    assert set(paths["/api/frontend"]) == {"get", "post"}
    assert "200" in paths["/api/frontend/client/metrics"]["post"]["responses"]
    single = paths["/ofrep/v1/evaluate/flags/{key}"]["post"]
    assert single["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OfrepError"
    }
    assert "content" not in single["responses"]["401"]
    assert "304" in paths["/ofrep/v1/evaluate/flags"]["post"]["responses"]
    assert {"OfrepSuccess", "OfrepBulkOut", "ClientFeaturesOut", "FrontendOut"} <= set(
        doc["components"]["schemas"]
    )


def test_responses_match_their_documented_models(
    client: FlaskClient, make_flags: Flags, client_token: str, frontend_token: str
) -> None:
    from server.protocols.schemas import (
        ClientFeaturesOut,
        FrontendOut,
        OfrepBulkOut,
        OfrepError,
        OfrepSuccess,
    )

    segment_strategy = dict(
        NORDICS, variants=[{"name": "v", "payload": {"type": "json", "value": "{}"}}]
    )
    make_flags.create("f", strategies=[segment_strategy], description="Checkout")
    make_flags.create("g", dependencies=[{"feature": "f"}])
    ClientFeaturesOut.model_validate(get_features(client, client_token).get_json(), strict=True)
    frontend = client.get("/api/frontend?country=NO", headers={"Authorization": frontend_token})
    FrontendOut.model_validate(frontend.get_json())
    bearer = {"Authorization": f"Bearer {client_token}"}
    single = client.post(
        "/ofrep/v1/evaluate/flags/f", json={"context": {"country": "NO"}}, headers=bearer
    )
    OfrepSuccess.model_validate(single.get_json())
    bulk = client.post("/ofrep/v1/evaluate/flags", json={}, headers=bearer)
    OfrepBulkOut.model_validate(bulk.get_json())
    missing = client.post("/ofrep/v1/evaluate/flags/nope", json={}, headers=bearer)
    OfrepError.model_validate(missing.get_json())
