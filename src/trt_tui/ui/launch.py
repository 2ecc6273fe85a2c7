"""Entry point from the CLI into the app (kept apart so `trt_tui.cli` never imports Textual eagerly)."""

from __future__ import annotations


def run_app(model: str | None, preset: str | None) -> int:
    from trt_tui.ui.app import TrtTuiApp

    app = TrtTuiApp(model_path=model, preset_path=preset)
    app.run()
    return app.return_code or 0
