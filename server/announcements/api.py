"""The announcements JSON API (admin token or a signed-in editor), for scripts and the editor."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.announcements import service
from server.announcements.links import LiveLinks
from server.announcements.models import Announcement
from server.announcements.render import render_markdown
from server.announcements.schemas import (
    AnnouncementIn,
    AnnouncementList,
    AnnouncementOut,
    AnnouncementPatch,
    AnnouncementsQuery,
    PreviewIn,
    PreviewOut,
)
from server.api import api_doc, parse_body, validate
from server.web import actor

bp = Blueprint("announcements_api", __name__)
TAG = "announcements"


def announcement_dict(a: Announcement, links: LiveLinks) -> dict[str, Any]:
    status = service.effective_status(a)
    return {
        "id": a.id,
        "slug": a.slug,
        "url": links.entry_absolute(a),
        "title": a.title,
        "summary": a.summary,
        "body": a.body,
        "html": a.html,
        "category": a.category,
        "status": status.value,
        "live": service.is_live(a),
        "publish_at": a.publish_at.isoformat() if a.publish_at else None,
        "timezone": a.timezone,
        "flag": a.flag,
        "image_url": a.image_url,
        "image_alt": a.image_alt,
        "version": a.version,
        "created_at": a.created_at.isoformat(),
        "created_by": a.created_by,
        "updated_at": a.updated_at.isoformat(),
        "updated_by": a.updated_by,
    }


@bp.route("/api/announcements")
@requires(Permission.READ)
@api_doc(
    "List announcements, most recently changed first",
    query=AnnouncementsQuery,
    responses={200: AnnouncementList},
    tag=TAG,
)
def list_announcements() -> Response:
    """List announcements as JSON, optionally in one status."""
    q = validate(AnnouncementsQuery, request.args.to_dict())
    rows = service.list_for_editor(db.session(), q.status)
    links = LiveLinks()
    page = rows[q.offset : q.offset + q.limit]
    return jsonify({"items": [announcement_dict(a, links) for a in page], "total": len(rows)})


@bp.route("/api/announcements", methods=["POST"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
@api_doc(
    "Create an announcement", request=AnnouncementIn, responses={201: AnnouncementOut}, tag=TAG
)
def create() -> tuple[Response, int]:
    """Create an announcement (a draft unless `status` says otherwise)."""
    data = parse_body(AnnouncementIn)
    a = service.create_announcement(db.session(), actor(), data)
    return jsonify(announcement_dict(a, LiveLinks())), 201


@bp.route("/api/announcements/<int:announcement_id>")
@requires(Permission.READ)
@api_doc("Get one announcement", responses={200: AnnouncementOut}, tag=TAG)
def get(announcement_id: int) -> Response:
    """Show one announcement as JSON."""
    a = service.get_announcement(db.session(), announcement_id)
    return jsonify(announcement_dict(a, LiveLinks()))


@bp.route("/api/announcements/<int:announcement_id>", methods=["PATCH"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
@api_doc(
    "Change an announcement (send `version` to refuse a stale edit with 409)",
    request=AnnouncementPatch,
    responses={200: AnnouncementOut},
    tag=TAG,
)
def patch(announcement_id: int) -> Response:
    """Change some fields of an announcement, or its status."""
    changes = parse_body(AnnouncementPatch).model_dump(exclude_unset=True)
    version = changes.pop("version", None)
    a = service.update_announcement(db.session(), actor(), announcement_id, changes, version)
    return jsonify(announcement_dict(a, LiveLinks()))


@bp.route("/api/announcements/<int:announcement_id>", methods=["DELETE"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
@api_doc("Delete a draft or archived announcement", responses={204: None}, tag=TAG)
def delete(announcement_id: int) -> tuple[str, int]:
    """Delete a draft or archived announcement for good."""
    service.delete_announcement(db.session(), actor(), announcement_id)
    return "", 204


@bp.route("/api/announcements/preview", methods=["POST"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
@api_doc(
    "Render Markdown exactly as the changelog will (sanitised HTML)",
    request=PreviewIn,
    responses={200: PreviewOut},
    tag=TAG,
)
def preview() -> Response:
    """Render Markdown to the sanitised HTML the changelog would show."""
    data = parse_body(PreviewIn)
    return jsonify({"html": render_markdown(data.body)})
