import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.pins import PinRules, resolve_pins


def test_op_types_patterns_names_and_exclusions(demo_model):
    g = load_graph(demo_model)
    res = resolve_pins(g, PinRules(op_types=("LayerNormalization", "Softmax", "LogSoftmax")))
    assert len(res.nodes) == 13
    assert [g.node(n).topo_index for n in res.nodes] == sorted(g.node(n).topo_index for n in res.nodes)
    res = resolve_pins(
        g,
        PinRules(op_types=("Softmax",), patterns=("layers\\.1/.*LayerNorm",), exclude=("/encoder/layers.0/self_attn/Softmax",)),
    )
    assert "/encoder/layers.0/self_attn/Softmax" not in res.nodes
    assert "/encoder/layers.1/self_attn/Softmax" in res.nodes
    assert len([n for n in res.nodes if "LayerNorm" in n]) == 5


def test_unknown_names_get_suggestions(demo_model):
    g = load_graph(demo_model)
    res = resolve_pins(g, PinRules(names=("/encoder/layers.0/self_attn/Softmx",), op_types=("Sofmax",)))
    assert res.unknown_names[0].suggestions[0] == "/encoder/layers.0/self_attn/Softmax"
    assert "op:Sofmax" in res.unmatched_rules
    with pytest.raises(UserError, match="did you mean"):
        res.raise_for_unknown("preset.toml")


def test_non_float_pins_reported(demo_model):
    g = load_graph(demo_model)
    res = resolve_pins(g, PinRules(op_types=("Less", "Softmax")))
    assert res.non_float == ["/encoder/att_mask/Less"]


def test_bad_regex(demo_model):
    g = load_graph(demo_model)
    with pytest.raises(UserError, match="bad regular expression"):
        resolve_pins(g, PinRules(patterns=("[",)))
