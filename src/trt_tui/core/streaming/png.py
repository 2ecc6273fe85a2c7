"""Error against chunk as a PNG, with no plotting library: a numpy canvas and a zlib PNG writer.

Draws the per-chunk error (blue; failing chunks as red dots), the tolerance (dashed grey), the fitted
least-squares trend (orange), and labels the y range and the chunk count with a 3x5 pixel font.
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
}  # fmt: skip
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
        for k, ch in enumerate(s):
            for row, bits in enumerate(_FONT.get(ch, _FONT[" "])):
                for col in range(3):
                    if bits >> (2 - col) & 1:
                        x0, y0 = x + (k * 4 + col) * scale, y + row * scale
                        self.img[max(0, y0) : min(self.h, y0 + scale), max(0, x0) : min(self.w, x0 + scale)] = color


def render_png(values, *, failed=None, limit: float | None = None, slope: float | None = None,
               intercept: float | None = None, width: int = 800, height: int = 360) -> bytes:  # fmt: skip
    v = np.asarray(values, dtype=np.float64)
    c = _Canvas(width, height)
    left, right, top, bottom = 70, width - 20, 20, height - 40
    finite = v[np.isfinite(v)]
    ymax = float(finite.max()) if finite.size else 1.0
    if limit is not None and math.isfinite(limit):
        ymax = max(ymax, limit)
    ymax = ymax * 1.05 if ymax > 0 else 1.0
    n = max(v.size, 2)

    def px(i: float) -> float:
        return left + (right - left) * i / (n - 1)

    def py(e: float) -> float:
        return bottom - (bottom - top) * min(max(e, 0.0), ymax) / ymax

    c.line(left, top, left, bottom, BLACK)
    c.line(left, bottom, right, bottom, BLACK)
    if limit is not None and math.isfinite(limit):
        c.line(left, py(limit), right, py(limit), GREY, dash=6)
        c.text(4, int(py(limit)) - 5, f"{limit:.2g}", GREY)
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
    if slope is not None and intercept is not None:
        c.line(px(0), py(intercept), px(v.size - 1), py(intercept + slope * (v.size - 1)), ORANGE)
    c.text(4, top - 4, f"{ymax:.2g}")
    c.text(4, bottom - 8, "0")
    c.text(left - 3, bottom + 10, "0")
    last = str(v.size - 1)
    c.text(right - len(last) * 8, bottom + 10, last)
    return encode_png(c.img)


def write_png(path, values, *, overwrite: bool = False, **kwargs) -> Path:
    return atomic_write(path, render_png(values, **kwargs), overwrite=overwrite)
