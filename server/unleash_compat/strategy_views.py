"""The strategies settings page: the built-in types, and custom ones to define, change,
deprecate, reactivate and delete (the same services as `/api/admin/strategies`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length

from server import db
from server.access import Permission, requires
from server.api import validate
from server.errors import DomainError, Invalid
from server.flags import views as flag_views
from server.flags.admin_meta import BUILT_IN_STRATEGIES
from server.flags.definitions import StrategyDefinition
from server.flags.forms import choices
from server.unleash_compat import strategies
from server.unleash_compat.strategies import StrategyTypeIn, StrategyTypeUpdateIn
from server.web import actor, add_nav, form_errors

bp = Blueprint("strategies", __name__)

PARAMETER_TYPES = choices(
    [
        ("string", "Text"),
        ("percentage", "Percentage"),
        ("list", "List"),
        ("number", "Number"),
        ("boolean", "Yes/no"),
    ]
)
EMPTY_ROWS = 3  # rows for new parameters below the existing ones (no script needed)


def init_ui(app: Flask) -> None:
    """Add the strategies settings pages and their navigation entry."""
    app.register_blueprint(bp)
    add_nav(app, "Strategies", "strategies.index", Permission.READ, order=16)


class ParameterForm(Form):
    name = StringField("Parameter name", validators=[Length(max=100)])
    type = SelectField("Type", choices=PARAMETER_TYPES, default="string")
    required = BooleanField("Required")
    description = StringField("Description", validators=[Length(max=1000)])


class StrategyTypeForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=100)])
    title = StringField("Title (optional)", validators=[Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=1000)])
    parameters = FieldList(FormField(ParameterForm))


def _form_for(d: StrategyDefinition | None) -> StrategyTypeForm:
    data: dict[str, Any] = {"parameters": []}
    if d is not None:
        data = {
            "name": d.name,
            "title": d.title,
            "description": d.description,
            "parameters": list(d.parameters),
        }
    form = StrategyTypeForm(data=data)
    for _ in range(EMPTY_ROWS):
        form.parameters.append_entry()
    return form


def _body(form: StrategyTypeForm) -> dict[str, Any]:
    return {
        "name": (form.name.data or "").strip(),
        "title": (form.title.data or "").strip() or None,
        "description": (form.description.data or "").strip() or None,
        "parameters": [
            {
                "name": (row.form.name.data or "").strip(),
                "type": row.form.type.data,
                "required": bool(row.form.required.data),
                "description": (row.form.description.data or "").strip(),
            }
            for row in form.parameters
            if (row.form.name.data or "").strip()
        ],
    }


@bp.route("/strategies", endpoint="index")
@requires(Permission.READ)
def strategy_list() -> str:
    """List the strategy types: built in, then custom with the flags using each."""
    s = db.session()
    custom = strategies.list_strategy_types(s)
    return render_template(
        "strategies/list.html",
        built_in=BUILT_IN_STRATEGIES,
        custom=custom,
        users={d.name: strategies.strategy_type_users(s, d.name) for d in custom},
        can_write=flag_views.can_write(),
    )


@bp.route("/strategies/new", methods=["GET", "POST"], endpoint="create")
@requires(Permission.FLAGS_WRITE)
def strategy_create() -> flag_views.Page:
    """Define a custom strategy type."""
    return _editor(None)


@bp.route("/strategies/<name>", methods=["GET", "POST"], endpoint="edit")
@requires(Permission.FLAGS_WRITE)
def strategy_edit(name: str) -> flag_views.Page:
    """Change a custom strategy type's title, description and parameters."""
    return _editor(name)


def _editor(name: str | None) -> flag_views.Page:
    s = db.session()
    d = strategies.get_strategy_type(s, name) if name is not None else None
    status = 200
    if request.method == "POST":
        form = StrategyTypeForm()
        if d is not None:
            form.name.data = d.name  # the name cannot change: flags refer to it
        if form.validate():
            try:
                body = _body(form)
                if d is None:
                    strategies.create_strategy_type(s, actor(), validate(StrategyTypeIn, body))
                else:
                    data = validate(StrategyTypeUpdateIn, body)
                    strategies.update_strategy_type(s, actor(), d.name, data)
            except DomainError as exc:
                _place(form, exc)
                status = exc.status
            else:
                flash(f"Saved strategy {form.name.data}.", "success")
                return redirect(url_for("strategies.index"))
        else:
            status = 400
        while sum(1 for r in form.parameters if not (r.form.name.data or "").strip()) < 1:
            form.parameters.append_entry()
    else:
        form = _form_for(d)
    users = strategies.strategy_type_users(s, d.name) if d is not None else []
    return render_template("strategies/form.html", form=form, strategy=d, users=users), status


def _place(form: StrategyTypeForm, exc: DomainError) -> None:
    fields = (exc.details or {}).get("fields", {}) if isinstance(exc, Invalid) else {}
    for key, message in fields.items():
        top = key.split(".")[0]
        if top in ("name", "title", "description"):
            getattr(form, top).errors = [message]
        else:
            form.form_errors.append(f"Parameters: {message}")
    if not fields:
        form_errors(form, exc)


def _state_change(name: str, deprecated: bool) -> Response:
    try:
        strategies.set_strategy_type_deprecated(db.session(), actor(), name, deprecated)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        verb = "Deprecated" if deprecated else "Reactivated"
        flash(f"{verb} strategy {name}.", "success")
    return redirect(url_for("strategies.index"))


@bp.route("/strategies/<name>/deprecate", methods=["POST"], endpoint="deprecate")
@requires(Permission.FLAGS_WRITE)
def strategy_deprecate(name: str) -> Response:
    """Deprecate: no longer offered for new strategies; flags that use it keep it."""
    return _state_change(name, True)


@bp.route("/strategies/<name>/reactivate", methods=["POST"], endpoint="reactivate")
@requires(Permission.FLAGS_WRITE)
def strategy_reactivate(name: str) -> Response:
    """Offer a deprecated strategy type again."""
    return _state_change(name, False)


@bp.route("/strategies/<name>/delete", methods=["POST"], endpoint="delete")
@requires(Permission.FLAGS_WRITE)
def strategy_delete(name: str) -> Response:
    """Delete a custom strategy type that no flag uses."""
    try:
        strategies.delete_strategy_type(db.session(), actor(), name)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Deleted strategy {name}.", "success")
    return redirect(url_for("strategies.index"))
