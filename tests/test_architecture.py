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


def test_cli_start_imports_no_heavy_package():
    """`trt-tui --help` and every command's start pay only for argparse: the command modules import the core,
    ONNX, numpy, ONNX Runtime, Polygraphy, rich and Textual inside their handlers (see trt_tui.commands)."""
    code = (
        "import sys\n"
        "import trt_tui.cli\n"
        "trt_tui.cli.build_parser()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = ("onnx", "numpy", "onnxruntime", "polygraphy", "tensorrt", "textual", "rich")
    bad = sorted(m for m in loaded if m.split(".")[0] in heavy)
    assert not bad, f"build_parser() imported {bad[:10]}"
    # from the core, only the packages and their dependency-free `constants` modules (and the errors)
    allowed = {"trt_tui.core", "trt_tui.core.errors", "trt_tui.core.build", "trt_tui.core.parity",
               "trt_tui.core.preset", "trt_tui.core.streaming",
               "trt_tui.core.jsonio",  # the one JSON encoder: stdlib only, numpy looked up not imported
               "trt_tui.core.safe_text"}  # the one terminal sanitizer: stdlib re only  # fmt: skip
    core = sorted(m for m in loaded if m.startswith("trt_tui.core") and m not in allowed and not m.endswith(".constants"))
    assert not core, f"build_parser() imported {core}"
    assert "trt_tui.core.build.manager" not in loaded


def test_lazy_core_packages_export_what_they_list():
    """trt_tui.core.build and trt_tui.core.preset import their names on first use; each listed name resolves."""
    code = (
        "import trt_tui.core.build as b, trt_tui.core.preset as p\n"
        "for mod in (b, p):\n"
        "    for name in mod.__all__:\n"
        "        getattr(mod, name)\n"
        "    assert set(mod.__all__) <= set(dir(mod))\n"
        "from trt_tui.core.build import CHOICES, JobManager\n"
        "from trt_tui.core.build.selection import CHOICES as C2\n"
        "from trt_tui.core.preset import FORMATS, PinRule, PinRules\n"
        "from trt_tui.core.preset.exports import FORMATS as F2\n"
        "assert CHOICES is C2 and FORMATS is F2 and PinRule is PinRules\n"
        "try:\n"
        "    b.no_such_name\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
