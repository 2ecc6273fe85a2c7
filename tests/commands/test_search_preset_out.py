"""The preset `trt-tui search -o` writes (a new user's trial): its own name and artefacts, both TensorRT
routes, the precision's tolerance, the search's input data, and --force."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from trt_tui.cli import main

REPO = Path(__file__).resolve().parents[2]
TARGET = "log_probs:rel_rms<=2.5e-4"


def test_a_preset_copied_from_another_gets_its_own_name_description_and_artefacts(tmp_path, capsys):
    base = REPO / "presets" / "demo_fp16_trt11.toml"
    out = tmp_path / "f11.toml"
    assert main(["search", "--preset", str(base), "--target", TARGET, "-o", str(out)]) == 0
    data = tomllib.loads(out.read_text())
    assert data["name"] == "f11" and data["trt"] == 11
    assert "found by trt-tui search for log_probs:rel_rms<=0.00025" in data["description"]
    assert " kept FP32 " in data["description"] and "Good build" not in data["description"]
    assert "engine" not in data["builder"] and "converted_model" not in data["builder"]
    capsys.readouterr()
    assert main(["preset", "export", str(out), "-f", "script"]) == 0
    script = capsys.readouterr().out
    assert "f11.mixed.onnx" in script and "f11.plan" in script and "demo_fp16_trt11" not in script


def test_both_routes_export_tensorrt_10_flags_and_an_11_mixed_onnx(demo_model, tmp_path, capsys):
    ten, eleven = tmp_path / "ten.toml", tmp_path / "eleven.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "-o", str(ten)]) == 0
    assert main(["search", str(demo_model), "--target", TARGET, "--trt", "11", "-o", str(eleven)]) == 0
    capsys.readouterr()
    assert main(["preset", "export", str(ten), "-f", "trtexec"]) == 0
    assert "--layerPrecisions=*:fp16" in capsys.readouterr().out
    text = eleven.read_text()
    assert "trt = 11" in text and not any(k in text for k in ("strongly_typed", "constraints", "force_low", "pin_output"))
    assert main(["preset", "validate", str(eleven)]) == 0
    mixed = tmp_path / "eleven.mixed.onnx"
    assert main(["convert", str(demo_model), "--preset", str(eleven), "-o", str(mixed)]) == 0
    capsys.readouterr()
    assert main(["compare", "--preset", str(eleven), "--candidate", f"onnx:{mixed}"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    # and back: an 11 preset searched again with --trt 10 gets the 10.x options, flags export
    back = tmp_path / "back.toml"
    assert main(["search", "--preset", str(eleven), "--trt", "10", "-o", str(back)]) == 0
    capsys.readouterr()
    assert main(["preset", "export", str(back), "-f", "trtexec"]) == 0
    assert "--layerPrecisions=*:fp16" in capsys.readouterr().out
    assert main(["search", str(demo_model), "--target", TARGET, "--trt", "11"]) == 2  # --trt without -o


def test_the_written_preset_has_the_precisions_default_tolerance(demo_model, tmp_path, capsys):
    from trt_tui.core.tolerance import default_tolerance

    out = tmp_path / "found.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "-o", str(out)]) == 0
    tol, want = tomllib.loads(out.read_text())["comparison"]["default"], default_tolerance("fp16")
    assert (tol["atol"], tol["rtol"], tol["stat"]) == (want.atol, want.rtol, want.stat)
    capsys.readouterr()
    result = tmp_path / "c.json"
    assert main(["compare", "--preset", str(out), "--json", str(result)]) == 0
    assert json.loads(result.read_text())["counts"]["failed"] == 0  # not 135 rows failing a 1e-5 elementwise check


def test_the_search_data_is_recorded_or_said(demo_model, tmp_path, capsys):
    # random samples: the seed is kept, the sample count cannot be: said in the description and one line
    out = tmp_path / "random.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "--samples", "2", "--seed", "7", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    c = tomllib.loads(out.read_text())
    assert c["comparison"]["seed"] == 7 and c["comparison"]["input_data"] == "random"
    assert "--iterations 2" in c["description"] and err.count("note:") == 1 and "--iterations 2" in err
    # one sample file: the preset's input data, so compare --preset checks the same data
    sample = tmp_path / "data" / "s.npz"
    sample.parent.mkdir()
    rng = np.random.default_rng(0)
    np.savez(sample, audio_signal=rng.random((1, 32, 8), dtype=np.float32), length=np.array([8]),
             cache_last_channel=rng.random((2, 1, 16, 64), dtype=np.float32),
             cache_last_time=rng.random((2, 1, 64, 4), dtype=np.float32), cache_last_channel_len=np.array([16]))  # fmt: skip
    one = tmp_path / "sub" / "one.toml"
    one.parent.mkdir()
    assert main(["search", str(demo_model), "--target", TARGET, "--inputs", str(sample), "-o", str(one)]) == 0
    assert "note:" not in capsys.readouterr().err
    data = tomllib.loads(one.read_text())
    assert data["comparison"]["input_data"] == "../data/s.npz" and "searched on s.npz" in data["description"]
    # a folder: no field holds it; said, and the preset keeps random data
    folder = tmp_path / "folder.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "--inputs", str(sample.parent), "-o", str(folder)]) == 0
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "one input file" in err
    assert tomllib.loads(folder.read_text())["comparison"]["input_data"] == "random"


def test_force_replaces_an_existing_preset(demo_model, tmp_path, capsys):
    out = tmp_path / "found.toml"
    out.write_text("not a preset\n")
    args = ["search", str(demo_model), "--target", TARGET, "-o", str(out)]
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_text() == "not a preset\n"
    assert main([*args, "--force"]) == 0
    assert 'name = "found"' in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["found.toml"]  # atomic: no temporary left behind
