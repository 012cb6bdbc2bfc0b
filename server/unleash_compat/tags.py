"""Unleash's tag endpoints over Darklaunch's flag tags: `/api/admin/features/NAME/tags` and
`/api/admin/tag-types` (list, define, change, delete).

Darklaunch keeps a flag's tags as text: `value` for Unleash's `simple` type, `type:value`
otherwise (what the admin API, flags as code and the Unleash import use). These endpoints show
and change the same tags in Unleash's `{type, value}` shape, so scripts that tag flags keep
working. Tag types are `simple`, the defined ones (server/unleash_compat/tag_types.py) and any
other type a flag's tag uses.
"""

from __future__ import annotations

from flask import Blueprint
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body, validate
from server.errors import Conflict, NotFound
from server.flags import service
from server.flags.api import empty_response, json_response
from server.flags.compile import active_flags
from server.flags.definitions import TagType
from server.flags.models import Flag
from server.flags.schemas import FLAG_NAME_RE, FlagFields
from server.unleash_compat import tag_types
from server.web import actor

bp = Blueprint("unleash_tags", __name__)

TAGS = "/api/admin/features/<name>/tags"
TAG_TYPES = "/api/admin/tag-types"


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
    description: str | None
    icon: str | None = None


class TagTypeOneOut(BaseModel):
    version: int
    tagType: TagTypeOut


class ValidTagTypeOut(BaseModel):
    valid: bool
    tagType: TagTypeOut


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


def _type_out(t: TagType) -> TagTypeOut:
    return TagTypeOut(name=t.name, description=t.description, icon=t.icon)


@bp.get(TAG_TYPES)
@requires(Permission.READ)
@api_doc(
    "Tag types: `simple`, those defined and those in use", responses={200: TagTypesOut}, tag="flags"
)
def list_tag_types() -> Response:
    """The tag types: built-in `simple`, the defined ones and any other type a flag's tag uses."""
    s = db.session()
    listed = {t.name: _type_out(t) for t in tag_types.defined_tag_types(s)}
    listed[tag_types.SIMPLE] = TagTypeOut(
        name=tag_types.SIMPLE, description=tag_types.SIMPLE_DESCRIPTION
    )
    for f in active_flags(s):
        for t in f.tags:
            kind = _tag_out(t).type
            listed.setdefault(kind, TagTypeOut(name=kind, description=""))
    return json_response(TagTypesOut(version=1, tagTypes=[listed[k] for k in sorted(listed)]))


@bp.get(TAG_TYPES + "/<name>")
@requires(Permission.READ)
@api_doc("One tag type", responses={200: TagTypeOneOut}, tag="flags")
def get_tag_type(name: str) -> Response:
    """One tag type (`simple` or a defined one)."""
    if name == tag_types.SIMPLE:
        out = TagTypeOut(name=name, description=tag_types.SIMPLE_DESCRIPTION)
    else:
        out = _type_out(tag_types.get_tag_type(db.session(), name))
    return json_response(TagTypeOneOut(version=1, tagType=out))


@bp.post(TAG_TYPES)
@requires(Permission.FLAGS_WRITE)
@api_doc("Define a tag type", request=tag_types.TagTypeIn, responses={201: TagTypeOut}, tag="flags")
def create_tag_type() -> Response:
    """Define a tag type."""
    body = parse_body(tag_types.TagTypeIn)
    return json_response(
        _type_out(tag_types.create_tag_type(db.session(), actor(), body)), status=201
    )


@bp.post(TAG_TYPES + "/validate")
@requires(Permission.FLAGS_WRITE)
@api_doc("Check a new tag type", request=tag_types.TagTypeIn, responses={200: None}, tag="flags")
def validate_tag_type() -> Response:
    """200 `{valid: true, tagType}` when it could be created; 409 when the name is taken."""
    body = parse_body(tag_types.TagTypeIn)
    if body.name == tag_types.SIMPLE or any(
        t.name == body.name for t in tag_types.defined_tag_types(db.session())
    ):
        raise Conflict(f"A tag type named {body.name!r} already exists.")
    return json_response(ValidTagTypeOut(valid=True, tagType=TagTypeOut(**body.model_dump())))


@bp.put(TAG_TYPES + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Change a tag type", request=tag_types.TagTypeUpdateIn, responses={200: None}, tag="flags")
def update_tag_type(name: str) -> Response:
    """Change a tag type's description and icon."""
    tag_types.update_tag_type(db.session(), actor(), name, parse_body(tag_types.TagTypeUpdateIn))
    return empty_response()


@bp.delete(TAG_TYPES + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Delete a tag type no flag uses", responses={200: None}, tag="flags")
def delete_tag_type(name: str) -> Response:
    """Delete a tag type; one a live flag's tag uses is a 409."""
    tag_types.delete_tag_type(db.session(), actor(), name)
    return empty_response()
