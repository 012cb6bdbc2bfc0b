"""The flags admin API: Unleash's paths and shapes for project `default`, so its scripts work.

Reads need `read`, writes `flags.write` (an admin token, or a signed-in developer or admin).
Writes carry the version they were based on, in the body (`version`) or in `If-Match`: the
flag's version for its own fields, the environment's version for on/off, strategies, variants
and copies. A stale version gets 409 naming who changed it. (Segments: server/segments/api.py.)
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from flask import Blueprint, current_app, request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import api_doc, parse_body, validate
from server.errors import Invalid, NotFound
from server.flags import service
from server.flags.compile import active_flags
from server.flags.models import Flag, FlagEnvironment, Strategy
from server.flags.patch import Patches, apply_patch
from server.flags.schemas import (
    FLAG_NAME_RE,
    BulkToggleIn,
    ConstraintOut,
    CreateFeatureIn,
    Dependency,
    DependencyOut,
    EnvironmentOut,
    FeatureOut,
    FeaturesOut,
    FeaturesQuery,
    FlagCreate,
    FlagFields,
    SortOrderIn,
    StrategiesOut,
    StrategyCreateIn,
    StrategyIn,
    StrategyOut,
    StrategyUpdateIn,
    TagIn,
    TagOut,
    UpdateFeatureIn,
    VariantOut,
    VariantsIn,
    VariantsOut,
)
from server.web import actor

bp = Blueprint("flags_api", __name__)

FEATURES = "/api/admin/projects/default/features"
FEATURE = FEATURES + "/<name>"
ENVIRONMENT = FEATURE + "/environments/<environment>"
STRATEGIES = ENVIRONMENT + "/strategies"
STRATEGY = STRATEGIES + "/<uuid:strategy_id>"  # never matches "set-sort-order"
BULK = "/api/admin/projects/default/bulk_features/environments/<environment>"

# ---- helpers ------------------------------------------------------------------------------------


def json_response(model: BaseModel, status: int = 200) -> Response:
    return current_app.response_class(
        model.model_dump_json(), status=status, mimetype="application/json"
    )


def empty_response(status: int = 200) -> Response:
    return current_app.response_class(b"", status=status)


_IF_MATCH = re.compile(r'(?:W/)?"?(\d{1,18})"?')


def expected_version(body_version: int | None = None) -> int | None:
    """The version a write was based on: from the body, or from `If-Match`."""
    header = request.headers.get("If-Match", "").strip()
    from_header = None
    if header and header != "*":
        match = _IF_MATCH.fullmatch(header)
        if match is None:
            raise Invalid(
                'If-Match holds the version you loaded, like If-Match: "3".',
                {"fields": {"If-Match": "not a version number"}},
            )
        from_header = int(match.group(1))
    if body_version is not None and from_header is not None and body_version != from_header:
        raise Invalid(
            "If-Match and `version` disagree; send one of them.",
            {"fields": {"version": "differs from If-Match"}},
        )
    return body_version if body_version is not None else from_header


def _environment(environment: str) -> str:
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    if environment not in environments:
        raise NotFound(
            f"No environment named {environment!r}; the environments are {', '.join(environments)}."
        )
    return environment


def _valid_name(name: str) -> str:
    # A name outside the rule cannot exist; answering here also keeps bytes such as NUL,
    # which PostgreSQL refuses in text, away from the database.
    if not FLAG_NAME_RE.fullmatch(name):
        raise NotFound(f"No flag named {name!r}.")
    return name


def _live_flag(session: Session, name: str) -> Flag:
    return service.get_flag(session, _valid_name(name), include_archived=False)


def _tag_text(tag: str | TagIn) -> str:
    if isinstance(tag, str):
        return tag
    return tag.value if tag.type == "simple" else f"{tag.type}:{tag.value}"


def _tag_out(tag: str) -> TagOut:
    kind, sep, value = tag.partition(":")
    return TagOut(type=kind, value=value) if sep else TagOut(type="simple", value=tag)


def strategy_out(strategy: Strategy, flag_name: str, environment: str) -> StrategyOut:
    return StrategyOut(
        id=strategy.id,
        name=strategy.name,
        title=strategy.title,
        featureName=flag_name,
        environment=environment,
        sortOrder=strategy.sort_order,
        disabled=strategy.disabled,
        parameters=dict(strategy.parameters),
        constraints=[ConstraintOut.model_validate(c) for c in strategy.constraints],
        segments=list(strategy.segments),
        variants=[VariantOut.model_validate(v) for v in strategy.variants],
    )


def environment_out(flag: Flag, env: FlagEnvironment) -> EnvironmentOut:
    strategies = sorted(env.strategies, key=lambda s: s.sort_order)
    return EnvironmentOut(
        name=env.environment,
        environment=env.environment,
        featureName=flag.name,
        enabled=env.enabled,
        version=env.version,
        updatedAt=env.updated_at,
        updatedBy=env.updated_by,
        strategies=[strategy_out(s, flag.name, env.environment) for s in strategies],
        variants=[VariantOut.model_validate(v) for v in env.variants],
        variantCount=len(env.variants),
        hasStrategies=bool(strategies),
        hasEnabledStrategies=any(not s.disabled for s in strategies),
    )


def feature_out(flag: Flag) -> FeatureOut:
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    by_name = {e.environment: e for e in flag.environments}
    fields = service.flag_fields(flag)
    return FeatureOut(
        name=flag.name,
        type=fields["type"],
        description=fields["description"],
        project="default",
        stale=fields["stale"],
        potentiallyStale=service.potentially_stale(flag),
        impressionData=fields["impressionData"],
        archived=flag.archived_at is not None,
        archivedAt=flag.archived_at,
        createdAt=flag.created_at,
        createdBy=flag.created_by,
        owner=fields["owner"],
        tags=[_tag_out(t) for t in fields["tags"]],
        dependencies=[DependencyOut.model_validate(d) for d in fields["dependencies"]],
        declaredInCode=flag.declared_in_code,
        version=flag.version,
        updatedAt=flag.updated_at,
        updatedBy=flag.updated_by,
        environments=[environment_out(flag, by_name[e]) for e in environments if e in by_name],
    )


def _strategy_fields(strategy: Strategy) -> dict[str, Any]:
    state = service.strategy_state(strategy)
    del state["id"]
    return state


def _environment_of(session: Session, name: str, environment: str) -> tuple[Flag, FlagEnvironment]:
    flag = _live_flag(session, name)
    return flag, service.flag_environment(flag, _environment(environment))


def _strategy_of(
    session: Session, name: str, environment: str, strategy_id: UUID
) -> tuple[Flag, FlagEnvironment, Strategy]:
    flag, env = _environment_of(session, name, environment)
    strategy = next((s for s in env.strategies if s.id == str(strategy_id)), None)
    if strategy is None:
        raise NotFound(f"No strategy {str(strategy_id)!r} on {name!r} in {environment}.")
    return flag, env, strategy


# ---- features -----------------------------------------------------------------------------------


@bp.get(FEATURES)
@requires(Permission.READ)
@api_doc("List the flags", query=FeaturesQuery, responses={200: FeaturesOut}, tag="flags")
def list_features() -> Response:
    """List every live flag with its environments and strategies."""
    q = validate(FeaturesQuery, request.args.to_dict())
    flags = active_flags(db.session())
    if q.namePrefix:
        flags = [f for f in flags if f.name.startswith(q.namePrefix)]
    if q.tag:
        kind, sep, value = q.tag.partition(":")
        wanted = q.tag if sep and kind != "simple" else (value if sep else q.tag)
        flags = [f for f in flags if wanted.lower() in f.tags]
    return json_response(FeaturesOut(version=1, features=[feature_out(f) for f in flags]))


@bp.post(FEATURES)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Create a flag (off in every environment)",
    request=CreateFeatureIn,
    responses={200: FeatureOut},
    tag="flags",
)
def create_feature() -> Response:
    """Create a flag, off everywhere."""
    body = parse_body(CreateFeatureIn)
    data = validate(
        FlagCreate,
        {
            "name": body.name,
            "type": body.type,
            "description": body.description or "",
            "impressionData": body.impressionData,
            "owner": body.owner,
            "tags": [_tag_text(t) for t in body.tags],
        },
    )
    flag = service.create_flag(db.session(), actor(), data, current_app.config["ENVIRONMENTS"])
    return json_response(feature_out(flag))


@bp.get(FEATURE)
@requires(Permission.READ)
@api_doc("Read one flag", responses={200: FeatureOut}, tag="flags")
def get_feature(name: str) -> Response:
    """Show one live flag."""
    return json_response(feature_out(_live_flag(db.session(), name)))


def _update(session: Session, name: str, fields: dict[str, Any], version: int | None) -> Flag:
    data = validate(FlagFields, fields)
    return service.update_flag(session, actor(), name, data, version)


@bp.put(FEATURE)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a flag's fields (those left out stay as they are)",
    request=UpdateFeatureIn,
    responses={200: FeatureOut},
    tag="flags",
)
def update_feature(name: str) -> Response:
    """Change a flag's description, type, owner, tags, impression data, stale mark, dependencies."""
    body = parse_body(UpdateFeatureIn)
    session = db.session()
    flag = _live_flag(session, name)
    if body.name is not None and body.name != name:
        raise Invalid(
            "A flag cannot be renamed.", {"fields": {"name": "must be the flag's own name"}}
        )
    if body.archived:
        raise Invalid(
            "Archive a flag with DELETE on its address.",
            {"fields": {"archived": "only false is accepted here"}},
        )
    fields = service.flag_fields(flag)
    given = body.model_dump(
        exclude_unset=True,
        include={"description", "type", "stale", "impressionData", "owner", "dependencies"},
    )
    if "description" in given and given["description"] is None:
        given["description"] = ""
    fields.update(given)
    if body.tags is not None:
        fields["tags"] = [_tag_text(t) for t in body.tags]
    flag = _update(session, name, fields, expected_version(body.version))
    return json_response(feature_out(flag))


