import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.parity.metrics import Tolerance
from trt_tui.core.preset import Preset, Profile, load_preset, save_preset
from trt_tui.core.preset.toml_io import preset_to_dict
from trt_tui.core.resources import demo_model_path, demo_preset_path

from .conftest import PRESETS


def test_shipped_presets_load_and_point_at_the_demo_model():
    for name in ("demo_fp16.toml", "demo_bf16.toml", "demo_fp32_streaming.toml"):
        preset = load_preset(PRESETS / name)
        assert preset.model_path.resolve() == demo_model_path().resolve()
        assert preset.unknown_keys == []
    packaged = load_preset(demo_preset_path())
    assert packaged.model_path.resolve() == demo_model_path().resolve()
    shipped = load_preset(PRESETS / "demo_fp16.toml")
    assert (packaged.precision, packaged.pins, packaged.profiles) == (shipped.precision, shipped.pins, shipped.profiles)


def test_schema_values(write_preset):
    path = write_preset(
        """
        model = "m.onnx"
        trt = 11
        [precision]
        mode = "bf16"
        [pins]
        op_types = ["Softmax"]
        match = ["layers\\\\.1/"]
        names = ["/a"]
        exclude = ["/b"]
        [io.inputs]
        x = "chw"
        [[profiles]]
        name = "first"
        batch = 4
        dims = { T = [1, 2, 3], S = 5 }
        [profiles.shapes.x]
        min = [1, 2]
        opt = [1, 2]
        max = [1, 2]
        [builder]
        memory_pools = { workspace = 1024 }
        [comparison.default]
        atol = 1e-3
        stat = "quantile"
        quantile = 0.9
        [[comparison.outputs]]
        pattern = "^cache_"
        rtol = 0.5
        """
    )
    p = load_preset(path)
    assert p.trt == 11 and p.precision.mode == "bf16" and p.precision.constraints is None
    assert p.pins.patterns == ("layers\\.1/",) and p.pins.exclude == ("/b",)
    assert p.io.inputs == {"x": "chw"}
    assert p.profiles == [Profile("first", 4, None, {"T": (1, 2, 3), "S": (5, 5, 5)}, {"x": {"min": (1, 2), "opt": (1, 2), "max": (1, 2)}})]
    assert p.builder.memory_pools == {"workspace": 1024}
    policy = p.tolerance_policy()
    assert policy.default == Tolerance(atol=1e-3, rtol=1e-5, stat="quantile", quantile=0.9)
    # per-output rules inherit what they do not set from the default
    assert policy.for_tensor("cache_last_time_next") == Tolerance(atol=1e-3, rtol=0.5, stat="quantile", quantile=0.9)
    assert p.model_path == path.parent / "m.onnx"


def test_malformed_toml_is_one_line_with_line_and_column(write_preset):
    path = write_preset('model = "m.onnx"\n[precision]\nmode = \n')
    with pytest.raises(UserError) as exc:
        load_preset(path)
    line = exc.value.one_line()
    assert line.startswith(f"{path}:3:8: invalid TOML") and "\n" not in line


@pytest.mark.parametrize(
    "text, message",
    [
        ('model = "m.onnx"\n[[profiles]]\nbatch = "sixty"\n', "profiles[0].batch: expected an integer, got 'sixty'"),
        ('model = "m.onnx"\n[precision]\ntf32 = 1\n', "precision.tf32: expected true or false"),
        ('model = "m.onnx"\n[pins]\nop_types = "Softmax"\n', "pins.op_types: expected a list of strings"),
        ('model = "m.onnx"\n[[profiles]]\n[profiles.shapes.x]\nmin = [1]\nmax = [1]\n', "missing opt"),
        ('model = "m.onnx"\n[comparison.default]\nstat = "p99"\n', "error statistic must be one of"),
        ('name = "x"\n', "model: missing"),
        ('schema = 9\nmodel = "m.onnx"\n', "schema 9 is not supported"),
    ],
)
def test_type_errors_name_the_key(write_preset, text, message):
    with pytest.raises(UserError, match=message.replace("[", "\\[").replace("]", "\\]")):
        load_preset(write_preset(text))


