"""Example flags and segments for `make run`, written through the ordinary services."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit.service import Actor
from server.flags import service
from server.flags.models import Flag
from server.flags.schemas import (
    Constraint,
    FlagCreate,
    FlagType,
    Operator,
    SegmentIn,
    StrategyIn,
    Variant,
)

NORDICS = Constraint(contextName="country", operator=Operator.IN, values=["NO", "SE", "DK", "FI"])


def seed_demo(session: Session, actor: Actor) -> None:
    """A handful of flags that show what the flags pages can do (skips names already taken)."""
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    first, last = environments[0], environments[-1]
    taken = set(session.scalars(select(Flag.name)))
    beta = service.create_segment(
        session,
        actor,
        SegmentIn(
            name="Beta testers",
            description="Customers who joined the beta programme.",
            constraints=[Constraint(contextName="plan", operator=Operator.IN, values=["beta"])],
        ),
    )

    def flag(data: FlagCreate, strategies: dict[str, list[StrategyIn]] | None = None) -> bool:
        if data.name in taken:
            return False
        service.create_flag(session, actor, data, environments, strategies=strategies)
        return True

    if flag(
        FlagCreate(
            name="new-checkout",
            description="The redesigned checkout with saved cards.",
            owner="payments team",
            tags=["checkout", "web"],
        ),
        {
            first: [
                StrategyIn(
                    name="flexibleRollout",
                    parameters={"rollout": "50", "stickiness": "userId"},
                    constraints=[NORDICS],
                )
            ],
            last: [StrategyIn(name="default", segments=[beta.id])],
        },
    ):
        service.set_enabled(session, actor, "new-checkout", first, True)
    if flag(
        FlagCreate(
            name="search.ranking-v2",
            description="New ranking model for search results, measured against the old one.",
            type=FlagType.EXPERIMENT,
            owner="search team",
            tags=["search"],
        ),
        {last: [StrategyIn(name="flexibleRollout", parameters={"rollout": "20"})]},
    ):
        service.set_variants(
            session,
            actor,
            "search.ranking-v2",
            last,
            [Variant(name="control"), Variant(name="treatment")],
        )
        service.set_enabled(session, actor, "search.ranking-v2", last, True)
    if flag(
        FlagCreate(
            name="kill.recommendations",
            description="Turn off recommendations when the recommender is overloaded.",
            type=FlagType.KILL_SWITCH,
            owner="platform team",
            tags=["ops"],
        )
    ):
        for environment in environments:
            service.set_enabled(session, actor, "kill.recommendations", environment, True)
    flag(
        FlagCreate(
            name="office-preview",
            description="Unreleased pages for people in the office network.",
            type=FlagType.OPERATIONAL,
            owner="web team",
            tags=["web"],
        ),
        {
            last: [
                StrategyIn(name="remoteAddress", parameters={"IPs": "10.0.0.0/8, 192.168.0.0/16"})
            ]
        },
    )
    if flag(FlagCreate(name="spring-banner", description="Last season's campaign banner.")):
        service.archive_flag(session, actor, "spring-banner")
