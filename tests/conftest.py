from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.make_fixtures import write_all


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Paths of every fixture model, built once per session (per xdist worker) in a temp dir."""
    return write_all(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def demo_model(models) -> Path:
    return models["demo"]
