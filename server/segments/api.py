"""The segments admin API: Unleash's paths and shapes (`/api/admin/segments`).

Reads need `read`, writes `flags.write`. A change carries the segment's version, in the body
(`version`) or in `If-Match`; a stale version gets 409 naming who changed it.
"""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import api_doc, parse_body
from server.errors import NotFound
from server.flags.api import empty_response, expected_version, json_response
from server.flags.models import Segment
from server.flags.schemas import ConstraintOut, SegmentIn
from server.segments import service
from server.segments.schemas import SegmentBody, SegmentOut, SegmentsOut
from server.web import actor

bp = Blueprint("segments_api", __name__)

SEGMENTS = "/api/admin/segments"
SEGMENT = SEGMENTS + "/<int:segment_id>"


def _segment_id(segment_id: int) -> int:
    # Ids are 32-bit: a larger number names no segment (and must not reach the database).
    if segment_id > 2_147_483_647:
        raise NotFound(f"No segment with id {segment_id}.")
    return segment_id


def segment_out(segment: Segment, used_in: int) -> SegmentOut:
    """A segment in the API's shape; `used_in` counts the live flags that use it."""
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        constraints=[ConstraintOut.model_validate(c) for c in segment.constraints],
        usedInFeatures=used_in,
        version=segment.version,
        createdAt=segment.created_at,
        updatedAt=segment.updated_at,
        updatedBy=segment.updated_by,
    )


@bp.get(SEGMENTS)
@requires(Permission.READ)
@api_doc("List segments", responses={200: SegmentsOut}, tag="segments")
def list_segments() -> Response:
    """List every segment."""
    session = db.session()
    rows = service.list_segments(session)
    counts = service.segment_use_counts(session)  # one query for every segment, not one each
    segments = [segment_out(s, counts.get(s.id, 0)) for s in rows]
    return json_response(SegmentsOut(segments=segments))


def _one_out(session: Session, segment: Segment) -> SegmentOut:
    counts = service.segment_use_counts(session, [segment.id])
    return segment_out(segment, counts.get(segment.id, 0))


def _segment_data(body: SegmentBody) -> SegmentIn:
    return SegmentIn(name=body.name, description=body.description, constraints=body.constraints)


@bp.post(SEGMENTS)
@requires(Permission.FLAGS_WRITE)
@api_doc("Create a segment", request=SegmentBody, responses={201: SegmentOut}, tag="segments")
def create_segment() -> Response:
    """Create a segment."""
    body = parse_body(SegmentBody)
    session = db.session()
    segment = service.create_segment(session, actor(), _segment_data(body))
    return json_response(_one_out(session, segment), 201)


@bp.get(SEGMENT)
@requires(Permission.READ)
@api_doc("Read one segment", responses={200: SegmentOut}, tag="segments")
def get_segment(segment_id: int) -> Response:
    """Show one segment."""
    session = db.session()
    segment = service.get_segment(session, _segment_id(segment_id))
    return json_response(_one_out(session, segment))


@bp.put(SEGMENT)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a segment (every strategy using it changes with it)",
    request=SegmentBody,
    responses={200: SegmentOut},
    tag="segments",
)
def update_segment(segment_id: int) -> Response:
    """Change a segment."""
    body = parse_body(SegmentBody)
    session = db.session()
    segment = service.update_segment(
        session,
        actor(),
        _segment_id(segment_id),
        _segment_data(body),
        expected_version(body.version),
    )
    return json_response(_one_out(session, segment))


@bp.delete(SEGMENT)
@requires(Permission.FLAGS_WRITE)
@api_doc("Delete a segment no strategy uses", responses={204: None}, tag="segments")
def delete_segment(segment_id: int) -> Response:
    """Delete a segment."""
    service.delete_segment(db.session(), actor(), _segment_id(segment_id))
    return empty_response(204)
