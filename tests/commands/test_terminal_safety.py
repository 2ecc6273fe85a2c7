"""Issue 12 item 9 (CLI side): text from a model or a file is printed as plain text, control characters
escaped; markup in names is shown, never interpreted, and never a MarkupError."""

from __future__ import annotations

import onnx
import pytest

from trt_tui.cli import main
from trt_tui.commands.output import plain, safe
from trt_tui.core.safe_text import escape_controls

from tests.fuzz.hostile import FORBIDDEN_IN_OUTPUT, HOSTILE_NAMES, hostile_model


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "m\x1b]0;t\x07.onnx"
    onnx.save(hostile_model(), path)
    return path


def test_sanitizer_escapes_every_control_character():
    assert escape_controls("a\x1b[2Jb\nc\x07\x9b\u202e") == "a\\x1b[2Jb\\nc\\x07\\x9b\\u202e"
    assert escape_controls("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"
    assert safe("[bold red]x[/]") == "\\[bold red]x\\[/]"
    assert plain("ok name") == "ok name"


@pytest.mark.parametrize("args", [[], ["--nodes"], ["--io"], ["--op-types"]])
def test_inspect_prints_hostile_names_as_text(hostile, capfd, monkeypatch, args):
    monkeypatch.setenv("COLUMNS", "400")  # no folding: each name stays whole on its line
    assert main(["inspect", str(hostile), *args]) == 0
    out, err = capfd.readouterr()
    for bad in FORBIDDEN_IN_OUTPUT:
        assert bad not in out + err
    if args in ([], ["--nodes"]):
        for name in ("[/]close", "[bold red]styled[/bold red]", "[link=https://example.invalid]link[/link]"):
            assert name in out  # shown as written, not rendered


def test_json_output_escapes_too(hostile, capfd):
    assert main(["inspect", str(hostile), "--json"]) == 0
    out, _ = capfd.readouterr()
    assert "\x1b" not in out and "\\u001b" in out


def test_error_lines_escape_file_names(tmp_path, capfd):
    bad = tmp_path / "x\x1b]52;c;AAAA\x07\n.onnx"
    bad.write_text("not a model")
    assert main(["inspect", str(bad)]) == 2
    _, err = capfd.readouterr()
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b]52" in err


def test_preset_show_and_validate_escape_names(hostile, tmp_path, capfd):
    preset = tmp_path / "p.toml"
    names = [n for n in HOSTILE_NAMES if "\n" not in n][:6]
    import json

    preset.write_text(f'model = {json.dumps(str(hostile))}\nname = "\\u001b]0;title\\u0007"\n'
                      f"[pins]\nnames = {json.dumps(names)}\n")
    for cmd in (["preset", "show", str(preset)], ["preset", "validate", str(preset), "--for", "json"]):
        main(cmd)
        out, err = capfd.readouterr()
        for bad in FORBIDDEN_IN_OUTPUT:
            assert bad not in out + err, (cmd, bad)
