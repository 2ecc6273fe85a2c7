"""Corpus routes that fail on today's main, each with its finding (see the corpus notes, FINDINGS).

The corpus test marks these xfail(strict=False) so main stays green while the fixes land; when a route
XPASSes, its fix has landed: delete its line here.
"""

from __future__ import annotations

F1_SCALAR_RANK = "F1 rewrites: 0-d constants become shape [1] (tensor_from), rank errors downstream"
F2_BF16_OLD_OPSET = "F2 rewrites: bf16 on opset <= 12: Cast to bfloat16 needs opset 13 (invalid model / silent no-op)"
F3_BF16_OP_TYPES = "F3 rewrites: bf16 mixed rewrite gives Where (opset < 16) a bfloat16 input the op does not accept"
F4_SUBGRAPHS = "F4 rewrites: the mixed-precision rewrite (convert) refuses If/Loop subgraphs in one line (the emulation handles them)"
F5_CONTRACT_PAIRS = "F5 streaming: contract init pairs by shape alone (signal output -> signal input) or misses h/c states"
F6_CONST_DIVERGENCE = "F6 parity: first divergence is a Constant"
F8_UPGRADE_RESHAPE = "F8 rewrites: bf16 mixed of opset-12 ddddocr_ocr fails onnx.checker after the opset upgrade (Reshape_101 rank 3 vs 2)"
F9_SEARCH_SUBGRAPHS = "F9 search: If/Loop/Scan models are refused in one line (the sensitivity pass and the mixed export do not rewrite bodies)"
F7_ORT_CRASH = "F7 ORT bug: the fp16 mixed model with a pinned GRU crashes ONNX Runtime 1.32 (SIGSEGV at ORT_ENABLE_ALL); convert says so in one line, exit 2"

KNOWN: dict[tuple[str, str], str] = {
    # F1 (scalar rank), F2 (bf16 on opset 11/12: invalid models, silent no-op), F3 (Where bf16), F5 (contract init
    # pairs) and F6 (constant first divergence) were fixed on main (regression fixtures in test_findings.py).
    # F4: subgraphs. The emulation now rewrites If/Loop/Scan bodies (emulate, compare and stream pass); the mixed
    # rewrite (convert) still refuses them, in one line
    **{(m, r): F4_SUBGRAPHS for m in ("oww_silero_vad", "silero_vad_op15") for r in ("convert fp16", "convert bf16")},
    # F9: the search refuses them too, in one line (exit 2)
    **{(m, "search fp16"): F9_SEARCH_SUBGRAPHS for m in ("oww_silero_vad", "silero_vad_op15")},
    # F7: a rewrite that crashes ONNX Runtime (an ORT bug): convert now says so in one line, exit 2
    ("torch_gru_enhancer", "convert fp16"): F7_ORT_CRASH,
    # F8 (a stale output rank after the bf16 opset upgrade) was fixed: declarations that contradict inference are
    # corrected with a warning
}
