from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from trt_tui.core.streaming.contract import Invariant, Mask, Schedule
from trt_tui.core.streaming.invariants import InvariantChecker
from trt_tui.core.streaming.masks import apply_mask
from trt_tui.core.streaming.plot import chart, sparkline
from trt_tui.core.streaming.png import render_png
from trt_tui.core.streaming.schedule import frames_of, plan_chunks
from trt_tui.core.streaming.trend import fit_trend, t_two_sided_p


def test_schedule_first_chunk_then_repeat():
    s = Schedule(chunks=4, frames=(592, 584), time_axes={"audio_signal": 2})
    assert [p.frames for p in plan_chunks(s)] == [592, 584, 584, 584]
    assert [p.index for p in plan_chunks(s, chunks=2)] == [0, 1]
    assert frames_of(Schedule(frames=()), 3) is None


def test_mask_keeps_last_entries_along_axis():
    ref = np.arange(2 * 1 * 6 * 3, dtype=np.float32).reshape(2, 1, 6, 3)
    cand = ref + 1
    m = Mask("c", axis=2, length_output="len", keep="last", batch_axis=1)
    r, c = apply_mask(m, ref, cand, {"len": np.array([2])})
    assert r.shape == (2, 1, 2, 3) and np.array_equal(r, ref[:, :, 4:, :])
    r, c = apply_mask(Mask("c", axis=2, length_value=4), ref, cand, {})
    assert np.array_equal(r, ref[:, :, :4, :])
    r, _ = apply_mask(m, ref, cand, {"len": np.array([0])})
    assert r.size == 0
    r, _ = apply_mask(m, ref, cand, {"len": np.array([99])})  # clamped to the axis
    assert r.shape == ref.shape


def test_mask_per_batch_lengths():
    ref = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # [B, T, D]
    m = Mask("c", axis=1, length_output="len", keep="first", batch_axis=0)
    r, c = apply_mask(m, ref, ref * 2, {"len": np.array([1, 3])})
    assert np.array_equal(r, np.concatenate([ref[0, :1].ravel(), ref[1, :3].ravel()]))
    assert np.array_equal(c, 2 * r)


def test_invariants_equals_monotonic_range():
    inv = (
        Invariant("enc", "equals", value=2),
        Invariant("len", "monotonic"),
        Invariant("len", "range", min=0, max=16),
    )
    ck = InvariantChecker(inv)
    ok = ck.check("reference", {"enc": np.array([2]), "len": np.array([8])})
    assert all(r.passed for r in ok)
    res = ck.check("reference", {"enc": np.array([3]), "len": np.array([0])})
    assert [r.passed for r in res] == [False, False, True]
    assert res[0].detail == "expected 2, got 3 at [0]"
    assert res[1].detail == "decreased from 8 to 0 at [0]"
    res = ck.check("candidate", {"enc": np.array([2]), "len": np.array([17])})  # sides are tracked apart
    assert [r.passed for r in res] == [True, True, False]
    assert res[2].detail == "outside [0, 16], got 17 at [0]"
    res = ck.check("reference", {"enc": np.array([2.0, np.nan])})
    assert not res[0].passed and "1 of 2 entries" in res[0].detail
    assert res[1].detail == "output missing"


def test_t_distribution_p_values():
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.073388, abs=1e-5)
    assert t_two_sided_p(3.169, 10) == pytest.approx(0.01, abs=1e-4)
    assert t_two_sided_p(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(1.96, 10**6) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(0.0, 5) == 1.0


def test_trend_flat_vs_growing():
    rng = np.random.default_rng(0)
    flat = fit_trend(1e-3 * (1 + 0.2 * rng.standard_normal(300)))
    assert not flat.significant and not flat.growing and abs(flat.growth) < 0.1
    grow = fit_trend(1e-3 * (1 + 0.02 * np.arange(300) + 0.2 * rng.standard_normal(300)))
    assert grow.growing and grow.p_value < 1e-10 and grow.slope == pytest.approx(2e-5, rel=0.1)
    # significant but tiny: not "growing"
    tiny = fit_trend(1.0 + 1e-4 * np.arange(300) + 1e-3 * rng.standard_normal(300))
    assert tiny.significant and not tiny.growing
    exact = fit_trend([0.0, 0.0, 0.0, 0.0])
    assert exact.p_value == 1.0 and not exact.significant
    holes = fit_trend([1.0, math.inf, 1.0, 1.0, math.nan])
    assert holes.n == 3 and holes.nonfinite == 2
    assert not fit_trend([1.0, 2.0]).significant


def test_chart_and_sparkline():
    v = np.linspace(0, 1, 100)
    lines = chart(v, width=50, height=4, limit=0.5, title="t")
    assert lines[0] == "t" and len(lines) == 1 + 4 + 2
    assert all(len(line.split("┤")[1]) == 50 for line in lines[1:5])
    assert "-" in "".join(lines[1:5])  # the tolerance line
    assert lines[-1].rstrip().endswith("99  (chunk)")
    spark = sparkline(v, width=10)
    assert len(spark) == 10 and spark[0] in "▁▂" and spark[-1] == "█"
    v[5] = np.inf
    assert "!" in sparkline(v, width=100)
    marked = chart([1.0, 2.0], failed=[False, True], markup=True)
    assert "[red]" in "".join(marked)
    assert chart([]) == ["(no chunks)"]


def test_png_is_a_valid_png():
    data = render_png([1e-3, 2e-3, math.nan, 3e-3], failed=[False, True, False, False], limit=2.5e-3, slope=1e-3,
                      intercept=1e-3, width=200, height=100)  # fmt: skip
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (200, 100)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == h * (1 + 3 * w)
    img = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)[:, 1:].reshape(h, w, 3)
    assert (img != 255).any()  # something was drawn


def _pixels(data: bytes) -> np.ndarray:
    w, h = struct.unpack(">II", data[16:24])
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    return np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)[:, 1:].reshape(h, w, 3)


def test_png_has_title_axis_names_labelled_limit_and_legend():
    from trt_tui.core.streaming import png

    labels = dict(title="log_probs: max_abs per chunk, emulate fp16 vs onnxruntime fp32", x_label="chunk index",
                  y_label="max_abs of log_probs", limit_label="atol (on p95 |d|)")  # fmt: skip
    assert all(ch in png._FONT for text in labels.values() for ch in text.upper())  # no '?' for a missing glyph
    img = _pixels(render_png([1e-3, 2e-3, 3e-3, 2e-3], failed=[False, True, False, False], limit=2.5e-3, slope=5e-4,
                             intercept=1.5e-3, **labels))  # fmt: skip
    colour = lambda region, c: bool((region == np.array(c, np.uint8)).all(axis=-1).any())  # noqa: E731
    legend, head = img[-24:], img[:40]
    assert all(colour(legend, c) for c in (png.BLUE, png.RED, png.GREY, png.ORANGE))  # a swatch for each mark drawn
    assert colour(head, png.BLACK)  # title and the y axis' name
    assert colour(img[-52:-24, 200:600], png.BLACK)  # the x axis' name under the axis
    bare = _pixels(render_png([1e-3, 2e-3]))  # nothing failing, no limit, no trend: only the curve in the legend
    assert colour(bare[-24:], png.BLUE) and not colour(bare[-24:], png.ORANGE) and not colour(bare[-24:], png.GREY)
