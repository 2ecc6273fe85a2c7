"""What the ONNX spec lets each op do in FP16/BF16, read from onnx's own operator schemas.

The schemas (type constraints such as `T: tensor(float16), tensor(float), ...`) are the ground truth for
which inputs/outputs of a node may change dtype together, so nothing here is a hand-kept op table except
the two small sets below that describe numerics, not typing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import onnx
from onnx import TensorProto, defs

LOW_TYPES = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
LOW_TYPE_STR = {TensorProto.FLOAT16: "tensor(float16)", TensorProto.BFLOAT16: "tensor(bfloat16)"}

# Ops whose float output is an exact copy/selection of input elements: once the inputs hold low-precision
# values, the output does too, so the emulation needs no rounding after them (the research note's
# "data-movement ops pass precision through"). Relu/Neg/Abs/Floor/Ceil/Round/Sign are exact on fp16/bf16
# values as well.
PASS_THROUGH_OPS = frozenset(
    {
        "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Expand", "Tile",
        "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "ScatterND", "ScatterElements",
        "Pad", "DepthToSpace", "SpaceToDepth", "ReverseSequence", "Compress", "Where", "Trilu",
        "Max", "Min", "ReduceMax", "ReduceMin", "MaxPool", "Relu", "Neg", "Abs", "Floor", "Ceil",
        "Round", "Sign", "Dropout",
    }
)  # fmt: skip

# Ops that accept any dtype on their input and do not compute on it: leave their inputs alone rather than
# inserting a Cast just to satisfy a rule that does not apply (a Shape of an FP32 tensor is fine).
FLEXIBLE_INPUT_OPS = frozenset({"Shape", "Size", "Cast", "IsNaN", "IsInf"})

# Ops whose float output dtype is set by an attribute, not by an input; mixed.py rewrites that attribute.
DTYPE_ATTRIBUTE = {
    "Cast": "to",
    "EyeLike": "dtype",
    "RandomNormal": "dtype",
    "RandomUniform": "dtype",
    "RandomNormalLike": "dtype",
    "RandomUniformLike": "dtype",
    "Bernoulli": "dtype",
}


@dataclass(frozen=True)
class Slot:
    """One input or output position of a node: the schema's type parameter (e.g. 'T') or fixed type."""

    param: str  # type parameter name, or a fixed type string such as 'tensor(float)'
    fixed: bool  # True when the schema names a concrete type instead of a parameter


@dataclass(frozen=True)
class OpTyping:
    since_version: int
    inputs: tuple[Slot, ...]
    variadic_input: bool
    outputs: tuple[Slot, ...]
    variadic_output: bool
    allowed: dict[str, frozenset[str]]  # type parameter -> allowed type strings

    def input_slot(self, i: int) -> Slot | None:
        if i < len(self.inputs):
            return self.inputs[i]
        return self.inputs[-1] if self.variadic_input and self.inputs else None

    def output_slot(self, i: int) -> Slot | None:
        if i < len(self.outputs):
            return self.outputs[i]
        return self.outputs[-1] if self.variadic_output and self.outputs else None


@functools.lru_cache(maxsize=1024)
def op_typing(op_type: str, opset: int, domain: str = "") -> OpTyping | None:
    """The typing rules of an op at an opset, or None when onnx has no schema for it (custom domains)."""
    try:
        schema = defs.get_schema(op_type, opset, domain)
    except defs.SchemaError:
        return None
    params = {t.type_param_str for t in schema.type_constraints}

    def slots(formals) -> tuple[Slot, ...]:
        return tuple(Slot(f.type_str, f.type_str not in params) for f in formals)

    variadic = defs.OpSchema.FormalParameterOption.Variadic
    return OpTyping(
        since_version=schema.since_version,
        inputs=slots(schema.inputs),
        variadic_input=bool(schema.inputs) and schema.inputs[-1].option == variadic,
        outputs=slots(schema.outputs),
        variadic_output=bool(schema.outputs) and schema.outputs[-1].option == variadic,
        allowed={t.type_param_str: frozenset(t.allowed_type_strs) for t in schema.type_constraints},
    )
