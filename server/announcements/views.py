"""The team's pages: the announcements list, the editor with live preview, changelog settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, current_principal, requires
from server.announcements import readers, reveal, service
from server.announcements.forms import AnnouncementForm, SettingsForm, editor_errors, zone
from server.announcements.links import base_url
from server.announcements.models import Announcement, Category, Status
from server.announcements.render import render_markdown
from server.announcements.schemas import AnnouncementIn, canonical_timezones
from server.api import validate
from server.errors import Conflict, DomainError
from server.flags.compile import CompiledEnvironment
from server.web import actor, form_errors

bp = Blueprint("announcements", __name__)

ACTIONS = ("save", "preview", "publish", "schedule", "unpublish", "archive", "restore")
TARGET_STATUS = {
    "publish": Status.PUBLISHED,
    "schedule": Status.SCHEDULED,
    "unpublish": Status.DRAFT,
    "archive": Status.ARCHIVED,
    "restore": Status.DRAFT,
}
DONE = {
    "save": "saved",
    "publish": "published",
    "schedule": "scheduled",
    "unpublish": "unpublished (back to draft)",
    "archive": "archived",
    "restore": "restored as a draft",
}


def _can(permission: Permission) -> bool:
    principal = current_principal()
    return principal is not None and principal.can(permission)


@bp.route("/announcements")
@requires(Permission.READ)
def index() -> str:
    """List drafts, scheduled, published and archived announcements, and flags to announce."""
    s = db.session()
    rows = service.list_for_editor(s)
    groups: dict[Status, list[Announcement]] = {status: [] for status in Status}
    for a in rows:
        groups[service.effective_status(a)].append(a)
    groups[Status.SCHEDULED].sort(key=lambda a: (a.publish_at, a.id))
    groups[Status.PUBLISHED].sort(key=lambda a: (a.publish_at, a.id), reverse=True)
    env = reveal.production()
    return render_template(
        "announcements/list.html",
        groups=groups,
        Status=Status,
        revealed=service.unannounced_revealed_flags(s),
        settings=service.read_settings(s),
        settings_form=SettingsForm(prefix="settings"),
        can_write=_can(Permission.ANNOUNCEMENTS_WRITE),
        can_admin=_can(Permission.GATE_ADMIN),
        zone=zone,
        flag_states={a.flag: _flag_state(env, a.flag) for a in rows if a.flag},
        widget_src=base_url() + url_for("changelog.widget_js"),
        # Admins hand this key to the host product's backend, which signs reader context.
        reader_key=(
            readers.context_key(current_app.config["SECRET_KEY"])
            if _can(Permission.GATE_ADMIN)
            else None
        ),
    )


@dataclass(frozen=True)
class FlagState:
    """How far a linked flag reveals its announcement, in words; `warning` when readers miss it."""

    text: str
    warning: bool = False


def _reader_fields(env: CompiledEnvironment | None, name: str, seen: set[str]) -> set[str]:
    """Context fields no anonymous reader carries that `name` or a parent of it asks for."""
    if name in seen:
        return set()
    seen.add(name)
    needs = reveal.reader_needs(env, name)
    fields = set(needs.fields)
    for parent in needs.parents:
        fields |= _reader_fields(env, parent, seen)
    return fields


def _flag_state(env: CompiledEnvironment | None, name: str) -> FlagState:
    """How far a linked flag is revealed in production, and whether readers can match it."""
    info = env.flags.get(name) if env else None
    if info is None:
        return FlagState("not in production (archived?): hidden everywhere")
    if not info.enabled:
        return FlagState("off in production: hidden everywhere")
    if reveal.on_for_everyone(env, name):
        return FlagState("on for everyone: shown everywhere")
    fields = sorted(_reader_fields(env, name, set()))
    parents = reveal.reader_needs(env, name).parents
    if fields:
        return FlagState(
            f"on for some users, but it asks for {', '.join(fields)}, which anonymous readers "
            "do not have: hidden from them; shown only where the host product passes signed "
            "reader context (docs/changelog.md), never in feeds",
            warning=True,
        )
    if parents:
        return FlagState(
            f"on for some visitors (depends on {', '.join(parents)}): shown to visitors who "
            "get both, not in feeds"
        )
    return FlagState("on for some visitors (by visitor id or address): shown to them, not in feeds")


def _humanise(flag: str) -> str:
    words = flag.replace("_", " ").replace("-", " ").replace(".", " ").split()
    return " ".join(words).capitalize()


def _editor(
    form: AnnouncementForm,
    a: Announcement | None,
    preview_html: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    if preview_html is None:
        preview_html = render_markdown(form.body.data or "") if form.body.data else ""
    return render_template(
        "announcements/editor.html",
        form=form,
        a=a,
        status=service.effective_status(a) if a else None,
        preview_html=preview_html,
        categories={c.value: c.label for c in Category},
        zone=zone,
        timezones=canonical_timezones(),
        flag_state=_flag_state(reveal.production(), form.flag.data) if form.flag.data else None,
    ), status


def _form(a: Announcement | None = None) -> AnnouncementForm:
    s = db.session()
    flags = service.linkable_flags(s)
    if a is not None and a.flag and a.flag not in flags:
        flags.append(a.flag)  # an archived flag stays selectable while it is linked
    if request.method == "POST":
        form = AnnouncementForm()
    elif a is not None:
        local = (
            a.publish_at.astimezone(zone(a.timezone)).replace(tzinfo=None) if a.publish_at else None
        )
        form = AnnouncementForm(
            data={
                "title": a.title,
                "summary": a.summary,
                "category": a.category,
                "body": a.body,
                "image_url": a.image_url or "",
                "image_alt": a.image_alt,
                "flag": a.flag or "",
                "publish_at": local,
                "timezone": a.timezone,
                "version": str(a.version),
            }
        )
    else:
        flag = request.args.get("flag", "")
        form = AnnouncementForm(
            data={
                "flag": flag if flag in flags else "",
                "title": _humanise(flag) if flag in flags else "",
                "timezone": "UTC",
                "category": Category.NEW.value,
            }
        )
    form.set_choices(flags)
    return form


def _action() -> str:
    action = request.form.get("action", "save")
    if action not in ACTIONS:
        abort(400, f"Unknown action {action[:40]!r}.")
    return action


def _refused(form: AnnouncementForm, changes: dict[str, Any]) -> bool:
    """Put a human message under each field the announcement rules refuse; True if any."""
    errors = editor_errors(changes)
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [message]
        else:
            form.form_errors.append(message)
    return bool(errors)


def _changes(form: AnnouncementForm, action: str, current: Status | None) -> dict[str, Any]:
    changes = form.fields()
    target = TARGET_STATUS.get(action, current or Status.DRAFT)
    changes["status"] = target
    if target is Status.SCHEDULED:
        changes["publish_at"] = form.publish_moment()
    return changes


@bp.route("/announcements/new", methods=["GET", "POST"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
def new() -> Response | tuple[str, int]:
    """Write a new announcement: save a draft, publish now or schedule it."""
    form = _form()
    if request.method == "GET":
        return _editor(form, None)
    action = _action()
    if not form.validate_on_submit():
        form.humanise()
        return _editor(form, None, status=400)
    if action == "preview":
        return _editor(form, None)
    changes = _changes(form, action, None)
    if _refused(form, changes):
        return _editor(form, None, status=400)
    try:
        data = validate(AnnouncementIn, changes)
        a = service.create_announcement(db.session(), actor(), data)
    except DomainError as exc:
        form_errors(form, exc)
        return _editor(form, None, status=exc.status)
    flash(f"“{a.title}” is {DONE.get(action, 'saved')}.", "success")
    return redirect(url_for("announcements.edit", announcement_id=a.id))


@bp.route("/announcements/<int:announcement_id>", methods=["GET", "POST"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
def edit(announcement_id: int) -> Response | tuple[str, int]:
    """Edit an announcement and change its status; a stale edit names who changed it."""
    s = db.session()
    a = service.get_announcement(s, announcement_id)
    form = _form(a)
    if request.method == "GET":
        return _editor(form, a)
    action = _action()
    if not form.validate_on_submit():
        form.humanise()
        return _editor(form, a, status=400)
    if action == "preview":
        return _editor(form, a)
    version = int(form.version.data) if (form.version.data or "").isdigit() else None
    changes = _changes(form, action, service.effective_status(a))
    if _refused(form, changes):
        return _editor(form, a, status=400)
    try:
        a = service.update_announcement(s, actor(), a.id, changes, version)
    except DomainError as exc:
        if isinstance(exc, Conflict):
            form.form_errors.append(exc.message)
        else:
            form_errors(form, exc)
        return _editor(form, service.get_announcement(s, announcement_id), status=exc.status)
    flash(f"“{a.title}” is {DONE.get(action, 'saved')}.", "success")
    return redirect(url_for("announcements.edit", announcement_id=a.id))


@bp.route("/announcements/<int:announcement_id>/delete", methods=["POST"])
@requires(Permission.ANNOUNCEMENTS_WRITE)
def delete(announcement_id: int) -> Response:
    """Delete a draft or archived announcement for good."""
    s = db.session()
    a = service.get_announcement(s, announcement_id)
    title = a.title
    try:
        service.delete_announcement(s, actor(), announcement_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("announcements.edit", announcement_id=announcement_id))
    flash(f"“{title}” is deleted.", "success")
    return redirect(url_for("announcements.index"))


@bp.route("/announcements/settings", methods=["POST"])
@requires(Permission.GATE_ADMIN)
def update_settings() -> Response:
    """Make the changelog public on its own (or not) and set its title."""
    form = SettingsForm(prefix="settings")  # the CSRF token was checked before this view
    try:
        view = service.update_settings(
            db.session(), actor(), public=bool(form.public.data), title=form.title.data or ""
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        state = "public while the gate is closed" if view.public else "behind the gate"
        flash(f"The changelog “{view.title}” is {state}.", "success")
    return redirect(url_for("announcements.index"))
