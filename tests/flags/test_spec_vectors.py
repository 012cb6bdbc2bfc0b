"""Unleash client-specification states, loaded through the admin API, judged by the evaluate box.

For each specification file, every segment and feature is created in `development` through the
admin API, exactly as a script would (strategies in order, constraints, segments, variants,
dependencies, on/off); files 19 and 20 are delta events, replayed as a sequence of admin
changes. Then every `tests` and `variantTests` case goes through `explain`, the service behind
the UI's evaluate box, and must give the expected answer.

Some states cannot be expressed through a strict write path: an operator that does not exist,
a flag name outside the naming rule, a reference to a segment or parent flag that does not
exist, dependencies more than one level deep, an IP range that is not one, variant weights that
do not add up to 100%. The API must refuse each of those with 400; the cases that depend on a
refused write are counted separately (and pinned below), never evaluated against loosened rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from server import db
from server.errors import NotFound
from server.flags import service
from server.flags.evaluation import make_context
from server.flags.explain import explain
from tests.spec_vectors import SpecFile, load_spec_files

ENV = "development"
FEATURES = "/api/admin/projects/default/features"
Api = Callable[..., Any]

# file: (cases that pass, cases whose state the API refused). Every case is one or the other:
# 232 pass and 47 depend on a write the API refused, of 279. What the API refuses, by file:
# variant weights that do not add up to 1000 (08, 12, 15, 16: a lone variant still loads, as
# its weight does not matter, and so do weights that already add up to 1000; 08's flags with
# `overrides` have such weights), `IN`/`NOT_IN` without values (09, 11), a CIDR range that is
# not one (22),
# `NOT_A_VALID_OPERATOR` (13), a version with a leading "v" (14), a missing segment (15), a
# missing parent, a cycle and two levels of dependencies (17), non-ASCII flag names (18), and
# regular expressions the engine cannot compile: unclosed, lookahead, backreference (21).
EXPECTED: dict[str, tuple[int, int]] = {
    "01-simple-examples": (5, 0),
    "02-user-with-id-strategy": (5, 0),
    "03-gradual-rollout-user-id-strategy": (6, 0),
    "04-gradual-rollout-session-id-strategy": (6, 0),
    "05-gradual-rollout-random-strategy": (4, 0),
    "06-remote-address-strategy": (6, 0),
    "07-multiple-strategies": (6, 0),
    "08-variants": (6, 11),
    "09-strategy-constraints": (15, 2),
    "10-flexible-rollout-strategy": (10, 0),
    "11-strategy-constraints-edge-cases": (2, 4),
    "12-custom-stickiness": (4, 5),
    "13-constraint-operators": (45, 1),
    "14-constraint-semver-operators": (23, 2),
    "15-global-constraints": (3, 3),
    "16-strategy-variants": (6, 5),
    "17-dependent-features": (33, 6),
    "18-utf8-flag-names": (0, 2),
    "19-delta-api-hydration": (1, 0),
    "20-delta-api-events": (3, 0),
    "21-regex-constraint-operators": (34, 3),
    "22-cidr-constraint-operators": (9, 3),
}


@dataclass
class Loaded:
    """What the admin API accepted and refused while loading one specification state."""

    segment_ids: dict[int, int] = field(default_factory=dict)  # spec id -> created id
    refused_segments: set[int] = field(default_factory=set)
    refused: dict[str, list[str]] = field(default_factory=dict)  # flag -> why
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # flag -> spec parents
    uses_segments: dict[str, set[int]] = field(default_factory=dict)  # flag -> spec segment ids

    def refuse(self, flag: str, response: Any) -> None:
        assert response.status_code == 400, (flag, response.status_code, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == "invalid" and error["message"], error
        self.refused.setdefault(flag, []).append(error["message"])

    def expressible(self, flag: str, seen: frozenset[str] = frozenset()) -> bool:
        """True when the flag, the segments it uses and its parents all loaded as specified."""
        if flag in self.refused or flag in seen:
            return flag not in self.refused
        if self.uses_segments.get(flag, set()) & self.refused_segments:
            return False
        return all(self.expressible(p, seen | {flag}) for p in self.dependencies.get(flag, []))


def api_variants(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spec's variants as an API body that means the same thing, where one exists.

    The engine picks a variant by hashing into the sum of the weights. A lone variant always
    wins whatever its weight; weights that already add up to 1000 are sent as fixed weights,
    unchanged. Anything else has no equal in a store whose weights add up to 1000, so it is sent
    literally (fixed weights) and the API must refuse it.
    """
    out = []
    total = sum(int(v.get("weight", 0)) for v in variants)
    for v in variants:
        body = {k: v[k] for k in v if k != "weight"}
        if len(variants) > 1 or total == 1000:
            body |= {"weightType": "fix", "weight": int(v.get("weight", 0))}
        out.append(body)
    return out


