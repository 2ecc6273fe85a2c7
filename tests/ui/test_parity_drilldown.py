"""The parity drill-down shows the |diff| histogram and the worst elements with indices and both values."""

import io
import re

import numpy as np
from rich.console import Console
from textual.widgets import Static

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.parity.engine import BatchUpdate
from trt_tui.core.parity.metrics import Tolerance, merge_iterations, tensor_drift
from trt_tui.ui.messages import ParityBatch
from trt_tui.ui.widgets.drift_details import DriftDetails
from trt_tui.ui.widgets.drift_table import DriftTable


def _shown(details: DriftDetails) -> str:
    """The drill-down's content as plain text, laid out at the panel's width on screen."""
    console = Console(width=details.scrollable_content_region.width, record=True, file=io.StringIO())
    console.print(details.query_one("#drift-body", Static).content)
    return console.export_text()


async def test_drill_down_shows_histogram_and_worst_elements(demo_model, tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 16)).astype(np.float32)
    cand = ref + rng.standard_normal(ref.shape).astype(np.float32) * 1e-4
    cand[2, 5] = ref[2, 5] + 0.5  # the one clear outlier
    cand[0, :4] = ref[0, :4]  # exact zeros
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        node = app.workspace.index.nodes[3]
        iterations = [tensor_drift(node.outputs[0], ref, c, Tolerance(atol=1e-3, rtol=1e-3)) for c in (ref + 1e-6, cand)]
        d = merge_iterations(iterations)
        d.node, d.op_type, d.topo_index = node.name, node.op_type, node.topo_index
        app.screen.post_message(ParityBatch(BatchUpdate(0, 1, [d], 1, 1, 0.0)))
        await pilot.pause()
        table = app.screen.query_one(DriftTable)
        table.move_to_key(d.name)
        await pilot.pause()
        details = app.screen.query_one(DriftDetails)
        assert details.drift is d
        text = _shown(details)
        assert "|diff| histogram (2 × 64 elements)" in text
        zeros = d.histogram["0"]
        assert re.search(rf"\b0 +{zeros} +█", text)  # the exact-zero bucket with its bar
        assert re.search(r"1e-1\.\.1e0 +1 +█", text)  # the outlier's decade
        # worst elements: iteration, index, reference, candidate, |diff|; the outlier first
        assert "worst elements" in text and "reference" in text and "candidate" in text
        e = d.worst[0]
        assert (e["index"], e["iteration"]) == ([2, 5], 1)
        assert re.search(rf"1 +\[2,5\] +{e['ref']:.6g} +{e['cand']:.6g} +0\.5\b", text)
