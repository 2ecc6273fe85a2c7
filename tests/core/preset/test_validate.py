"""Validation collects every problem with its key path; resolution expands rules and derives shapes."""

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.preset import load_preset, resolve_preset, validate_preset

from .conftest import PRESETS

LN_SM = ["LayerNormalization", "Softmax", "LogSoftmax"]


def problems_of(write_preset, text, model, **kw):
    preset = load_preset(write_preset(text, model))
    return {(p.key_path, p.severity): p.message for p in validate_preset(preset, **kw)}


def test_shipped_presets_are_clean():
    for name in ("demo_fp16.toml", "demo_bf16.toml", "demo_fp32_streaming.toml"):
        preset = load_preset(PRESETS / name)
        assert validate_preset(preset, for_export="trtexec") == []


def test_resolve_the_good_build(demo_index):
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"), demo_index)
    assert (r.precision, r.trt_major, r.precision_constraints, r.force_low_precision, r.pin_output_types) == ("fp16", 10, "obey", True, True)
    assert len(r.pinned_nodes) == 13
    assert r.pinned_nodes == sorted(r.pinned_nodes, key=lambda n: demo_index.node(n).topo_index)
    assert r.pinned_nodes[-1] == "/decoder/LogSoftmax"
    assert r.profiles[0]["audio_signal"] == ((1, 32, 8), (64, 32, 8), (64, 32, 8))
    assert r.profiles[0]["cache_last_channel"] == ((2, 1, 16, 64), (2, 64, 16, 64), (2, 64, 16, 64))
    assert [f.trtexec_text() for f in r.input_formats] == ["fp32:chw", "int64:chw", "fp32:chw", "fp32:chw", "int64:chw"]
    assert r.engine_path == PRESETS / "demo_fp16.plan"
    assert r.tolerances.for_tensor("cache_last_time_next").stat == "max"
    assert r.tolerances.for_tensor("log_probs").atol == 1e-3
    assert r.to_json()["pinned_nodes"] == r.pinned_nodes


def test_all_problems_are_collected_with_suggestions(write_preset, demo_model):
    found = problems_of(
        write_preset,
        """
        model = "{model}"
        trt = 10
        colour = "red"
        [precision]
        mode = "fp16"
        [pins]
        op_types = ["Sofmax", "Less"]
        match = ["nothing_matches_this"]
        names = ["/encoder/layers.0/self_attn/Softmx"]
        [io.inputs]
        audio_signl = "fp16:chw"
        length = "int64:weird"
        [[profiles]]
        batch = 0
        dims = { T = [1, 2, 3], B = [4, 2, 1] }
        [profiles.shapes.cache_last_time]
        min = [2, 1, 64]
        opt = [2, 1, 64]
        max = [2, 1, 64]
        [profiles.shapes.cache_last_channel]
        min = [3, 1, 16, 64]
        opt = [3, 1, 16, 64]
        max = [3, 1, 16, 64]
        [builder]
        optimization_level = 7
        extra_args = ["--verbose"]
        """,
        demo_model,
    )
    assert "did you mean '/encoder/layers.0/self_attn/Softmax'" in found[("pins.names", "error")]
    assert "did you mean 'Softmax'" in found[("pins.op_types", "warning")]
    assert "matches no node name" in found[("pins.match", "warning")]
    assert "no float output" in found[("pins", "warning")]
    assert "did you mean 'audio_signal'" in found[("io.inputs.audio_signl", "error")]
    assert "unknown layout 'weird'" in found[("io.inputs.length", "error")]
    assert "at least 1" in found[("profiles[0].batch", "error")]
    assert "no dim named 'T'" in found[("profiles[0].dims.T", "error")]
    assert "min <= opt <= max" in found[("profiles[0].dims.B", "error")]
    assert "rank mismatch" in found[("profiles[0].shapes.cache_last_time", "error")]
    assert "fixed at 2" in found[("profiles[0].shapes.cache_last_channel", "error")]
    assert "0-5" in found[("builder.optimization_level", "error")]
    assert "unchecked" in found[("builder.extra_args[0]", "warning")]
    assert "unknown key" in found[("colour", "warning")]