def strategy_body(strategy: dict[str, Any], loaded: Loaded) -> dict[str, Any]:
    body = {k: v for k, v in strategy.items() if k not in ("segments", "variants")}
    body["segments"] = [
        loaded.segment_ids.get(sid, 1_000_000 + sid) for sid in strategy.get("segments") or []
    ]
    if strategy.get("variants"):
        body["variants"] = api_variants(strategy["variants"])
    return body


def put_segment(api: Api, loaded: Loaded, segment: dict[str, Any]) -> None:
    spec_id = segment["id"]
    body = {
        "name": segment.get("name") or f"spec-segment-{spec_id}",
        "constraints": segment.get("constraints", []),
    }
    if spec_id in loaded.segment_ids:
        response = api("put", f"/api/admin/segments/{loaded.segment_ids[spec_id]}", json=body)
    else:
        response = api("post", "/api/admin/segments", json=body)
    if response.status_code in (200, 201):
        loaded.segment_ids[spec_id] = response.get_json()["id"]
        loaded.refused_segments.discard(spec_id)
    else:
        assert response.status_code == 400, response.get_json()
        loaded.refused_segments.add(spec_id)


def put_feature(api: Api, loaded: Loaded, feature: dict[str, Any]) -> None:
    """Create the feature, or make an existing one match it (delta `feature-updated`)."""
    name = feature["name"]
    loaded.refused.pop(name, None)
    loaded.uses_segments[name] = {
        sid for s in feature.get("strategies") or [] for sid in s.get("segments") or []
    }
    # `project` and `stale` do not change evaluation; a feature-level `segments` list (in the
    # delta hydration file) is not part of Unleash's feature model and the engine ignores it.
    metadata = {
        "description": feature.get("description"),
        "type": feature.get("type") or "release",
        "impressionData": bool(feature.get("impressionData", False)),
    }
    existing = api("get", f"{FEATURES}/{name}")
    if existing.status_code == 404:
        response = api("post", FEATURES, json={"name": name, **metadata})
        if response.status_code != 200:
            loaded.refuse(name, response)
            return
    else:
        assert api("put", f"{FEATURES}/{name}", json=metadata).status_code == 200
        environments = existing.get_json()["environments"]
        for old in next(e for e in environments if e["name"] == ENV)["strategies"]:
            url = f"{FEATURES}/{name}/environments/{ENV}/strategies/{old['id']}"
            assert api("delete", url).status_code == 200
    for strategy in feature.get("strategies") or []:
        url = f"{FEATURES}/{name}/environments/{ENV}/strategies"
        response = api("post", url, json=strategy_body(strategy, loaded))
        if response.status_code != 200:
            loaded.refuse(name, response)
    url = f"{FEATURES}/{name}/environments/{ENV}/variants"
    response = api("put", url, json=api_variants(feature.get("variants") or []))
    if response.status_code != 200:
        loaded.refuse(name, response)
    switch = "on" if feature.get("enabled") else "off"
    assert api("post", f"{FEATURES}/{name}/environments/{ENV}/{switch}").status_code == 200


