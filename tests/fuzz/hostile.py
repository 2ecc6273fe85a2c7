"""Generators of hostile inputs: models, presets and files a hostile user could hand to trt-tui.

Every name carries what has broken tools before: terminal escapes (CSI clear screen, OSC 0 title, OSC 52
clipboard), rich markup (`[/]`, `[bold red]`, `[link=...]`), shell metacharacters and command
substitutions, newlines, a leading '-', and the trtexec separators ',' and ':'. Files are truncated,
oversized, deeply nested, point their external data outside the model folder, or are not files at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.modelgen.builder import IR_VERSION, OPSET

HOSTILE_NAMES = [
    "\x1b[2J\x1b[Hclear",
    "\x1b]0;pwned title\x07osc",
    "\x1b]52;c;cHduZWQ=\x07clip",
    "[/]close",
    "[bold red]styled[/bold red]",
    "[link=https://example.invalid]link[/link]",
    "$(touch PWNED)",
    "`touch PWNED`;rm -rf x|&",
    "line\ntouch PWNED\n",
    "-flag",
    "comma,colon:name",
    "\u202eevil\u202c",
]
# what a terminal must never receive from data: ESC, BEL, the C1 CSI/OSC introducers, bidi overrides
FORBIDDEN_IN_OUTPUT = ("\x1b", "\x07", "\x9b", "\x9d", "\u202e")


def hostile_model(names: list[str] | None = None) -> onnx.ModelProto:
    """x -> Relu -> Softmax -> ... -> y, one node per hostile name; tensors and the output named hostile too."""
    names = names or HOSTILE_NAMES
    nodes = []
    prev = "x"
    for i, name in enumerate(names):
        out = f"t{i}:{name}" if i < len(names) - 1 else "y\x1b]0;out\x07"
        op = "Softmax" if i % 2 else "Relu"
        attrs = {"axis": -1} if op == "Softmax" else {}
        nodes.append(helper.make_node(op, [prev], [out], name=name, **attrs))
        prev = out
    graph = helper.make_graph(
        nodes,
        "hostile\x1b[31m[/]",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [2, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def _matmul_model(weight: onnx.TensorProto, *, extra_inputs: tuple[str, ...] = ()) -> onnx.ModelProto:
    node = helper.make_node("MatMul", ["x", weight.name], ["h"], name="mm")
    relu = helper.make_node("Relu", ["h", *extra_inputs][:1], ["y"], name="relu")
    nodes = [node, relu]
    if extra_inputs:
        nodes.append(helper.make_node("Add", ["y", extra_inputs[0]], ["z"], name="uses_undefined"))
    out = "z" if extra_inputs else "y"
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [2, 8])], initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def external_weight(location: str, *, offset: int | None = None, length: int | None = None) -> onnx.TensorProto:
    t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 8], data_location=TensorProto.EXTERNAL)
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def write_external_data_tricks(root: Path) -> dict[str, Path]:
    """Models whose external data is outside the folder, absolute, a symlink, a directory, a FIFO, at a bad
    offset, or too short for the shape. Returns name -> model path (each in its own folder)."""
    weights = np.ones((8, 8), np.float32).tobytes()
    out: dict[str, Path] = {}
    secret = root / "outside.bin"
    secret.write_bytes(weights)

    def make(name: str, location: str, setup=None, **kw) -> None:
        d = root / name
        d.mkdir()
        if setup:
            setup(d)
        path = d / "m.onnx"
        onnx.save(_matmul_model(external_weight(location, **kw)), path)
        out[name] = path

    make("outside_folder", "../outside.bin")
    make("absolute", str(secret))
    make("symlink", "w.bin", lambda d: os.symlink(secret, d / "w.bin"))
    make("directory", "w.bin", lambda d: (d / "w.bin").mkdir())
    make("fifo", "w.bin", lambda d: os.mkfifo(d / "w.bin"))
    make("bad_offset", "w.bin", lambda d: (d / "w.bin").write_bytes(weights), offset=10**9)
    make("negative_offset", "w.bin", lambda d: (d / "w.bin").write_bytes(weights), offset=-5)
    make("short_file", "w.bin", lambda d: (d / "w.bin").write_bytes(weights[:100]))
    return out


def short_weights_model() -> onnx.ModelProto:
    """An initializer whose raw data holds 25 floats for an 8x8 shape."""
    w = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 8], raw_data=np.ones(25, np.float32).tobytes())
    return _matmul_model(w)


def undefined_input_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), "w")
    return _matmul_model(w, extra_inputs=("never_defined",))


def huge_dims_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "huge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2**62, 2**62])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2**62, 2**62])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def deep_toml(levels: int = 100_000) -> str:
    return "x = " + "[" * levels + "]" * levels + "\n"


def deep_json(levels: int = 100_000) -> str:
    return "[" * levels + "]" * levels


def preset_text(model: Path, **sections: str) -> str:
    body = f'model = "{model.as_posix()}"\n'
    for name, text in sections.items():
        body += f"\n[{name}]\n{text}\n"
    return body


def write_corpus(root: Path, demo_model: Path) -> dict[str, dict[str, Path]]:
    """Every hostile file, by kind: `models` (ONNX paths), `presets`, `contracts`. `valid` names the ones
    that are hostile but well-formed (commands may succeed on them); the rest must be refused in one line."""
    root.mkdir(parents=True, exist_ok=True)
    models: dict[str, Path] = {}

    def save(name: str, model: onnx.ModelProto) -> None:
        models[name] = root / f"{name}.onnx"
        onnx.save(model, models[name])

    save("hostile_names", hostile_model())
    save("short_weights", short_weights_model())
    save("undefined_input", undefined_input_model())
    save("huge_dims", huge_dims_model())
    ext = root / "external"
    ext.mkdir()
    models.update({f"external_{k}": v for k, v in write_external_data_tricks(ext).items()})
    data = onnx.load(str(demo_model)).SerializeToString()
    (root / "truncated.onnx").write_bytes(data[: len(data) // 3])
    models["truncated"] = root / "truncated.onnx"
    (root / "oversized_field.onnx").write_bytes(b"\x0a\xff\xff\xff\xff\x0f" + b"x" * 64)  # a 4 GiB length prefix
    models["oversized_field"] = root / "oversized_field.onnx"
    (root / "text.onnx").write_text("not a model\n")
    models["text"] = root / "text.onnx"
    os.mkfifo(root / "fifo.onnx")
    models["fifo"] = root / "fifo.onnx"
    models["device"] = Path("/dev/zero")
    models["folder"] = ext

    presets: dict[str, Path] = {}

    def preset(name: str, text: str, file_name: str | None = None) -> None:
        presets[name] = root / (file_name or f"{name}.toml")
        presets[name].write_text(text)

    model = models["hostile_names"]
    preset("hostile_file_name", preset_text(model, precision='mode = "fp16"'), "x\ntouch PWNED\n\x1b]0;t\x07.toml")
    preset("hostile_pins", preset_text(model, pins="names = " + _toml_list(HOSTILE_NAMES)))
    preset("nan_atol", preset_text(model, **{"comparison.default": "atol = nan"}))
    preset("inf_rtol", preset_text(model, **{"comparison.default": "rtol = inf"}))
    preset("huge_batch", preset_text(model) + "\n[[profiles]]\nbatch = 100000000000000000000000000000000\n")
    preset("deep", deep_toml())
    preset("not_toml", "model = [\n")
    preset("broken_model", preset_text(models["short_weights"]))
    os.mkfifo(root / "fifo.toml")
    presets["fifo"] = root / "fifo.toml"

    contracts: dict[str, Path] = {}
    (root / "deep.json").write_text(deep_json())
    contracts["deep"] = root / "deep.json"
    (root / "not_json.json").write_text("{")
    contracts["not_json"] = root / "not_json.json"
    os.mkfifo(root / "fifo.json")
    contracts["fifo"] = root / "fifo.json"
    valid = {"hostile_names", "hostile_file_name", "hostile_pins", "broken_model"}  # broken_model: only runs fail
    return {"models": models, "presets": presets, "contracts": contracts, "valid": {k: Path() for k in valid}}


def _toml_list(items: list[str]) -> str:
    import json

    return "[" + ", ".join(json.dumps(i) for i in items) + "]"
