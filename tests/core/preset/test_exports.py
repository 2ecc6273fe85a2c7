"""Exports: golden command lines for the shipped presets, the seeds' flags, quoting, and the 11.x route."""

import json
import shlex
import subprocess

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.pins import PinRules
from trt_tui.core.preset import FORMATS, Preset, export, load_preset, resolve_preset

from .conftest import PRESETS

REPO = PRESETS.parent  # the golden exports are run from the checkout's root
GOLDEN = REPO / "tests" / "core" / "preset" / "golden"
LN_SM = ("LayerNormalization", "Softmax", "LogSoftmax")
CASES = [
    (name, fmt)
    for name in ("demo_fp16", "demo_bf16", "demo_fp32_streaming", "demo_fp16_trt11")
    for fmt in ("trtexec", "script", "polygraphy", "autocast")
    if not (name == "demo_fp32_streaming" and fmt == "autocast")
]


@pytest.mark.parametrize("name, fmt", CASES)
def test_golden_exports(name, fmt):
    resolved = resolve_preset(load_preset(PRESETS / f"{name}.toml"))
    assert export(resolved, fmt, base_dir=REPO) == (GOLDEN / f"{name}.{fmt}.txt").read_text()


def test_good_build_reproduces_every_flag_of_the_seeds(demo_index):
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"), demo_index)
    pins = [n.name for n in demo_index.nodes if n.op_type in LN_SM]
    in_fmt = "fp32:chw,int64:chw,fp32:chw,fp32:chw,int64:chw"
    out_fmt = "fp32:chw,int64:chw,fp32:chw,fp32:chw,int64:chw"
    mn = "audio_signal:1x32x8,length:1,cache_last_channel:2x1x16x64,cache_last_time:2x1x64x4,cache_last_channel_len:1"
    mx = "audio_signal:64x32x8,length:64,cache_last_channel:2x64x16x64,cache_last_time:2x64x64x4,cache_last_channel_len:64"
    expected = [
        "trtexec",
        "--onnx=src/trt_tui/data/demo_streaming_encoder.onnx",
        "--saveEngine=presets/demo_fp16.plan",
        f"--minShapes={mn}",
        f"--optShapes={mx}",
        f"--maxShapes={mx}",
        f"--inputIOFormats={in_fmt}",
        f"--outputIOFormats={out_fmt}",
        "--fp16",
        "--precisionConstraints=obey",
        "--layerPrecisions=*:fp16," + ",".join(f"{p}:fp32" for p in pins),
        "--layerOutputTypes=" + ",".join(f"{p}:fp32" for p in pins),
        "--builderOptimizationLevel=0",
    ]
    text = export(r, "trtexec", base_dir=REPO)
    assert shlex.split(text.replace("\\\n", " ")) == expected
    assert "--stronglyTyped" not in text and "--noTF32" not in text  # TRT_STRONGLY_TYPED=0, TRT_NO_TF32=0


def test_bf16_variant_flags():
    text = export(resolve_preset(load_preset(PRESETS / "demo_bf16.toml")), "trtexec", base_dir=PRESETS)
    words = shlex.split(text.replace("\\\n", " "))
    assert "--bf16" in words and "--noTF32" in words and "--builderOptimizationLevel=0" in words
    assert any(w.startswith("--layerPrecisions=*:bf16,") for w in words) and "--stronglyTyped" not in words


def test_trt11_has_no_removed_flags():
    r = resolve_preset(load_preset(PRESETS / "demo_fp16_trt11.toml"))
    for fmt in ("trtexec", "script"):
        text = export(r, fmt)
        for flag in ("--fp16", "--bf16", "--precisionConstraints", "--layerPrecisions", "--layerOutputTypes", "fp32:chw"):
            assert flag not in text
        assert "convert" in text and str(r.converted_model_path) in text