@bp.patch(FEATURE)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a flag's fields with JSON Patch (version in If-Match)",
    request=Patches,
    responses={200: FeatureOut},
    tag="flags",
)
def patch_feature(name: str) -> Response:
    """Apply a JSON Patch to a flag's fields."""
    patches = parse_body(Patches)
    session = db.session()
    flag = _live_flag(session, name)
    document = {"name": flag.name, **service.flag_fields(flag)}
    patched = apply_patch(document, patches.root)
    if not isinstance(patched, dict) or patched.get("name") != name:
        raise Invalid("A flag cannot be renamed.", {"fields": {"name": "must stay " + name}})
    patched.pop("name")
    flag = _update(session, name, patched, expected_version())
    return json_response(feature_out(flag))


@bp.delete(FEATURE)
@requires(Permission.FLAGS_WRITE)
@api_doc("Archive a flag (SDKs stop receiving it)", responses={202: None}, tag="flags")
def archive_feature(name: str) -> Response:
    """Archive a flag."""
    session = db.session()
    _live_flag(session, name)
    service.archive_flag(session, actor(), name)
    return empty_response(202)


@bp.get("/api/admin/archive/features")
@requires(Permission.READ)
@api_doc("List archived flags", responses={200: FeaturesOut}, tag="flags")
def archived_features() -> Response:
    """List archived flags, most recently archived first."""
    flags = service.list_archived_flags(db.session())
    return json_response(FeaturesOut(version=1, features=[feature_out(f) for f in flags]))


