"""All 279 Unleash client-specification cases, through every protocol the server speaks.

Each file's `state` is stored through Darklaunch's own write path (the flags services: segments,
flags, strategies in order, variants, dependencies, then on/off); files 19 and 20 are delta
events, applied as a sequence of service changes. Every case is then checked through
(a) the real `UnleashClient` fed by `/api/client/features` on a live server, (b) the frontend API
and (c) OFREP.

The write path is strict, so some states cannot be stored as given: those cases are counted as
refused, with the reason, and not checked. Variant weights are normalised to 1000 by the write
path; where that changes which variant a user gets, the cases are counted apart ("stored with
changed meaning"), checked, and reported without being asserted. Every case stored as given
must pass on all three paths. The counts are printed in the terminal summary.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError

from server import db
from server.audit.service import Actor
from server.errors import DomainError
from server.flags import service as flags
from server.flags.schemas import FlagCreate, FlagFields, FlagType, SegmentIn, StrategyIn, Variant
from server.protocols.results import variant_value
from server.segments import service as segments
from tests.conftest import start_live_server
from tests.protocols.conftest import SpecTally
from tests.spec_vectors import load_spec_pairs

FILES = load_spec_pairs()
ENV = "production"
LOADER = Actor("client-specification")
# The frontend API fills a missing remoteAddress with the caller's address; the spec's "no
# remoteAddress" cases are sent from a documentation address (RFC 5737) no strategy names.
CALLER = "203.0.113.77"
STRATEGY_FIELDS = ("name", "parameters", "constraints", "segments", "variants")


def _reason(exc: Exception) -> str:
    """One line saying why the write path refused something."""
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and where == "name":
            return "flag name Unleash would not call URL friendly"
        if error["type"] == "extra_forbidden":
            return f"unsupported field {where.rsplit('.', 1)[-1]!r}"
        if error["type"] == "enum":
            return f"unknown {where.rsplit('.', 1)[-1]} {error['input']!r}"
        return message
    if isinstance(exc, DomainError):
        return exc.message
    raise exc


@dataclass
class Loaded:
    refused: dict[str, str] = field(default_factory=dict)  # flag -> reason
    altered: set[str] = field(default_factory=set)  # stored, but variant weights changed
    parents: dict[str, list[str]] = field(default_factory=dict)

    def status(self, flag: str, seen: frozenset[str] = frozenset()) -> tuple[str, str]:
        """("refused", reason) | ("altered", "") | ("as-given", "") for a case's flag."""
        if flag in self.refused:
            return "refused", self.refused[flag]
        status = ("as-given", "")
        for parent in self.parents.get(flag, []):
            if parent in seen:
                continue
            parent_status = self.status(parent, seen | {flag})
            if parent_status[0] == "refused":
                return "refused", f"depends on a refused flag: {parent_status[1]}"
            if parent_status[0] == "altered":
                status = parent_status
        return ("altered", "") if flag in self.altered else status