def test_unknown_keys_are_kept_for_validation(write_preset):
    p = load_preset(write_preset('model = "m.onnx"\ncolour = 1\n[builder]\noptimisation_level = 3\n'))
    assert p.unknown_keys == ["builder.optimisation_level", "colour"]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_preset(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="is a directory"):
        load_preset(tmp_path)


def test_save_round_trips_and_never_clobbers(tmp_path):
    original = load_preset(PRESETS / "demo_fp16.toml")
    target = tmp_path / "sub" / "copy.toml"
    save_preset(original, target)
    again = load_preset(target)
    # the relative model path was rebased onto the new directory: it still names the demo model
    assert again.model_path.resolve() == demo_model_path().resolve()
    assert preset_to_dict(again) == preset_to_dict(original)
    text = target.read_text()
    assert "[[profiles]]" in text and 'op_types = ["LayerNormalization", "Softmax", "LogSoftmax"]' in text
    with pytest.raises(UserError, match="already exists"):
        save_preset(again, target)
    again.description = "changed"
    save_preset(again, target, overwrite=True)
    assert load_preset(target).description == "changed"


def test_written_toml_round_trips_odd_keys(tmp_path):
    p = Preset(model="m.onnx", profiles=[Profile("x", 2, "B", {"B": (1, 2, 3), "my dim": (4, 4, 4)}, {"a b": {"min": (1,), "opt": (2,), "max": (3,)}})])
    p.builder.memory_pools = {"workspace": 1024}
    again = load_preset(save_preset(p, tmp_path / "p.toml"))
    assert again.profiles == p.profiles and again.builder.memory_pools == {"workspace": 1024}
    assert 'dims = { B = [1, 2, 3], "my dim" = 4 }' in (tmp_path / "p.toml").read_text()


def test_unset_ten_only_options_are_not_written(tmp_path):
    p = Preset(model="m.onnx", trt=11)
    text = save_preset(p, tmp_path / "p.toml").read_text()
    assert "constraints" not in text and "strongly_typed" not in text and "force_low_precision" not in text
    assert load_preset(tmp_path / "p.toml").precision.constraints is None


def test_snapshot_toml_makes_relative_paths_absolute(tmp_path):
    from trt_tui.core.preset.toml_io import snapshot_toml

    preset = Preset(model="m.onnx", path=tmp_path / "sub" / "p.toml")
    preset.builder.timing_cache = "cache.bin"
    preset.builder.engine = "/abs/e.plan"
    preset.comparison.input_data = "inputs.json"
    (tmp_path / "elsewhere.toml").write_text(snapshot_toml(preset))
    snap = load_preset(tmp_path / "elsewhere.toml")
    sub = (tmp_path / "sub").absolute().as_posix()
    assert snap.model == f"{sub}/m.onnx" and snap.builder.timing_cache == f"{sub}/cache.bin"
    assert snap.builder.engine == "/abs/e.plan" and snap.comparison.input_data == f"{sub}/inputs.json"
    assert preset.model == "m.onnx"  # the object itself is left alone


def test_infinities_compare_equal_round_trips_and_is_written_only_when_on(tmp_path):
    preset = load_preset(demo_preset_path())
    assert not preset.comparison.infinities_compare_equal
    assert "infinities_compare_equal" not in preset_to_dict(preset)["comparison"]  # off: the default, unwritten
    preset.comparison.infinities_compare_equal = True
    path = save_preset(preset, tmp_path / "inf.toml")
    assert "infinities_compare_equal = true" in path.read_text()
    again = load_preset(path)
    assert again.comparison.infinities_compare_equal
    policy = again.comparison.tolerance_policy()
    assert policy.default.infinities_equal and all(t.infinities_equal for _, t in policy.rules)
    assert not again.comparison.default.infinities_equal  # the switch is the comparison's, stamped on use


def test_infinities_switch_on_the_trtexec_accuracy_route_is_a_warning():
    from trt_tui.core.preset import validate_preset

    preset = load_preset(demo_preset_path())
    preset.comparison.infinities_compare_equal = True
    assert not [p for p in validate_preset(preset) if "infinities" in p.one_line()]
    preset.trt, preset.trt_minor = 11, 1
    [problem] = [p for p in validate_preset(preset) if "infinities" in p.one_line()]
    assert not problem.is_error and "--loadRefOutputs" in problem.one_line()
