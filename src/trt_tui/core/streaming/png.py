"""Error against chunk as a PNG, with no plotting library: a numpy canvas and a zlib PNG writer.

Draws the per-chunk error (blue; failing chunks as red dots), the tolerance (dashed grey, labelled), the
fitted least-squares trend (orange), a title, the axes' names (chunk index, metric), the y range and the
chunk count, and a legend naming each mark, with a 3x5 pixel font (capitals, digits, punctuation).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np

from trt_tui.core.fileio import atomic_write

_FONT = {  # 3x5 glyphs, rows top to bottom, 3 bits each
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 2, 2), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7),
    ".": (0, 0, 0, 0, 2), "-": (0, 0, 7, 0, 0), "+": (0, 2, 7, 2, 0), "e": (0, 7, 7, 4, 7), " ": (0, 0, 0, 0, 0),
    "A": (2, 5, 7, 5, 5), "B": (6, 5, 6, 5, 6), "C": (3, 4, 4, 4, 3), "D": (6, 5, 5, 5, 6), "E": (7, 4, 6, 4, 7),
    "F": (7, 4, 6, 4, 4), "G": (3, 4, 5, 5, 3), "H": (5, 5, 7, 5, 5), "I": (7, 2, 2, 2, 7), "J": (1, 1, 1, 5, 2),
    "K": (5, 5, 6, 5, 5), "L": (4, 4, 4, 4, 7), "M": (5, 7, 7, 5, 5), "N": (6, 5, 5, 5, 5), "O": (2, 5, 5, 5, 2),
    "P": (6, 5, 6, 4, 4), "Q": (2, 5, 5, 6, 3), "R": (6, 5, 6, 5, 5), "S": (3, 4, 2, 1, 6), "T": (7, 2, 2, 2, 2),
    "U": (5, 5, 5, 5, 7), "V": (5, 5, 5, 5, 2), "W": (5, 5, 7, 7, 5), "X": (5, 5, 2, 5, 5), "Y": (5, 5, 2, 2, 2),
    "Z": (7, 1, 2, 4, 7), "_": (0, 0, 0, 0, 7), ":": (0, 2, 0, 2, 0), "(": (1, 2, 2, 2, 1), ")": (4, 2, 2, 2, 4),
    "/": (1, 1, 2, 4, 4), ",": (0, 0, 0, 2, 4), "=": (0, 7, 0, 7, 0), "%": (5, 1, 2, 4, 5), "<": (1, 2, 4, 2, 1),
    ">": (4, 2, 1, 2, 4), "|": (2, 2, 2, 2, 2), "'": (2, 2, 0, 0, 0), "*": (0, 5, 2, 5, 0), "[": (3, 2, 2, 2, 3),
    "]": (6, 2, 2, 2, 6), "?": (7, 1, 2, 0, 2), "!": (2, 2, 2, 0, 2), "#": (5, 7, 5, 7, 5),
}  # fmt: skip
_GLYPH_W = 4  # 3 pixels and a space, times the scale
WHITE, BLACK, GREY = (255, 255, 255), (40, 40, 40), (170, 170, 170)
BLUE, RED, ORANGE = (31, 119, 180), (214, 39, 40), (255, 127, 14)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))  # filter type 0 on every row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


class _Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.img = np.full((h, w, 3), 255, np.uint8)
        self.w, self.h = w, h

    def dot(self, x: float, y: float, color, r: int = 0) -> None:
        xi, yi = int(round(x)), int(round(y))
        self.img[max(0, yi - r) : min(self.h, yi + r + 1), max(0, xi - r) : min(self.w, xi + r + 1)] = color

    def line(self, x0, y0, x1, y1, color, dash: int = 0) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(steps + 1):
            if dash and (i // dash) % 2:
                continue
            t = i / steps
            self.dot(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, color)

    def text(self, x: int, y: int, s: str, color=BLACK, scale: int = 2) -> None:
        """`s` in capitals (the font has no lower case: 1e-05 reads 1E-05); characters it lacks are '?'."""
        for k, ch in enumerate(s.upper()):
            for row, bits in enumerate(_FONT.get(ch, _FONT["?"])):
                for col in range(3):
                    if bits >> (2 - col) & 1:
                        x0, y0 = x + (k * 4 + col) * scale, y + row * scale
                        self.img[max(0, y0) : min(self.h, y0 + scale), max(0, x0) : min(self.w, x0 + scale)] = color


def text_width(s: str, scale: int = 2) -> int:
    return len(s) * _GLYPH_W * scale


def render_png(values, *, failed=None, limit: float | None = None, slope: float | None = None,
               intercept: float | None = None, width: int = 800, height: int = 360, title: str | None = None,
               x_label: str = "chunk", y_label: str = "error", limit_label: str = "tolerance") -> bytes:  # fmt: skip
    """The plot: `values` against their index (x_label), named y_label, with a title, the limit line
    labelled, and a legend naming every mark drawn (line, failing dots, limit, trend)."""
    v = np.asarray(values, dtype=np.float64)
    c = _Canvas(width, height)
    left, right, top, bottom = 70, width - 20, 44, height - 52
    finite = v[np.isfinite(v)]
    ymax = float(finite.max()) if finite.size else 1.0
    has_limit = limit is not None and math.isfinite(limit)
    if has_limit:
        ymax = max(ymax, limit)
    ymax = ymax * 1.05 if ymax > 0 else 1.0
    n = max(v.size, 2)

    def px(i: float) -> float:
        return left + (right - left) * i / (n - 1)

    def py(e: float) -> float:
        return bottom - (bottom - top) * min(max(e, 0.0), ymax) / ymax

    if title:
        c.text(4, 4, _fit(title, width - 8))
    c.text(4, top - 18, _fit(y_label, width - 8))  # the y axis' name, above it
    c.line(left, top, left, bottom, BLACK)
    c.line(left, bottom, right, bottom, BLACK)
    if has_limit:
        c.line(left, py(limit), right, py(limit), GREY, dash=6)
        c.text(4, int(py(limit)) - 5, f"{limit:.2g}", GREY)
        named = f"{limit_label} {limit:.2g}"
        below = py(limit) < (top + bottom) / 2  # the label goes where the curve is less likely to be
        c.text(left + 6, int(py(limit)) + (6 if below else -14), named, GREY)  # the line says what it is
    fail = np.zeros(v.size, bool) if failed is None else np.asarray(failed, bool)
    prev = None
    for i, e in enumerate(v):
        if not math.isfinite(e):
            c.line(px(i), top, px(i), bottom, RED)
            prev = None
            continue
        p = (px(i), py(e))
        if prev is not None:
            c.line(*prev, *p, BLUE)
        prev = p
    for i in np.flatnonzero(fail):
        if math.isfinite(v[i]):
            c.dot(px(i), py(v[i]), RED, r=2)
    has_trend = slope is not None and intercept is not None
    if has_trend:
        c.line(px(0), py(intercept), px(v.size - 1), py(intercept + slope * (v.size - 1)), ORANGE)
    c.text(4, top - 4, f"{ymax:.2g}")
    c.text(4, bottom - 8, "0")
    c.text(left - 3, bottom + 8, "0")
    last = str(v.size - 1)
    c.text(right - text_width(last), bottom + 8, last)
    c.text((left + right - text_width(x_label)) // 2, bottom + 8, x_label)  # the x axis' name, under it
    legend = [("line", BLUE, y_label)]
    if fail.any():
        legend.append(("dot", RED, "failing " + x_label.split()[0]))
    if not np.isfinite(v).all():
        legend.append(("bar", RED, "inf/nan"))
    if has_limit:
        legend.append(("dash", GREY, limit_label))
    if has_trend:
        legend.append(("line", ORANGE, "trend (least squares)"))
    _legend(c, left, height - 18, legend)
    return encode_png(c.img)


def _legend(c: _Canvas, x: int, y: int, entries: list[tuple[str, tuple, str]]) -> None:
    """One row of swatch + name, left to right (names are cut to fit the width)."""
    for kind, color, name in entries:
        if kind == "dot":
            c.dot(x + 9, y + 4, color, r=2)
        elif kind == "bar":
            c.line(x + 9, y - 2, x + 9, y + 10, color)
        else:
            c.line(x, y + 4, x + 18, y + 4, color, dash=4 if kind == "dash" else 0)
        name = _fit(name, c.w - x - 30)
        c.text(x + 24, y, name)
        x += 24 + text_width(name) + 20
        if x >= c.w - 40:
            return


def _fit(s: str, width: int, scale: int = 2) -> str:
    """`s` cut to `width` pixels with a trailing '..' when it is longer."""
    room = width // (_GLYPH_W * scale)
    return s if len(s) <= room else s[: max(room - 2, 0)] + ".."


def write_png(path, values, *, overwrite: bool = False, **kwargs) -> Path:
    return atomic_write(path, render_png(values, **kwargs), overwrite=overwrite)
