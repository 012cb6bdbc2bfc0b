"""`/api/admin/context`: context fields with legal values, in Unleash's shapes."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint
from pydantic import BaseModel, RootModel
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body
from server.errors import Conflict
from server.flags.api import empty_response, json_response
from server.flags.definitions import ContextField
from server.unleash_compat import context
from server.unleash_compat.context import ContextFieldIn, ContextFieldUpdateIn
from server.web import actor

bp = Blueprint("unleash_context", __name__)

CONTEXT = "/api/admin/context"


class LegalValueOut(BaseModel):
    value: str
    description: str


class ContextFieldOut(BaseModel):
    """Unleash's `contextFieldSchema`."""

    name: str
    description: str
    stickiness: bool
    sortOrder: int
    createdAt: datetime
    legalValues: list[LegalValueOut]


class ContextFieldsOut(RootModel[list[ContextFieldOut]]):
    pass


class NameIn(StrictModel):
    name: str


def field_out(f: ContextField) -> ContextFieldOut:
    return ContextFieldOut(
        name=f.name,
        description=f.description,
        stickiness=f.stickiness,
        sortOrder=f.sort_order,
        createdAt=f.created_at,
        legalValues=[LegalValueOut.model_validate(v) for v in f.legal_values],
    )


@bp.get(CONTEXT)
@requires(Permission.READ)
@api_doc("List context fields", responses={200: ContextFieldsOut}, tag="flags")
def list_fields() -> Response:
    """Every defined context field with its legal values."""
    fields = context.list_context_fields(db.session())
    return json_response(ContextFieldsOut([field_out(f) for f in fields]))


@bp.get(CONTEXT + "/<name>")
@requires(Permission.READ)
@api_doc("Read one context field", responses={200: ContextFieldOut}, tag="flags")
def get_field(name: str) -> Response:
    """One context field."""
    return json_response(field_out(context.get_context_field(db.session(), name)))


@bp.post(CONTEXT)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Define a context field", request=ContextFieldIn, responses={201: ContextFieldOut}, tag="flags"
)
def create_field() -> Response:
    """Define a context field and its legal values."""
    created = context.create_context_field(db.session(), actor(), parse_body(ContextFieldIn))
    return json_response(field_out(created), status=201)


@bp.put(CONTEXT + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Change a context field", request=ContextFieldUpdateIn, responses={200: None}, tag="flags")
def update_field(name: str) -> Response:
    """Change a context field (its name stays)."""
    context.update_context_field(db.session(), actor(), name, parse_body(ContextFieldUpdateIn))
    return empty_response()


@bp.delete(CONTEXT + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Delete a context field", responses={200: None}, tag="flags")
def delete_field(name: str) -> Response:
    """Delete a context field's definition."""
    context.delete_context_field(db.session(), actor(), name)
    return empty_response()


@bp.post(CONTEXT + "/validate")
@requires(Permission.FLAGS_WRITE)
@api_doc("Check a context field name is free", request=NameIn, responses={200: None}, tag="flags")
def validate_name() -> Response:
    """200 when the name is free, 409 when it is taken."""
    body = parse_body(NameIn)
    if any(f.name == body.name for f in context.list_context_fields(db.session())):
        raise Conflict(f"A context field named {body.name!r} already exists.")
    return empty_response()
