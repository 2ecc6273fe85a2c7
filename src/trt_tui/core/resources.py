"""Paths of files shipped inside the package (the demo model and its example preset)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    return Path(str(resources.files("trt_tui") / "data" / name))


def demo_model_path() -> Path:
    return data_path("demo_streaming_encoder.onnx")


def demo_preset_path() -> Path:
    """The demo's FP16 "good build" preset; its model path resolves to the packaged demo model."""
    return data_path("demo_fp16.toml")
