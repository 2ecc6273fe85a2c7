"""All of trt_tui's logic. This package must never import Textual (a test enforces it)."""