class SpecLoader:
    """Stores a specification state through the flags services."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.envs = app.config["ENVIRONMENTS"]
        self.segments: dict[int, int] = {}  # spec id -> stored id
        self.bad_segments: dict[int, str] = {}
        self.loaded = Loaded()

    def load(self, state: dict[str, Any]) -> Loaded:
        # Python's `re` warns about some valid patterns (e.g. nested sets); in production that
        # is a log line, under pytest's warnings-as-errors it would abort the validator.
        with warnings.catch_warnings(), self.app.app_context():
            warnings.simplefilter("ignore", FutureWarning)
            s = db.session()
            if "events" in state:
                for event in state["events"]:
                    self.apply_event(s, event)
            else:
                self.store(s, state.get("features", []), state.get("segments", []))
        return self.loaded

    def apply_event(self, s: Any, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "hydration":
            self.store(s, event.get("features", []), event.get("segments", []))
        elif kind == "feature-updated":
            self.store(s, [event["feature"]], [])
        elif kind == "feature-removed":
            flags.archive_flag(s, LOADER, event["featureName"])
        elif kind == "segment-updated":
            self.segment(s, event["segment"])
        else:  # pragma: no cover - the specification has no other event types
            raise AssertionError(f"unknown delta event {kind}")

    def segment(self, s: Any, spec: dict[str, Any]) -> None:
        name = spec.get("name") or f"segment-{spec['id']}"
        try:
            data = SegmentIn(name=name, constraints=spec.get("constraints") or [])
            if spec["id"] in self.segments:
                current = segments.get_segment(s, self.segments[spec["id"]])
                segments.update_segment(s, LOADER, current.id, data, current.version)
            else:
                self.segments[spec["id"]] = segments.create_segment(s, LOADER, data).id
        except (ValidationError, DomainError) as exc:
            self.bad_segments[spec["id"]] = _reason(exc)

    def store(self, s: Any, features: list[dict[str, Any]], segments: list[dict[str, Any]]) -> None:
        for spec in segments:
            self.segment(s, spec)
        created = [f for f in features if self.create(s, f)]
        # Dependencies name other flags, which must exist first: set them in a second pass.
        ready = [f for f in created if self.depend(s, f)]
        for feature in ready:
            self.configure(s, feature)

    def create(self, s: Any, spec: dict[str, Any]) -> bool:
        name = spec["name"]
        self.loaded.refused.pop(name, None)
        self.loaded.altered.discard(name)
        self.loaded.parents[name] = [d["feature"] for d in spec.get("dependencies") or []]
        try:
            kind = spec.get("type") if spec.get("type") in set(FlagType) else "release"
            data = FlagCreate(
                name=name,
                description=spec.get("description") or "",
                type=kind,
                impressionData=bool(spec.get("impressionData")),
                stale=bool(spec.get("stale")),
            )
            self.strategies(spec)  # refuse the flag before storing any of it
            self.variants(spec.get("variants") or [])
            try:
                existing = flags.get_flag(s, name, include_archived=False)
            except DomainError:
                flags.create_flag(s, LOADER, data, self.envs)
            else:  # a delta update of a flag that exists: start its configuration afresh
                env = flags.flag_environment(existing, ENV)
                for strategy in list(env.strategies):
                    flags.delete_strategy(s, LOADER, name, ENV, strategy.id)
        except (ValidationError, DomainError) as exc:
            self.loaded.refused[name] = _reason(exc)
            return False
        return True

    def strategies(self, spec: dict[str, Any]) -> list[StrategyIn]:
        out = []
        for raw in spec.get("strategies") or []:
            data = {k: raw[k] for k in STRATEGY_FIELDS if raw.get(k) is not None}
            for segment_id in data.get("segments", []):
                if segment_id in self.bad_segments:
                    raise DomainError(f"uses a refused segment: {self.bad_segments[segment_id]}")
                if segment_id not in self.segments:
                    # The write path refuses ids of segments that do not exist (flags service).
                    raise DomainError("a strategy names a segment id the state does not define")
            data["segments"] = [self.segments[i] for i in data.get("segments", [])]
            strategy = StrategyIn(**data)
            self.note_weights(spec["name"], raw.get("variants") or [], strategy.variants)
            out.append(strategy)
        return out

    def variants(self, raw: list[dict[str, Any]]) -> list[Variant]:
        return [Variant(**v) for v in raw]

    def note_weights(self, name: str, raw: list[dict[str, Any]], stored: list[Variant]) -> None:
        if len(raw) > 1 and [v.get("weight") for v in raw] != [v.weight for v in stored]:
            self.loaded.altered.add(name)

    def depend(self, s: Any, spec: dict[str, Any]) -> bool:
        if not spec.get("dependencies"):
            return True
        name = spec["name"]
        try:
            flags.update_flag(
                s,
                LOADER,
                name,
                FlagFields(
                    description=spec.get("description") or "",
                    impressionData=bool(spec.get("impressionData")),
                    dependencies=spec["dependencies"],
                ),
                None,
            )
        except (ValidationError, DomainError) as exc:
            self.loaded.refused[name] = _reason(exc)
            return False
        return True

    def configure(self, s: Any, spec: dict[str, Any]) -> None:
        name = spec["name"]
        try:
            for strategy in self.strategies(spec):
                flags.add_strategy(s, LOADER, name, ENV, strategy)
            raw_variants = spec.get("variants") or []
            if raw_variants:
                env = flags.set_variants(s, LOADER, name, ENV, self.variants(raw_variants))
                stored = [Variant(**v) for v in env.variants]
                self.note_weights(name, raw_variants, stored)
            current = flags.flag_environment(flags.get_flag(s, name), ENV)
            if current.enabled != bool(spec.get("enabled")):
                flags.set_enabled(s, LOADER, name, ENV, bool(spec.get("enabled")))
        except (ValidationError, DomainError) as exc:
            self.loaded.refused[name] = _reason(exc)


# ---- the three paths -----------------------------------------------------------------------


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    out = {k: v[k] for k in ("name", "enabled", "feature_enabled") if k in v}
    if v.get("payload"):
        out["payload"] = dict(v["payload"])
    return out


def via_unleash_client(client: Any, case: dict[str, Any], variant_test: bool) -> Any:
    context = case["context"]
    if variant_test:
        return _variant(client.get_variant(case["toggleName"], context))
    return client.is_enabled(case["toggleName"], context)


def _query(context: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The context as the JS SDK's query string, or None when only a JSON body can hold it."""
    pairs: list[tuple[str, str]] = []
    for key, value in context.items():
        if key == "properties":
            for name, prop in (value or {}).items():
                if not isinstance(prop, str):
                    return None
                pairs.append((f"properties[{name}]", prop))
        elif isinstance(value, str):
            pairs.append((key, value))
        else:
            return None
    return pairs


