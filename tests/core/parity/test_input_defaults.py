"""Issue 11 item 9: inputs a user would have to guess: the defaults are said and settable, lengths and ids valid."""

from __future__ import annotations

import onnx
import pytest

from trt_tui.cli import main
from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.parity.inputs import InputSpec, parse_dim_flag, random_feeds
from trt_tui.core.preset import load_preset, resolve_preset

from tests.fixtures.parity_models import unnamed_dims_and_ids


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "ids.onnx"
    onnx.save(unnamed_dims_and_ids(), path)
    return path


def test_defaults_are_announced_with_the_flag_that_sets_them(model):
    warnings: list[str] = []
    feed = random_feeds(load_graph(model), InputSpec(), warnings)[0]
    text = "\n".join(warnings)
    assert "unnamed dynamic axis 0 of 'x' (input(s) x) set to 1: set it with --dim x:0=N" in text
    assert "dynamic dim 'n_tokens' (input(s) token_ids) set to 1: set it with --dim n_tokens=N" in text
    assert "'token_ids' looks like ids: drawn from [0, 50) (the rows of embedding table 'table')" in text
    assert "'x_len' looks like a length: set to 1 (axis 0 of 'x')" in text
    assert feed["x"].shape == (1, 8)


def test_dim_sets_unnamed_axes_and_ids_stay_in_the_vocab(model):
    index = load_graph(model)
    feed = random_feeds(index, InputSpec(dims={"x:0": 5, "n_tokens": 300}), [])[0]
    assert feed["x"].shape == (5, 8) and feed["x_len"].tolist() == [5]  # the length of x's only dynamic axis
    assert feed["token_ids"].shape == (300,) and 0 <= feed["token_ids"].min() and feed["token_ids"].max() < 50
    assert len(set(feed["token_ids"].tolist())) > 10  # valid ids, not Polygraphy's 0/1
    with pytest.raises(UserError, match="no such dynamic dim"):
        random_feeds(index, InputSpec(dims={"x:1": 3}), [])
    assert parse_dim_flag("x:0=2,4,8") == ("x:0", (2, 4, 8))


def test_compare_takes_dim_for_unnamed_axes(model, capsys):
    assert main(["compare", str(model), "--dim", "x:0=3", "--dim", "n_tokens=4", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "set to 1" not in out and "looks like ids" in out


def test_preset_new_dim_and_shape(model, demo_model, tmp_path):
    out = tmp_path / "p.toml"
    assert main(["preset", "new", str(model), "-o", str(out), "--dim", "x:0=1,4,8", "--dim", "n_tokens=1,16,64",
                 "--atol", "0.01", "--check-error-stat", "max"]) == 0  # fmt: skip
    preset = load_preset(out)
    assert preset.comparison.default.atol == 0.01 and preset.comparison.default.stat == "max"
    assert preset.comparison.default.rtol == 5e-3  # the fp16 default
    resolved = resolve_preset(preset)
    assert resolved.profiles[0]["x"] == ((1, 8), (4, 8), (8, 8))
    assert resolved.profiles[0]["token_ids"] == ((1,), (16,), (64,))
    out2 = tmp_path / "d.toml"
    assert main(["preset", "new", str(demo_model), "-o", str(out2), "--shape", "audio_signal:1x32x8/2x32x8/4x32x8"]) == 0
    assert resolve_preset(load_preset(out2)).profiles[0]["audio_signal"] == ((1, 32, 8), (2, 32, 8), (4, 32, 8))


def test_preset_new_refuses_a_bad_unnamed_axis(model, tmp_path, capsys):
    assert main(["preset", "new", str(model), "-o", str(tmp_path / "p.toml"), "--dim", "x:1=4"]) == 2
    assert "not an unnamed dynamic axis" in capsys.readouterr().err


def test_a_cache_length_is_the_extent_of_the_caches_time_axis(demo_model):
    """cache_last_channel is [layers=2, B, time=16, d_model=64]: its length is 16 (the axis the graph appends
    frames along), not 2 (the smallest axis, the layer count)."""
    warnings: list[str] = []
    feed = random_feeds(load_graph(demo_model), InputSpec(), warnings)[0]
    assert feed["cache_last_channel_len"].tolist() == [16] and feed["length"].tolist() == [8]
    assert any("'cache_last_channel_len' looks like a length: set to 16 (axis 2 of 'cache_last_channel'" in w for w in warnings)
