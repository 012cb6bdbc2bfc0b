"""The segments pages: list with the flags using each, create, edit with a version, delete."""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.errors import DomainError
from server.flags import forms
from server.flags import views as flag_views
from server.flags.describe import describe_constraint
from server.segments import forms as segment_forms
from server.segments import queries, service
from server.unleash_compat.context import list_context_fields
from server.web import actor, add_nav, form_errors

bp = Blueprint("segments", __name__)

Page = flag_views.Page


def init_ui(app: Flask) -> None:
    """Add the segments pages and their navigation entry."""
    app.register_blueprint(bp)
    add_nav(app, "Segments", "segments.index", Permission.READ, order=15)


@bp.route("/segments", endpoint="index")
@requires(Permission.READ)
def segment_list() -> str:
    """List segments and the flags that use each."""
    s = db.session()
    return render_template(
        "segments/list.html",
        segments=service.list_segments(s),
        usage=queries.segment_usage(s),
        describe_constraint=describe_constraint,
        can_write=flag_views.can_write(),
    )


@bp.route("/segments/new", methods=["GET", "POST"], endpoint="create")
@requires(Permission.FLAGS_WRITE)
def segment_create() -> Page:
    """Create a segment: a named list of constraints strategies can share."""
    return _segment_editor(None)


@bp.route("/segments/<int:segment_id>", methods=["GET", "POST"], endpoint="edit")
@requires(Permission.FLAGS_WRITE)
def segment_edit(segment_id: int) -> Page:
    """Change a segment (every strategy using it changes with it)."""
    return _segment_editor(segment_id)


def _segment_editor(segment_id: int | None) -> Page:
    s = db.session()
    segment = service.get_segment(s, segment_id) if segment_id is not None else None
    status = 200
    if request.method == "POST":
        form = segment_forms.segment_form_for(formdata=request.form)
        if not flag_views.row_action(form):
            form.validate()
            data = segment_forms.segment_from_form(form)
            status = 400
            if data is not None:
                try:
                    if segment is None:
                        service.create_segment(s, actor(), data)
                    else:
                        service.update_segment(
                            s, actor(), segment.id, data, flag_views.form_version(form.version.data)
                        )
                except DomainError as exc:
                    form_errors(form, exc)
                    status = exc.status
                else:
                    flash(f"Saved segment {data.name}.", "success")
                    return redirect(url_for("segments.index"))
    else:
        form = segment_forms.segment_form_for(segment)
        if not form.constraints.entries:
            form.constraints.append_entry()
    users = service.segment_users(s, segment.id) if segment is not None else []
    return render_template(
        "segments/form.html",
        form=form,
        segment=segment,
        users=users,
        template_constraint=forms.ConstraintForm(prefix="constraints-__index__-"),
        context_fields=forms.CONTEXT_FIELD_SUGGESTIONS,
        defined_context=list_context_fields(s),
        single_value_operators=sorted(forms.SINGLE_VALUE_OPERATORS),
    ), status


@bp.route("/segments/<int:segment_id>/delete", methods=["POST"], endpoint="delete")
@requires(Permission.FLAGS_WRITE)
def segment_delete(segment_id: int) -> Response:
    """Delete a segment that no strategy uses."""
    s = db.session()
    try:
        name = service.get_segment(s, segment_id).name
        service.delete_segment(s, actor(), segment_id)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Deleted segment {name}.", "success")
    return redirect(url_for("segments.index"))
