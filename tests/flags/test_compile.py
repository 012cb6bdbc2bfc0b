"""Compiling flags into the snapshot: streamed in batches, the same bytes as one whole document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from server import db, snapshot
from server.flags import compile as compile_module
from server.flags import flags_snapshot
from server.flags import service as flags
from server.flags.compile import (
    active_flags,
    compile_environment,
    environment_features,
    feature_document,
)
from server.flags.evaluation import document_for
from server.flags.schemas import FlagCreate, StrategyIn, Variant
from server.unit_of_work import complete
from tests.flags.test_service import ALICE, ENVS, rollout


def test_streamed_document_equals_one_dump_of_the_whole() -> None:
    features = [
        {"name": "b", "enabled": True, "strategies": [{"z": 1, "a": {"y": [2, "é"]}}]},
        {"name": "a", "variants": [], "type": "release"},
    ]
    segments = [{"id": 1, "name": "s", "constraints": []}]
    whole = json.dumps(
        {"version": 2, "features": features, "segments": segments},
        separators=(",", ":"),
        sort_keys=True,
    )
    assert document_for(iter(features), segments) == whole
    assert document_for(iter([]), []) == '{"features":[],"segments":[],"version":2}'


def test_batches_keep_name_order_and_skip_archived_flags(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compile_module, "BATCH", 2)  # five flags span three batches
    with app.app_context():
        s = db.session()
        for name in ("echo", "alpha", "delta", "charlie", "bravo", "foxtrot"):
            flags.create_flag(s, ALICE, FlagCreate(name=name), ENVS)
        flags.add_strategy(s, ALICE, "delta", "production", rollout(25))
        flags.archive_flag(s, ALICE, "foxtrot")
        complete(s)
        served = flags_snapshot().environment("production")
        streamed = [f["name"] for f in environment_features(s, "production")]
        assert streamed == ["alpha", "bravo", "charlie", "delta", "echo"]
        assert [f["name"] for f in json.loads(served.document)["features"]] == streamed
        delta = next(f for f in json.loads(served.document)["features"] if f["name"] == "delta")
        assert delta["strategies"][0]["parameters"]["rollout"] == "25"
        # The same flags loaded all at once (with their environments) and compiled from a list
        # give the same bytes and ETag as the batched stream.
        listed = [
            feature_document(flag, env)
            for flag in active_flags(s)
            for env in flag.environments
            if env.environment == "production"
        ]
        whole = compile_environment("production", listed, [])
        assert (whole.document, whole.etag) == (served.document, served.etag)


def test_flags_with_the_same_facts_share_one_info(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        for name in ("a", "b", "c"):
            flags.create_flag(s, ALICE, FlagCreate(name=name), ENVS)
        flags.set_enabled(s, ALICE, "c", "production", True)
        flags.add_strategy(
            s,
            ALICE,
            "c",
            "production",
            StrategyIn(name="default", variants=[Variant(name="blue", weight=1000)]),
        )
        complete(s)
        infos = flags_snapshot().environment("production").flags
        assert infos["a"] is infos["b"]
        assert not infos["a"].enabled
        assert infos["c"].enabled and infos["c"].has_variants and not infos["c"].targeted


def test_a_rejected_stream_names_the_flags_the_engine_dropped() -> None:
    from server.errors import Invalid

    good = {"name": "ok", "type": "release", "enabled": True, "impressionData": False}
    values_not_a_list = {"contextName": "x", "operator": "IN", "values": "abc"}
    strategy = {
        "name": "default",
        "constraints": [values_not_a_list],
        "segments": [],
        "variants": [],
    }
    bad = {**good, "name": "broken", "strategies": [{**strategy, "parameters": {}}]}
    features = ({"strategies": [], **f, "variants": []} for f in (good, bad))
    with pytest.raises(Invalid, match="broken"):
        compile_environment("production", features, [])


def test_a_rebuild_hands_freed_heap_back(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(snapshot, "_MALLOC_TRIM", lambda pad: calls.append(pad) or 1)
    with app.app_context():
        flags.create_flag(db.session(), ALICE, FlagCreate(name="x"), ENVS)
        flags_snapshot()
    assert calls and set(calls) == {0}
    monkeypatch.setattr(snapshot, "_MALLOC_TRIM", None)
    assert snapshot.release_build_memory() is False


def test_the_c_library_trim_is_found_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert snapshot.release_build_memory() is True


def _synthetic(name: str, rollout: str = "50") -> dict[str, Any]:
    return {
        "name": name,
        "type": "release",
        "description": f"about {name}",
        "enabled": True,
        "stale": False,
        "impressionData": False,
        "project": "default",
        "strategies": [
            {
                "id": f"id-{name}",
                "name": "flexibleRollout",
                "parameters": {"rollout": rollout, "stickiness": "default", "groupId": name},
                "constraints": [],
                "segments": [],
                "variants": [],
            }
        ],
        "variants": [],
    }


def test_an_update_compresses_again_only_the_chunks_it_changed() -> None:
    import gzip

    from server.flags.compile import update_environment

    features = [_synthetic(f"flag-{i:04d}") for i in range(600)]
    old = compile_environment("production", features, [])
    assert gzip.decompress(old.document_gzip) == old.document
    assert len(old.gzip_chunks) > 4  # several chunks at 600 flags

    changed = _synthetic("flag-0300", rollout="7")
    new = update_environment(old, {"flag-0300": changed}, None)
    whole = compile_environment("production", [*features[:300], changed, *features[301:]], [])
    assert (new.document, new.document_gzip) == (whole.document, whole.document_gzip)
    assert gzip.decompress(new.document_gzip) == new.document
    kept = [c for c in new.gzip_chunks.values() if any(c is o for o in old.gzip_chunks.values())]
    assert len(kept) == len(new.gzip_chunks) - 1  # one chunk holds flag-0300; the rest are reused
