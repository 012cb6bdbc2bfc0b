"""The OpenAPI document is valid OpenAPI 3.1, so schemathesis can load and fuzz it."""

from __future__ import annotations

from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator


def test_openapi_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_schemathesis_loads_the_document(client: FlaskClient) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(client.get("/api/openapi.json").get_json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= set(schema.raw_schema["paths"])


def test_defaults_the_schema_refuses_are_dropped() -> None:
    from server.api import _without_impossible_defaults

    schema = {
        "properties": {
            "sha": {"type": "string", "default": None},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "kind": {"type": ["string", "null"], "default": None},
            "count": {"type": "integer", "default": 0},
        }
    }
    cleaned = _without_impossible_defaults([schema])[0]["properties"]
    assert "default" not in cleaned["sha"]
    assert cleaned["note"]["default"] is None
    assert cleaned["kind"]["default"] is None
    assert cleaned["count"]["default"] == 0
