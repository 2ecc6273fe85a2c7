"""Paths of files shipped inside the package (the demo model and its example preset)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    return Path(str(resources.files("trt_tui") / "data" / name))


def demo_model_path() -> Path:
    return data_path("demo_streaming_encoder.onnx")
