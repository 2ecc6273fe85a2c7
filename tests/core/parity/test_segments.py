import numpy as np
import onnx
from onnx import TensorProto, helper
from polygraphy import constants
from polygraphy.backend.onnx import ModifyOutputs

from trt_tui.core.parity.segments import SegmentedExecutor, SegmentPlan, ort_runner


def _full_run(model, feed):
    runner = ort_runner(ModifyOutputs(model, outputs=constants.MARK_ALL)().SerializeToString())
    with runner:
        return dict(runner.infer(feed))


def _segmented(model, feed, batches):
    executor = SegmentedExecutor(SegmentPlan(model, batches), [feed])
    got = {}
    for k in range(len(batches)):
        with executor.open(k) as seg:
            got.update(seg.run(0))
    return got, executor


def test_segments_reproduce_a_full_run_exactly(pair):
    model = onnx.load(pair[0])
    feed = {"x": np.random.default_rng(0).random((2, 8, 32), dtype=np.float32)}
    names = [t for n in model.graph.node for t in n.output]
    full = _full_run(model, feed)
    for n_batches in (1, 3, len(names)):
        batches = [list(b) for b in np.array_split(np.array(names, dtype=object), n_batches)]
        got, executor = _segmented(model, feed, batches)
        assert set(got) == set(names)
        for t in names:
            np.testing.assert_array_equal(got[t], full[t], err_msg=t)
        # nothing but the graph input stays alive once every batch has run
        assert set(executor.live[0]) == {"x"}


def test_multi_output_node_and_out_of_order_graph():
    # Split's second output is asked for in a later batch than its first; nodes are stored out of order.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [
        helper.make_node("Add", ["b", "a"], ["y"], name="add"),
        helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=0, num_outputs=2),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    feed = {"x": np.arange(4, dtype=np.float32)}
    got, _ = _segmented(model, feed, [["a"], ["y"], ["b"]])
    np.testing.assert_array_equal(got["a"], [0, 1])
    np.testing.assert_array_equal(got["b"], [2, 3])
    np.testing.assert_array_equal(got["y"], [2, 4])