def via_frontend(http: FlaskClient, token: str, case: dict[str, Any], variant_test: bool) -> Any:
    context = case["context"]
    headers = {"Authorization": token}
    environ = {"REMOTE_ADDR": CALLER}
    query = _query(context)
    if query is not None:
        response = http.get(
            "/api/frontend", query_string=query, headers=headers, environ_base=environ
        )
    else:
        response = http.post(
            "/api/frontend", json={"context": context}, headers=headers, environ_base=environ
        )
    assert response.status_code == 200, response.data
    toggle = next(
        (t for t in response.get_json()["toggles"] if t["name"] == case["toggleName"]), None
    )
    if not variant_test:
        return toggle is not None
    if toggle is None:  # absent: off for this context
        return {"name": "disabled", "enabled": False, "feature_enabled": False}
    return _variant(toggle["variant"])


def via_ofrep(http: FlaskClient, token: str, case: dict[str, Any], variant_test: bool) -> Any:
    response = http.post(
        f"/ofrep/v1/evaluate/flags/{case['toggleName']}",
        json={"context": case["context"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code == 404:
        assert response.get_json()["errorCode"] == "FLAG_NOT_FOUND"
        on, body = False, {}
    else:
        assert response.status_code == 200, response.data
        body = response.get_json()
        on = body["reason"] not in ("DISABLED", "DEFAULT")
    if not variant_test:
        return on
    if "value" not in body or isinstance(body["value"], bool):
        # No variant handed out (or a flag without variants): Unleash's "disabled" variant.
        return {"name": "disabled", "enabled": False, "feature_enabled": on}
    return {
        "name": body["variant"],
        "enabled": True,
        "feature_enabled": True,
        "value": body["value"],
    }


def expected_for_ofrep(expected: dict[str, Any]) -> dict[str, Any]:
    out = _variant(expected)
    if out.get("enabled"):
        out["value"] = variant_value(expected)
        out.pop("payload", None)
    return out


@pytest.mark.parametrize(("file_name", "spec"), FILES, ids=[name for name, _ in FILES])
def test_client_specification_through_every_protocol(
    app: Flask,
    make_token: Any,
    tmp_path: Path,
    spec_tally: SpecTally,
    file_name: str,
    spec: dict[str, Any],
) -> None:
    from UnleashClient import UnleashClient

    loaded = SpecLoader(app).load(spec["state"])
    client_token = make_token("client", ENV)
    frontend_token = make_token("frontend", ENV)
    cases = [(c, False) for c in spec.get("tests", [])] + [
        (c, True) for c in spec.get("variantTests", [])
    ]
    server = start_live_server(app)
    unleash = UnleashClient(
        url=f"{server.url}/api",
        app_name="client-specification",
        instance_id=file_name,
        custom_headers={"Authorization": client_token},
        disable_metrics=True,
        disable_registration=True,
        cache_directory=str(tmp_path / "unleash-cache"),
    )
    failures: list[str] = []
    try:
        unleash.initialize_client()
        http = app.test_client()
        spec_tally.files += 1
        for case, variant_test in cases:
            spec_tally.total += 1
            status, why = loaded.status(case["toggleName"])
            if status == "refused":
                spec_tally.refused[why] = spec_tally.refused.get(why, 0) + 1
                continue
            expected = case["expectedResult"]
            if variant_test:
                expected = _variant(expected)
            answers = {
                "UnleashClient": (via_unleash_client(unleash, case, variant_test), expected),
                "frontend API": (via_frontend(http, frontend_token, case, variant_test), expected),
                "OFREP": (
                    via_ofrep(http, client_token, case, variant_test),
                    expected_for_ofrep(case["expectedResult"]) if variant_test else expected,
                ),
            }
            if status == "altered":
                spec_tally.altered += 1
                for path, (got, want) in answers.items():
                    if got == want:
                        spec_tally.altered_passed[path] = spec_tally.altered_passed.get(path, 0) + 1
                continue
            spec_tally.stored += 1
            for path, (got, want) in answers.items():
                spec_tally.checked[path] = spec_tally.checked.get(path, 0) + 1
                if got == want:
                    spec_tally.passed[path] = spec_tally.passed.get(path, 0) + 1
                else:
                    failures.append(f"{path}: {case['description']}: got {got!r}, want {want!r}")
    finally:
        unleash.destroy()
        server.stop()
    assert failures == []
