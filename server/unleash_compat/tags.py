"""Unleash's tag endpoints over Darklaunch's flag tags: `/api/admin/features/NAME/tags` and
`/api/admin/tag-types` (read-only).

Darklaunch keeps a flag's tags as text: `value` for Unleash's `simple` type, `type:value`
otherwise (what the admin API, flags as code and the Unleash import use). These endpoints show
and change the same tags in Unleash's `{type, value}` shape, so scripts that tag flags keep
working. Tag types are the ones in use plus `simple`; defining new ones is not supported yet.
"""

from __future__ import annotations

from flask import Blueprint
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body, validate
from server.errors import NotFound
from server.flags import service
from server.flags.api import empty_response, json_response
from server.flags.compile import active_flags
from server.flags.models import Flag
from server.flags.schemas import FLAG_NAME_RE, FlagFields
from server.web import actor

bp = Blueprint("unleash_tags", __name__)

TAGS = "/api/admin/features/<name>/tags"


class TagBody(StrictModel):
    type: str = Field(default="simple", min_length=2, max_length=50)
    value: str = Field(min_length=2, max_length=50)


class TagOut(BaseModel):
    type: str
    value: str


class TagsOut(BaseModel):
    version: int
    tags: list[TagOut]


class TagTypeOut(BaseModel):
    name: str
    description: str
    icon: None = None


class TagTypesOut(BaseModel):
    version: int
    tagTypes: list[TagTypeOut]


def _tag_out(text: str) -> TagOut:
    kind, sep, value = text.partition(":")
    return TagOut(type=kind, value=value) if sep else TagOut(type="simple", value=text)


def _text(tag: TagBody) -> str:
    return tag.value if tag.type == "simple" else f"{tag.type}:{tag.value}"


def _flag(name: str) -> Flag:
    if not FLAG_NAME_RE.fullmatch(name):
        raise NotFound(f"No flag named {name!r}.")
    return service.get_flag(db.session(), name, include_archived=False)


@bp.get(TAGS)
@requires(Permission.READ)
@api_doc("A flag's tags as {type, value}", responses={200: TagsOut}, tag="flags")
def list_tags(name: str) -> Response:
    """List a flag's tags in Unleash's shape."""
    flag = _flag(name)
    return json_response(TagsOut(version=1, tags=[_tag_out(t) for t in flag.tags]))


def _set_tags(name: str, tags: list[str]) -> None:
    flag = _flag(name)
    data = validate(FlagFields, service.flag_fields(flag) | {"tags": tags})
    service.update_flag(db.session(), actor(), name, data, None)


@bp.post(TAGS)
@requires(Permission.FLAGS_WRITE)
@api_doc("Tag a flag", request=TagBody, responses={201: TagOut}, tag="flags")
def add_tag(name: str) -> Response:
    """Add one tag (adding one the flag has changes nothing)."""
    body = parse_body(TagBody)
    flag = _flag(name)
    text = _text(body)
    if text.lower() not in flag.tags:
        _set_tags(name, [*flag.tags, text])
    return json_response(_tag_out(text.lower()), status=201)


@bp.delete(TAGS + "/<tag_type>/<value>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Remove a tag from a flag", responses={200: None}, tag="flags")
def remove_tag(name: str, tag_type: str, value: str) -> Response:
    """Remove one tag; removing one the flag does not have changes nothing."""
    flag = _flag(name)
    text = (value if tag_type == "simple" else f"{tag_type}:{value}").lower()
    if text in flag.tags:
        _set_tags(name, [t for t in flag.tags if t != text])
    return empty_response()


@bp.get("/api/admin/tag-types")
@requires(Permission.READ)
@api_doc("Tag types: `simple` and those in use", responses={200: TagTypesOut}, tag="flags")
def list_tag_types() -> Response:
    """The tag types Unleash tooling may use here."""
    kinds = {"simple"} | {_tag_out(t).type for f in active_flags(db.session()) for t in f.tags}
    described = {"simple": "Used to simplify filtering of features"}
    return json_response(
        TagTypesOut(
            version=1,
            tagTypes=[TagTypeOut(name=k, description=described.get(k, "")) for k in sorted(kinds)],
        )
    )
