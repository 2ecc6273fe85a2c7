"""The details panel of one node: IO tensors with dtypes and shapes, attributes, producers/consumers, pins."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from trt_tui.core.graph import GraphIndex, NodeInfo
from trt_tui.core.selection import PinSelection
from trt_tui.ui.plain import plain_text, printable

MAX_LINKS = 12  # producers/consumers listed per tensor before "... and N more"

FLAG_TEXT = {
    "trtexec-unsafe-name": "⚠ name has ',' or ':': cannot be pinned on a trtexec command line",
    "duplicate-name": "⚠ another node has the same name",
    "unnamed": "unnamed in the file; TensorRT's parser calls it this",
    "in-subgraph": "inside an If/Loop/Scan body",
}


def node_renderable(index: GraphIndex, node: NodeInfo, selection: PinSelection | None) -> Group:
    title = plain_text(node.name, "bold")
    head = Table.grid(padding=(0, 1))
    head.add_column(style="dim", no_wrap=True)
    head.add_column()
    head.add_row("op", plain_text(node.op_type + (f" ({node.domain})" if node.domain != "ai.onnx" else "")))
    head.add_row("index", str(node.topo_index))
    head.add_row("scope", plain_text(node.scope or "-"))
    if node.parent:
        head.add_row("parent", plain_text(node.parent))
    if selection is not None:
        reasons = selection.reasons(node.name)
        pin = plain_text("FP32 (" + ", ".join(reasons) + ")", "bold magenta") if reasons else Text("no", style="dim")
        head.add_row("pinned", pin)
    parts: list = [title, head]
    for flag in node.flags:
        if flag in FLAG_TEXT:
            parts.append(Text(FLAG_TEXT[flag], style="yellow" if flag.endswith("name") else "dim"))
    parts.append(_tensors("inputs", index, node.inputs, producers=True))
    parts.append(_tensors("outputs", index, node.outputs, producers=False))
    if node.attributes:
        parts.append(Text("attributes", style="bold underline"))
        parts.append(plain_text(node.attributes, keep_newlines=True))
    return Group(*parts)


def _tensors(title: str, index: GraphIndex, names: tuple[str, ...], *, producers: bool) -> Text:
    text = Text(title, style="bold underline")
    graph_outputs = {o.name for o in index.outputs}
    for name in names:
        if not name:
            continue
        info = index.tensor(name)
        dtype = (info.dtype if info else None) or "?"
        shape = info.shape_text() if info else "?"
        text.append("\n• ")
        text.append(printable(name))
        text.append(f"\n  {dtype} [{shape}]", style="cyan")
        if producers:
            if name in index.initializers:
                text.append("  initializer", style="dim")
            elif name in index.producer:
                text.append("\n  ← ", style="dim")
                text.append(printable(index.producer[name]))
            else:
                text.append("  graph input", style="dim")
        else:
            users = index.consumers.get(name, [])
            for user in users[:MAX_LINKS]:
                text.append("\n  → ", style="dim")
                text.append(printable(user))
            if len(users) > MAX_LINKS:
                text.append(f"\n  … and {len(users) - MAX_LINKS} more", style="dim")
            if name in graph_outputs:
                text.append("\n  → graph output", style="dim")
    return text


class NodeDetails(VerticalScroll):
    """Scrollable panel; `show(...)` replaces its content."""

    node: NodeInfo | None = None

    def compose(self):
        yield Static("Select a node to see its inputs, outputs, attributes and pins.", id="details-body")

    def show(self, index: GraphIndex | None, node: NodeInfo | None, selection: PinSelection | None) -> None:
        body = self.query_one("#details-body", Static)
        self.node = node
        if index is None or node is None:
            body.update("Select a node to see its inputs, outputs, attributes and pins.")
            return
        body.update(node_renderable(index, node, selection))
