"""BuildRequests from a preset file and from a preset object with unsaved edits."""

import shutil

import pytest

from trt_tui.core.build.manager import JobManager, default_backends
from trt_tui.core.build.request import request_from_edited_preset, request_from_preset
from trt_tui.core.errors import UserError
from trt_tui.core.preset import Preset, load_preset
from trt_tui.core.resources import demo_model_path, demo_preset_path


@pytest.fixture
def preset_file(tmp_path):
    """The demo preset next to a copy of its model, written with a relative model path."""
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


def test_file_request_snapshots_the_file_text(preset_file):
    request = request_from_preset(preset_file, "emulate", default_backends())
    assert request.preset_text == preset_file.read_text() and not request.unsaved_edits
    assert request.preset_path == str(preset_file) and request.settings["precision"] == "fp16"


def test_edited_request_builds_the_object_and_snapshots_it_self_contained(preset_file, tmp_path, monkeypatch):
    preset = load_preset(preset_file)
    preset.precision.mode = "bf16"  # not saved: the file still says fp16
    monkeypatch.chdir(tmp_path.parent)  # relative paths resolve against the preset's directory, not the cwd
    request = request_from_edited_preset(preset, "emulate", default_backends())
    assert request.unsaved_edits and request.preset_path == str(preset_file)
    assert request.settings["precision"] == "bf16" and request.label == "demo-fp16-good"
    assert request.model_path == str(tmp_path / demo_model_path().name)
    assert 'mode = "fp16"' in preset_file.read_text() and preset.model == demo_model_path().name  # untouched

    # The snapshot read back from anywhere resolves to the same model, precision and engine.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "preset.toml").write_text(request.preset_text)
    snap = load_preset(elsewhere / "preset.toml")
    assert request.preset_text.startswith(f"# Snapshot of unsaved edits ({preset_file})")
    assert snap.model_path == tmp_path / demo_model_path().name and snap.precision.mode == "bf16"
    assert snap.builder.engine == request.settings["engine_path"] == str(tmp_path / "demo.plan")
    assert snap.pins == preset.pins and snap.profiles == preset.profiles


def test_never_saved_preset_resolves_against_the_working_directory(preset_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preset = Preset(model=demo_model_path().name)
    request = request_from_edited_preset(preset, "emulate", default_backends())
    assert request.preset_path == "" and request.unsaved_edits
    assert request.model_path == str(tmp_path / demo_model_path().name)
    assert "a preset never saved" in request.preset_text.splitlines()[0]


def test_invalid_edits_are_one_user_error(preset_file):
    preset = load_preset(preset_file)
    preset.precision.mode = "fp8"
    with pytest.raises(UserError, match="precision.mode"):
        request_from_edited_preset(preset, "emulate", default_backends())
    preset.precision.mode = "fp16"
    preset.model = "missing.onnx"
    with pytest.raises(UserError, match="missing.onnx"):
        request_from_edited_preset(preset, "emulate", default_backends())


def test_manager_keeps_the_snapshot_of_the_edits(preset_file, tmp_path):
    preset = load_preset(preset_file)
    preset.builder.optimization_level = 2
    backends = default_backends()
    manager = JobManager(tmp_path / "state", backends=backends, kill_grace_s=0.5)
    try:
        job = manager.submit(request_from_edited_preset(preset, "emulate", backends))
        kept = load_preset(f"{job.build_dir}/preset.toml")
        assert kept.builder.optimization_level == 2 and kept.model_path == preset.model_path
        manager.cancel(job.id)
    finally:
        manager.close()
