"""The flags pages: list and toggle, create, edit, strategies, variants, dependencies.

Every page works without JavaScript. `static/js/flags.js` adds one-click toggles (the same forms,
sent with fetch and answered in JSON), confirmation dialogs and in-place editor rows.

"Last seen" comes from whoever records SDK metrics: it registers a callable under
`app.extensions["flags.last_seen"]` taking `(session, flag_names)` (the page's flags only) and
returning `{(flag_name, environment): datetime}`. Without one, the column shows "—"; with one,
a flag it has no time for shows "never".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, current_principal, requires
from server.audit.service import EventFilter, list_events
from server.errors import DomainError, Invalid, NotFound, error_response, wants_json
from server.flags import forms, queries, service
from server.flags.describe import describe_constraint, describe_strategy
from server.flags.evaluation import make_context
from server.flags.explain import explain
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy
from server.flags.schemas import FLAG_NAME_RULE, FlagFields, FlagType
from server.pagination import page_number, parse_page
from server.segments import service as segments_service
from server.unleash_compat.context import list_context_fields
from server.unleash_compat.strategy_choices import offer_custom_strategies
from server.web import actor, add_nav, form_errors

bp = Blueprint("flags", __name__)

# Turning a flag on or off here, or copying a configuration into it, asks "are you sure?".
CONFIRM_ENVIRONMENTS = frozenset({"production"})
LAST_SEEN_HOOK = "flags.last_seen"
LastSeen = Callable[[Session, Sequence[str]], Mapping[tuple[str, str], datetime]]
HISTORY_PER_PAGE = 20
ROW_LISTS = ("constraints", "variants", "dependencies")

Page = str | Response | tuple[str, int]


def init_ui(app: Flask) -> None:
    """Add the flags pages and their navigation entry."""
    app.register_blueprint(bp)
    add_nav(app, "Flags", "flags.index", Permission.READ, order=10)


# ---- helpers -----------------------------------------------------------------------------------


@bp.app_template_filter("upper_first")
def upper_first(text: str) -> str:
    """Capitalise only the first letter (Jinja's `capitalize` lowercases the rest)."""
    return text[:1].upper() + text[1:]


def _environments() -> tuple[str, ...]:
    return tuple(current_app.config["ENVIRONMENTS"])


def can_write() -> bool:
    principal = current_principal()
    return principal is not None and principal.can(Permission.FLAGS_WRITE)


def _back(default: str) -> str:
    """Where a form asked to return to: only the flags pages of this site."""
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/flags") and not parts.scheme and not parts.netloc:
        return target
    return default


def form_version(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid("The form's version is not a number; reload the page.") from None


_PLACEHOLDER = re.compile(r"__([a-z]+)__")


@dataclass(frozen=True)
class PathPattern:
    """A URL built once per page and filled in per row: url_for is too slow for 100s of links."""

    pattern: str

    def __call__(self, **parts: str) -> str:
        # One pass over the pattern, so a value that looks like a placeholder stays a value.
        return _PLACEHOLDER.sub(lambda m: quote(parts[m.group(1)], safe=""), self.pattern)


def path_pattern(endpoint: str, *keys: str) -> PathPattern:
    placeholders: dict[str, Any] = {key: f"__{key}__" for key in keys}
    return PathPattern(url_for(endpoint, **placeholders))


def _detail_url(name: str, environment: str | None = None) -> str:
    anchor = f"env-{environment}" if environment else None
    return url_for("flags.detail", name=name, _anchor=anchor)


def row_action(form: Any) -> bool:
    """Handle the add/remove row buttons of editors; True when the form is only re-rendered."""
    for list_name in ROW_LISTS:
        rows = getattr(form, list_name, None)
        if rows is None:
            continue
        if f"add_{list_name}" in request.form:
            rows.append_entry()
            return True
        remove = request.form.get(f"remove_{list_name}")
        if remove is not None:
            rows.entries = [entry for entry in rows.entries if entry.name != remove]
            return True
    return False


def _segment_names(segments: Sequence[Segment]) -> dict[int, str]:
    return {segment.id: segment.name for segment in segments}


def strategy_sentence(strategy: Strategy, segment_names: Mapping[int, str]) -> str:
    return describe_strategy(
        strategy.name,
        strategy.parameters,
        strategy.constraints,
        [segment_names[i] for i in strategy.segments if i in segment_names],
    )


def _ordered_environments(flag: Flag) -> list[FlagEnvironment]:
    by_name = {env.environment: env for env in flag.environments}
    return [by_name[name] for name in _environments() if name in by_name]


def _confirm_page(
    *,
    title: str,
    question: str,
    details: list[str],
    action: str,
    fields: Mapping[str, Any],
    confirm_label: str,
    cancel_url: str,
) -> str:
    """The no-JavaScript "are you sure?" page: the same form again, with confirmed=1."""
    return render_template(
        "flags/confirm.html",
        title=title,
        question=question,
        details=details,
        action=action,
        fields={k: v for k, v in fields.items() if v is not None} | {"confirmed": "1"},
        confirm_label=confirm_label,
        cancel_url=cancel_url,
    )


# ---- the flags table ---------------------------------------------------------------------------


def _list_args(args: MultiDict[str, str]) -> tuple[queries.FlagFilters, queries.Sort, int]:
    """Read the table's filters from the query string; unknown values mean "any"."""
    state = args.get("state", "")
    environment, _, on_off = state.rpartition(":")
    enabled: bool | None = None
    if environment in _environments() and on_off in ("on", "off"):
        enabled = on_off == "on"
    else:
        environment = ""
    flag_type = args.get("type", "")
    archived = args.get("archived", "")
    filters = queries.FlagFilters(
        text=args.get("q", "").strip()[:200] or None,
        type=flag_type if flag_type in {t.value for t in FlagType} else None,
        tag=args.get("tag", "").strip().lower()[:50] or None,
        environment=environment or None,
        enabled=enabled,
        stale=args.get("stale") == "1",
        archived=queries.Archived(archived)
        if archived in {a.value for a in queries.Archived}
        else queries.Archived.ACTIVE,
    )
    sort_arg = args.get("sort", "")
    known = {s.value for s in queries.Sort}
    sort = queries.Sort(sort_arg) if sort_arg in known else queries.Sort.NAME
    page = parse_page(args.get("page"))
    return filters, sort, page


def _list_query(filters: queries.FlagFilters, sort: queries.Sort) -> dict[str, str]:
    """The query-string arguments that reproduce this view of the table (defaults left out)."""
    args = {
        "q": filters.text or "",
        "type": filters.type or "",
        "tag": filters.tag or "",
        "state": (
            f"{filters.environment}:{'on' if filters.enabled else 'off'}"
            if filters.environment and filters.enabled is not None
            else ""
        ),
        "stale": "1" if filters.stale else "",
        "archived": "" if filters.archived is queries.Archived.ACTIVE else filters.archived.value,
        "sort": "" if sort is queries.Sort.NAME else sort.value,
    }
    return {k: v for k, v in args.items() if v}


def last_seen(session: Session, names: Sequence[str]) -> dict[str, dict[str, datetime]] | None:
    """When SDKs last reported each flag, per environment; None where nobody records it."""
    hook: LastSeen | None = current_app.extensions.get(LAST_SEEN_HOOK)
    if hook is None:
        return None
    seen: dict[str, dict[str, datetime]] = {name: {} for name in names}
    if names:
        for (name, environment), at in hook(session, names).items():
            if name in seen:
                seen[name][environment] = at
    return seen


@bp.route("/flags")
@requires(Permission.READ)
def index() -> str:
    """List flags with a toggle per environment; search, filter, sort and page in SQL."""
    filters, sort, page_number = _list_args(request.args)
    s = db.session()
    page = queries.list_flags(s, filters, sort, page_number)
    query = _list_query(filters, sort)
    here_args: dict[str, Any] = dict(query)
    if page.page > 1:
        here_args["page"] = page.page
    return render_template(
        "flags/list.html",
        page=page,
        filters=filters,
        sort=sort,
        query=query,
        tags=queries.all_tags(s),
        type_choices=forms.TYPE_CHOICES,
        type_labels=forms.TYPE_LABELS,
        environments=_environments(),
        confirm_environments=CONFIRM_ENVIRONMENTS,
        last_seen=last_seen(s, [row.flag.name for row in page.rows]),
        can_write=can_write(),
        here=url_for("flags.index", **here_args),
        paths={
            "detail": path_pattern("flags.detail", "name"),
            "toggle": path_pattern("flags.toggle", "name", "environment"),
        },
    )


# ---- toggling ----------------------------------------------------------------------------------


@bp.route("/flags/<name>/environments/<environment>/toggle", methods=["POST"])
@requires(Permission.FLAGS_WRITE)
def toggle(name: str, environment: str) -> Page:
    """Turn a flag on or off in one environment (JSON for scripts, a redirect for forms)."""
    wanted = request.form.get("enabled")
    if wanted not in ("0", "1"):
        raise Invalid("Say whether to turn the flag on (enabled=1) or off (enabled=0).")
    enabled = wanted == "1"
    version = form_version(request.form.get("version"))
    back = _back(_detail_url(name, environment))
    word = "on" if enabled else "off"
    s = db.session()
    if environment in CONFIRM_ENVIRONMENTS and request.form.get("confirmed") != "1":
        question = f"Turn {name} {word} in {environment}?"
        if wants_json():
            return error_response(
                428, "confirmation_required", f"{question} Send confirmed=1 to go ahead."
            )
        flag = service.get_flag(s, name, include_archived=False)
        env = service.flag_environment(flag, environment)
        return _confirm_page(
            title=question,
            question=question,
            details=_toggle_consequences(s, env, enabled),
            action=url_for("flags.toggle", name=name, environment=environment),
            fields={"enabled": wanted, "version": version, "next": back},
            confirm_label=f"Turn {word} in {environment}",
            cancel_url=back,
        )
    try:
        env = service.set_enabled(s, actor(), name, environment, enabled, version)
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message, "error")
        return redirect(back)
    message = f"{name} is {'on' if env.enabled else 'off'} in {environment}."
    if wants_json():
        return jsonify(
            {
                "flag": name,
                "environment": environment,
                "enabled": env.enabled,
                "version": env.version,
                "message": message,
            }
        )
    flash(message, "success")
    return redirect(back)


def _toggle_consequences(s: Session, env: FlagEnvironment, enabled: bool) -> list[str]:
    if not enabled:
        return [f"Everyone in {env.environment} gets the flag off, whatever its strategies say."]
    active = [st for st in env.strategies if not st.disabled]
    if not active:
        return [f"It has no strategies in {env.environment}, so it will be on for everyone."]
    names = _segment_names(segments_service.list_segments(s))
    return [
        f"It will be on where any of these strategies match in {env.environment}:",
        *(strategy_sentence(st, names) for st in active),
    ]


# ---- creating, editing, archiving --------------------------------------------------------------


@bp.route("/flags/-/new", methods=["GET", "POST"])
@requires(Permission.FLAGS_WRITE)
def create() -> Page:
    """Create a flag (off in every environment)."""
    form = forms.NewFlagForm()
    status = 200
    if form.is_submitted():
        form.validate()
        data = forms.new_flag_from_form(form)
        status = 400
        if data is not None and not forms.has_errors(form):
            s = db.session()
            try:
                service.create_flag(s, actor(), data, _environments())
            except DomainError as exc:
                form_errors(form, exc)
                status = exc.status
            else:
                flash(
                    f"Created {data.name}. It is off everywhere: add a strategy, then turn it on.",
                    "success",
                )
                return redirect(url_for("flags.detail", name=data.name))
    return render_template("flags/new.html", form=form, name_rule=FLAG_NAME_RULE), status


@bp.route("/flags/<name>/edit", methods=["GET", "POST"])
@requires(Permission.FLAGS_WRITE)
def edit(name: str) -> Page:
    """Edit a flag's description, type, owner, tags and stale mark."""
    s = db.session()
    flag = service.get_flag(s, name)
    status = 200
    if request.method == "POST":
        form = forms.EditFlagForm()
        form.validate()
        data = forms.flag_fields_from_form(form, service.flag_fields(flag)["dependencies"])
        status = 400
        if data is not None and not forms.has_errors(form):
            try:
                service.update_flag(s, actor(), name, data, form_version(form.version.data))
            except DomainError as exc:
                form_errors(form, exc)
                status = exc.status
            else:
                flash(f"Saved {name}.", "success")
                return redirect(url_for("flags.detail", name=name))
    else:
        form = forms.edit_flag_form(flag)
    return render_template("flags/edit.html", form=form, flag=flag), status


@bp.route("/flags/<name>/archive", methods=["POST"])
@requires(Permission.FLAGS_WRITE)
def archive(name: str) -> Response:
    """Archive a flag: SDKs stop receiving it."""
    try:
        service.archive_flag(db.session(), actor(), name)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Archived {name}. SDKs no longer receive it; you can revive it.", "success")
    return redirect(url_for("flags.detail", name=name))


@bp.route("/flags/<name>/revive", methods=["POST"])
@requires(Permission.FLAGS_WRITE)
def revive(name: str) -> Response:
    """Bring an archived flag back, off everywhere."""
    service.revive_flag(db.session(), actor(), name)
    flash(f"Revived {name}. It is off in every environment.", "success")
    return redirect(url_for("flags.detail", name=name))


# ---- the flag page -----------------------------------------------------------------------------


@bp.route("/flags/<name>")
@requires(Permission.READ)
def detail(name: str) -> Page:
    """Show a flag: configuration per environment, evaluate box, copy form and history."""
    s = db.session()
    flag = service.get_flag(s, name)
    segments = segments_service.list_segments(s)
    segment_names = _segment_names(segments)
    environments = _ordered_environments(flag)
    env_names = [env.environment for env in environments]

    evaluate_form = forms.EvaluateForm(request.args if "environment" in request.args else None)
    evaluate_form.environment.choices = forms.choices((e, e) for e in env_names)
    explanation = None
    status = 200
    if "environment" in request.args:
        context = forms.context_from_form(evaluate_form)
        chosen = evaluate_form.environment.data
        if chosen not in env_names:
            forms.add_error(evaluate_form.environment, "Choose one of the environments.")
        elif context is not None:
            env = service.flag_environment(flag, chosen)
            try:
                explanation = explain(s, flag, env, make_context(context, environment=chosen))
            except DomainError as exc:
                forms.form_level(evaluate_form, exc.message)
        if explanation is None:
            status = 400

    copy_form = forms.CopyForm(formdata=None)
    copy_form.source.choices = forms.choices((e, e) for e in env_names)
    copy_form.target.choices = forms.choices((e, e) for e in reversed(env_names))

    history_page = page_number("history")
    events, total_events = list_events(
        s,
        EventFilter(target_type="flag", target=name),
        limit=HISTORY_PER_PAGE,
        offset=(history_page - 1) * HISTORY_PER_PAGE,
    )
    seen = last_seen(s, [name])
    html = render_template(
        "flags/detail.html",
        flag=flag,
        environments=environments,
        segment_names=segment_names,
        sentence=lambda st: strategy_sentence(st, segment_names),
        describe_constraint=describe_constraint,
        potentially_stale=service.potentially_stale(flag),
        type_labels=forms.TYPE_LABELS,
        strategy_labels=forms.STRATEGY_LABELS,
        confirm_environments=CONFIRM_ENVIRONMENTS,
        evaluate_form=evaluate_form,
        explanation=explanation,
        copy_form=copy_form,
        events=events,
        history_page=history_page,
        history_pages=max((total_events + HISTORY_PER_PAGE - 1) // HISTORY_PER_PAGE, 1),
        total_events=total_events,
        last_seen=seen,
        can_write=can_write(),
        here=url_for("flags.detail", name=name),
    )
    return html, status


@bp.route("/flags/<name>/copy", methods=["POST"])
@requires(Permission.FLAGS_WRITE)
def copy(name: str) -> Page:
    """Copy strategies and variants from one environment to another."""
    source = request.form.get("source", "")
    target = request.form.get("target", "")
    version = form_version(request.form.get(f"version-{target}"))
    if target in CONFIRM_ENVIRONMENTS and request.form.get("confirmed") != "1" and source != target:
        return _confirm_page(
            title=f"Copy {source} to {target}?",
            question=f"Replace the strategies and variants of {name} in {target} "
            f"with those from {source}?",
            details=[
                f"Whether the flag is on or off in {target} stays as it is.",
                "The change is recorded in the flag's history.",
            ],
            action=url_for("flags.copy", name=name),
            fields={"source": source, "target": target, f"version-{target}": version},
            confirm_label=f"Copy to {target}",
            cancel_url=_detail_url(name),
        )
    try:
        service.copy_environment(db.session(), actor(), name, source, target, version)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(_detail_url(name))
    flash(f"Copied {source} to {target}: strategies and variants replaced.", "success")
    return redirect(_detail_url(name, target))


# ---- strategies --------------------------------------------------------------------------------


def _find_strategy(env: FlagEnvironment, strategy_id: str) -> Strategy:
    strategy = next((st for st in env.strategies if st.id == strategy_id), None)
    if strategy is None:
        raise NotFound(f"No strategy {strategy_id!r} in {env.environment}.")
    return strategy


@bp.route("/flags/<name>/environments/<environment>/strategies/new", methods=["GET", "POST"])
@requires(Permission.FLAGS_WRITE)
def strategy_new(name: str, environment: str) -> Page:
    """Add a strategy to a flag in one environment."""
    return _strategy_editor(name, environment, None)


@bp.route(
    "/flags/<name>/environments/<environment>/strategies/<strategy_id>", methods=["GET", "POST"]
)
@requires(Permission.FLAGS_WRITE)
def strategy_edit(name: str, environment: str, strategy_id: str) -> Page:
    """Change one strategy of a flag."""
    return _strategy_editor(name, environment, strategy_id)


def _strategy_editor(name: str, environment: str, strategy_id: str | None) -> Page:
    s = db.session()
    flag = service.get_flag(s, name, include_archived=False)
    env = service.flag_environment(flag, environment)
    strategy = _find_strategy(env, strategy_id) if strategy_id else None
    segments = segments_service.list_segments(s)
    if request.method == "POST":
        form = forms.StrategyForm()
    else:
        form = forms.strategy_form_for(strategy)
        form.version.data = str(env.version)
    form.segments.choices = forms.choices((seg.id, seg.name) for seg in segments)
    hints = offer_custom_strategies(s, form, strategy.name if strategy else None)
    variant_errors: list[str] = []
    status = 200
    if request.method == "POST" and not row_action(form):
        form.validate()
        data = forms.strategy_from_form(form, variant_errors)
        status = 400
        if data is not None:
            version = form_version(form.version.data)
            try:
                if strategy is None:
                    service.add_strategy(s, actor(), name, environment, data, version)
                else:
                    service.replace_strategy(
                        s, actor(), name, environment, strategy.id, data, version
                    )
            except DomainError as exc:
                form_errors(form, exc)
                status = exc.status
            else:
                verb = "Added" if strategy is None else "Saved"
                flash(f"{verb} the strategy in {environment}.", "success")
                return redirect(_detail_url(name, environment))
    return render_template(
        "flags/strategy.html",
        form=form,
        flag=flag,
        env=env,
        strategy=strategy,
        segments=segments,
        variant_errors=variant_errors,
        legacy=strategy is not None and strategy.name in forms.LEGACY_STICKINESS,
        template_constraint=forms.ConstraintForm(prefix="constraints-__index__-"),
        template_variant=forms.VariantForm(prefix="variants-__index__-"),
        context_fields=forms.CONTEXT_FIELD_SUGGESTIONS,
        defined_context=list_context_fields(s),
        single_value_operators=sorted(forms.SINGLE_VALUE_OPERATORS),
        strategy_hints=hints,
        custom_strategies=[k for k in hints if k not in forms.STRATEGY_HINTS],
    ), status


@bp.route(
    "/flags/<name>/environments/<environment>/strategies/<strategy_id>/delete", methods=["POST"]
)
@requires(Permission.FLAGS_WRITE)
def strategy_delete(name: str, environment: str, strategy_id: str) -> Response:
    """Remove a strategy."""
    version = form_version(request.form.get("version"))
    try:
        service.delete_strategy(db.session(), actor(), name, environment, strategy_id, version)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Removed the strategy from {environment}.", "success")
    return redirect(_detail_url(name, environment))


@bp.route(
    "/flags/<name>/environments/<environment>/strategies/<strategy_id>/move", methods=["POST"]
)
@requires(Permission.FLAGS_WRITE)
def strategy_move(name: str, environment: str, strategy_id: str) -> Response:
    """Move a strategy one place up or down (strategies are tried in order)."""
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        raise Invalid("Move a strategy up or down.")
    version = form_version(request.form.get("version"))
    s = db.session()
    env = service.flag_environment(service.get_flag(s, name, include_archived=False), environment)
    order = [st.id for st in sorted(env.strategies, key=lambda st: st.sort_order)]
    _find_strategy(env, strategy_id)
    i = order.index(strategy_id)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
        try:
            service.reorder_strategies(s, actor(), name, environment, order, version)
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Moved the strategy {direction} in {environment}.", "success")
    return redirect(_detail_url(name, environment))


# ---- variants and dependencies -----------------------------------------------------------------


@bp.route("/flags/<name>/environments/<environment>/variants", methods=["GET", "POST"])
@requires(Permission.FLAGS_WRITE)
def variants(name: str, environment: str) -> Page:
    """Edit a flag's feature variants in one environment."""
    s = db.session()
    flag = service.get_flag(s, name, include_archived=False)
    env = service.flag_environment(flag, environment)
    status = 200
    if request.method == "POST":
        form = forms.VariantsForm()
        if not row_action(form):
            form.validate()
            data = forms.variants_from_form(form)
            status = 400
            if data is not None and not forms.has_errors(form):
                try:
                    service.set_variants(
                        s, actor(), name, environment, data, form_version(form.version.data)
                    )
                except DomainError as exc:
                    form_errors(form, exc)
                    status = exc.status
                else:
                    flash(f"Saved the variants in {environment}.", "success")
                    return redirect(_detail_url(name, environment))
    else:
        form = forms.VariantsForm(
            formdata=None,
            data={
                "variants": [forms.variant_form_data(v) for v in env.variants],
                "version": env.version,
            },
        )
        if not form.variants.entries:
            form.variants.append_entry()
    return render_template(
        "flags/variants.html",
        form=form,
        flag=flag,
        env=env,
        template_variant=forms.VariantForm(prefix="variants-__index__-"),
    ), status


@bp.route("/flags/<name>/dependencies", methods=["GET", "POST"])
@requires(Permission.FLAGS_WRITE)
def dependencies(name: str) -> Page:
    """Edit which flags this flag depends on."""
    s = db.session()
    flag = service.get_flag(s, name, include_archived=False)
    status = 200
    if request.method == "POST":
        form = forms.DependenciesForm()
        if not row_action(form):
            form.validate()
            deps = forms.dependencies_from_form(form)
            status = 400
            if deps is not None and not forms.has_errors(form):
                try:
                    fields = FlagFields.model_validate(
                        service.flag_fields(flag) | {"dependencies": deps}
                    )
                    service.update_flag(s, actor(), name, fields, form_version(form.version.data))
                except DomainError as exc:
                    form_errors(form, exc)
                    status = exc.status
                else:
                    flash(f"Saved the dependencies of {name}.", "success")
                    return redirect(_detail_url(name))
    else:
        form = forms.DependenciesForm(
            formdata=None,
            data={
                "dependencies": [forms.dependency_form_data(d) for d in flag.dependencies],
                "version": flag.version,
            },
        )
        if not form.dependencies.entries:
            form.dependencies.append_entry()
    return render_template(
        "flags/dependencies.html",
        form=form,
        flag=flag,
        flag_names=queries.flag_names(s, exclude=name),
        template_dependency=forms.DependencyForm(prefix="dependencies-__index__-"),
    ), status
