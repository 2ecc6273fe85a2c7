"""`trt-tui inspect MODEL`: op types, nodes and IO of an ONNX model, as tables or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from trt_tui.commands.output import BIG_TABLE, console, print_json, print_plain_table, safe

if TYPE_CHECKING:
    from rich.table import Table

    from trt_tui.core.graph import GraphIndex

# Every `trt-tui` start imports this module to declare its flags: the model index (ONNX, numpy) and rich's
# tables are imported inside the functions that use them, so that the other commands start fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show op types, nodes and inputs/outputs of an ONNX model",
        description="Index an ONNX model (without loading external weights) and print op types, nodes and IO.",
    )
    p.add_argument("model", help="ONNX model file")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--op-types", action="store_true", help="only the op-type counts")
    view.add_argument("--nodes", action="store_true", help="only the node table")
    view.add_argument("--io", action="store_true", help="only the model inputs and outputs")
    p.add_argument("--op", metavar="TYPE", help="only nodes of this op type (case-insensitive)")
    p.add_argument("--match", metavar="REGEX", help="only nodes whose name matches REGEX (searched, as grep does)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trt_tui.core.graph import load_graph

    index = load_graph(args.model)
    nodes = index.filter(op=args.op, match=args.match) if (args.op or args.match) else index.nodes
    if args.json:
        payload = index.to_json()
        payload["nodes"] = [n.to_json(index) for n in nodes]
        payload["random_nodes"] = [{"name": n.name, "op_type": n.op_type} for n in index.random_nodes()]
        print_json(payload, pretty=len(nodes) <= BIG_TABLE)
        return 0
    out = console()
    show_all = not (args.op_types or args.nodes or args.io)
    if show_all or args.io:
        out.print(_io_table(index))
    if show_all or args.op_types:
        out.print(_op_table(index))
    if show_all or args.nodes or args.op or args.match:
        if not (args.op_types or args.io) or args.nodes:
            if len(nodes) > BIG_TABLE:
                print_plain_table(f"nodes ({len(nodes)} shown)", ["#", "name", "op", "scope", "outputs", "flags"], _node_rows(index, nodes))
            else:
                out.print(_node_table(index, nodes))
    from trt_tui.core.parity.determinism import random_note

    note = random_note(index)
    if note is not None:  # noise a comparison would report as drift
        out.print(f"[yellow]warning:[/] {safe(note)}: every run draws new values; comparisons seed them alike on "
                  "both sides (emulate, mixed, onnx:) or refuse (engine, saved outputs)")  # fmt: skip
    for w in index.warnings:
        out.print(f"[yellow]warning:[/] {safe(w)}")
    if (args.op or args.match) and not nodes:  # an empty table alone reads like a broken model
        wanted = " and ".join(f"{flag} {v!r}" for flag, v in (("--op", args.op), ("--match", args.match)) if v)
        known = ", ".join(sorted(index.op_counts)) if args.op else ""
        print(f"no node matches {wanted}" + (f" (op types in this model: {known})" if known else ""), file=sys.stderr)
    return 0


def _io_table(index: GraphIndex) -> Table:
    from rich.table import Table

    t = Table(title=f"{safe(index.path.name)}: inputs and outputs", title_justify="left")
    for col in ("kind", "name", "dtype", "shape", "dynamic axes"):
        t.add_column(col)
    for kind, items in (("input", index.inputs), ("output", index.outputs)):
        for ti in items:
            t.add_row(kind, safe(ti.name), ti.dtype or "?", safe(ti.shape_text()), safe(",".join(map(str, ti.dynamic_axes)) or "-"))
    return t


def _op_table(index: GraphIndex) -> Table:
    from rich.table import Table

    t = Table(title=f"op types ({len(index.nodes)} nodes)", title_justify="left")
    t.add_column("op type")
    t.add_column("count", justify="right")
    for op, n in sorted(index.op_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(safe(op), str(n))
    return t


def _node_rows(index: GraphIndex, nodes) -> list[list[str]]:
    rows = []
    for n in nodes:
        outs = []
        for o in n.outputs:
            info = index.tensor(o)
            outs.append(f"{info.dtype or '?'}[{info.shape_text()}]" if info else "?")
        rows.append([str(n.topo_index), n.name, n.op_type, n.scope or "-", " ".join(outs), ",".join(n.flags)])
    return rows


def _node_table(index: GraphIndex, nodes) -> Table:
    from rich.table import Table

    t = Table(title=f"nodes ({len(nodes)} shown)", title_justify="left")
    for col in ("#", "name", "op", "scope", "outputs", "flags"):
        t.add_column(col, overflow="fold")
    for row in _node_rows(index, nodes):
        t.add_row(*(safe(cell) for cell in row))
    return t
