import copy

from trt_tui.core.pins import PinRules
from trt_tui.core.preset import PresetChange, Profile, diff_pinned_nodes, diff_presets, load_preset

from .conftest import PRESETS


def test_same_preset_has_no_changes_and_no_pinned_difference():
    a = load_preset(PRESETS / "demo_fp16.toml")
    assert diff_presets(a, copy.deepcopy(a)) == []
    pins = diff_pinned_nodes(a, copy.deepcopy(a))
    assert pins is not None and not pins and pins.to_json() == {"only_a": [], "only_b": []}


def test_changed_added_and_removed_keys_in_document_order():
    a = load_preset(PRESETS / "demo_fp16.toml")
    b = copy.deepcopy(a)
    b.precision.mode = "bf16"
    b.precision.constraints = None  # removed
    b.builder.timing_cache = "cache.bin"  # added
    changes = {c.key_path: c for c in diff_presets(a, b)}
    assert list(changes) == ["precision.mode", "precision.constraints", "builder.timing_cache"]
    assert changes["precision.mode"] == PresetChange("precision.mode", "fp16", "bf16")
    assert [c.kind for c in changes.values()] == ["changed", "removed", "added"]
    assert changes["precision.mode"].one_line("A", "B") == "precision.mode: 'fp16' -> 'bf16'"
    assert changes["precision.constraints"].one_line("A", "B") == "precision.constraints: only in A: 'obey'"
    assert changes["builder.timing_cache"].one_line("A", "B") == "builder.timing_cache: only in B: 'cache.bin'"
    assert changes["precision.mode"].to_json() == {"key": "precision.mode", "a": "fp16", "b": "bf16"}


def test_profiles_are_compared_entry_by_entry():
    a = load_preset(PRESETS / "demo_fp16.toml")
    b = copy.deepcopy(a)
    b.profiles[0].batch += 1
    b.profiles.append(Profile(name="extra", batch=2))
    keys = [c.key_path for c in diff_presets(a, b)]
    assert keys[0] == "profiles[0].batch"
    assert {"profiles[1].name", "profiles[1].batch"} <= set(keys)


def test_same_model_written_relative_to_another_directory_is_no_change(tmp_path):
    a = load_preset(PRESETS / "demo_fp16.toml")
    b = copy.deepcopy(a)
    b.path = tmp_path / "b.toml"
    b.model = str(a.model_path.resolve())
    assert diff_presets(a, b) == []
    b.model = "elsewhere.onnx"
    assert "model" in [c.key_path for c in diff_presets(a, b)]


def test_pinned_nodes_only_in_one_preset(tmp_path):
    a = load_preset(PRESETS / "demo_fp16.toml")
    b = copy.deepcopy(a)
    b.pins = PinRules(op_types=("Softmax",))
    pins = diff_pinned_nodes(a, b)
    assert pins and pins.only_b == ()
    assert any("LayerNormalization" in n for n in pins.only_a) and "/decoder/LogSoftmax" in pins.only_a
    b.model = str(tmp_path / "missing.onnx")  # does not resolve: unknown, not "nothing pinned"
    assert diff_pinned_nodes(a, b) is None
