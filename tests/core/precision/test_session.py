"""The once-per-process check that ONNX Runtime keeps the emulation's rounding Cast pairs."""

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.precision import check_ort_keeps_rounding
from trt_tui.core.precision import session as session_mod


def test_ort_rounding_probe_passes_on_this_onnxruntime():
    check_ort_keeps_rounding.cache_clear()
    check_ort_keeps_rounding()  # raises UserError if ORT folded the Cast pairs or did not round


def test_ort_rounding_probe_refuses_an_ort_that_folds_casts(monkeypatch):
    class FoldingSession:  # stands in for an ORT that drops the Cast pairs: returns x unrounded
        def run(self, _outputs, feeds):
            return [feeds["x"]]

    monkeypatch.setattr(session_mod, "emulation_session", lambda *a, **k: FoldingSession())
    session_mod.check_ort_keeps_rounding.cache_clear()
    try:
        with pytest.raises(UserError, match="does not round through fp16"):
            session_mod.check_ort_keeps_rounding()
    finally:
        session_mod.check_ort_keeps_rounding.cache_clear()
