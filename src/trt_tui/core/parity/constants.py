"""Parity constants the CLI needs to declare its flags, kept free of imports (no numpy, no ONNX) so that
`trt-tui --help` does not load the comparison engine. The engine modules import them from here."""

ERROR_STATS = ("elemwise", "max", "mean", "median", "quantile")  # statistics a Tolerance can check
TOP_K = 8  # worst elements kept per tensor by default
DEFAULT_SEED = 1  # Polygraphy's constants.DEFAULT_SEED
RANK_KEYS = ("rel_rms", "max_abs", "p99_abs", "mean_abs", "cosine", "topo_index")  # orderings of CompareResult.ranked
# Tensor data held at once (both sides of one batch). Segmented execution makes small batches nearly free
# (one inference per side whatever the batch count), so the default stays well below typical RAM.
DEFAULT_MAX_MEMORY = 128 << 20
# Without --max-memory a comparison holds at most this share of the model's tensor and weight bytes at once,
# within [MIN_AUTO_MAX_MEMORY, DEFAULT_MAX_MEMORY]: on small models the 128 MB budget held everything at once
# (both sides' activations: most of the peak above the runtime's own ~65 MB). Measured on 7 real models:
# peak RSS -15..-40% for +0..+40% time (more segments), nothing changes for models of GBs.
AUTO_MAX_MEMORY_SHARE = 8
MIN_AUTO_MAX_MEMORY = 8 << 20

# Unit roundoff of the low precisions (half an ulp at 1.0, relative): fp16 has 10 stored mantissa bits,
# bf16 7. One rounding moves a value by at most this much, relative.
UNIT_ROUNDOFF = {"fp16": 2.0**-11, "bf16": 2.0**-8}
# Default tolerance per low precision: (atol, rtol, statistic), checked as Polygraphy does ("median": the
# median |diff| must exceed atol AND the median relative diff exceed rtol to fail). Why these numbers (README,
# "Tolerances"): rounding one tensor gives a median relative error near u/3; benign drift grows slowly with
# depth (the 2-layer demo ends near 2.6u in rel_rms); rtol = 10u (fp16 5e-3, bf16 4e-2) is well above what
# rounding explains and far below what overflow, cancellation or saturation produce. atol = 1e-4 sits above
# fp16's subnormal range (< 6.1e-5, where relative precision is lost by design). The median, not the
# elementwise check: every tensor with values near zero has some elements whose relative error explodes.
DEFAULT_TOLERANCES = {"fp16": (1e-4, 5e-3, "median"), "bf16": (1e-4, 4e-2, "median")}
# A failing tensor is a divergence of its own (not drift carried from upstream) when its rel_rms exceeds
# this many times the largest of its inputs' (graph inputs and weights count as rounded once: u/2).
DIVERGENCE_GROWTH = 2.0
