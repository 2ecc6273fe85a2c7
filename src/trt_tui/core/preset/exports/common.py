"""Helpers shared by the exports: path rendering and shell formatting (always through `shell_quote`)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from trt_tui.core.preset.resolved import ResolvedPreset
from trt_tui.core.safe_text import escape_controls, has_controls


def shown_path(path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> str:
    """How every export, `preset show` and the TUI write a path: relative to `base_dir` (where the user runs
    the command, or where a script lives) when the path is inside it, absolute otherwise. Never a `../` chain:
    a command copied elsewhere breaks on those, and `../../../root/.cache/m.onnx` hides what it names.
    Normalised (`presets/../src` -> `src`) without resolving links, so it names the path the user gave."""
    absolute = Path(os.path.abspath(path))
    if base_dir is None:
        return absolute.as_posix()
    base = Path(os.path.abspath(base_dir))
    if absolute == base:
        return "."
    if not absolute.is_relative_to(base):
        return absolute.as_posix()
    rel = absolute.relative_to(base).as_posix()
    return f"./{rel}" if rel.startswith("-") else rel  # never read as an option


class Paths:
    """Renders paths through `shown_path` for one base directory (None: always absolute)."""

    def __init__(self, base_dir: Path | None) -> None:
        self.base_dir = base_dir

    def __call__(self, path: Path) -> str:
        return shown_path(path, self.base_dir)


def comment(text: str) -> str:
    """A shell comment line. Text from the user's files (a preset's name, its path) is data: a newline in it
    would end the comment and run the rest as a command, so every control character is escaped."""
    return "# " + escape_controls(text)


def shell_quote(arg: str) -> str:
    """shlex.quote, except that a word with control characters (an ESC or a newline in a node or file name)
    is written in bash's ANSI-C quoting, `$'...\\x1b...'`: the same word for bash, and nothing a terminal
    interprets when the script or command is shown."""
    if not has_controls(arg):
        return shlex.quote(arg)
    body = "".join(_ansi_c(ch) for ch in arg)
    return f"$'{body}'"


def _ansi_c(ch: str) -> str:
    if ch in "\\'":
        return "\\" + ch
    if not has_controls(ch):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"  # \\u: the UTF-8 of the character, as in the name


def shape_text(shape: tuple[int, ...], sep: str = "x") -> str:
    return sep.join(str(d) for d in shape)


def command(args: list[str], *, head: int = 1, multiline: bool = True) -> str:
    """A shell command line, every argument through shlex.quote. Long commands put each option with its
    values on its own line (backslash continuations, as the seeds write them); the first `head` words stay
    together. Line breaks are cosmetic: the words are the same either way."""
    quoted = [shell_quote(a) for a in args]
    if not multiline:
        return " ".join(quoted)
    lines = [quoted[:head]]
    for raw, word in zip(args[head:], quoted[head:]):
        if raw.startswith("-") or len(lines) == 1:
            lines.append([word])
        else:
            lines[-1].append(word)
    if len(lines) <= 3:
        return " ".join(quoted)
    return " \\\n  ".join(" ".join(line) for line in lines)


def convert_args(r: ResolvedPreset, paths: Paths, tool: str = "trt-tui", *, force: bool = False) -> list[str]:
    """`trt-tui convert`: the TensorRT 11 step that writes the pins into a mixed-precision ONNX.

    `force` lets a build script be re-run (convert never replaces its output otherwise)."""
    assert r.converted_model_path is not None
    args = [tool, "convert", paths(r.model_path)]
    rules = r.pin_rules
    if r.source_path is not None:
        args += ["--preset", paths(r.source_path)]
    else:
        args += ["--precision", r.precision]
        # `--pin=NAME`, not `--pin NAME`: a name starting with '-' must stay a value, never become an option
        if rules.exclude:  # exclusions have no flag: name every resolved node instead
            args += [f"--pin={name}" for name in r.pinned_nodes]
        else:
            args += [f"--pin-op={op}" for op in rules.op_types]
            args += [f"--pin-match={pattern}" for pattern in rules.patterns]
            args += [f"--pin={name}" for name in rules.names]
    args += ["-o", paths(r.converted_model_path)]
    if r.keep_io_types:
        args.append("--keep-io-types")
    if force:
        args.append("--force")
    return args
