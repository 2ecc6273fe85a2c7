"""Parity constants the CLI needs to declare its flags, kept free of imports (no numpy, no ONNX) so that
`trt-tui --help` does not load the comparison engine. The engine modules import them from here."""

ERROR_STATS = ("elemwise", "max", "mean", "median", "quantile")  # statistics a Tolerance can check
TOP_K = 8  # worst elements kept per tensor by default
DEFAULT_SEED = 1  # Polygraphy's constants.DEFAULT_SEED
RANK_KEYS = ("rel_rms", "max_abs", "p99_abs", "mean_abs", "cosine", "topo_index")  # orderings of CompareResult.ranked
# Tensor data held at once (both sides of one batch). Segmented execution makes small batches nearly free
# (one inference per side whatever the batch count), so the default stays well below typical RAM.
DEFAULT_MAX_MEMORY = 128 << 20
