import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.pins import PinRules, resolve_pins
from trt_tui.core.selection import NodeFilter, PinSelection, scopes_of


@pytest.fixture(scope="module")
def index(demo_model):
    return load_graph(demo_model)


def _ln(index):
    return [n.name for n in index.nodes if n.op_type == "LayerNormalization"]


def test_filter_by_text_op_and_scope(index):
    all_ln = NodeFilter(op_type="layernormalization").apply(index)
    assert len(all_ln) == 10
    assert NodeFilter(text="softmax").apply(index)  # smart case: lower-case text ignores case
    assert not NodeFilter(text="softmax$", op_type="Add").apply(index)
    scope = all_ln[0].scope
    in_scope = NodeFilter(scope=scope).apply(index)
    assert in_scope and all(n.scope.startswith(scope) for n in in_scope)
    assert scope in scopes_of(index)
    with pytest.raises(UserError, match="bad regular expression"):
        NodeFilter(text="(").apply(index)


def test_pin_op_then_unpin_one_node_adds_an_exclusion(index):
    sel = PinSelection(index)
    changed = sel.pin_op("LayerNormalization")
    assert changed == set(_ln(index)) and len(sel) == 10
    first = _ln(index)[0]
    assert sel.reasons(first) == ["op:LayerNormalization"]
    assert sel.toggle_node(first) == {first}
    assert not sel.is_pinned(first) and first in sel.rules.exclude
    assert sel.toggle_node(first) == {first}
    assert sel.is_pinned(first) and first not in sel.rules.exclude
    # the rules alone reproduce the selection (what a preset stores)
    assert set(resolve_pins(index, sel.rules).nodes) == sel.pinned


def test_toggle_op_and_filter_rules(index):
    sel = PinSelection(index)
    sel.toggle_op("Softmax")
    assert sel.op_fully_pinned("Softmax")
    sel.toggle_op("Softmax")
    assert len(sel) == 0 and sel.rules == PinRules()
    sel.pin_filter(NodeFilter(text="softmax"))
    assert sel.rules.patterns == ("(?i)softmax",) and len(sel) >= 3
    sel.unpin_filter(NodeFilter(text="softmax"))
    assert len(sel) == 0
    sel.pin_filter(NodeFilter(op_type="Softmax"))
    assert sel.rules.op_types == ("Softmax",)
    scope = index.nodes[0].scope
    sel.clear()
    sel.pin_filter(NodeFilter(scope=scope, op_type="Add"))
    assert sel.rules.names and all(index.node(n).op_type == "Add" for n in sel.pinned)


def test_pin_node_hidden_by_regex_exclusion(index):
    ln = _ln(index)
    sel = PinSelection(index, PinRules(op_types=("LayerNormalization",), exclude=("LayerNorm",)))
    assert len(sel) == 0
    sel.pin_nodes([ln[0]])
    assert sel.is_pinned(ln[0])
