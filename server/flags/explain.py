"""Explain one evaluation: on/off, variant, and which strategy matched (the "evaluate" box).

The overall answer comes from the engine loaded with the flag's client document; to tell which
strategy matched, each enabled strategy is also evaluated on its own in a throwaway engine.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.flags.compile import feature_document, segment_document
from server.flags.describe import describe_strategy
from server.flags.evaluation import Evaluation, document_for, evaluate, load_engine
from server.flags.models import Flag, FlagEnvironment, Segment


@dataclass(frozen=True)
class StrategyResult:
    id: str
    name: str
    sentence: str
    matched: bool
    disabled: bool


@dataclass(frozen=True)
class Explanation:
    enabled: bool
    variant: dict[str, Any]
    reason: str  # one sentence a person can read
    strategies: list[StrategyResult] = field(default_factory=list)

    @property
    def matched(self) -> StrategyResult | None:
        return next((s for s in self.strategies if s.matched), None)


def explain(
    session: Session, flag: Flag, env: FlagEnvironment, context: dict[str, Any]
) -> Explanation:
    """Evaluate `flag` in `env` for `context` and say why."""
    segments = list(session.scalars(select(Segment)))
    seg_docs = [segment_document(s) for s in segments]
    by_id = {s.id: s for s in segments}
    features = [feature_document(flag, env)]
    # Parents of dependencies must be present for the engine to judge them.
    for dep in flag.dependencies:
        parent = session.scalar(select(Flag).where(Flag.name == dep["feature"]))
        if parent is not None and parent.archived_at is None:
            penv = next((e for e in parent.environments if e.environment == env.environment), None)
            if penv is not None:
                features.append(feature_document(parent, penv))
    engine = load_engine(document_for(features, seg_docs), {f["name"] for f in features})
    overall = evaluate(engine, flag.name, context)
    if flag.archived_at is not None:
        # SDKs no longer receive an archived flag, so for them it is unknown: off.
        overall = Evaluation(
            False, False, {"name": "disabled", "enabled": False, "feature_enabled": False}
        )

    results: list[StrategyResult] = []
    base = copy.deepcopy(features[0])
    base.pop("dependencies", None)
    base["enabled"] = True
    base["variants"] = []
    enabled_docs = {s["id"]: s for s in features[0]["strategies"]}
    for strategy in sorted(env.strategies, key=lambda s: s.sort_order):
        sentence = describe_strategy(
            strategy.name,
            strategy.parameters,
            strategy.constraints,
            [by_id[i].name for i in strategy.segments if i in by_id],
        )
        matched = False
        if not strategy.disabled and strategy.id in enabled_docs:
            probe = dict(base, strategies=[enabled_docs[strategy.id]])
            probe_engine = load_engine(document_for([probe], seg_docs), {flag.name})
            matched = evaluate(probe_engine, flag.name, context).enabled
        results.append(
            StrategyResult(strategy.id, strategy.name, sentence, matched, strategy.disabled)
        )

    reason = _reason(flag, env, overall.enabled, results)
    return Explanation(overall.enabled, overall.variant, reason, results)


def _reason(flag: Flag, env: FlagEnvironment, enabled: bool, results: list[StrategyResult]) -> str:
    if flag.archived_at is not None:
        return "The flag is archived, so it is off for everyone."
    if not env.enabled:
        return f"The flag is off in {env.environment}, so no strategy is consulted."
    active = [r for r in results if not r.disabled]
    matched = next((r for r in active if r.matched), None)
    if enabled and not active:
        return "The flag is on and has no strategies, so it is on for everyone."
    if enabled and matched:
        return f"On: matched “{matched.sentence}”."
    if matched and not enabled:
        return "A strategy matched, but a flag this one depends on is not satisfied."
    if enabled:
        return "On."
    return "Off: no strategy matched this context."
