"""The fuzz suite (issue 12): every hostile file of tests/fuzz/hostile.py through every command that reads it.

For each run: no traceback (an exception escaping `main` fails the test), nothing a terminal would
interpret on stdout or stderr, broken input refused with exit 2 and exactly one line on stderr, and no file
changed or created except the output the command was asked to write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trt_tui.cli import main

from tests.fuzz.hostile import FORBIDDEN_IN_OUTPUT, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_model):
    return write_corpus(tmp_path_factory.mktemp("hostile"), demo_model)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


MODEL_COMMANDS = {
    "inspect": lambda m, out: ["inspect", m],
    "inspect_json": lambda m, out: ["inspect", m, "--json"],
    "compare": lambda m, out: ["compare", m],
    "convert": lambda m, out: ["convert", m, "--precision", "fp16", "-o", out / "x.onnx"],
    "contract_init": lambda m, out: ["contract", "init", m, "-o", out / "c.json"],
    "preset_new": lambda m, out: ["preset", "new", m, "-o", out / "p.toml"],
}
PRESET_COMMANDS = {
    "validate": lambda p, out: ["preset", "validate", p],
    "show": lambda p, out: ["preset", "show", p],
    "export_script": lambda p, out: ["preset", "export", p, "-f", "script", "-o", out / "s.sh"],
    "export_trtexec": lambda p, out: ["preset", "export", p, "-f", "trtexec"],
    "compare": lambda p, out: ["compare", "--preset", p],
    "build": lambda p, out: ["build", p, "--backend", "emulate", "--state-dir", out / "state", "--json"],
}
CONTRACT_COMMANDS = {
    "validate": lambda c, out, model: ["contract", "validate", c],
    "stream": lambda c, out, model: ["stream", model, "--contract", c, "--chunks", "2"],
}
MODELS = ["hostile_names", "short_weights", "undefined_input", "huge_dims", "truncated", "oversized_field", "text",
          "fifo", "device", "folder"] + [f"external_{k}" for k in ("outside_folder", "absolute", "symlink", "directory",
                                                                      "fifo", "bad_offset", "negative_offset", "short_file")]
PRESETS = ["hostile_file_name", "hostile_pins", "nan_atol", "inf_rtol", "huge_batch", "deep", "not_toml",
           "broken_model", "fifo"]
# running a whole build or comparison on well-formed hostile input is covered once; the rest fail early
SLOW = {("preset", "hostile_file_name", "build"), ("preset", "hostile_file_name", "compare"),
        ("preset", "hostile_pins", "compare")}


def _run(argv, corpus_root: Path, out: Path, capfd, valid: bool, names: Path | None = None) -> None:
    before = _snapshot(corpus_root)
    argv = [str(a) for a in argv]
    code = main(argv)
    stdout, stderr = capfd.readouterr()
    for bad in FORBIDDEN_IN_OUTPUT:
        assert bad not in stdout and bad not in stderr, (argv, repr(bad))
    assert "Traceback" not in stderr
    if valid:
        assert code in (0, 1, 2), (argv, code, stderr)
    else:
        assert code == 2, (argv, code, stderr[-2000:])
    if code == 2:
        lines = [ln for ln in stderr.splitlines() if ": warning:" not in ln]
        assert len(lines) == 1, (argv, stderr)
        if names is not None:  # the line says which file is wrong (the model's folder holds every file involved)
            assert str(names) in lines[0] or names.name in lines[0], (argv, lines[0])
    assert _snapshot(corpus_root) == before, f"{argv} changed files it was not asked to write"
    asked = {"x.onnx", "c.json", "p.toml", "s.sh", "state"}
    assert {p.name for p in out.iterdir()} <= asked, (argv, list(out.iterdir()))


UNREADABLE = {"truncated", "oversized_field", "text", "fifo", "device", "folder"}
# these parse, and indexing them is fine (inspect reads no weights); running or rewriting them must be refused
RUN_REFUSED = {"compare": set(MODELS) - {"hostile_names"},
               "convert": set(MODELS) - {"hostile_names", "huge_dims"}}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("model", MODELS)
def test_hostile_models(corpus, tmp_path, capfd, model, command):
    path = corpus["models"][model]
    root = path.parent if model.startswith("external_") else corpus["models"]["hostile_names"].parent
    refused = model in UNREADABLE or model in RUN_REFUSED.get(command, set())
    _run(MODEL_COMMANDS[command](path, tmp_path), root, tmp_path, capfd, not refused,
         names=path.parent if model.startswith("external_") else None)


@pytest.mark.parametrize("command", list(PRESET_COMMANDS))
@pytest.mark.parametrize("preset", PRESETS)
def test_hostile_presets(corpus, tmp_path, capfd, monkeypatch, preset, command):
    if command in ("build", "compare") and preset in ("hostile_file_name", "hostile_pins") and ("preset", preset, command) not in SLOW:
        pytest.skip("a full run on this well-formed preset is covered by another case")
    monkeypatch.chdir(tmp_path)
    path = corpus["presets"][preset]
    _run(PRESET_COMMANDS[command](path, tmp_path), path.parent, tmp_path, capfd, preset in corpus["valid"])
    assert not (tmp_path / "PWNED").exists() and not (path.parent / "PWNED").exists()


@pytest.mark.parametrize("command", list(CONTRACT_COMMANDS))
@pytest.mark.parametrize("contract", ["deep", "not_json", "fifo"])
def test_hostile_contracts(corpus, tmp_path, capfd, demo_model, contract, command):
    path = corpus["contracts"][contract]
    _run(CONTRACT_COMMANDS[command](path, tmp_path, demo_model), path.parent, tmp_path, capfd, False)


def test_exported_script_from_a_hostile_file_name_runs_nothing(corpus, tmp_path, capfd):
    import subprocess

    out = tmp_path / "s.sh"
    assert main(["preset", "export", str(corpus["presets"]["hostile_pins"]), "-f", "script", "-o", str(out)]) in (0, 2)
    capfd.readouterr()
    name = corpus["presets"]["hostile_file_name"]
    assert main(["preset", "export", str(name), "-f", "script", "-o", str(tmp_path / "t.sh")]) == 0
    script = (tmp_path / "t.sh").read_text()
    noop = tmp_path / "noop"
    noop.write_text("#!/bin/sh\nexit 0\n")
    noop.chmod(0o755)
    subprocess.run(["bash", str(tmp_path / "t.sh")], cwd=tmp_path, check=True, timeout=30,
                   env={"PATH": "/usr/bin:/bin", "TRTEXEC": str(noop), "TRT_TUI": str(noop)})
    assert not (tmp_path / "PWNED").exists() and "\x1b" not in script
