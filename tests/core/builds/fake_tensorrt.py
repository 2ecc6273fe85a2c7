"""TEST DOUBLE for the `tensorrt` Python module: just enough of the documented API (Builder, network,
OnnxParser, builder config, IProgressMonitor, engine inspector) to drive trt_build.run() end to end on a
machine without TensorRT. It builds nothing; its "engine" is a labelled placeholder, and its inspector
JSON reports FP32 for layers given `precision = float32` and the low precision for the rest.

It checks what a real TensorRT would reject: 11.x has no FP16/BF16/OBEY flags and read-only precisions.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import onnx


class _DType(str):
    pass


def make(version: str = "10.9.0.34", *, cancel_at_step: int | None = None):
    major = int(version.split(".")[0])
    trt = SimpleNamespace(__version__=version, calls=[])
    trt.float32, trt.float16, trt.bfloat16 = _DType("fp32"), _DType("fp16"), _DType("bf16")
    trt.int32, trt.int64, trt.bool = _DType("int32"), _DType("int64"), _DType("bool")

    class ILogger:
        VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR = range(5)

        def __init__(self):
            pass

    class IProgressMonitor:
        def __init__(self):
            pass

    flags = {"TF32": "TF32"}
    if major < 11:
        flags.update(FP16="FP16", BF16="BF16", OBEY_PRECISION_CONSTRAINTS="OBEY", PREFER_PRECISION_CONSTRAINTS="PREFER")
    trt.ILogger, trt.IProgressMonitor = ILogger, IProgressMonitor
    trt.BuilderFlag = SimpleNamespace(**flags)
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.TensorFormat = SimpleNamespace(LINEAR=0)
    trt.ProfilingVerbosity = SimpleNamespace(DETAILED="DETAILED")
    trt.LayerInformationFormat = SimpleNamespace(JSON="JSON")

    class Tensor:
        def __init__(self, name, dtype=trt.float32):
            self.name, self.dtype, self.allowed_formats = name, dtype, None

    class Layer:
        def __init__(self, node):
            self.name = node.name
            self.metadata = f"[ONNX Layer: {node.name}]"
            self._outputs = [Tensor(o) for o in node.output]
            self._precision = None
            self.output_types = {}

        num_outputs = property(lambda self: len(self._outputs))

        def get_output(self, i):
            return self._outputs[i]

        @property
        def precision(self):
            return self._precision

        @precision.setter
        def precision(self, value):
            if major >= 11:
                raise AttributeError("ILayer.precision was removed in TensorRT 11")
            self._precision = value

        def set_output_type(self, i, dtype):
            if major >= 11:
                raise AttributeError("set_output_type was removed in TensorRT 11")
            self.output_types[i] = dtype

    class Network:
        def __init__(self):
            self.layers, self.inputs, self.outputs = [], [], []

        num_layers = property(lambda self: len(self.layers))
        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))

        def get_layer(self, i):
            return self.layers[i]

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, path):
            model = onnx.load(path, load_external_data=False)
            trt.calls.append(("parse", path))
            self.network.layers = [Layer(n) for n in model.graph.node]
            self.network.inputs = [Tensor(i.name) for i in model.graph.input]
            self.network.outputs = [Tensor(o.name) for o in model.graph.output]
            return True

    class Config:
        def __init__(self):
            self.flags = {"TF32"}
            self.progress_monitor = None
            self.profiles, self.pools = [], {}
            self._cache = None

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

        def create_timing_cache(self, data):
            return SimpleNamespace(data=data, serialize=lambda: b"fake-timing-cache")

        def set_timing_cache(self, cache, ignore_mismatch):
            self._cache = cache

        def get_timing_cache(self):
            return self._cache

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (lo, opt, hi)

    class Builder:
        def __init__(self, logger):
            trt.builder = self

        def create_network(self, flags):
            self.network = Network()
            return self.network

        def create_builder_config(self):
            self.config = Config()
            return self.config

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 3)
            for step in range(3):
                if cancel_at_step == step or not monitor.step_complete("Building engine", step):
                    return None
            monitor.phase_finish("Building engine")
            low = "FP16" if "FP16" in config.flags else "BF16" if "BF16" in config.flags else None
            trt.engine_layers = [
                {"Name": layer.name, "LayerType": "kgen", "Metadata": layer.metadata,
                 "Outputs": [{"Name": "o", "Format/Datatype": f"Row major linear {low if low and layer.precision != trt.float32 else 'FP32'}"}]}
                for layer in network.layers
            ]
            return b"FAKE ENGINE from tests/core/builds/fake_tensorrt.py"

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            info = json.dumps({"Layers": trt.engine_layers})
            inspector = SimpleNamespace(get_engine_information=lambda fmt: info)
            return SimpleNamespace(create_engine_inspector=lambda: inspector)

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt
