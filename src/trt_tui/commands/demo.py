"""`trt-tui demo`: open the bundled demo model in the TUI (or print where it is, headless)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="open the bundled streaming-encoder demo model and its example preset in the terminal UI",
        description="Open the bundled demo model (a small streaming conformer-like encoder with explicit caches).",
    )
    p.add_argument("--path", action="store_true", help="print the demo model's path and exit (no UI)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trt_tui.core.resources import demo_model_path, demo_preset_path  # here, not at the top: keeps the CLI's start fast

    model = demo_model_path()
    if args.path:
        print(model)
        return 0
    from trt_tui.ui.launch import run_app

    return run_app(model=str(model), preset=str(demo_preset_path()))
