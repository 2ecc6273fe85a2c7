"""The Textual app. Logic lives in trt_tui.core; this package only shows it."""
