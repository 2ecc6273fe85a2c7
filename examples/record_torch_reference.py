"""Record a PyTorch streaming module as a trt-tui reference, then check ONNX Runtime and fp16/bf16 against it.

    python examples/record_torch_reference.py OUT_DIR [--chunks 300]

Needs torch, numpy and onnx (for the export) only; torch is not a trt-tui dependency: run this in the
environment of your model (checked with torch 2.13.0, onnx, numpy in a venv of their own).
It writes into OUT_DIR:
  encoder.onnx             the module exported to ONNX (inputs x, conv_cache, h; outputs y, conv_cache_next, h_next)
  ref/                     the recorded reference: one chunk_*.npz per chunk + manifest.json (trt_tui.recorder)
and prints the trt-tui commands to run next. The recording is made by the framework itself, chunk by chunk,
with its own state fed back: exactly what the seeds' `pytorch_reference_300.jsonl` holds.

The recorder is the one numpy-only module of trt_tui (`trt_tui/recorder.py`): with trt-tui installed,
`from trt_tui.recorder import Recorder` imports no ONNX, ONNX Runtime or Textual; without it, copy that file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

try:
    from trt_tui.recorder import Recorder
except ImportError:  # trt-tui not installed here: use the file of this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from trt_tui.recorder import Recorder

FEATURES, HIDDEN, CACHE, FRAMES = 16, 32, 4, 8


class StreamingEncoder(nn.Module):
    """A causal depthwise conv with a left-context cache, then a GRU with its hidden state: two states."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(FEATURES, HIDDEN)
        self.conv = nn.Conv1d(HIDDEN, HIDDEN, CACHE + 1, groups=HIDDEN)
        self.gru = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, FEATURES)

    def forward(self, x, conv_cache, h):  # x [1, T, F], conv_cache [1, HIDDEN, CACHE], h [1, 1, HIDDEN]
        z = self.proj(x).transpose(1, 2)
        zc = torch.cat([conv_cache, z], dim=2)
        y = torch.nn.functional.silu(self.conv(zc)).transpose(1, 2)
        y, h_next = self.gru(y, h)
        return self.out(y), zc[:, :, -CACHE:], h_next


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--chunks", type=int, default=300)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = StreamingEncoder().eval()
    x = torch.zeros(1, FRAMES, FEATURES)
    state = {"conv_cache": torch.zeros(1, HIDDEN, CACHE), "h": torch.zeros(1, 1, HIDDEN)}
    onnx_path = args.out / "encoder.onnx"
    export_kwargs = dict(input_names=["x", "conv_cache", "h"], output_names=["y", "conv_cache_next", "h_next"], opset_version=17)
    try:
        torch.onnx.export(model, (x, state["conv_cache"], state["h"]), str(onnx_path), dynamo=False, **export_kwargs)
    except TypeError:  # torch versions without the dynamo switch
        torch.onnx.export(model, (x, state["conv_cache"], state["h"]), str(onnx_path), **export_kwargs)

    rng = np.random.default_rng(0)
    with torch.no_grad(), Recorder(args.out / "ref", meta={"framework": f"torch {torch.__version__}"}, overwrite=True) as rec:
        for _ in range(args.chunks):
            feeds = {"x": torch.from_numpy(rng.standard_normal((1, FRAMES, FEATURES)).astype(np.float32)), **state}
            y, conv_next, h_next = model(feeds["x"], feeds["conv_cache"], feeds["h"])
            outs = {"y": y, "conv_cache_next": conv_next, "h_next": h_next}
            rec.write(inputs=feeds, outputs=outs)  # the state going in, and coming out
            state = {"conv_cache": conv_next, "h": h_next}
    print(f"wrote {onnx_path} and {args.out / 'ref'} ({args.chunks} chunks). Next:")
    print(f"  trt-tui contract init {onnx_path} -o {args.out / 'encoder.contract.json'}   # review the guesses")
    print(f"  trt-tui stream {onnx_path} --contract {args.out / 'encoder.contract.json'} --reference recorded:{args.out / 'ref'} "
          "--candidate emulate:fp16 --candidate emulate:bf16 --mode functional")
    return 0


if __name__ == "__main__":
    sys.exit(main())
