"""The spine: post-dominators of the float graph and the blocks whose gains the sensitivity pass measures whole."""

from __future__ import annotations

import itertools
import math

import numpy as np
import onnx
from onnx import TensorProto

from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.parity.inputs import InputSpec, random_feeds
from trt_tui.core.precision.plan import make_plan
from trt_tui.core.search.sensitivity import rank_nodes
from trt_tui.core.search.spine import post_dominators, spine_blocks


def residual_model(cancel: bool = False):
    """x -> a = x*2 -> r = a + relu(a) -> y = sigmoid(r); z = tanh(a) is a second output. `cancel`: the
    branch is -0.9 a instead (r = 0.1 a: the two paths' errors cancel as LayerNorm's x - mean(x) do)."""
    g = GraphBuilder("residual", seed=1)
    x = g.input("x", TensorProto.FLOAT, [4, 8])
    a = g.op("Mul", [x, g.const(np.float32(2.0))], name="scale")
    b = a if cancel else g.op("Relu", [a], name="relu")
    b = g.op("Mul", [b, g.const(np.float32(-0.9 if cancel else 1.0))], name="branch_scale")
    r = g.op("Add", [a, b], name="residual")
    g.output(g.op("Sigmoid", [r], name="sigmoid"), "y", TensorProto.FLOAT, [4, 8])
    g.output(g.op("Tanh", [a], name="tanh"), "z", TensorProto.FLOAT, [4, 8])
    return g.build()


def _names(plan):
    nodes = list(plan.model.graph.node)
    by_name = {n.name: n for n in nodes}
    return nodes, lambda name: by_name[name].output[0]


def test_post_dominators_follow_every_path_to_the_checked_outputs():
    plan = make_plan(residual_model(), "fp16", [], round_all=True)
    nodes, out = _names(plan)
    a, r = out("scale"), out("residual")
    pdom = post_dominators(plan, nodes, {"y"})
    assert pdom["x"] == a and pdom[a] == r  # the branch and the trunk meet again at the residual Add
    assert pdom[out("relu")] == out("branch_scale") and pdom[out("branch_scale")] == r
    assert pdom[r] == out("sigmoid") and pdom[out("sigmoid")] == "y" and pdom["y"] == ""  # then the sink
    both = post_dominators(plan, nodes, {"y", "z"})
    assert both[a] == ""  # a reaches two checked outputs by separate ways: only the sink post-dominates it
    assert "z" not in pdom  # reaches no checked output


def test_spine_blocks_cover_the_nodes_between_articulation_tensors():
    plan = make_plan(residual_model(), "fp16", [], round_all=True)
    nodes, out = _names(plan)
    blocks = spine_blocks(plan, nodes, {"y"})
    chain = ["x", out("scale"), out("residual"), out("sigmoid"), "y"]
    assert [(s, b.end) for s, b in blocks.items()] == list(itertools.pairwise(chain))
    middle = blocks[out("scale")]
    assert [nodes[i].name for i in middle.nodes] == ["relu", "branch_scale", "residual"]
    assert out("scale") not in spine_blocks(plan, nodes, {"y"}, max_nodes=2)  # too big: left to the chained gains


def test_the_block_gain_replaces_the_chained_one(tmp_path):
    """r = a - 0.9 a: each path alone turns a's error into 9-10x r's relative error, and chained in quadrature
    they gave a a gain of ~13x r's; together they cancel (r's relative error is a's): measured whole, ~1x."""
    model = residual_model(cancel=True)
    path = tmp_path / "residual.onnx"
    onnx.save(model, path)
    feeds = random_feeds(load_graph(path), InputSpec(seed=2, iterations=1), [])
    ranking = rank_nodes(model, "fp16", feeds, ["y"])
    g_a, g_r = ranking.gain["scale"], ranking.gain["residual"]
    assert math.isfinite(g_a) and 0.8 * g_r <= g_a <= 1.25 * g_r, (g_a, g_r)
