"""Issue 11 item 6: random ops are flagged, seeded alike on both sides, or refused."""

from __future__ import annotations

import json

import onnx
import pytest

from trt_tui.cli import main
from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.parity.engine import compare

from tests.fixtures.parity_models import random_noise


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    path = tmp_path_factory.mktemp("rnd") / "noisy.onnx"
    onnx.save(random_noise(), path)
    return path


def test_inspect_flags_random_nodes(noisy, capsys):
    assert [n.name for n in load_graph(noisy).random_nodes()] == ["noise/RandomNormalLike"]
    assert main(["inspect", str(noisy)]) == 0
    assert "1 random node(s): noise/RandomNormalLike (RandomNormalLike)" in capsys.readouterr().out
    assert main(["inspect", str(noisy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["random_nodes"] == [{"name": "noise/RandomNormalLike", "op_type": "RandomNormalLike"}]


@pytest.mark.parametrize("candidate", ["emulate", "mixed", "onnx:SELF"])
def test_comparison_seeds_both_sides_alike(noisy, candidate):
    candidate = candidate.replace("SELF", str(noisy))
    result = compare(noisy, candidate, precision="fp16")
    by = {d.name: d for d in result.tensors}
    # unseeded, the noise alone would give rel_rms near 1 on `noise`; seeded alike, only rounding is left
    assert by["noise"].rel_rms < 1e-2 and by["y"].rel_rms < 1e-2
    if candidate.startswith("onnx:"):
        assert by["y"].max_abs == 0.0
    assert any("seeded alike on both sides" in w for w in result.warnings)


def test_engine_or_saved_outputs_are_refused(noisy, tmp_path):
    with pytest.raises(UserError, match="random node.*cannot be given the same seed"):
        compare(noisy, f"outputs:{tmp_path / 'x.npz'}", precision="fp16")
