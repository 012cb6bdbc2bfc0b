"""`/api/admin/strategies`: Unleash's strategy types, built in and custom, in its shapes."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import api_doc, parse_body
from server.errors import NotFound
from server.flags.admin_meta import (
    BUILT_IN_STRATEGIES,
    STRATEGIES,
    StrategyDefinitionOut,
    StrategyDefinitionsOut,
    StrategyParameterOut,
)
from server.flags.api import empty_response, json_response
from server.flags.definitions import StrategyDefinition
from server.unleash_compat import strategies
from server.unleash_compat.strategies import StrategyTypeIn, StrategyTypeUpdateIn
from server.web import actor

bp = Blueprint("unleash_strategies", __name__)


def strategy_out(d: StrategyDefinition) -> StrategyDefinitionOut:
    """A custom strategy type in Unleash's `strategySchema`."""
    return StrategyDefinitionOut(
        title=d.title or None,
        name=d.name,
        displayName=d.title or None,
        description=d.description,
        editable=True,
        deprecated=d.deprecated,
        parameters=[StrategyParameterOut.model_validate(p) for p in d.parameters],
    )


@bp.get(STRATEGIES)
@requires(Permission.READ)
@api_doc(
    "List strategy types: the built-ins, then custom ones by name",
    responses={200: StrategyDefinitionsOut},
    tag="flags",
)
def list_strategy_types() -> Response:
    """List the strategy types a flag can use, in Unleash's shape."""
    custom = [strategy_out(d) for d in strategies.list_strategy_types(db.session())]
    return json_response(
        StrategyDefinitionsOut(version=1, strategies=[*BUILT_IN_STRATEGIES, *custom])
    )


@bp.get(STRATEGIES + "/<name>")
@requires(Permission.READ)
@api_doc("Read one strategy type", responses={200: StrategyDefinitionOut}, tag="flags")
def get_strategy_type(name: str) -> Response:
    """Show one strategy type, built in or custom."""
    for built_in in BUILT_IN_STRATEGIES:
        if built_in.name == name:
            return json_response(built_in)
    try:
        return json_response(strategy_out(strategies.get_strategy_type(db.session(), name)))
    except NotFound:
        raise NotFound(f"No strategy named {name!r}.") from None


@bp.post(STRATEGIES)
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Define a custom strategy type",
    request=StrategyTypeIn,
    responses={201: StrategyDefinitionOut},
    tag="flags",
)
def create_strategy_type() -> Response:
    """Define a custom strategy; SDKs evaluate it with the implementation they register."""
    body = parse_body(StrategyTypeIn)
    created = strategies.create_strategy_type(db.session(), actor(), body)
    return json_response(strategy_out(created), status=201)


@bp.put(STRATEGIES + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Change a custom strategy type's description and parameters",
    request=StrategyTypeUpdateIn,
    responses={200: StrategyDefinitionOut},
    tag="flags",
)
def update_strategy_type(name: str) -> Response:
    """Change a custom strategy type (its name stays)."""
    body = parse_body(StrategyTypeUpdateIn)
    changed = strategies.update_strategy_type(db.session(), actor(), name, body)
    return json_response(strategy_out(changed))


@bp.post(STRATEGIES + "/<name>/deprecate")
@requires(Permission.FLAGS_WRITE)
@api_doc("Deprecate a custom strategy type", responses={200: None}, tag="flags")
def deprecate_strategy_type(name: str) -> Response:
    """Deprecate: the editor stops offering it; flags that use it keep working."""
    strategies.set_strategy_type_deprecated(db.session(), actor(), name, True)
    return empty_response()


@bp.post(STRATEGIES + "/<name>/reactivate")
@requires(Permission.FLAGS_WRITE)
@api_doc("Reactivate a deprecated custom strategy type", responses={200: None}, tag="flags")
def reactivate_strategy_type(name: str) -> Response:
    """Reactivate a deprecated custom strategy type."""
    strategies.set_strategy_type_deprecated(db.session(), actor(), name, False)
    return empty_response()


@bp.delete(STRATEGIES + "/<name>")
@requires(Permission.FLAGS_WRITE)
@api_doc("Delete a custom strategy type no flag uses", responses={200: None}, tag="flags")
def delete_strategy_type(name: str) -> Response:
    """Delete a custom strategy type; one a flag still uses is a 409."""
    strategies.delete_strategy_type(db.session(), actor(), name)
    return empty_response()