def test_min_opt_max_order_on_explicit_shapes(write_preset, demo_model):
    found = problems_of(
        write_preset,
        """
        model = "{model}"
        [[profiles]]
        [profiles.shapes.length]
        min = [8]
        opt = [4]
        max = [16]
        """,
        demo_model,
    )
    assert "min <= opt <= max" in found[("profiles[0].shapes.length", "error")]


def test_unvalued_dynamic_dims(write_preset, models):
    found = problems_of(write_preset, 'model = "{model}"\n', models["int64_input"])
    # two named dims shared by the only input: no single batch dim can be inferred
    assert "dynamic dim 'batch'" in found[("profiles[0].dims.batch", "error")]
    assert "dynamic dim 'seq'" in found[("profiles[0].dims.seq", "error")]
    ok = problems_of(write_preset, 'model = "{model}"\n[[profiles]]\nbatch_dim = "batch"\nbatch = 8\ndims = { seq = [1, 64, 128] }\n', models["int64_input"])
    assert ok == {}
    preset = load_preset(write_preset('model = "{model}"\n[[profiles]]\nbatch_dim = "batch"\nbatch = 8\ndims = { seq = [1, 64, 128] }\n', models["int64_input"]))
    assert resolve_preset(preset).profiles == [{"token_ids": ((1, 1), (8, 64), (8, 128))}]


def test_trt11_rejects_ten_only_options(write_preset, demo_model):
    found = problems_of(
        write_preset,
        """
        model = "{model}"
        trt = 11
        [precision]
        mode = "fp16"
        constraints = "obey"
        force_low_precision = true
        [io.inputs]
        audio_signal = "fp16:chw"
        [builder]
        extra_args = ["--layerPrecisions=*:fp16"]
        """,
        demo_model,
    )
    assert "10.x-only" in found[("precision.constraints", "error")]
    assert "10.x-only" in found[("precision.force_low_precision", "error")]
    assert "layout only" in found[("io.inputs.audio_signal", "error")]
    assert "removed in TensorRT 11" in found[("builder.extra_args[0]", "error")]


def test_trtexec_unsafe_names_only_matter_for_trtexec(write_preset, models):
    text = 'model = "{model}"\n[pins]\nop_types = ["MatMul", "Softmax"]\n'
    # the Python API build takes any name: a warning, not an error, unless the trtexec line is asked for
    assert set(problems_of(write_preset, text, models["odd_names"])) == {("pins", "warning")}
    found = problems_of(write_preset, text, models["odd_names"], for_export="trtexec")
    assert "cannot be written on a trtexec command line" in found[("pins", "error")]
    # on TensorRT 11 the pins go into the converted ONNX, not on the command line
    assert problems_of(write_preset, text.replace("\n[pins]", "\ntrt = 11\n[pins]"), models["odd_names"], for_export="trtexec") == {}


def test_missing_model_is_a_problem_not_a_crash(write_preset, tmp_path):
    found = problems_of(write_preset, 'model = "nope.onnx"\n', None)
    assert "no such file" in found[("model", "error")]


def test_resolve_raises_one_line_with_count(write_preset, demo_model):
    preset = load_preset(write_preset('model = "{model}"\n[pins]\nnames = ["/x"]\n[builder]\noptimization_level = 9\n', demo_model))
    with pytest.raises(UserError) as exc:
        resolve_preset(preset)
    assert "(and 1 more" in exc.value.one_line() and "\n" not in exc.value.one_line()


def test_static_model_needs_no_profiles(write_preset, models):
    preset = load_preset(write_preset('model = "{model}"\n', models["odd_names"]))
    assert resolve_preset(preset).profiles == []