@bp.post("/api/admin/archive/revive/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Revive an archived flag (off in every environment)", responses={200: None}, tag="flags")
def revive_feature(name: str) -> Response:
    """Bring an archived flag back."""
    service.revive_flag(db.session(), actor(), _valid_name(name))
    return empty_response()


# ---- dependencies -------------------------------------------------------------------------------


@bp.post(FEATURE + "/dependencies")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Make a flag depend on a parent flag (replaces an existing dependency on that parent)",
    request=Dependency,
    responses={200: FeatureOut},
    tag="flags",
)
def add_dependency(name: str) -> Response:
    """Add or replace a dependency on a parent flag."""
    dependency = parse_body(Dependency)
    session = db.session()
    flag = _live_flag(session, name)
    fields = service.flag_fields(flag)
    others = [d for d in fields["dependencies"] if d.get("feature") != dependency.feature]
    fields["dependencies"] = [*others, dependency.model_dump()]
    flag = _update(session, name, fields, expected_version())
    return json_response(feature_out(flag))


@bp.delete(FEATURE + "/dependencies/<parent>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Remove a flag's dependency on one parent", responses={200: FeatureOut}, tag="flags")
def delete_dependency(name: str, parent: str) -> Response:
    """Remove the dependency on `parent`."""
    session = db.session()
    flag = _live_flag(session, name)
    fields = service.flag_fields(flag)
    kept = [d for d in fields["dependencies"] if d.get("feature") != parent]
    if len(kept) == len(fields["dependencies"]):
        raise NotFound(f"{name!r} does not depend on {parent!r}.")
    fields["dependencies"] = kept
    return json_response(feature_out(_update(session, name, fields, expected_version())))


@bp.delete(FEATURE + "/dependencies")
@requires(Permission.FLAGS_WRITE)
@api_doc("Remove all of a flag's dependencies", responses={200: FeatureOut}, tag="flags")
def delete_dependencies(name: str) -> Response:
    """Remove every dependency of a flag."""
    session = db.session()
    flag = _live_flag(session, name)
    fields = service.flag_fields(flag)
    if fields["dependencies"]:
        fields["dependencies"] = []
        flag = _update(session, name, fields, expected_version())
    return json_response(feature_out(flag))


# ---- environments -------------------------------------------------------------------------------


