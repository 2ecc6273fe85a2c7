from __future__ import annotations

from pathlib import Path

import pytest

from trt_tui.core.graph import load_graph

REPO = Path(__file__).resolve().parents[3]
PRESETS = REPO / "presets"


@pytest.fixture(scope="session")
def demo_index(demo_model):
    return load_graph(demo_model)


@pytest.fixture
def write_preset(tmp_path):
    """Write TOML text as a preset file in tmp_path; `{model}` is replaced by the given model path."""

    def write(text: str, model: Path | None = None, name: str = "p.toml") -> Path:
        path = tmp_path / name
        path.write_text(text.replace("{model}", str(model) if model else ""))
        return path

    return write
