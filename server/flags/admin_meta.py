"""Unleash's read-only admin metadata: the one project, the configured environments, strategies.

Unleash tooling (scripts, Terraform providers, the migration path of issue 22) asks for these
before touching flags. Darklaunch has one project (`default`) and the environments of
`DARKLAUNCH_ENVIRONMENTS`; the answers carry only the fields Darklaunch can fill truthfully.

Shapes read from unleash-server 7.x (`dist/lib/openapi/spec/` on unpkg.com):
`projects-schema`/`project-schema` (7.x source `src/lib/openapi/spec/project-schema.ts`),
`project-overview-schema` (7.4.0), `environments-schema` (7.4.0), `environment-schema` (7.0.6),
`strategies-schema`/`strategy-schema` (7.4.0). Strategy definitions: `migrations/
default-strategies.json`, `flexible-rollout-strategy.json` and the migrations that set display
names and deprecated the v4 strategies (Unleash PR #3575).
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import api_doc
from server.auth.models import ApiToken
from server.errors import NotFound
from server.flags.api import json_response
from server.flags.models import Flag, FlagEnvironment
from server.flags.schemas import BUILT_IN_STRATEGY_NAMES

bp = Blueprint("flags_admin_meta", __name__)

PROJECTS = "/api/admin/projects"
ENVIRONMENTS = "/api/admin/environments"
STRATEGIES = "/api/admin/strategies"

# Unleash's own default project is called this; keeping it lets scripts written for it match.
PROJECT_ID: Literal["default"] = "default"
PROJECT_NAME = "Default"
PROJECT_DESCRIPTION = "Default project"

# ---- response shapes (Unleash's field names; fields Darklaunch cannot know are left out) -------


class ProjectOut(BaseModel):
    id: Literal["default"]
    name: str
    description: str
    featureCount: int = Field(description="Live (not archived) flags")


class ProjectsOut(BaseModel):
    version: Literal[1]
    projects: list[ProjectOut]


class ProjectEnvironmentOut(BaseModel):
    environment: str


class FeatureTypeCountOut(BaseModel):
    type: str
    count: int


class ProjectOverviewOut(BaseModel):
    """Unleash's `projectOverviewSchema`, without members, health, stats and onboarding."""

    version: Literal[1]
    name: str
    description: str
    environments: list[ProjectEnvironmentOut]
    featureTypeCounts: list[FeatureTypeCountOut]


class EnvironmentOut(BaseModel):
    name: str
    type: Literal["production", "development"] = Field(
        description="`production` for the gate's environment (DARKLAUNCH_GATE_ENV), "
        "else `development`"
    )
    enabled: Literal[True] = Field(description="Every configured environment is in use")
    protected: Literal[True] = Field(
        description="Environments come from configuration; the API cannot delete them"
    )
    sortOrder: int = Field(description="Position in DARKLAUNCH_ENVIRONMENTS")
    requiredApprovals: None = Field(default=None, description="No change requests here")
    projectCount: Literal[1]
    apiTokenCount: int = Field(description="Live (not revoked) tokens bound to it")
    enabledToggleCount: int = Field(description="Live flags switched on in this environment")


class EnvironmentsOut(BaseModel):
    version: Literal[1]
    environments: list[EnvironmentOut]


# ---- projects ------------------------------------------------------------------------------------


def _feature_type_counts(session: Session) -> dict[str, int]:
    query = (
        select(Flag.type, func.count())
        .where(Flag.archived_at.is_(None))
        .group_by(Flag.type)
        .order_by(Flag.type)
    )
    return {kind: count for kind, count in session.execute(query)}


@bp.get(PROJECTS)
@requires(Permission.READ)
@api_doc("List the projects: only `default`", responses={200: ProjectsOut}, tag="flags")
def list_projects() -> Response:
    """List the one project."""
    count = sum(_feature_type_counts(db.session()).values())
    project = ProjectOut(
        id=PROJECT_ID, name=PROJECT_NAME, description=PROJECT_DESCRIPTION, featureCount=count
    )
    return json_response(ProjectsOut(version=1, projects=[project]))


@bp.get(PROJECTS + "/<project>")
@requires(Permission.READ)
@api_doc(
    "Overview of a project: only `default` exists", responses={200: ProjectOverviewOut}, tag="flags"
)
def get_project(project: str) -> Response:
    """Show the one project with its environments and flag counts by type."""
    if project != PROJECT_ID:
        raise NotFound(f"No project named {project!r}; Darklaunch has one project, 'default'.")
    counts = _feature_type_counts(db.session())
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    return json_response(
        ProjectOverviewOut(
            version=1,
            name=PROJECT_NAME,
            description=PROJECT_DESCRIPTION,
            environments=[ProjectEnvironmentOut(environment=name) for name in environments],
            featureTypeCounts=[FeatureTypeCountOut(type=t, count=n) for t, n in counts.items()],
        )
    )


# ---- environments --------------------------------------------------------------------------------


def _environments_out(session: Session) -> list[EnvironmentOut]:
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    gate_env: str = current_app.config["GATE_ENV"]
    query = (
        select(FlagEnvironment.environment, func.count())
        .join(Flag, Flag.id == FlagEnvironment.flag_id)
        .where(Flag.archived_at.is_(None), FlagEnvironment.enabled.is_(True))
        .group_by(FlagEnvironment.environment)
    )
    enabled = {name: count for name, count in session.execute(query)}
    token_query = (
        select(ApiToken.environment, func.count())
        .where(ApiToken.revoked_at.is_(None), ApiToken.environment.is_not(None))
        .group_by(ApiToken.environment)
    )
    tokens = {name: count for name, count in session.execute(token_query)}
    return [
        EnvironmentOut(
            name=name,
            type="production" if name == gate_env else "development",
            enabled=True,
            protected=True,
            sortOrder=i,
            projectCount=1,
            apiTokenCount=tokens.get(name, 0),
            enabledToggleCount=enabled.get(name, 0),
        )
        for i, name in enumerate(environments)
    ]


