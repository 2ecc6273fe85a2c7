"""Messages the UI posts to itself when background work finishes (past tense, as harlequin does)."""

from __future__ import annotations

from textual.message import Message

from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.engine import BatchUpdate
from trt_tui.core.parity.results import CompareResult
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.node_table import NodeRows


class ModelLoaded(Message):
    """A model was indexed; `rows` and `scopes` are its table rows and scope list, built off the UI thread."""

    def __init__(self, index: GraphIndex, rows: NodeRows, scopes: list[str], selection: PinSelection) -> None:
        super().__init__()
        self.selection = selection
        self.index = index
        self.rows = rows
        self.scopes = scopes


class ParityBatch(Message):
    """A batch of compared tensors arrived from the comparison thread."""

    def __init__(self, update: BatchUpdate) -> None:
        super().__init__()
        self.update = update


class ParityFinished(Message):
    def __init__(self, result: CompareResult, warnings: list[str]) -> None:
        super().__init__()
        self.result = result
        self.warnings = warnings


class BuildEvents(Message):
    """A batch of build events (job changes, progress, log lines) from the job manager's hub."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events


class NativeStderrText(Message):
    """Text a native library (ONNX Runtime) wrote to file descriptor 2, read by ui/native_stderr.py."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
