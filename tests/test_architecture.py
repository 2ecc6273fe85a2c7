"""The core never imports Textual: checked in a fresh interpreter, as harlequin does."""

import pkgutil
import subprocess
import sys

import trt_tui.core


def test_core_does_not_import_textual():
    modules = [m.name for m in pkgutil.walk_packages(trt_tui.core.__path__, "trt_tui.core.")]
    assert len(modules) >= 5
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported textual: {out.stdout}"


def test_cli_imports_no_textual_for_headless_commands():
    code = "import sys; import trt_tui.cli as c; c.build_parser(); print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
