"""ONNX Runtime sessions for emulated models (rewritten models are written by writing.py).

`emulation_session` disables every graph optimisation and then checks, in the model ORT actually runs,
that every value rounded through the low precision still is: today's ORT keeps them at every level (measured), but a
future one folding `Cast(Cast(x))` would silently turn the emulation into plain FP32.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections import Counter
from pathlib import Path

import onnx
from onnx import TensorProto

from trt_tui.core.errors import UserError
from trt_tui.core.precision.writing import save_model  # noqa: F401 - re-exported: one writer for rewritten models

LOW = (TensorProto.FLOAT16, TensorProto.BFLOAT16)


def _cast_to(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None


def count_cast_pairs(model: onnx.ModelProto) -> int:
    """Cast(to=fp16/bf16) nodes whose output feeds a Cast(to=FLOAT): the emulation's rounding pairs."""
    low_out = Counter(n.output[0] for n in model.graph.node if _cast_to(n) in LOW)
    return sum(1 for n in model.graph.node if _cast_to(n) == TensorProto.FLOAT and low_out.get(n.input[0]))


def count_roundings(model: onnx.ModelProto) -> int:
    """Values rounded through fp16/bf16: distinct tensors that reach a Cast(to=FLOAT) through a chain of Casts
    holding a low one. Counted per value, not per Cast pair: ONNX Runtime folds the value-preserving middle of
    fp32 -> fp16 -> fp32 -> fp16 -> fp32 (a model's own round trip right behind the emulation's), which a
    count of pairs took for a removed rounding (and refused the model)."""
    producer = {o: n for n in model.graph.node for o in n.output if o}
    sources = set()
    for n in model.graph.node:
        if _cast_to(n) != TensorProto.FLOAT:
            continue
        t, low = n.input[0], False
        while (p := producer.get(t)) is not None and p.op_type == "Cast":
            low = low or _cast_to(p) in LOW
            t = p.input[0]
        if low:
            sources.add(t)
    return len(sources)


def emulation_session(model, providers=("CPUExecutionProvider",)):
    """An `onnxruntime.InferenceSession` for an emulated model (ModelProto or path), ORT_DISABLE_ALL.

    Raises UserError when ORT rejects the model or when fewer rounding Cast pairs survive in the model
    ORT runs than the emulated model holds.
    """
    import onnxruntime as ort  # imported here: only the drift preview needs it

    if isinstance(model, onnx.ModelProto):
        proto, source = model, None
    else:
        source = os.fspath(model)
        try:
            proto = onnx.load_model(source, load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
            raise UserError(f"cannot read ONNX model: {exc}", source) from None
    expected = count_roundings(proto)
    with tempfile.TemporaryDirectory(prefix="trt_tui_emu_") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.add_session_config_entry("session.disable_prepacking", "1")  # as every verdict's session (segments.ort_runner)
        opts.optimized_model_filepath = str(Path(tmp) / "as_run.onnx")
        # weights go to a side file so the check works beyond protobuf's 2 GiB and stays cheap to read back
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name", "as_run.bin")
        opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        payload = source if source is not None else _serialise_for_ort(proto, tmp)
        try:
            session = ort.InferenceSession(payload, sess_options=opts, providers=list(providers))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise UserError(f"ONNX Runtime cannot load the emulated model: {str(exc).splitlines()[0]}", source) from None
        as_run = onnx.load_model(opts.optimized_model_filepath, load_external_data=False)
    survived = count_roundings(as_run)
    if survived < expected:
        raise UserError(
            f"ONNX Runtime removed the rounding of {expected - survived} of {expected} values even with "
            "ORT_DISABLE_ALL; the drift preview would be wrong, so it is refused (check the onnxruntime version)",
            source,
        )
    return session


@functools.lru_cache(maxsize=None)
def check_ort_keeps_rounding(providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
    """Once per process: does this ONNX Runtime, with optimisations off, really round through fp16/bf16?

    Whether ORT folds `Cast(Cast(x))` depends on its version and optimisation level, not on the model, so
    a tiny probe model stands in for the real one; that keeps the self-check cheap for callers that run
    emulated models in their own sessions (the parity engine runs them segment by segment). The probe
    checks both the structure (the Cast pairs survive) and the numbers (1 + 2^-12 rounds to 1 in fp16).
    """
    import numpy as np
    import onnxruntime as ort

    from trt_tui.core.modelgen.builder import GraphBuilder
    from trt_tui.core.precision.emulate import emulate

    g = GraphBuilder("rounding_probe")
    x = g.input("x", TensorProto.FLOAT, [4])
    g.output(g.op("Relu", [x]), "y", TensorProto.FLOAT, [4])
    probe = g.build()
    value = np.array([1 + 2**-12, 1 + 2**-9, 3.0, 70000.0], np.float32)
    expected = {"fp16": np.array([1.0, 1 + 2**-9, 3.0, np.inf], np.float32), "bf16": np.array([1.0, 1.0, 3.0, 70144.0], np.float32)}
    for low, want in expected.items():
        session = emulation_session(emulate(probe, low, []).model, providers=providers)
        got = session.run(None, {"x": value})[0]
        if not np.array_equal(got, want):
            raise UserError(
                f"ONNX Runtime {ort.__version__} does not round through {low} as the drift preview needs "
                f"(probe gave {got.tolist()}, expected {want.tolist()}); the preview is refused"
            )


def _serialise_for_ort(proto: onnx.ModelProto, tmp: str) -> bytes | str:
    from trt_tui.core.precision.writing import EXTERNAL_DATA_LIMIT

    if proto.ByteSize() < EXTERNAL_DATA_LIMIT:
        return proto.SerializeToString()
    path = Path(tmp) / "emulated.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, location="emulated.bin")
    return str(path)
