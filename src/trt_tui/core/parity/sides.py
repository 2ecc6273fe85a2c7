"""The two sides of a layer-wise comparison, behind one small interface the engine drives batch by batch.

- `OnnxSide`: an ONNX model run in topological segments (segments.py): bounded memory, one inference.
- `SavedSide`: outputs saved by an earlier run (Polygraphy RunResults JSON or `.npz`), read by exact name.
- `RunnerSide`: any other Polygraphy runner (a TensorRT engine): it exposes only the outputs it was built
  with, and is run once per iteration; those outputs are held until compared.

Every side follows the `Side` protocol below (the engine relies on nothing else): `names()` is what the side
can expose; `prepare(batches, feeds)` plans; `open(k)` is a context manager whose `run(i)` returns batch k's
tensors for iteration i; `close()` releases what it holds; `private_names` says its extra tensors (rewrite
internals, unnamed engine layers) are not worth listing as unpaired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import numpy as np
import onnx

from trt_tui.core.errors import UserError
from trt_tui.core.parity.inputs import SavedOutputs
from trt_tui.core.parity.providers import cpu_only
from trt_tui.core.parity.segments import SegmentedExecutor, SegmentPlan
from trt_tui.core.weights import WeightSource


class Reader(Protocol):
    def run(self, i: int) -> dict[str, np.ndarray]: ...


class Side(Protocol):
    label: str
    private_names: bool

    def names(self) -> set[str]: ...

    def prepare(self, batches: Sequence[Sequence[str]], feeds: Sequence[dict[str, np.ndarray]]) -> None: ...

    def open(self, k: int) -> AbstractContextManager[Reader]: ...

    def close(self) -> None: ...


class OnnxSide:
    private_names = True  # a rewritten candidate has private tensors (pre-rounding values, Casts)

    def __init__(self, model: onnx.ModelProto, label: str, providers: Sequence[str] = ("cpu",),
                 weights: WeightSource | None = None):  # fmt: skip
        self.model = model
        self.weights = weights or WeightSource()  # where external data lives (the model's folder)
        self.label = label
        self.providers = tuple(providers)
        self.executor: SegmentedExecutor | None = None
        self.placements: dict[str, str] = {}  # GPU runs: node name -> the execution provider that ran it
        self.threads = 0  # ONNX Runtime's intra-op threads per session (0: its default); set before prepare
        self.keep_freed = 0  # free heap memory kept between segments (0: segments.KEEP_FREED_BYTES); idem

    def _placed(self, by_provider: dict[str, list[str]]) -> None:
        for provider, nodes in by_provider.items():
            for node in nodes:
                self.placements[node] = provider

    @property
    def on_cpu(self) -> bool:
        return cpu_only(self.providers)

    def cpu_fallbacks(self) -> list[str]:
        """Nodes ONNX Runtime ran on its CPU EP in a GPU run (no CUDA kernel for that op and type)."""
        from trt_tui.core.parity.providers import CPU, memcpy_or_internal

        return [n for n, p in self.placements.items() if p == CPU and not memcpy_or_internal(n)]

    def names(self) -> set[str]:
        return {t for n in self.model.graph.node for t in n.output if t}

    def prepare(self, batches: Sequence[Sequence[str]], feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.executor = SegmentedExecutor(SegmentPlan(self.model, batches, self.weights), feeds, self.providers, label=self.label,
                                          on_placement=self._placed, threads=self.threads, keep_freed=self.keep_freed)  # fmt: skip

    def open(self, k: int):
        return self.executor.open(k)

    def close(self) -> None:  # the executor's sessions end with their segments
        pass


class SavedSide:
    private_names = False

    def __init__(self, saved: SavedOutputs):
        self.saved = saved
        self.label = saved.label
        self.batches: list[list[str]] = []

    def names(self) -> set[str]:
        return set(self.saved.names)

    def prepare(self, batches: Sequence[Sequence[str]], feeds: Sequence[dict[str, np.ndarray]]) -> None:
        if len(self.saved.iterations) < len(feeds):
            raise UserError(f"{self.label} holds {len(self.saved.iterations)} iteration(s) but {len(feeds)} were asked for")
        self.batches = [list(b) for b in batches]

    @contextmanager
    def open(self, k: int):
        batch = self.batches[k]
        yield _Reader(lambda i: {t: np.asarray(self.saved.iterations[i][t]) for t in batch})

    def close(self) -> None:
        pass


class RunnerSide:
    def __init__(self, runner, label: str, *, private_names: bool = False, on_close: Callable[[], None] | None = None):
        self.runner = runner
        self.label = label
        self.private_names = private_names  # a marked engine built from a preset: Casts, unnamed layers
        self.on_close = on_close  # e.g. removes the work folder of an engine built for this comparison
        self.feeds: Sequence[dict[str, np.ndarray]] = ()
        self.batches: list[list[str]] = []
        self.cache: dict[int, dict[str, np.ndarray]] = {}
        self._names: set[str] | None = None

    def names(self) -> set[str]:
        if self._names is None:
            if not self.runner.is_active:
                self.runner.activate()
            self._names = set(runner_output_names(self.runner))
        return self._names

    def prepare(self, batches: Sequence[Sequence[str]], feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.names()
        self.batches = [list(b) for b in batches]
        self.feeds = feeds
        wanted = {t for b in batches for t in b}
        self._wanted = wanted

    def _outputs(self, i: int) -> dict[str, np.ndarray]:
        if i not in self.cache:
            out = self.runner.infer(self.feeds[i])
            self.cache[i] = {t: np.array(v) for t, v in out.items() if t in self._wanted}  # copy: runners reuse buffers
        return self.cache[i]

    @contextmanager
    def open(self, k: int):
        batch = self.batches[k]

        def run(i: int) -> dict[str, np.ndarray]:
            out = self._outputs(i)
            return {t: out.pop(t) for t in batch}  # compared once: drop it as soon as it is handed out

        try:
            yield _Reader(run)
        finally:
            if k == len(self.batches) - 1 and self.runner.is_active:
                self.runner.deactivate()

    def close(self) -> None:
        if self.runner.is_active:
            self.runner.deactivate()
        if self.on_close is not None:
            self.on_close()


def runner_output_names(runner) -> list[str]:
    """The output names of an activated Polygraphy runner.

    Polygraphy runners (0.53) have `get_input_metadata` but no output counterpart: a TrtRunner's outputs are
    its engine's OUTPUT I/O tensors, an OnnxrtRunner's its session's outputs.
    """
    get = getattr(runner, "get_output_metadata", None)
    if callable(get):
        return list(get())
    engine = getattr(runner, "engine", None)
    if engine is not None:  # TrtRunner: only reached with TensorRT installed
        import tensorrt as trt

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        return [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    sess = getattr(runner, "sess", None)
    if sess is not None:  # OnnxrtRunner
        return [o.name for o in sess.get_outputs()]
    raise UserError(f"cannot tell which outputs runner {getattr(runner, 'name', runner)!r} exposes")


class _Reader:
    def __init__(self, fn):
        self.run = fn