@bp.get(ENVIRONMENT)
@requires(Permission.READ)
@api_doc("Read a flag's configuration in one environment", responses={200: EnvironmentOut})
def get_environment(name: str, environment: str) -> Response:
    """Show one environment of a flag."""
    flag, env = _environment_of(db.session(), name, environment)
    return json_response(environment_out(flag, env))


def _toggle(name: str, environment: str, enabled: bool) -> Response:
    session = db.session()
    _environment_of(session, name, environment)
    service.set_enabled(session, actor(), name, environment, enabled, expected_version())
    return json_response(feature_out(_live_flag(session, name)))


@bp.post(ENVIRONMENT + "/on")
@requires(Permission.FLAGS_WRITE)
@api_doc("Turn a flag on in one environment", responses={200: FeatureOut}, tag="flags")
def environment_on(name: str, environment: str) -> Response:
    """Turn a flag on in one environment (no body needed)."""
    return _toggle(name, environment, True)


@bp.post(ENVIRONMENT + "/off")
@requires(Permission.FLAGS_WRITE)
@api_doc("Turn a flag off in one environment", responses={200: FeatureOut}, tag="flags")
def environment_off(name: str, environment: str) -> Response:
    """Turn a flag off in one environment (no body needed)."""
    return _toggle(name, environment, False)


def _bulk(environment: str, enabled: bool) -> Response:
    body = parse_body(BulkToggleIn)
    _environment(environment)
    session = db.session()
    who = actor()
    # The request is one unit of work: every flag changes, or none (one revision).
    for name in dict.fromkeys(body.features):
        service.set_enabled(session, who, name, environment, enabled)
    return empty_response()


@bp.post(BULK + "/on")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Turn several flags on in one environment (all or none)",
    request=BulkToggleIn,
    responses={200: None},
    tag="flags",
)
def bulk_on(environment: str) -> Response:
    """Turn several flags on at once."""
    return _bulk(environment, True)


@bp.post(BULK + "/off")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Turn several flags off in one environment (all or none)",
    request=BulkToggleIn,
    responses={200: None},
    tag="flags",
)
def bulk_off(environment: str) -> Response:
    """Turn several flags off at once."""
    return _bulk(environment, False)


@bp.post(ENVIRONMENT + "/copy/<target>")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Copy strategies and variants from this environment to `target` (on/off stays)",
    responses={200: EnvironmentOut},
    tag="flags",
)
def copy_environment(name: str, environment: str, target: str) -> Response:
    """Copy one environment's configuration over another's."""
    session = db.session()
    _environment_of(session, name, environment)
    _environment(target)
    dst = service.copy_environment(session, actor(), name, environment, target, expected_version())
    return json_response(environment_out(_live_flag(session, name), dst))


# ---- strategies ---------------------------------------------------------------------------------


@bp.get(STRATEGIES)
@requires(Permission.READ)
@api_doc("List a flag's strategies in one environment", responses={200: StrategiesOut})
def list_strategies(name: str, environment: str) -> Response:
    """List an environment's strategies in order."""
    flag, env = _environment_of(db.session(), name, environment)
    return json_response(StrategiesOut(environment_out(flag, env).strategies))


@bp.post(STRATEGIES)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Add a strategy (last, or at sortOrder)",
    request=StrategyCreateIn,
    responses={200: StrategyOut},
    tag="flags",
)
def add_strategy(name: str, environment: str) -> Response:
    """Add a strategy to one environment."""
    body = parse_body(StrategyCreateIn)
    session = db.session()
    _environment_of(session, name, environment)
    strategy = service.add_strategy(
        session, actor(), name, environment, body, expected_version(body.version)
    )
    return json_response(strategy_out(strategy, name, environment))


@bp.post(STRATEGIES + "/set-sort-order")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Reorder strategies: [{id, sortOrder}] (ids left out keep their place; [] changes nothing)",
    request=SortOrderIn,
    responses={200: None},
    tag="flags",
)
def set_sort_order(name: str, environment: str) -> Response:
    """Put an environment's strategies in a new order."""
    body = parse_body(SortOrderIn)
    session = db.session()
    _, env = _environment_of(session, name, environment)
    if not body.root:
        # A no-op, as in Unleash: no new version, no change set, no audit event.
        return empty_response()
    wanted = {item.id: item.sortOrder for item in body.root}
    current = sorted(env.strategies, key=lambda s: s.sort_order)
    unknown = set(wanted) - {s.id for s in current}
    if unknown:
        raise NotFound(f"No strategy {sorted(unknown)[0]!r} on {name!r} in {environment}.")
    ranked = sorted(
        enumerate(current), key=lambda pair: (wanted.get(pair[1].id, pair[1].sort_order), pair[0])
    )
    service.reorder_strategies(
        session, actor(), name, environment, [s.id for _, s in ranked], expected_version()
    )
    return empty_response()