def put_dependencies(api: Api, loaded: Loaded, features: list[dict[str, Any]]) -> None:
    # Parents first: a flag's dependencies go in before anyone depends on it would be refused.
    children = [f for f in features if f.get("dependencies")]
    has_parents = {f["name"] for f in children}
    ordered = sorted(
        children, key=lambda f: any(d["feature"] in has_parents for d in f["dependencies"])
    )
    for feature in ordered:
        name = feature["name"]
        loaded.dependencies[name] = [d["feature"] for d in feature["dependencies"]]
        if name in loaded.refused:
            continue
        for dependency in feature["dependencies"]:
            url = f"{FEATURES}/{name}/dependencies"
            response = api("post", url, json=dependency)
            if response.status_code != 200:
                loaded.refuse(name, response)


def load_state(api: Api, spec: SpecFile) -> Loaded:
    loaded = Loaded()
    events = spec.state["events"] if spec.is_delta else [dict(spec.state, type="hydration")]
    for event in events:
        kind = event["type"]
        if kind == "hydration":
            for segment in event.get("segments") or []:
                put_segment(api, loaded, segment)
            for feature in event.get("features") or []:
                put_feature(api, loaded, feature)
            put_dependencies(api, loaded, event.get("features") or [])
        elif kind == "feature-updated":
            put_feature(api, loaded, event["feature"])
            put_dependencies(api, loaded, [event["feature"]])
        elif kind == "feature-removed":
            assert api("delete", f"{FEATURES}/{event['featureName']}").status_code == 202
        elif kind == "segment-updated":
            put_segment(api, loaded, event["segment"])
        elif kind == "segment-removed":
            segment_id = loaded.segment_ids.pop(event["segmentId"])
            assert api("delete", f"/api/admin/segments/{segment_id}").status_code == 204
        else:
            raise AssertionError(f"unknown delta event {kind!r} in {spec.name}")
    return loaded


def evaluate_case(app: Flask, name: str, context: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """What the evaluate box says: on/off and the variant (an unknown flag is off)."""
    with app.app_context():
        session = db.session()
        try:
            flag = service.get_flag(session, name)
        except NotFound:
            return False, {"name": "disabled", "enabled": False, "feature_enabled": False}
        result = explain(session, flag, service.flag_environment(flag, ENV), make_context(context))
        return result.enabled, result.variant


@dataclass
class Tally:
    passed: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)


def check_spec(app: Flask, api: Api, spec: SpecFile) -> Tally:
    loaded = load_state(api, spec)
    tally = Tally()
    cases = [(c, False) for c in spec.tests] + [(c, True) for c in spec.variant_tests]
    for case, is_variant in cases:
        if not loaded.expressible(case["toggleName"]):
            tally.refused += 1
            continue
        enabled, variant = evaluate_case(app, case["toggleName"], case["context"])
        if is_variant:
            expected = dict(case["expectedResult"])
            expected.setdefault("feature_enabled", expected.pop("featureEnabled", False))
            got = {
                k: variant[k]
                for k in ("name", "enabled", "feature_enabled", "payload")
                if k in variant
            }
            ok = got == expected
        else:
            expected, got = case["expectedResult"], enabled
            ok = got == expected
        if ok:
            tally.passed += 1
        else:
            tally.failures.append(f"{case['description']}: expected {expected}, got {got}")
    return tally


def spec_files() -> list[Any]:
    return [pytest.param(spec, id=spec.name) for spec in load_spec_files()]


@pytest.mark.parametrize("spec", spec_files())
def test_specification_state_loaded_through_admin_api_evaluates_as_specified(
    app: Flask, api: Api, spec: SpecFile
) -> None:
    tally = check_spec(app, api, spec)
    assert tally.failures == []
    total = len(spec.tests) + len(spec.variant_tests)
    assert tally.passed + tally.refused == total
    assert (tally.passed, tally.refused) == EXPECTED[spec.name]


def test_expected_counts_cover_every_case_of_every_file() -> None:
    specs = load_spec_files()
    assert set(EXPECTED) == {s.name for s in specs}
    for spec in specs:
        assert sum(EXPECTED[spec.name]) == len(spec.tests) + len(spec.variant_tests), spec.name
    assert sum(passed for passed, _ in EXPECTED.values()) == 232
    assert sum(refused for _, refused in EXPECTED.values()) == 47
