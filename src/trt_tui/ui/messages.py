"""Messages the UI posts to itself when background work finishes (past tense, as harlequin does)."""

from __future__ import annotations

from textual.message import Message

from trt_tui.core.graph import GraphIndex


class ModelLoaded(Message):
    def __init__(self, index: GraphIndex) -> None:
        super().__init__()
        self.index = index
