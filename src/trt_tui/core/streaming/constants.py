"""Streaming constants the CLI needs to declare its flags, kept free of imports so that `trt-tui --help`
does not load the streaming engine (numpy, ONNX). The contract and engine modules import them from here."""

MODES = ("closed-loop", "functional")  # closed-loop: each side feeds back its own state; functional: the reference's
