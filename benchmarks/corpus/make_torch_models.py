"""Export the corpus's torch architectures that no wheel ships, as small deterministic ONNX fixtures (torch/).

Usage (torch is never a trt_tui dependency; use a separate venv):
    python3 -m venv ~/.cache/trt_tui/torchvenv
    ~/.cache/trt_tui/torchvenv/bin/pip install torch==2.13.0 onnxscript onnx==1.23.2
    ~/.cache/trt_tui/torchvenv/bin/python benchmarks/corpus/make_torch_models.py

Writes (fixed seeds, byte for byte when run as this script; each well under 1 MB):
- torch/transformer_encoder.onnx: 2 pre-norm encoder layers (LayerNormalization, multi-head Softmax attention,
  GELU FFN), dynamic batch and time; exported with the dynamo exporter (opset 18).
- torch/conformer_stream.onnx: one streaming conformer block (FFN/2, attention over a key/value cache of past
  frames, depthwise causal conv with a left-context cache, FFN/2, LayerNorm), explicit cache inputs and
  outputs: past_key/past_value -> present_key/present_value, conv_cache -> conv_cache_next; TorchScript
  exporter, opset 17.
- torch/transformer_decoder.onnx: a 2-layer causal decoder over token ids (embedding Gather, rotary-free learned
  positions, pre-norm, Softmax attention) with a rolling key/value cache per layer in the Hugging Face naming
  (past_key_values.N.key/value -> present.N.key/value), logits out; TorchScript exporter, opset 17.
- torch/tiny_tts.onnx: a VITS-like text-to-speech toy: phoneme ids + their count in, a duration predictor
  (exp, ceil) whose sum sets the number of output frames (Range + an alignment matrix: the output length depends
  on rounded values, so fp16 can change it), an unseeded RandomNormalLike noise term (as VITS samples its
  prior), a Conv decoder to a waveform; TorchScript exporter, opset 17.
- torch/gru_enhancer.onnx: a GRU speech enhancer (mask on magnitude frames), `enhanced` has the shape of
  `noisy` (the shape-alone pairing trap) and the GRU state is h_in -> h_out; TorchScript exporter, opset 14.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent / "torch"
D, HEADS, FFN = 32, 4, 64


class EncoderLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(D, FFN), nn.GELU(), nn.Linear(FFN, D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ffn(self.ln2(x))


class TransformerEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, D)
        self.blocks = nn.ModuleList([EncoderLayer() for _ in range(2)])
        self.norm = nn.LayerNorm(D)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.proj(features)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class ConformerStream(nn.Module):
    """One conformer block run chunk by chunk: attention sees CACHE past frames, the conv sees K-1 past frames."""

    KERNEL, CACHE = 5, 16

    def __init__(self) -> None:
        super().__init__()
        self.ffn1 = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, FFN), nn.SiLU(), nn.Linear(FFN, D))
        self.ln_att = nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.ln_conv = nn.LayerNorm(D)
        self.pw1 = nn.Conv1d(D, 2 * D, 1)
        self.dw = nn.Conv1d(D, D, self.KERNEL, groups=D)
        self.bn = nn.BatchNorm1d(D)
        self.pw2 = nn.Conv1d(D, D, 1)
        self.ffn2 = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, FFN), nn.SiLU(), nn.Linear(FFN, D))
        self.ln_out = nn.LayerNorm(D)

    def forward(self, x, past_key, past_value, conv_cache):
        # x [B, T, D]; past_key/past_value [B, CACHE, D]; conv_cache [B, D, KERNEL-1]
        x = x + 0.5 * self.ffn1(x)
        h = self.ln_att(x)
        k = torch.cat([past_key, self.k(h)], dim=1)
        v = torch.cat([past_value, self.v(h)], dim=1)
        b, t, _ = h.shape
        q = self.q(h).reshape(b, t, HEADS, D // HEADS).transpose(1, 2)
        kh = k.reshape(b, -1, HEADS, D // HEADS).transpose(1, 2)
        vh = v.reshape(b, -1, HEADS, D // HEADS).transpose(1, 2)
        att = torch.softmax(q @ kh.transpose(-1, -2) / math.sqrt(D // HEADS), dim=-1) @ vh
        x = x + self.o(att.transpose(1, 2).reshape(b, t, D))
        c = self.ln_conv(x).transpose(1, 2)
        c = nn.functional.glu(self.pw1(c), dim=1)
        c = torch.cat([conv_cache, c], dim=2)
        conv_cache_next = c[:, :, -(self.KERNEL - 1):]
        c = self.pw2(nn.functional.silu(self.bn(self.dw(c))))
        x = x + c.transpose(1, 2)
        x = self.ln_out(x + 0.5 * self.ffn2(x))
        return x, k[:, -self.CACHE:], v[:, -self.CACHE:], conv_cache_next


class Decoder(nn.Module):
    """Token ids in, logits out; each layer attends over WINDOW cached positions plus the new ones."""

    VOCAB, WINDOW, LAYERS = 64, 16, 2

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(self.VOCAB, D)
        self.ln1 = nn.ModuleList([nn.LayerNorm(D) for _ in range(self.LAYERS)])
        self.ln2 = nn.ModuleList([nn.LayerNorm(D) for _ in range(self.LAYERS)])
        self.qkv = nn.ModuleList([nn.Linear(D, 3 * D) for _ in range(self.LAYERS)])
        self.out = nn.ModuleList([nn.Linear(D, D) for _ in range(self.LAYERS)])
        self.ffn = nn.ModuleList([nn.Sequential(nn.Linear(D, FFN), nn.GELU(), nn.Linear(FFN, D))
                                  for _ in range(self.LAYERS)])  # fmt: skip
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, self.VOCAB)

    def forward(self, input_ids, *past):
        x = self.embed(input_ids)
        b, t, _ = x.shape
        dh = D // HEADS
        # causal mask over [cached WINDOW | new t] keys: new position i sees every cached key and new keys <= i
        keys = torch.arange(self.WINDOW + t)
        mask = keys[None, :] > (self.WINDOW + torch.arange(t))[:, None]
        presents = []
        for i in range(self.LAYERS):
            q, k, v = self.qkv[i](self.ln1[i](x)).split(D, dim=-1)
            q, k, v = (z.reshape(b, t, HEADS, dh).transpose(1, 2) for z in (q, k, v))
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
            att = torch.softmax(scores.masked_fill(mask, -1e4), dim=-1) @ v
            x = x + self.out[i](att.transpose(1, 2).reshape(b, t, D))
            x = x + self.ffn[i](self.ln2[i](x))
            presents += [k[:, :, -self.WINDOW:], v[:, :, -self.WINDOW:]]
        return (self.head(self.norm(x)), *presents)


class TinyTts(nn.Module):
    VOCAB, HOP = 40, 8

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(self.VOCAB, D)
        self.enc = nn.Conv1d(D, D, 3, padding=1)
        self.dur = nn.Linear(D, 1)
        self.dec = nn.ConvTranspose1d(D, 1, self.HOP, stride=self.HOP)

    def forward(self, phoneme_ids, phoneme_lengths):
        h = torch.relu(self.enc(self.embed(phoneme_ids).transpose(1, 2))).transpose(1, 2)  # [1, P, D]
        valid = (torch.arange(phoneme_ids.shape[1])[None, :] < phoneme_lengths[:, None]).float()
        dur = torch.ceil(torch.exp(self.dur(h).squeeze(-1)) * valid)  # [1, P] frames per phoneme
        ends = torch.cumsum(dur, dim=1)
        frames = torch.arange(ends[0, -1].long())  # the output length depends on rounded durations
        t = frames.float()[:, None]
        align = ((t >= ends[0] - dur[0]) & (t < ends[0])).float()  # [F, P]
        z = align @ h[0]  # [F, D]
        z = z + 0.3 * torch.randn_like(z)  # the prior's sample, unseeded
        return self.dec(z.t()[None]).squeeze(1)  # [1, F * HOP]


class GruEnhancer(nn.Module):
    BINS, HIDDEN = 64, 48

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(self.BINS, self.HIDDEN)
        self.gru = nn.GRU(self.HIDDEN, self.HIDDEN, batch_first=True)
        self.mask = nn.Linear(self.HIDDEN, self.BINS)

    def forward(self, noisy, h_in):
        y, h_out = self.gru(torch.relu(self.inp(torch.log1p(noisy))), h_in)
        return noisy * torch.sigmoid(self.mask(y)), h_out


def _randomize_norms(model: nn.Module) -> None:
    """Non-trivial LayerNorm/BatchNorm parameters, so that a wrong rewrite of them shows."""
    for m in model.modules():
        if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.1)
            nn.init.normal_(m.bias, 0.0, 0.1)
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def export_all() -> list[Path]:
    OUT.mkdir(exist_ok=True)
    written = []

    torch.manual_seed(0)
    enc = TransformerEncoder().eval()
    _randomize_norms(enc)
    path = OUT / "transformer_encoder.onnx"
    batch, time = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("time", min=2, max=512)
    program = torch.onnx.export(enc, (torch.randn(2, 24, 16),), dynamo=True, opset_version=18,
                                input_names=["features"], output_names=["encoded"],
                                dynamic_shapes=({0: batch, 1: time},), optimize=True)  # fmt: skip
    program.save(str(path))
    written.append(path)

    torch.manual_seed(1)
    conf = ConformerStream().eval()
    _randomize_norms(conf)
    path = OUT / "conformer_stream.onnx"
    args = (torch.randn(1, 8, D), torch.randn(1, 16, D), torch.randn(1, 16, D), torch.randn(1, D, 4))
    torch.onnx.export(conf, args, str(path), dynamo=False, opset_version=17,
                      input_names=["x", "past_key", "past_value", "conv_cache"],
                      output_names=["y", "present_key", "present_value", "conv_cache_next"],
                      dynamic_axes={"x": {0: "B", 1: "T"}, "past_key": {0: "B"}, "past_value": {0: "B"},
                                    "conv_cache": {0: "B"}, "y": {0: "B", 1: "T"}, "present_key": {0: "B"},
                                    "present_value": {0: "B"}, "conv_cache_next": {0: "B"}})  # fmt: skip
    written.append(path)

    torch.manual_seed(3)
    dec = Decoder().eval()
    _randomize_norms(dec)
    path = OUT / "transformer_decoder.onnx"
    past_names = [f"past_key_values.{i}.{kv}" for i in range(Decoder.LAYERS) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(Decoder.LAYERS) for kv in ("key", "value")]
    cache = [torch.randn(1, HEADS, Decoder.WINDOW, D // HEADS) for _ in past_names]
    torch.onnx.export(dec, (torch.randint(0, Decoder.VOCAB, (1, 4)), *cache), str(path), dynamo=False,
                      opset_version=17, input_names=["input_ids", *past_names], output_names=["logits", *present_names],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"},
                                    **{n: {0: "batch"} for n in past_names + present_names}})  # fmt: skip
    written.append(path)

    torch.manual_seed(4)
    tts = TinyTts().eval()
    path = OUT / "tiny_tts.onnx"
    torch.onnx.export(tts, (torch.randint(0, TinyTts.VOCAB, (1, 12)), torch.tensor([12])), str(path), dynamo=False,
                      opset_version=17, input_names=["phoneme_ids", "phoneme_lengths"], output_names=["waveform"],
                      dynamic_axes={"phoneme_ids": {1: "phonemes"}, "waveform": {1: "samples"}})  # fmt: skip
    written.append(path)

    torch.manual_seed(2)
    gru = GruEnhancer().eval()
    path = OUT / "gru_enhancer.onnx"
    args = (torch.rand(1, 10, GruEnhancer.BINS), torch.zeros(1, 1, GruEnhancer.HIDDEN))
    torch.onnx.export(gru, args, str(path), dynamo=False, opset_version=14, input_names=["noisy", "h_in"],
                      output_names=["enhanced", "h_out"],
                      dynamic_axes={"noisy": {0: "B", 1: "T"}, "h_in": {1: "B"}, "enhanced": {0: "B", 1: "T"},
                                    "h_out": {1: "B"}})  # fmt: skip
    written.append(path)
    return written


def main() -> int:
    import onnx

    for path in export_all():
        model = onnx.load(str(path))
        model.ir_version = min(model.ir_version, 10)  # onnxruntime 1.3x rejects IR 14 (onnx 1.23's default)
        for node in model.graph.node:  # stack traces carry this script's line numbers: drop them, keep the scopes
            kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        onnx.save(model, str(path))
        onnx.checker.check_model(model, full_check=True)
        print(f"{path.name}: {path.stat().st_size} bytes, {len(model.graph.node)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
