"""The TensorRT Python-API backend. TensorRT is not installed on the machines this was written on, so the
real build test skips with a reason; what does not need TensorRT is tested here: the missing-backend path
end to end, settings, and the pin-to-layer mapping through parser metadata."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from types import SimpleNamespace

import pytest

from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.selection import select_backend
from trt_tui.core.build.trt_loaders import layers_to_pin
from trt_tui.core.build.types import BuildRequest, JobState
from trt_tui.core.build.worker_backends import EmulateBackend, TensorRTBackend
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import MissingBackendError, UserError

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
needs_no_trt = pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here: the missing-backend path cannot be shown")


def _request(tmp_path, model, backend="tensorrt", **fields) -> BuildRequest:
    preset = tmp_path / "p.toml"
    preset.write_text("x = 1\n")
    spec = EngineSpec(**{"name": "p", "model_path": str(model), "precision": "fp16", "trt_major": 10, **fields})
    return BuildRequest(str(preset), preset.read_text(), str(model), backend, settings=spec.to_json())


@needs_no_trt
def test_missing_tensorrt_is_one_clear_line(tmp_path, demo_model):
    avail = TensorRTBackend().availability()
    assert not avail.ok and "TensorRT Python package is not installed" in avail.reason
    with pytest.raises(MissingBackendError, match="backend tensorrt is not available"):
        select_backend("tensorrt", {"tensorrt": TensorRTBackend()})
    # Even when forced into the queue, the worker child reports it in one line and nothing is claimed.
    m = JobManager(tmp_path / "state", kill_grace_s=0.5)
    try:
        job = m.wait(m.submit(_request(tmp_path, demo_model)).id, 30)
    finally:
        m.close()
    assert job.state == JobState.FAILED and job.result.exit_code == 2
    assert "TensorRT Python package is not installed" in job.result.message and "\n" not in job.result.message
    assert not job.result.engine_built
    assert "missing backend" in (tmp_path / "state" / "builds" / job.id / "build.log").read_text()


def test_auto_explains_its_choice():
    name, why = select_backend("auto", {"tensorrt": TensorRTBackend(), "emulate": _Always()})
    if HAVE_TRT:
        assert name == "tensorrt"
    else:
        assert name == "emulate" and why.startswith("auto picked emulate") and "skipped tensorrt (" in why
    with pytest.raises(MissingBackendError, match="no build backend is available"):
        select_backend("auto", {"x": _Never()})
    with pytest.raises(UserError, match="unknown build backend"):
        select_backend("gpu", {})


class _Always(EmulateBackend):
    def availability(self):
        from trt_tui.core.build.backend import Availability

        return Availability(True, "always")


class _Never(EmulateBackend):
    name = "x"

    def availability(self):
        from trt_tui.core.build.backend import Availability

        return Availability(False, "never")


def test_engine_spec_round_trips_and_an_unreadable_one_is_one_line():
    spec = EngineSpec(name="p", model_path="m.onnx", precision="bf16", trt_major=11, pinned_nodes=("a",),
                      optimization_level=5, profiles=({"x": ((1, 8), (4, 8), (8, 8))},),
                      memory_pools_mib={"workspace": 1024}, tf32=False)  # fmt: skip
    assert EngineSpec.from_json(spec.to_json()) == spec
    assert spec.to_json()["profiles"] == [{"x": {"min": [1, 8], "opt": [4, 8], "max": [8, 8]}}]
    assert spec.builds_from_mixed_onnx and spec.layer_precisions == [] and spec.precision_flag is None
    with pytest.raises(UserError, match="engine specification is not readable") as err:
        EngineSpec.from_json({"precision": "fp16"}, source="p.toml")
    assert err.value.one_line().startswith("p.toml: ") and "\n" not in err.value.one_line()


def test_force_low_precision_lives_in_the_spec():
    ten = EngineSpec(name="p", model_path="m", precision="fp16", trt_major=10, pinned_nodes=("a", "b"),
                     precision_constraints="obey", force_low_precision=True, pin_output_types=True)  # fmt: skip
    assert ten.layer_precisions == [("*", "fp16"), ("a", "fp32"), ("b", "fp32")]
    assert ten.layer_output_types == [("a", "fp32"), ("b", "fp32")] and ten.constraints == "obey"
    eleven = dataclasses.replace(ten, trt_major=11)
    assert eleven.layer_precisions == eleven.layer_output_types == [] and eleven.constraints is None


def test_layers_to_pin_follows_parser_metadata():
    layer = lambda name, meta: SimpleNamespace(name=name, metadata=meta)  # noqa: E731
    layers = [
        layer("/attn/Softmax", "[ONNX Layer: /attn/Softmax]"),
        layer("/attn/Softmax_12", "[ONNX Layer: /attn/Softmax]"),  # an extra layer the parser made for the node
        layer("/attn/MatMul", "[ONNX Layer: /attn/MatMul]"),
        layer("node_of_y", ""),  # no metadata: fall back to the name
    ]
    chosen = layers_to_pin(layers, {"/attn/Softmax", "node_of_y"})
    assert [lay.name for lay in chosen] == ["/attn/Softmax", "/attn/Softmax_12", "node_of_y"]


@pytest.mark.tensorrt
def test_real_tensorrt_build_with_pin_check(tmp_path, demo_model):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed: the real Python-API build cannot run here")
    from trt_tui.core.graph import load_graph

    softmax = [n.name for n in load_graph(demo_model).nodes if n.op_type == "Softmax"][:2]
    m = JobManager(tmp_path / "state")
    try:
        job = m.wait(m.submit(_request(tmp_path, demo_model, pinned_nodes=tuple(softmax))).id, 600)
    finally:
        m.close()
    assert job.state == JobState.SUCCEEDED, job.result.message
    assert job.result.engine_built
    info = json.loads((tmp_path / "state" / "builds" / job.id / "layers.json").read_text())
    assert info["Layers"]
    assert {row["node"] for row in job.result.pin_check["pins"]} == set(softmax)
