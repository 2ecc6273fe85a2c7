"""Saving keeps the file's comments and layout, rewrites only changed keys, and notices outside changes."""

import shutil

import pytest

from trt_tui.core.preset import load_preset
from trt_tui.core.preset.roundtrip import ChangedOnDisk, read_source, save_preset_keeping_layout
from trt_tui.core.resources import demo_model_path, demo_preset_path


@pytest.fixture
def demo(tmp_path):
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


def test_unchanged_preset_saves_byte_for_byte(demo):
    source = read_source(demo)
    save_preset_keeping_layout(load_preset(demo), demo, source=source)
    assert open(demo).read() == source.text


def test_changed_keys_only_and_comments_kept(demo):
    source = read_source(demo)
    preset = load_preset(demo)
    preset.precision.mode = "bf16"
    preset.name = "renamed"
    preset.builder.optimization_level = 3
    preset.profiles[0].dims = {"T": (1, 8, 16)}
    save_preset_keeping_layout(preset, demo, source=source)
    text = open(demo).read()
    header = [line for line in source.text.splitlines() if line.startswith("#")]
    assert header and all(line in text for line in header)
    assert 'mode = "bf16"' in text and 'name = "renamed"' in text and "atol = 1e-3" in text  # 1e-3 kept as written
    again = load_preset(demo)
    assert (again.precision.mode, again.name, again.builder.optimization_level) == ("bf16", "renamed", 3)
    assert again.profiles[0].dims == {"T": (1, 8, 16)}


def test_outside_change_detected_then_forced(demo):
    source = read_source(demo)
    preset = load_preset(demo)
    with open(demo, "a") as f:
        f.write("# another program was here\n")
    with pytest.raises(ChangedOnDisk, match="changed on disk"):
        save_preset_keeping_layout(preset, demo, source=source)
    assert "another program" in open(demo).read()
    save_preset_keeping_layout(preset, demo, source=source, force=True)
    assert "another program" not in open(demo).read()


def test_save_as_elsewhere_keeps_comments_and_rebases_model(demo, tmp_path):
    source = read_source(demo)
    preset = load_preset(demo)
    (tmp_path / "sub").mkdir()
    new = save_preset_keeping_layout(preset, tmp_path / "sub" / "mine.toml", source=source)
    assert new.text.startswith("#") and 'model = "../demo_streaming_encoder.onnx"' in new.text
    assert load_preset(new.path).model_path.resolve() == (tmp_path / "demo_streaming_encoder.onnx").resolve()
    with pytest.raises(Exception, match="already exists"):
        save_preset_keeping_layout(preset, demo, source=new)
