"""Error against chunk, drawn with block characters in a terminal (no plotting library).

Chunks are binned into at most `width` columns (each column shows the WORST chunk of its bin, so a spike is
never averaged away); the y axis runs from 0 to the largest finite error; a non-finite error is drawn as a
full column of `!`. With `markup=True` columns holding a failing chunk are wrapped in rich `[red]` markup.
"""

from __future__ import annotations

import math

import numpy as np

_EIGHTHS = " ▁▂▃▄▅▆▇█"
_SPARK = "▁▂▃▄▅▆▇█"


def _bins(n: int, width: int) -> list[range]:
    cols = max(1, min(n, width))
    edges = np.linspace(0, n, cols + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def sparkline(values, width: int = 60) -> str:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    bins = _bins(v.size, width)
    top = _finite_max(v)
    out = []
    for b in bins:
        x = v[b.start : b.stop]
        if not np.all(np.isfinite(x)):
            out.append("!")
            continue
        m = float(x.max())
        out.append(_SPARK[min(len(_SPARK) - 1, int(m / top * (len(_SPARK) - 1) + 0.5))] if top > 0 else _SPARK[0])
    return "".join(out)


def chart(values, *, width: int = 60, height: int = 8, failed=None, limit: float | None = None,
          title: str = "", markup: bool = False) -> list[str]:  # fmt: skip
    """Lines of a block chart of `values` (one per chunk); `limit` draws a tolerance line of `-`."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return [title, "(no chunks)"] if title else ["(no chunks)"]
    bins = _bins(v.size, width)
    fail = np.zeros(v.size, bool) if failed is None else np.asarray(failed, bool)
    top = _finite_max(v)
    if limit is not None and math.isfinite(limit) and limit > top:
        top = limit * 1.05
    top = top if top > 0 else 1.0
    cols = []
    for b in bins:
        x = v[b.start : b.stop]
        bad = not np.all(np.isfinite(x))
        cols.append((math.inf if bad else float(x.max()), bool(fail[b.start : b.stop].any())))
    limit_row = None if limit is None or not math.isfinite(limit) else min(height - 1, int(limit / top * height))
    label_w = max(len(_num(top)), len(_num(0.0)))
    lines = [title] if title else []
    for row in range(height - 1, -1, -1):
        cells = []
        for value, bad in cols:
            if math.isinf(value):
                ch = "!"
            else:
                level = value / top * height - row  # how much of this cell the column fills, in cells
                ch = _EIGHTHS[max(0, min(8, int(level * 8 + 0.5)))]
                if ch == " " and limit_row == row:
                    ch = "-"
            cells.append(f"[red]{ch}[/]" if markup and bad and ch.strip() else ch)
        label = _num(top) if row == height - 1 else (_num(0.0) if row == 0 else "")
        if limit_row == row and row not in (0, height - 1):
            label = _num(limit)
        lines.append(f"{label:>{label_w}} ┤" + "".join(cells))
    n_cols = len(cols)
    last = str(v.size - 1)
    axis = " " * label_w + " └" + "─" * n_cols
    ticks = " " * (label_w + 2) + "0" + " " * max(1, n_cols - 1 - len(last)) + last
    lines += [axis, ticks + "  (chunk)"]
    return lines


def _finite_max(v: np.ndarray) -> float:
    f = v[np.isfinite(v)]
    return float(f.max()) if f.size else 0.0


def _num(x: float) -> str:
    return f"{x:.3g}"
