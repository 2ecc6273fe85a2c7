"""trt_tui: explore TensorRT engine builds from the terminal (and headless, for CI)."""

__version__ = "0.1.0"
