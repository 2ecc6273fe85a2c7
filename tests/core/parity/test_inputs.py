import numpy as np
import pytest
from polygraphy.json import save_json

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.parity.inputs import InputSpec, load_feeds, parse_shape, random_feeds


def test_random_feeds_seeded_ranges_and_int_inputs(models):
    index = load_graph(models["int64_input"])
    warnings = []
    spec = InputSpec(seed=7, iterations=2, dims={"seq": 5}, ranges={"token_ids": (0, 99)})
    feeds = random_feeds(index, spec, warnings)
    assert len(feeds) == 2 and feeds[0]["token_ids"].shape == (1, 5)
    assert feeds[0]["token_ids"].dtype == np.int64 and 0 <= feeds[0]["token_ids"].min() and feeds[0]["token_ids"].max() <= 99
    assert not np.array_equal(feeds[0]["token_ids"], feeds[1]["token_ids"])
    assert any("batch" in w for w in warnings)  # the unnamed dynamic dim defaulted to 1, and it says so
    again = random_feeds(index, spec)
    np.testing.assert_array_equal(again[1]["token_ids"], feeds[1]["token_ids"])


def test_shapes_and_bad_names(models):
    index = load_graph(models["transformer"])
    feeds = random_feeds(index, InputSpec(shapes={"x": (2, 3, 64)}, ranges={"": (-1, 1)}))
    assert feeds[0]["x"].shape == (2, 3, 64) and feeds[0]["x"].min() < 0
    with pytest.raises(UserError, match="no model input named 'y'"):
        random_feeds(index, InputSpec(shapes={"y": (1,)}))
    with pytest.raises(UserError, match="does not fit"):
        random_feeds(index, InputSpec(shapes={"x": (2, 3, 65)}))
    assert parse_shape("1x64x256") == (1, 64, 256)
    with pytest.raises(UserError):
        parse_shape("1xbig")


def test_load_feeds_npz_and_polygraphy_json(models, tmp_path):
    index = load_graph(models["transformer"])
    x = np.ones((1, 4, 64), np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    save_json([{"x": x}, {"x": x * 2}], str(tmp_path / "in.json"))
    assert load_feeds(tmp_path / "in.npz", index)[0]["x"].shape == (1, 4, 64)
    assert [f["x"][0, 0, 0] for f in load_feeds(tmp_path / "in.json", index)] == [1, 2]
    np.savez(tmp_path / "wrong.npz", X=x)
    with pytest.raises(UserError, match="exact name"):
        load_feeds(tmp_path / "wrong.npz", index)


def test_a_feed_of_another_dtype_or_shape_is_refused_naming_the_file(models, tmp_path):
    """A float64 array or a wrong fixed dim reached ONNX Runtime, whose refusal named neither the file nor
    the input's expected type ('Unexpected input data type', 'Type Error ... tensor(double)')."""
    index = load_graph(models["transformer"])  # x: float32, shape [batch?, seq?, 64]
    np.savez(tmp_path / "f64.npz", x=np.ones((1, 4, 64)))
    with pytest.raises(UserError, match=r"f64\.npz: iteration 0: input 'x' is float64, the model takes float32"):
        load_feeds(tmp_path / "f64.npz", index)
    np.savez(tmp_path / "dim.npz", x=np.ones((1, 4, 63), np.float32))
    with pytest.raises(UserError, match=r"dim\.npz: .*'x' has shape 1x4x63.*axis 2 must be 64"):
        load_feeds(tmp_path / "dim.npz", index)
    np.savez(tmp_path / "rank.npz", x=np.ones((4, 64), np.float32))
    with pytest.raises(UserError, match=r"rank\.npz: .*has shape 4x64.*rank 3"):
        load_feeds(tmp_path / "rank.npz", index)
    np.savez(tmp_path / "ok.npz", x=np.ones((3, 7, 64), np.float32))  # symbolic dims take any size
    assert load_feeds(tmp_path / "ok.npz", index)[0]["x"].shape == (3, 7, 64)


def test_a_declared_scalar_takes_what_onnx_runtime_takes(tmp_path):
    """ONNX Runtime checks no shape against an input declared rank 0 ([]): a 1-element array fed to it ran in
    search and compare (a scale, a step count exported as a 0-d tensor), and must not be refused on load."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Mul", ["x", "s"], ["y"], name="mul")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    index = load_graph(tmp_path / "m.onnx")
    np.savez(tmp_path / "one.npz", x=np.ones((1, 4), np.float32), s=np.array([0.5], np.float32))
    assert load_feeds(tmp_path / "one.npz", index)[0]["s"].shape == (1,)
    np.savez(tmp_path / "f64.npz", x=np.ones((1, 4), np.float32), s=np.array(0.5))  # the dtype is still checked
    with pytest.raises(UserError, match="'s' is float64, the model takes float32"):
        load_feeds(tmp_path / "f64.npz", index)


def test_random_feeds_imports_no_polygraphy_module_once_prepared():
    """A comparison draws its feeds on a thread while the candidate is set up on another. Polygraphy's
    @mod.export calls inspect.getmodule, whose caches race when two threads import Polygraphy modules at once:
    a comparison's child failed under load with "'NoneType' object has no attribute '__all__'". After
    import_for_random_feeds (which the comparison calls first, on its own thread) the feeds import none."""
    import subprocess
    import sys

    def polygraphy_imported_by_random_feeds(prepared: bool) -> str:
        script = (
            "import sys\n"
            "from trt_tui.core.graph import load_graph\n"
            "from trt_tui.core.resources import demo_model_path\n"
            "from trt_tui.core.parity.inputs import InputSpec, import_for_random_feeds, random_feeds\n"
            "index = load_graph(demo_model_path())\n"
            f"{'import_for_random_feeds()' if prepared else 'pass'}\n"
            "before = set(sys.modules)\n"
            "random_feeds(index, InputSpec(), [])\n"
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('polygraphy')))\n"
        )
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()

    assert "polygraphy.comparator" in polygraphy_imported_by_random_feeds(False)  # what the thread imported
    assert polygraphy_imported_by_random_feeds(True) == "[]"
