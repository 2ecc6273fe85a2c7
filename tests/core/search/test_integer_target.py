"""A target that checks only integer outputs is met by any set that keeps them: search says so in one line."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.core.search.session import prepare_search


def _classifier(tmp_path):
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"], name="mm"),
         helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("label", TensorProto.INT64, [2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [16, 4], np.random.default_rng(0).normal(size=64))],
    )  # fmt: skip
    path = tmp_path / "cls.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_target_on_the_label_alone_is_worth_a_warning(tmp_path):
    path = _classifier(tmp_path)
    job = prepare_search(path, targets=["label:max_abs<=0"])
    try:
        (w,) = [w for w in job.warnings if "integer" in w]
        assert "'label' (int64)" in w and "'logits'" in w
    finally:
        job.evaluator.close()


def test_integer_outputs_beside_float_ones_need_no_word(tmp_path):
    path = _classifier(tmp_path)
    for targets in (["rel_rms<=1e-3"], ["logits:rel_rms<=1e-3", "label:max_abs<=0"]):
        job = prepare_search(path, targets=targets)
        try:
            assert not [w for w in job.warnings if "integer" in w]
        finally:
            job.evaluator.close()
