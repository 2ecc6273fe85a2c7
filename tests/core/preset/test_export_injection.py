"""Issue 12 items 1 and 11: nothing from the user's files or names reaches a script unquoted (comments
included), and a pin name starting with '-' stays a value on the generated convert line."""

from __future__ import annotations

import shlex
import subprocess

from trt_tui.cli import build_parser
from trt_tui.core.pins import PinRules
from trt_tui.core.preset import Preset, export, load_preset, resolve_preset

from .conftest import PRESETS


def test_newline_in_preset_file_name_runs_nothing(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    text = (PRESETS / "demo_fp16.toml").read_text().replace(
        "../src/trt_tui/data/demo_streaming_encoder.onnx", str((PRESETS.parent / "src/trt_tui/data/demo_streaming_encoder.onnx").resolve())
    ).replace('name = "demo-fp16-good"', 'name = "n\\ntouch PWNED_NAME\\n"')
    preset = d / "x\ntouch PWNED\n.toml"
    preset.write_text(text)
    script = export(resolve_preset(load_preset(preset)), "script", base_dir=d)
    assert script.splitlines()[1] == "set -euo pipefail"
    for line in script.splitlines():
        assert not line.startswith("touch"), line
    # run it for real, with stand-in tools that do nothing: no line of the file names may execute
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "noop").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "noop").chmod(0o755)
    (d / "s.sh").write_text(script)
    env = {"PATH": "/usr/bin:/bin", "TRTEXEC": str(bin_dir / "noop"), "TRT_TUI": str(bin_dir / "noop")}
    subprocess.run(["bash", str(d / "s.sh")], cwd=d, env=env, check=True, timeout=30)
    assert not (d / "PWNED").exists() and not (d / "PWNED_NAME").exists()
    assert "\\ntouch PWNED\\n" in script  # shown escaped, still readable


def test_pin_names_starting_with_dash_stay_values(models, tmp_path):
    import onnx
    from onnx import helper

    model = onnx.load(str(models["odd_names"]))
    for node in model.graph.node:
        if node.op_type == "Relu":
            node.name = "-flag"
    path = tmp_path / "dash.onnx"
    onnx.save(model, path)
    r = resolve_preset(Preset(model=str(path), trt=11, pins=PinRules(names=("-flag",), op_types=("Softmax",))))
    assert helper  # (the onnx helper import keeps the model building local to this test)
    for fmt in ("script", "trtexec"):
        text = export(r, fmt)
        line = next(ln for ln in text.replace("\\\n", " ").splitlines() if "convert" in ln)
        words = shlex.split(line)
        argv = words[words.index("convert"):]
        args = build_parser().parse_args(argv)
        assert args.pin == ["-flag"] and args.pin_op == ["Softmax"]
