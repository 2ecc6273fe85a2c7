from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from trt_tui.core.modelgen.synth import transformer_encoder

from tests.fixtures.make_fixtures import write_all

# Child processes (`python -m trt_tui ...` in CLI tests) must import this checkout's package even when it
# is not installed (pytest's `pythonpath` setting only reaches this process).
_SRC = str(Path(__file__).resolve().parents[1] / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Paths of every fixture model, built once per session (per xdist worker) in a temp dir."""
    return write_all(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def demo_model(models) -> Path:
    return models["demo"]


def rounded_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A candidate that differs from the FP32 model the way fp16 weights would (names unchanged)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            init.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), init.name))
    return out


@pytest.fixture(scope="session")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """(FP32 1-layer encoder with static shapes, the same with fp16-rounded weights)."""
    d = tmp_path_factory.mktemp("pair")
    model = transformer_encoder(layers=1, d=32, ffn=64, seq=8, batch=2)
    ref, cand = d / "ref.onnx", d / "cand.onnx"
    onnx.save(model, ref)
    onnx.save(rounded_weights(model), cand)
    return ref, cand