@bp.get(ENVIRONMENTS)
@requires(Permission.READ)
@api_doc(
    "List the environments (DARKLAUNCH_ENVIRONMENTS)", responses={200: EnvironmentsOut}, tag="flags"
)
def list_environments() -> Response:
    """List the configured environments in display order."""
    return json_response(EnvironmentsOut(version=1, environments=_environments_out(db.session())))


@bp.get(ENVIRONMENTS + "/<name>")
@requires(Permission.READ)
@api_doc("Read one environment", responses={200: EnvironmentOut}, tag="flags")
def get_environment(name: str) -> Response:
    """Show one configured environment."""
    for environment in _environments_out(db.session()):
        if environment.name == name:
            return json_response(environment)
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    raise NotFound(
        f"No environment named {name!r}; the environments are {', '.join(environments)}."
    )


# ---- strategies ----------------------------------------------------------------------------------


class StrategyParameterOut(BaseModel):
    name: str
    type: Literal["string", "percentage", "list", "number", "boolean"]
    description: str
    required: bool


class StrategyDefinitionOut(BaseModel):
    """Unleash's `strategySchema`: built-ins are not editable; custom ones are."""

    title: str | None = None
    name: str
    displayName: str | None
    description: str
    editable: bool = Field(description="False for built-ins, which cannot be edited")
    deprecated: bool
    parameters: list[StrategyParameterOut]


class StrategyDefinitionsOut(BaseModel):
    version: Literal[1]
    strategies: list[StrategyDefinitionOut]


_GROUP_ID = StrategyParameterOut(
    name="groupId",
    type="string",
    description="Used to define a activation groups, which allows you to correlate across "
    "feature toggles.",
    required=True,
)
_PERCENTAGE = StrategyParameterOut(
    name="percentage", type="percentage", description="", required=False
)

# Unleash's built-in definitions, word for word (its clients and scripts match on them), in the
# order Unleash lists them. The legacy gradualRollout* ones are what an instance upgraded from v4
# still lists (deprecated); a fresh Unleash 7 drops them, but Darklaunch accepts them.
BUILT_IN_STRATEGIES = (
    StrategyDefinitionOut(
        name="flexibleRollout",
        displayName="Gradual rollout",
        description="Roll out to a percentage of your userbase, and ensure that the experience "
        "is the same for the user on each visit.",
        editable=False,
        deprecated=False,
        parameters=[
            StrategyParameterOut(name="rollout", type="percentage", description="", required=False),
            StrategyParameterOut(
                name="stickiness",
                type="string",
                description="Used define stickiness. Possible values: default, userId, "
                "sessionId, random",
                required=True,
            ),
            _GROUP_ID,
        ],
    ),
    StrategyDefinitionOut(
        name="default",
        displayName="Standard",
        description="This strategy turns on / off for your entire userbase. Prefer using "
        '"Gradual rollout" strategy (100%=on, 0%=off).',
        editable=False,
        deprecated=False,
        parameters=[],
    ),
    StrategyDefinitionOut(
        name="applicationHostname",
        displayName="Hosts",
        description="Enable the feature for a specific set of hostnames.",
        editable=False,
        deprecated=False,
        parameters=[
            StrategyParameterOut(
                name="hostNames",
                type="list",
                description="List of hostnames to enable the feature toggle for.",
                required=False,
            )
        ],
    ),
    StrategyDefinitionOut(
        name="remoteAddress",
        displayName="IPs",
        description="Enable the feature for a specific set of IP addresses.",
        editable=False,
        deprecated=False,
        parameters=[
            StrategyParameterOut(
                name="IPs",
                type="list",
                description="List of IPs to enable the feature toggle for.",
                required=True,
            )
        ],
    ),
    StrategyDefinitionOut(
        name="userWithId",
        displayName="UserIDs",
        description="Enable the feature for a specific set of userIds. Prefer using "
        '"Gradual rollout" strategy with user id constraints.',
        editable=False,
        deprecated=True,
        parameters=[
            StrategyParameterOut(name="userIds", type="list", description="", required=False)
        ],
    ),
    StrategyDefinitionOut(
        name="gradualRolloutRandom",
        displayName=None,
        description="Randomly activate the feature toggle. No stickiness.",
        editable=False,
        deprecated=True,
        parameters=[_PERCENTAGE],
    ),
    StrategyDefinitionOut(
        name="gradualRolloutSessionId",
        displayName=None,
        description="Gradually activate feature toggle. Stickiness based on session id.",
        editable=False,
        deprecated=True,
        parameters=[_PERCENTAGE, _GROUP_ID],
    ),
    StrategyDefinitionOut(
        name="gradualRolloutUserId",
        displayName=None,
        description="Gradually activate feature toggle for logged in users. Stickiness based "
        "on user id.",
        editable=False,
        deprecated=True,
        parameters=[_PERCENTAGE, _GROUP_ID],
    ),
)


def accepted_strategy_names() -> frozenset[str]:
    """The strategy names a flag's environment accepts (StrategyIn's `name`)."""
    return frozenset(BUILT_IN_STRATEGY_NAMES)
