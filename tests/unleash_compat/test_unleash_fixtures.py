"""Exports recorded from a real Unleash 7.5.1 (tests/fixtures/unleash), imported into Darklaunch.

For every specification file Unleash stored: `darklaunch import --from-unleash` of the
production and development exports with the segment list, then

- every flag is served by `/api/client/features` as Unleash served it (normalised JSON: segment
  references resolved to their constraints, defaults spelled out, ids and order-only fields out);
- every specification case gives the real Python `UnleashClient` the same answer from Darklaunch
  as from Unleash's own recorded answer (`client-features.json`, served from a file);
- importing again changes nothing.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.common.node import static_site
from tests.conftest import start_live_server
from tests.spec_vectors import SPEC_DIR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "unleash"
RECORDED = sorted(p for p in FIXTURES.iterdir() if (p / "client-features.json").exists())


def load(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _constraint(c: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "contextName": c["contextName"],
        "operator": c["operator"],
        "inverted": bool(c.get("inverted")),
        "caseInsensitive": bool(c.get("caseInsensitive")),
    }
    if c.get("value") not in (None, ""):
        out["value"] = c["value"]
    else:
        out["values"] = sorted(c.get("values") or [])
    return out


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": v["name"],
        "weight": v.get("weight", 0),
        "stickiness": v.get("stickiness") or "default",
    }
    if v.get("payload"):
        out["payload"] = v["payload"]
    return out


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """A client features document with only what decides an SDK's answers, in one spelling."""
    segments = {s["id"]: s.get("constraints") or [] for s in doc.get("segments") or []}
    features = {}
    for f in doc["features"]:
        strategies = []
        for s in f.get("strategies") or []:
            constraints = list(s.get("constraints") or [])
            for segment_id in s.get("segments") or []:
                constraints.extend(segments.get(segment_id, []))
            parameters = dict(s.get("parameters") or {})
            if "IPs" in parameters:  # Darklaunch stores the list without spaces after commas
                parameters["IPs"] = ",".join(i.strip() for i in parameters["IPs"].split(","))
            strategies.append(
                {
                    "name": s["name"],
                    "parameters": parameters,
                    "constraints": sorted(
                        (_constraint(c) for c in constraints), key=lambda c: json.dumps(c)
                    ),
                    "variants": [_variant(v) for v in s.get("variants") or []],
                }
            )
        features[f["name"]] = {
            "enabled": f["enabled"],
            "type": f.get("type"),
            "impressionData": bool(f.get("impressionData")),
            "strategies": strategies,
            "variants": [_variant(v) for v in f.get("variants") or []],
            "dependencies": [
                {
                    "feature": d["feature"],
                    "enabled": d.get("enabled", True),
                    "variants": d.get("variants") or [],
                }
                for d in f.get("dependencies") or []
            ],
        }
    return features


class Answers:
    """The real UnleashClient reading one server's client API."""

    def __init__(self, url: str, token: str, cache: Path) -> None:
        from UnleashClient import UnleashClient

        self.client = UnleashClient(
            url=url,
            app_name="fixture-check",
            custom_headers={"Authorization": token},
            disable_metrics=True,
            disable_registration=True,
            cache_directory=str(cache),
        )
        self.client.initialize_client()

    def answer(self, case: dict[str, Any], variant: bool) -> Any:
        if variant:
            got = self.client.get_variant(case["toggleName"], case["context"])
            return {k: got.get(k) for k in ("name", "enabled", "feature_enabled", "payload")}
        return self.client.is_enabled(case["toggleName"], case["context"])


@pytest.fixture
def unleash_answers(tmp_path: Path) -> Iterator[Callable[[Path], Answers]]:
    """Unleash's recorded client-features.json served at /api/client/features from a file."""
    made: list[Answers] = []
    with contextlib_exit() as stack:

        def serve(folder: Path) -> Answers:
            site = tmp_path / "unleash-site"
            (site / "api" / "client").mkdir(parents=True)
            (site / "api" / "client" / "features").write_bytes(
                (folder / "client-features.json").read_bytes()
            )
            origin = stack.enter_context(static_site(site))
            answers = Answers(f"{origin}/api", "unused", tmp_path / "unleash-cache")
            made.append(answers)
            return answers

        yield serve
        for answers in made:
            answers.client.destroy()


def contextlib_exit() -> Any:
    import contextlib

    return contextlib.ExitStack()


def import_fixture(runner: Any, folder: Path) -> Any:
    args = ["import", "--from-unleash"]
    args += [str(folder / "production.json"), str(folder / "development.json")]
    args += ["--segments", str(folder / "segments.json")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Python's re on some spec patterns
        return runner.invoke(args=args)


@pytest.mark.parametrize("folder", RECORDED, ids=[p.name for p in RECORDED])
def test_recorded_unleash_export_imports_and_serves_the_same(
    app: Flask,
    runner: Any,
    make_token: Callable[..., str],
    tmp_path: Path,
    unleash_answers: Callable[[Path], Answers],
    folder: Path,
) -> None:
    result = import_fixture(runner, folder)
    assert result.exit_code == 0, result.output
    assert "\nleft out " not in "\n" + result.output, result.output
    if folder.name == "06-remote-address-strategy":
        assert "'192.invalid' in IPs is no IP address or range; it never matches" in result.output

    token = make_token("client", "production")
    server = start_live_server(app)
    darklaunch_answers = None
    try:
        served = requests.get(
            f"{server.url}/api/client/features", headers={"Authorization": token}, timeout=10
        ).json()
        assert normalise(served) == normalise(load(folder, "client-features.json"))

        darklaunch_answers = Answers(f"{server.url}/api", token, tmp_path / "dl-cache")
        unleash = unleash_answers(folder)
        spec = json.loads((SPEC_DIR / f"{folder.name}.json").read_text(encoding="utf-8"))
        recorded = set(normalise(load(folder, "client-features.json")))
        cases = [(c, False) for c in spec.get("tests", [])]
        cases += [(c, True) for c in spec.get("variantTests", [])]
        checked = 0
        for case, variant in cases:
            if case["toggleName"] not in recorded:
                continue
            checked += 1
            want = unleash.answer(case, variant)
            got = darklaunch_answers.answer(case, variant)
            assert got == want, case["description"]
        assert checked or not recorded
    finally:
        if darklaunch_answers is not None:
            darklaunch_answers.client.destroy()
        server.stop()

    again = import_fixture(runner, folder)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1].startswith("0 flags created, 0 changed,"), again.output
    assert "segments: 0 created, 0 changed" in again.output, again.output
