"""Entry point from the CLI into the app (kept apart so `trt_tui.cli` never imports Textual eagerly)."""

from __future__ import annotations


def run_app(model: str | None, preset: str | None) -> int:
    from trt_tui.ui.app import TrtTuiApp
    from trt_tui.ui.native_stderr import NativeStderr

    app = TrtTuiApp(model_path=model, preset_path=preset)
    # ONNX Runtime (in this process: parity, streaming) writes to fd 2 from C++: into the message log, not
    # over the screen
    with NativeStderr(app.native_stderr):
        app.run()
    return app.return_code or 0