@bp.get(STRATEGY)
@requires(Permission.READ)
@api_doc("Read one strategy", responses={200: StrategyOut})
def get_strategy(name: str, environment: str, strategy_id: UUID) -> Response:
    """Show one strategy."""
    _, _, strategy = _strategy_of(db.session(), name, environment, strategy_id)
    return json_response(strategy_out(strategy, name, environment))


def _replace(
    session: Session,
    name: str,
    environment: str,
    strategy_id: str,
    fields: dict[str, Any],
    version: int | None,
) -> Response:
    data = validate(StrategyIn, fields)
    strategy = service.replace_strategy(
        session, actor(), name, environment, strategy_id, data, version
    )
    return json_response(strategy_out(strategy, name, environment))


@bp.put(STRATEGY)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Replace a strategy's configuration (keeps its id)",
    request=StrategyUpdateIn,
    responses={200: StrategyOut},
    tag="flags",
)
def replace_strategy(name: str, environment: str, strategy_id: UUID) -> Response:
    """Replace one strategy."""
    body = parse_body(StrategyUpdateIn)
    session = db.session()
    _, _, strategy = _strategy_of(session, name, environment, strategy_id)
    fields = body.model_dump(exclude_unset=True, exclude={"version"})
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.setdefault("name", strategy.name)
    fields.setdefault("sortOrder", strategy.sort_order)
    version = expected_version(body.version)
    return _replace(session, name, environment, strategy.id, fields, version)


@bp.patch(STRATEGY)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a strategy with JSON Patch (version in If-Match)",
    request=Patches,
    responses={200: StrategyOut},
    tag="flags",
)
def patch_strategy(name: str, environment: str, strategy_id: UUID) -> Response:
    """Apply a JSON Patch to one strategy."""
    patches = parse_body(Patches)
    session = db.session()
    _, _, strategy = _strategy_of(session, name, environment, strategy_id)
    patched = apply_patch(_strategy_fields(strategy), patches.root)
    if not isinstance(patched, dict):
        raise Invalid("The patched strategy must still be an object.")
    return _replace(session, name, environment, strategy.id, patched, expected_version())


@bp.delete(STRATEGY)
@requires(Permission.FLAGS_WRITE)
@api_doc("Remove a strategy", responses={200: None}, tag="flags")
def delete_strategy(name: str, environment: str, strategy_id: UUID) -> Response:
    """Remove one strategy."""
    session = db.session()
    _, _, strategy = _strategy_of(session, name, environment, strategy_id)
    service.delete_strategy(session, actor(), name, environment, strategy.id, expected_version())
    return empty_response()


# ---- variants -----------------------------------------------------------------------------------


def _variants_out(env: FlagEnvironment) -> VariantsOut:
    return VariantsOut(
        version=1,
        variants=[VariantOut.model_validate(v) for v in env.variants],
        environmentVersion=env.version,
    )


@bp.get(ENVIRONMENT + "/variants")
@requires(Permission.READ)
@api_doc("Read a flag's variants in one environment", responses={200: VariantsOut})
def get_variants(name: str, environment: str) -> Response:
    """Show one environment's feature variants."""
    _, env = _environment_of(db.session(), name, environment)
    return json_response(_variants_out(env))


@bp.put(ENVIRONMENT + "/variants")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Replace a flag's variants in one environment (version in If-Match)",
    request=VariantsIn,
    responses={200: VariantsOut},
    tag="flags",
)
def put_variants(name: str, environment: str) -> Response:
    """Replace one environment's feature variants."""
    body = parse_body(VariantsIn)
    session = db.session()
    _environment_of(session, name, environment)
    env = service.set_variants(session, actor(), name, environment, body.root, expected_version())
    return json_response(_variants_out(env))


@bp.patch(ENVIRONMENT + "/variants")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a flag's variants with JSON Patch (version in If-Match)",
    request=Patches,
    responses={200: VariantsOut},
    tag="flags",
)
def patch_variants(name: str, environment: str) -> Response:
    """Apply a JSON Patch to one environment's feature variants."""
    patches = parse_body(Patches)
    session = db.session()
    _, env = _environment_of(session, name, environment)
    patched = apply_patch([dict(v) for v in env.variants], patches.root)
    variants = validate(VariantsIn, patched).root
    env = service.set_variants(session, actor(), name, environment, variants, expected_version())
    return json_response(_variants_out(env))
