"""Issue 13 item 3: one comparison request from flags or a preset; the preset read once, the graph indexed once."""

from __future__ import annotations

from pathlib import Path

from trt_tui.cli import main
from trt_tui.core.parity.request import build_request
from trt_tui.core.preset import load_preset

from tests.fixtures.stand_in_trt_runner import stand_in_trt_runner

PRESET = Path(__file__).resolve().parents[3] / "presets" / "demo_fp16.toml"


def _count(monkeypatch):
    import trt_tui.core.graph as graph
    import trt_tui.core.preset.toml_io as toml_io

    counts = {"preset reads": 0, "graph indexings": 0}

    def counted(key, fn):
        def wrapper(*a, **k):
            counts[key] += 1
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(toml_io, "read_text_file", counted("preset reads", toml_io.read_text_file))
    monkeypatch.setattr(graph, "_build_index", counted("graph indexings", graph._build_index))
    return counts


def test_compare_preset_candidate_trt_reads_once_indexes_once(monkeypatch, tmp_path):
    stand_in_trt_runner(monkeypatch)
    counts = _count(monkeypatch)
    assert main(["compare", "--preset", str(PRESET), "--candidate", "trt", "--outputs-only", "--json", str(tmp_path / "r.json")]) == 0
    assert counts == {"preset reads": 1, "graph indexings": 1}


def test_same_request_from_a_file_or_a_preset_object(monkeypatch):
    a = build_request(preset=str(PRESET))
    b = build_request(preset=load_preset(PRESET))
    assert a.model == b.model and a.candidate == b.candidate and a.inputs == b.inputs and a.options == b.options
    assert a.candidate.kind == "emulate" and a.precision == "fp16" and len(a.candidate.pins) > 10
    assert a.options.tolerances == a.resolved.tolerances  # the preset's tolerances
    assert a.inputs.shapes["audio_signal"] == (64, 32, 8)  # the first profile's OPT shapes
    flags = build_request(preset=str(PRESET), atol=0.5, shapes={"audio_signal": (2, 32, 8)}, dims={"B": 2})
    assert flags.options.tolerances.default.atol == 0.5 and flags.inputs.shapes == {"audio_signal": (2, 32, 8)}


def test_candidate_registry_matches_the_spec_names():
    from trt_tui.core.parity.candidates import CANDIDATES
    from trt_tui.core.parity.runners import CANDIDATE_KINDS
    from trt_tui.core.parity.sides import OnnxSide, RunnerSide, SavedSide

    assert set(CANDIDATES) == set(CANDIDATE_KINDS)
    for kind in CANDIDATES.values():  # the written protocol, nothing probed
        assert {"name", "needs_path", "needs_model", "seedable", "gpu", "saved", "static_recurrent"} <= set(dir(kind)) and callable(kind.setup)
        assert callable(kind.runner)  # make_runners and streaming build their runner through the same kind
    for side in (OnnxSide, SavedSide, RunnerSide):
        assert all(callable(getattr(side, m)) for m in ("names", "prepare", "open", "close"))


def test_make_runners_goes_through_the_registry(monkeypatch, tmp_path):
    """make_runners asks the candidate's kind for its runner (no if/elif on kind names): a kind swapped in the
    registry is the one used, and saved outputs say in one line that they are not a runner."""
    import pytest

    from trt_tui.core.errors import UserError
    from trt_tui.core.parity import candidates
    from trt_tui.core.parity.runners import make_runners

    model = str(build_request(preset=str(PRESET)).model)
    seen = []

    class Recording(candidates.RewriteKind):
        def runner(self, ctx, outputs=None, name="candidate"):
            seen.append((ctx.spec.kind, ctx.model_path, name))
            return super().runner(ctx, outputs, name)

    monkeypatch.setitem(candidates.CANDIDATES, "mixed", Recording("mixed", needs_path=False, needs_model=True, seedable=True))
    pair = make_runners(model, "mixed")
    assert seen == [("mixed", Path(model), "candidate")] and pair.candidate.name == "candidate"
    with pytest.raises(UserError, match="saved outputs are not a runner"):
        make_runners(model, f"outputs:{tmp_path / 'x.npz'}")
