"""Each corpus finding reduced to a tiny model (finding_models.py), run through the same CLI route and checks as
the corpus test: fast regression tests that need no download. Open findings are xfail(strict=False)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.corpus.finding_models import FINDING_MODELS
from tests.corpus.known_failures import F7_ORT_CRASH
from tests.corpus.test_corpus import routes

# (fixture, route, manifest-like entry fields, open finding or None)
CASES = [
    ("F1_scalar_pow_concat", "convert fp16", {}, None),
    ("F1_scalar_pow_concat", "emulate bf16", {}, None),
    ("F1_scalar_pow_concat", "compare fp16", {}, None),
    ("F2_conv_opset11", "convert bf16", {}, None),
    ("F2_conv_opset11", "emulate bf16", {}, None),
    ("F2_conv_opset11", "compare bf16", {}, None),
    ("F3_where_opset13", "convert bf16", {}, None),
    ("F4_if_subgraph", "emulate fp16", {"ranges": {"sr": [16000, 16000]}}, None),
    ("F4_if_subgraph", "compare fp16", {"ranges": {"sr": [16000, 16000]}}, None),
    ("F5_vad_lstm_state", "contract init", {"stateful": True, "contract": {"state": {"hn": "h", "cn": "c"}}}, None),
    ("F7_pinned_gru", "convert fp16", {"pins": ["GRU"]}, F7_ORT_CRASH),
    ("F8_stale_output_rank", "convert bf16", {}, None),
]


def _params():
    for fixture, route, extra, open_finding in CASES:
        marks = [pytest.mark.xfail(strict=False, reason=open_finding)] if open_finding else []
        yield pytest.param(fixture, route, extra, id=f"{fixture}-{route.replace(' ', '_')}", marks=marks)


@pytest.mark.parametrize(("fixture", "route", "extra"), list(_params()))
def test_finding_fixture(fixture: str, route: str, extra: dict, tmp_path: Path) -> None:
    model = tmp_path / f"{fixture}.onnx"
    onnx.save(FINDING_MODELS[fixture](), str(model))
    entry = {"id": fixture, "pins": [], "stateful": False, **extra}
    result = routes.run_route(entry, model, route, tmp_path)
    assert result.ok, f"{fixture} / {route}: {result.message}\n  command: {result.command}"
