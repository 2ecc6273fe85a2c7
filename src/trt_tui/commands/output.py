"""Shared CLI output helpers: rich consoles and JSON printing."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from trt_tui.core import jsonio

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported when a console is first asked for, not here: every command module imports this one, and
# `trt-tui --help` should not pay for rich.


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(payload: Any, *, pretty: bool = True) -> None:
    """Print JSON; `pretty=False` for big payloads (json's C encoder is used only without indentation)."""
    sys.stdout.write(jsonio.dumps(payload, indent=2 if pretty else None))
    sys.stdout.write("\n")


BIG_TABLE = 500  # rows above which tables are printed as plain aligned text (rich tables cost ~1 ms a row)


def print_plain_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [title, fmt.format(*headers), fmt.format(*("-" * w for w in widths[:-1]), "-" * len(headers[-1]))]
    out.extend(fmt.format(*row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")
