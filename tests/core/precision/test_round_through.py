"""Big weights are rounded by ONNX Runtime's Cast pair (common.round_through): the values must be numpy's."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto

from trt_tui.core.precision.common import ORT_ROUND_MIN, _ort_round_trip, round_through


def _edge_values() -> np.ndarray:
    """Every exponent with the bits rounding looks at (ties, just above and below), both signs, padded with
    random values to take the big-array route."""
    e = np.arange(256, dtype=np.uint32)[:, None] << 23
    low = np.array([0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0xFFFF,
                    0x10000, 0x7FFFFF], dtype=np.uint32)[None, :]  # fmt: skip
    bits = (e | low).ravel()
    bits = np.concatenate([bits, bits | np.uint32(1 << 31)])
    x = bits.view(np.float32)
    x = x[~np.isnan(x)]
    pad = np.random.default_rng(0).standard_normal(ORT_ROUND_MIN).astype(np.float32)
    return np.concatenate([x, pad * 1e-5, pad * 7e4])


@pytest.mark.parametrize("low, dtype", [(TensorProto.FLOAT16, np.float16), (TensorProto.BFLOAT16, ml_dtypes.bfloat16)])
def test_big_arrays_round_exactly_as_numpy(low, dtype):
    x = _edge_values()
    with np.errstate(all="ignore"):
        expected = x.astype(dtype).astype(np.float32)
    fast = _ort_round_trip(x, low)
    if fast is None:
        pytest.skip("ONNX Runtime did not take the array")
    np.testing.assert_array_equal(fast.view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(round_through(x, low).view(np.uint32), expected.view(np.uint32))


def test_nan_takes_numpys_route():
    x = np.zeros(ORT_ROUND_MIN, np.float32)
    x[5] = np.float32(np.nan)
    assert _ort_round_trip(x, TensorProto.FLOAT16) is None
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(round_through(x, TensorProto.FLOAT16).view(np.uint32), expected.view(np.uint32))


def test_chunked_runs_give_the_same_values_and_shape(monkeypatch):
    """The ORT route runs in chunks (its temporaries stay small): boundaries change nothing, shape is kept."""
    import trt_tui.core.precision.common as common

    monkeypatch.setattr(common, "ORT_ROUND_CHUNK", 7)
    x = np.random.default_rng(3).standard_normal((5, 9, 3)).astype(np.float32) * 1e3
    got = _ort_round_trip(x, TensorProto.FLOAT16)
    assert got.shape == x.shape and got.dtype == np.float32
    assert np.array_equal(got, x.astype(np.float16).astype(np.float32))
    x[2, 4, 1] = np.nan  # a NaN in a later chunk still hands the array to numpy
    assert _ort_round_trip(x, TensorProto.FLOAT16) is None
