"""Contracts that check nothing: found before a run (here) and after it (`StreamReport.unchecked`).

A contract guessed from names and shapes can look fine and still check nothing: a recurrent state fed random
noise every chunk instead of the model's own state (an LSTM VAD whose h/c pairs were not found), an output
fed back as the next input. Before the run: an input named like a state (cache, hidden, h/c, state, ...) that
no state pair feeds and no --inputs file provides gets generated values every chunk, never a real state.
After the run (engine.StreamReport): a state that never leaves its initial value, and a float output whose
error is exactly zero on every chunk while the candidate ran in low precision.
"""

from __future__ import annotations

from trt_tui.core.streaming.contract import Contract
from trt_tui.core.streaming.contract_model import looks_like_state


def unfed_state_inputs(contract: Contract, from_file: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """'this contract checks nothing for X' notes for state-like inputs that get generated values."""
    notes = []
    fed = contract.state_inputs
    for name, spec in contract.inputs.items():
        if name in fed or name in from_file or spec.feed is None or not looks_like_state(name):
            continue
        what = {"random": "uniform noise", "normal": "normal noise", "constant": f"the constant {spec.feed.value:g}",
                "frames": "the frame count"}.get(spec.feed.kind, spec.feed.kind)  # fmt: skip
        notes.append(f"this contract checks nothing for {name}: it is named like a state but gets {what} every "
                     "chunk, never the model's own state; add a state pair {output, input} for it")  # fmt: skip
    return notes
