"""`trt-tui`: the headless front door over the same core the TUI uses.

`trt-tui [MODEL] [--preset FILE]` opens the app; `trt-tui COMMAND ...` runs a command headless (for CI).
Each command lives in its own module under `trt_tui.commands` and registers itself with `register()`.
Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from trt_tui import __version__
from trt_tui.core.errors import UserError
from trt_tui.core.safe_text import escape_controls

# Module names under trt_tui.commands; each defines register(subparsers) -> None and sets `func` defaults.
COMMAND_MODULES = ["inspect", "demo", "compare", "contract", "preset", "convert", "build", "builds", "stream", "search",
                   "calibrate"]


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit 2 (argparse prints the whole usage block otherwise)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {escape_controls(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trt-tui",
        description="Explore TensorRT engine builds: pin layers to FP32, compose presets, build, and compare "
        "layer-wise drift. Run without a command to open the terminal UI.",
        epilog=_runtimes_line(),
    )
    parser.add_argument("--version", action="version", version=f"trt-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"trt_tui.commands.{name}").register(sub)
    return parser


def _runtimes_line() -> str:
    """Which ONNX Runtime build is installed, read from package metadata (importing it would cost ~0.3 s).

    onnxruntime and onnxruntime-gpu install the same module: the GPU build adds the CUDA (and TensorRT) EPs."""
    from importlib.metadata import PackageNotFoundError, version

    for dist, what in (("onnxruntime-gpu", "CUDA and CPU execution providers: --candidate cuda, trt-tui calibrate"),
                       ("onnxruntime", "CPU execution provider only; pip install onnxruntime-gpu for --candidate cuda")):  # fmt: skip
        try:
            return f"ONNX Runtime: {dist} {version(dist)} ({what})."
        except PackageNotFoundError:
            continue
    return "ONNX Runtime: not installed."


def _app_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trt-tui", description="Open the trt_tui terminal UI.")
    parser.add_argument("model", nargs="?", help="ONNX model to open")
    parser.add_argument("--preset", help="preset TOML file to open")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        known = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # noqa: SLF001
        if argv and (argv[0] in known or argv[0] in ("-h", "--help", "--version")):
            with safe_streams():
                try:
                    args = parser.parse_args(argv)
                except SystemExit as exc:  # a bad flag (one line, see _Parser): its exit code; --help exits
                    if not exc.code:
                        raise
                    return exc.code if isinstance(exc.code, int) else 2
                return int(args.func(args) or 0)
        args = _app_parser().parse_args(argv)
        for given in (args.model, args.preset):  # a typo should not open a full-screen app to say so
            if given is not None and not os.path.isfile(given):
                raise UserError("no such file" if not os.path.exists(given) else "not a regular file", given)
        from trt_tui.ui.launch import run_app  # the UI is imported only when the UI is wanted

        return run_app(model=args.model, preset=args.preset)
    except UserError as exc:
        print(f"trt-tui: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("trt-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `trt-tui inspect ... | head`
        return 0
    except OSError as exc:  # the machine said no (read-only, full, permission): the user's to fix, one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"trt-tui: error: {escape_controls(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except RecursionError:  # a TOML/JSON/ONNX file nested beyond what any parser here follows
        print("trt-tui: error: input nested too deeply to read (a crafted or corrupt file?)", file=sys.stderr)
        return 2
    except MemoryError:
        print("trt-tui: error: not enough memory for this input (a huge tensor or file?)", file=sys.stderr)
        return 2


@contextlib.contextmanager
def safe_streams():
    """stdout and stderr escape control characters while a command runs (see commands/output.py)."""
    from trt_tui.commands.output import SafeStream

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])
    try:
        yield
    finally:
        try:
            sys.stdout.flush()
        finally:
            sys.stdout, sys.stderr = saved