def test_script_quotes_any_node_name(models, tmp_path):
    """An in-memory TensorRT 11 preset names its pins on the convert line: spaces, ',' and ':' survive."""
    preset = Preset(model=str(models["odd_names"]), trt=11, pins=PinRules(op_types=("Relu", "Softmax"), exclude=("plain",)))
    r = resolve_preset(preset)
    script = export(r, "script")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # syntactically valid bash
    convert = script.split('"$TRT_TUI" ', 1)[1].split("\n# 2.")[0].replace("\\\n", " ")
    words = shlex.split(convert)
    pins = [w.split("=", 1)[1] for w in words if w.startswith("--pin=")]
    assert pins == ["block:1/Softmax", "/my block/relu out"]


def test_trtexec_refuses_unsafe_names_on_trt10(models):
    r = resolve_preset(Preset(model=str(models["odd_names"]), pins=PinRules(op_types=("Softmax",))))
    with pytest.raises(UserError, match="cannot be written on a trtexec command line"):
        export(r, "trtexec")
    assert "block:1/Softmax:float32" in export(r, "polygraphy")  # Polygraphy splits at the last ':'


def test_autocast_with_exclusions_names_nodes_exactly(demo_model):
    rules = PinRules(op_types=("Softmax",), exclude=("layers\\.0",))
    text = export(resolve_preset(Preset(model=str(demo_model), pins=rules)), "autocast")
    assert "--nodes_to_exclude '^/encoder/layers\\.1/self_attn/Softmax$'" in text
    assert "--op_types_to_exclude" not in text


def test_json_export_is_the_resolved_preset():
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"))
    data = json.loads(export(r, "json"))
    assert data["pinned_nodes"] == r.pinned_nodes and len(data["pinned_nodes"]) == 13
    assert data["profiles"][0]["shapes"]["length"] == {"min": [1], "opt": [64], "max": [64]}
    assert data["input_formats"][1] == {"tensor": "length", "format": "int64:chw"}


def test_unknown_format():
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"))
    with pytest.raises(UserError, match="unknown export format"):
        export(r, "onnx")
    assert set(FORMATS) == {"trtexec", "script", "polygraphy", "autocast", "json"}


def test_trtexec_argv_for_subprocess():
    from trt_tui.core.preset.exports import trtexec_args

    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"))
    argv = trtexec_args(r)
    assert argv[0] == "trtexec" and argv[1] == f"--onnx={r.model_path.absolute()}"
    assert "--layerPrecisions=*:fp16," + ",".join(f"{n}:fp32" for n in r.pinned_nodes) in argv


def test_paths_outside_the_base_are_absolute_never_dot_dot_chains():
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"))
    for fmt in ("trtexec", "script", "polygraphy", "autocast"):
        text = export(r, fmt, base_dir=PRESETS)  # the model lives in src/, outside presets/
        assert "../" not in text, fmt
        assert str(REPO / "src/trt_tui/data/demo_streaming_encoder.onnx") in text, fmt


def test_shown_path_rule(tmp_path):
    from trt_tui.core.preset.exports import shown_path

    assert shown_path(tmp_path / "m.onnx", tmp_path) == "m.onnx"
    assert shown_path(tmp_path / "a" / ".." / "b" / "m.onnx", tmp_path) == "b/m.onnx"  # normalised
    assert shown_path(tmp_path, tmp_path) == "."
    assert shown_path(tmp_path / "-m.onnx", tmp_path) == "./-m.onnx"  # never read as an option
    assert shown_path(tmp_path / "m.onnx", tmp_path / "sub") == (tmp_path / "m.onnx").as_posix()
    assert shown_path(tmp_path / "x" / ".." / "m.onnx") == (tmp_path / "m.onnx").as_posix()


def test_export_for_user_script_without_a_file_is_absolute(monkeypatch):
    from trt_tui.core.preset.exports import export_for_user

    monkeypatch.chdir(REPO)
    r = resolve_preset(load_preset(PRESETS / "demo_fp16.toml"))
    assert export_for_user(r, "trtexec") == (GOLDEN / "demo_fp16.trtexec.txt").read_text()
    script = export_for_user(r, "script")  # where it will be saved is unknown: no cd, absolute paths
    assert "cd " not in script and f"--onnx={REPO}/src/trt_tui/data/demo_streaming_encoder.onnx" in script
